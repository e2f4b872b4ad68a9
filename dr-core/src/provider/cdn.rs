//! `CdnOrigin`: point a content delivery network's distribution at another origin.

use std::sync::Arc;

use async_trait::async_trait;

use super::Capabilities;
use crate::Result;

/// A CDN distribution as far as recovery cares: where its default behaviour sends
/// requests, and whether its last change has reached every edge location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CdnDistribution {
    /// Distribution id (`E2QWRUHAPOMQZL`).
    pub id: String,
    /// Domain name of the origin the default cache behaviour targets
    /// (`lb.us-east-1.shop.example.com`).
    pub origin: String,
    /// Whether the distribution's configuration is deployed to every edge location
    /// (CloudFront's `Deployed` status).
    pub deployed: bool,
    /// The configuration's version (CloudFront's `ETag`), which changes with every update.
    pub version: String,
}

/// A content delivery network whose origin can be switched (CloudFront, the simulated
/// cloud).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::CdnOrigin;
///
/// async fn switch(cdn: &dyn CdnOrigin) -> dr_core::Result<()> {
///     let before = cdn.describe_distribution("E2QWRUHAPOMQZL").await?;
///     if before.origin != "lb.us-west-2.shop.example.com" {
///         cdn.set_origin("E2QWRUHAPOMQZL", "lb.us-west-2.shop.example.com").await?;
///     }
///     Ok(())
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CdnOrigin: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `cloudfront`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The distribution's origin, deployment status and version.
    ///
    /// # Errors
    /// `NotFound` (distribution).
    async fn describe_distribution(&self, id: &str) -> Result<CdnDistribution>;

    /// Points the default cache behaviour's origin at `origin` (a domain name), keeping
    /// the rest of the configuration. The update is conditional on the version it read, so
    /// a concurrent change is never overwritten. Returns the distribution as updated
    /// (usually not yet deployed). Idempotent: an origin already set is left as it is.
    ///
    /// # Errors
    /// `NotFound` (distribution); `PreconditionFailed` when another change landed between
    /// the read and the write (retryable: read again).
    async fn set_origin(&self, id: &str, origin: &str) -> Result<CdnDistribution>;
}

/// A `CdnOrigin` trait object.
pub type DynCdnOrigin = dyn CdnOrigin;

#[async_trait]
impl<T: CdnOrigin + ?Sized> CdnOrigin for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn describe_distribution(&self, id: &str) -> Result<CdnDistribution> {
        (**self).describe_distribution(id).await
    }
    async fn set_origin(&self, id: &str, origin: &str) -> Result<CdnDistribution> {
        (**self).set_origin(id, origin).await
    }
}
