//! [`SecretsManagerSecrets`]: [`SecretManager`] over AWS Secrets Manager.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::Region;
use aws_sdk_secretsmanager::Client;
use dr_core::provider::{Capabilities, Operation, SecretManager, SecretValue};
use dr_core::{Error, Result, Secret};
use sha2::{Digest, Sha256};

use crate::error::{map_sdk, missing, service_code, Ctx};

const NAME: &str = "secretsmanager";

/// The `ClientRequestToken` (and so the version id) that
/// [`SecretsManagerSecrets::put_secret_value`](SecretManager::put_secret_value) sends for
/// the caller's `version`: the hex SHA-256 of it, 64 characters, the same every time.
///
/// ```
/// let token = dr_aws::version_token("rotate-incident-42");
/// assert_eq!(token.len(), 64);
/// assert_eq!(token, dr_aws::version_token("rotate-incident-42"));
/// assert_ne!(token, dr_aws::version_token("rotate-incident-43"));
/// ```
pub fn version_token(version: &str) -> String {
    hex::encode(Sha256::digest(version.as_bytes()))
}

/// [`SecretManager`] over AWS Secrets Manager, one client per region (made on first use from
/// the same settings).
///
/// * [`get_secret_value`](SecretManager::get_secret_value): `GetSecretValue` of the
///   `AWSCURRENT` version: its `VersionId` and its `SecretString` (a `SecretBinary` that is
///   UTF-8 is taken as text; any other is refused as `InvalidResponse`).
/// * [`put_secret_value`](SecretManager::put_secret_value): `PutSecretValue` with
///   `ClientRequestToken` = [`version_token`]`(version)`, which makes the new value
///   `AWSCURRENT`. Secrets Manager itself makes the write idempotent: the same token with
///   the same value again is a no-op that returns the same version; the same token with
///   another value is refused (`ResourceExistsException`, mapped to `AlreadyExists`). The
///   returned version id is that token, and it is what `get_secret_value` reports as the
///   version afterwards.
///
/// Values are held only as [`Secret`]s: never logged, and no error this provider returns
/// carries one (an error text that would contain the value is replaced by one that does not).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::SecretManager;
/// use dr_core::Secret;
///
/// let sm = dr_aws::AwsConfig::from_env().await?.build_secretsmanager();
/// let fresh = Secret::new(std::env::var("NEW_DB_PASSWORD").unwrap_or_default());
/// let version = sm.put_secret_value("us-east-1", "shop/orders-db", &fresh, "incident-42").await?;
/// assert_eq!(version, dr_aws::version_token("incident-42"));
/// assert_eq!(sm.get_secret_value("us-east-1", "shop/orders-db").await?.version, version);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SecretsManagerSecrets {
    base: aws_sdk_secretsmanager::Config,
    clients: Arc<Mutex<HashMap<String, Client>>>,
    timeout: Option<Duration>,
}

impl SecretsManagerSecrets {
    /// A provider whose per-region clients are made from `base` (its region is replaced).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// let aws = dr_aws::AwsConfig::from_env().await?;
    /// let sm = dr_aws::SecretsManagerSecrets::from_conf(aws_sdk_secretsmanager::Config::new(aws.sdk_config()));
    /// # let _ = sm; Ok(()) }
    /// ```
    pub fn from_conf(base: aws_sdk_secretsmanager::Config) -> Self {
        SecretsManagerSecrets {
            base,
            clients: Arc::default(),
            timeout: None,
        }
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Secrets Manager client for `region`.
    pub fn client(&self, region: &str) -> Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = self
                    .base
                    .to_builder()
                    .region(Region::new(region.to_string()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }
}

fn resource(region: &str, name: &str) -> String {
    format!("secret {region}/{name}")
}

/// `err`, or an error without the value when any text of `err` would show it.
fn scrubbed(err: Error, value: &Secret, operation: &str, resource: &str) -> Error {
    let shown = value.expose();
    if shown.is_empty() {
        return err;
    }
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut cur = std::error::Error::source(&err);
    while let Some(e) = cur {
        texts.push(e.to_string());
        cur = e.source();
    }
    if texts.iter().any(|t| t.contains(shown)) {
        return Error::Other {
            provider: NAME.into(),
            operation: operation.into(),
            retry: err.retry(),
            source: format!("{resource}: the error's text was withheld (it held the value)").into(),
        };
    }
    err
}

#[async_trait]
impl SecretManager for SecretsManagerSecrets {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::GetSecretValue, Operation::PutSecretValue])
    }

    async fn get_secret_value(&self, region: &str, name: &str) -> Result<SecretValue> {
        let res = resource(region, name);
        let out = self
            .client(region)
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("get_secret_value", &res), e))?;
        let version = out
            .version_id()
            .ok_or_else(|| missing(NAME, "get_secret_value", "VersionId"))?
            .to_string();
        let value = match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => Secret::new(s),
            (None, Some(b)) => match std::str::from_utf8(b.as_ref()) {
                Ok(s) => Secret::new(s),
                Err(_) => {
                    return Err(Error::InvalidResponse {
                        provider: NAME.into(),
                        operation: "get_secret_value".into(),
                        message: format!("{res}: the value is binary, not UTF-8 text"),
                    })
                }
            },
            (None, None) => return Err(missing(NAME, "get_secret_value", "SecretString")),
        };
        Ok(SecretValue { version, value })
    }

    async fn put_secret_value(
        &self,
        region: &str,
        name: &str,
        value: &Secret,
        version: &str,
    ) -> Result<String> {
        let res = resource(region, name);
        if version.trim().is_empty() {
            return Err(Error::InvalidRequest {
                provider: NAME.into(),
                operation: "put_secret_value".into(),
                message: format!("{res}: the version is empty"),
            });
        }
        let token = version_token(version);
        let out = self
            .client(region)
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose())
            .client_request_token(&token)
            .send()
            .await
            .map_err(|e| {
                let exists = service_code(&e)
                    .is_some_and(|(code, _)| code == Some("ResourceExistsException"));
                let err = if exists {
                    Error::AlreadyExists {
                        provider: NAME.into(),
                        resource: format!(
                            "version {} ({token}) of {res} with another value",
                            dr_core::redact::safe(version)
                        ),
                    }
                } else {
                    map_sdk(self.ctx("put_secret_value", &res), e)
                };
                scrubbed(err, value, "put_secret_value", &res)
            })?;
        let id = out.version_id().unwrap_or(&token).to_string();
        tracing::info!(secret = %res, version = %id, "secret value written");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_showing_the_value_is_replaced_and_keeps_its_retry_class() {
        let value = Secret::new("hunter2-planted");
        let leaky = Error::Unavailable {
            provider: NAME.into(),
            operation: "put_secret_value".into(),
            source: Some("echoed hunter2-planted back".into()),
        };
        let err = scrubbed(leaky, &value, "put_secret_value", "secret us-east-1/db");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("secret us-east-1/db"), "{shown}");
        assert!(err.is_retryable());

        let clean = Error::not_found(NAME, "secret us-east-1/db");
        let err = scrubbed(clean, &value, "put_secret_value", "secret us-east-1/db");
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn tokens_are_64_hex_characters_within_the_32_to_64_aws_allows() {
        for version in ["v", "incident-42", &"x".repeat(500)] {
            let t = version_token(version);
            assert_eq!(t.len(), 64);
            assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
