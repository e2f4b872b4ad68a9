//! [`CloudFrontCdn`]: [`CdnOrigin`] over Amazon CloudFront distributions.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{Distribution, DistributionConfig};
use aws_sdk_cloudfront::Client;
use dr_core::provider::{Capabilities, CdnDistribution, CdnOrigin, Operation};
use dr_core::{Error, Result};

use crate::error::{map_sdk, missing, service_code, Ctx};

const NAME: &str = "cloudfront";

/// CloudFront's status of a distribution whose configuration reached every edge location.
pub const DEPLOYED: &str = "Deployed";

/// [`CdnOrigin`] over Amazon CloudFront.
///
/// * [`describe_distribution`](CdnOrigin::describe_distribution) is one `GetDistribution`:
///   the origin is the `DomainName` of the origin that the default cache behaviour's
///   `TargetOriginId` names, `deployed` is the status `Deployed`, the version the `ETag`.
/// * [`set_origin`](CdnOrigin::set_origin) reads `GetDistributionConfig` (the configuration
///   and its `ETag`), changes that origin's `DomainName` and nothing else, and sends
///   `UpdateDistribution` with `IfMatch` set to the `ETag` it read. An origin already set
///   sends no update. When another change landed in between, CloudFront answers
///   `PreconditionFailed` (412) and nothing changed: that becomes `Error::Refused`
///   (temporary, certainly not applied) with the `PreconditionFailed` as its source, so the
///   executor's retry reads the distribution again before writing.
///
/// A default behaviour that targets an origin group (CloudFront's own origin failover) is
/// refused as `InvalidRequest`: which member to change is not this provider's choice.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::CdnOrigin;
///
/// let cdn = dr_aws::AwsConfig::from_env().await?.build_cloudfront();
/// let updated = cdn.set_origin("E2QWRUHAPOMQZL", "lb.us-west-2.shop.example.com").await?;
/// println!("version {} deployed: {}", updated.version, updated.deployed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudFrontCdn {
    client: Client,
    timeout: Option<Duration>,
}

impl CloudFrontCdn {
    /// A provider over `client`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// let aws = dr_aws::AwsConfig::from_env().await?;
    /// let cdn = dr_aws::CloudFrontCdn::new(aws_sdk_cloudfront::Client::new(aws.sdk_config()));
    /// # let _ = cdn; Ok(()) }
    /// ```
    pub fn new(client: Client) -> Self {
        CloudFrontCdn {
            client,
            timeout: None,
        }
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
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

fn resource(id: &str) -> String {
    format!("distribution {id}")
}

/// The domain name of the origin the default cache behaviour targets.
fn default_origin(id: &str, config: &DistributionConfig, operation: &str) -> Result<String> {
    let target = config
        .default_cache_behavior
        .as_ref()
        .map(|b| b.target_origin_id.as_str())
        .ok_or_else(|| missing(NAME, operation, "DefaultCacheBehavior"))?;
    if let Some(origin) = config
        .origins
        .as_ref()
        .and_then(|o| o.items.iter().find(|o| o.id == target))
    {
        return Ok(origin.domain_name.clone());
    }
    let grouped = config
        .origin_groups
        .as_ref()
        .is_some_and(|g| g.items().iter().any(|g| g.id == target));
    if grouped {
        return Err(Error::InvalidRequest {
            provider: NAME.into(),
            operation: operation.into(),
            message: format!(
                "{}: the default cache behaviour targets origin group `{target}`; \
                 switch one of its members instead",
                resource(id)
            ),
        });
    }
    Err(Error::InvalidResponse {
        provider: NAME.into(),
        operation: operation.into(),
        message: format!(
            "{}: the default cache behaviour targets `{target}`, which is no origin",
            resource(id)
        ),
    })
}

fn to_distribution(
    id: &str,
    dist: &Distribution,
    etag: Option<&str>,
    op: &str,
) -> Result<CdnDistribution> {
    let config = dist
        .distribution_config
        .as_ref()
        .ok_or_else(|| missing(NAME, op, "DistributionConfig"))?;
    Ok(CdnDistribution {
        id: id.to_string(),
        origin: default_origin(id, config, op)?,
        deployed: dist.status == DEPLOYED,
        version: etag.ok_or_else(|| missing(NAME, op, "ETag"))?.to_string(),
    })
}

/// An ETag mismatch: refused, nothing changed, worth reading again.
fn stale(id: &str, etag: &str) -> Error {
    Error::Refused {
        provider: NAME.into(),
        operation: format!("set_origin {}", resource(id)),
        source: Some(Box::new(Error::PreconditionFailed {
            provider: NAME.into(),
            resource: resource(id),
            expected: format!("ETag {etag}"),
        })),
    }
}

#[async_trait]
impl CdnOrigin for CloudFrontCdn {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::DescribeDistribution, Operation::SetOrigin])
    }

    async fn describe_distribution(&self, id: &str) -> Result<CdnDistribution> {
        let res = resource(id);
        let out = self
            .client
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("describe_distribution", &res), e))?;
        let dist = out
            .distribution()
            .ok_or_else(|| missing(NAME, "describe_distribution", "Distribution"))?;
        to_distribution(id, dist, out.e_tag(), "describe_distribution")
    }

    async fn set_origin(&self, id: &str, origin: &str) -> Result<CdnDistribution> {
        let res = resource(id);
        let read = self
            .client
            .get_distribution_config()
            .id(id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("set_origin", &res), e))?;
        let etag = read
            .e_tag()
            .ok_or_else(|| missing(NAME, "set_origin", "ETag"))?
            .to_string();
        let mut config = read
            .distribution_config
            .ok_or_else(|| missing(NAME, "set_origin", "DistributionConfig"))?;
        if default_origin(id, &config, "set_origin")? == origin {
            tracing::debug!(distribution = id, origin, "origin already set");
            return self.describe_distribution(id).await;
        }
        let target = config
            .default_cache_behavior
            .as_ref()
            .map(|b| b.target_origin_id.clone())
            .unwrap_or_default();
        if let Some(o) = config
            .origins
            .as_mut()
            .and_then(|o| o.items.iter_mut().find(|o| o.id == target))
        {
            o.domain_name = origin.to_string();
        }
        let out = self
            .client
            .update_distribution()
            .id(id)
            .if_match(&etag)
            .distribution_config(config)
            .send()
            .await
            .map_err(|e| {
                let precondition = service_code(&e).is_some_and(|(code, status)| {
                    code == Some("PreconditionFailed") || status == 412
                });
                if precondition {
                    stale(id, &etag)
                } else {
                    map_sdk(self.ctx("set_origin", &res), e)
                }
            })?;
        let dist = out
            .distribution()
            .ok_or_else(|| missing(NAME, "set_origin", "Distribution"))?;
        tracing::info!(distribution = id, origin, "CloudFront origin switched");
        to_distribution(id, dist, out.e_tag(), "set_origin")
    }
}
