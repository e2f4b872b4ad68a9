//! `SecretManager`: a cloud secret manager, for rotating the credentials a service uses.

use std::sync::Arc;

use async_trait::async_trait;

use super::Capabilities;
use crate::{Result, Secret};

/// A secret's current value and version. The value is a [`Secret`]: it never appears in
/// `Debug`, logs or errors. `version` is the provider's id, which need not be the text a
/// caller wrote it under (AWS derives a token from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretValue {
    /// Version id of the current value (`AWSCURRENT`'s version).
    pub version: String,
    /// The value.
    pub value: Secret,
}

/// A cloud secret manager (AWS Secrets Manager, the simulated cloud).
///
/// A rotation writes a new value under a version id the caller chooses (the step's
/// idempotency key), so a retried or resumed write never makes a second version, and a
/// reader can tell whether the rotation already happened.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::SecretManager;
/// use dr_core::Secret;
///
/// async fn rotate(m: &dyn SecretManager) -> dr_core::Result<String> {
///     let fresh = Secret::new("a new password from a generator");
///     match m.put_secret_value("us-east-1", "shop/orders-db", &fresh, "rotate-inc-42").await {
///         Ok(version) => Ok(version),
///         // Written before (a retry, a resume): not written twice.
///         Err(dr_core::Error::AlreadyExists { .. }) => {
///             Ok(m.get_secret_value("us-east-1", "shop/orders-db").await?.version)
///         }
///         Err(e) => Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SecretManager: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `secretsmanager`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The current value of secret `name` in `region`.
    ///
    /// # Errors
    /// `NotFound` (secret).
    async fn get_secret_value(&self, region: &str, name: &str) -> Result<SecretValue>;

    /// Makes `value` the current value of `name`, as version `version` (any non-empty
    /// text; a provider whose version ids have a set form, such as AWS's 32 to 64
    /// character `ClientRequestToken`, derives one from it the same way every time).
    /// Writing the same version with the same value again is a no-op; the same version
    /// with another value is refused. Returns the provider's version id.
    ///
    /// # Errors
    /// `NotFound` (secret); `AlreadyExists` when `version` exists with another value.
    async fn put_secret_value(
        &self,
        region: &str,
        name: &str,
        value: &Secret,
        version: &str,
    ) -> Result<String>;
}

/// A `SecretManager` trait object.
pub type DynSecretManager = dyn SecretManager;

#[async_trait]
impl<T: SecretManager + ?Sized> SecretManager for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn get_secret_value(&self, region: &str, name: &str) -> Result<SecretValue> {
        (**self).get_secret_value(region, name).await
    }
    async fn put_secret_value(
        &self,
        region: &str,
        name: &str,
        value: &Secret,
        version: &str,
    ) -> Result<String> {
        (**self)
            .put_secret_value(region, name, value, version)
            .await
    }
}
