//! `DnsFailover`: read and switch DNS records, read health-check status.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Capabilities;
use crate::{Error, Result};

/// How a record set is routed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Routing {
    /// One record set answers.
    Simple,
    /// Failover routing: the `primary` set answers while healthy, else the secondary.
    Failover {
        /// `true` for the PRIMARY set, `false` for SECONDARY.
        primary: bool,
        /// Identifier of this set within the name.
        set_id: String,
    },
    /// Weighted routing.
    Weighted {
        /// Identifier of this set within the name.
        set_id: String,
        /// Relative weight (0 takes it out of rotation).
        weight: u32,
    },
}

/// A DNS record set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsRecord {
    /// Hosted zone (id or name).
    pub zone: String,
    /// Fully qualified record name (`api.example.com`).
    pub name: String,
    /// Record type (`A`, `AAAA`, `CNAME`).
    pub record_type: String,
    /// Values (addresses or a target host).
    pub values: Vec<String>,
    /// TTL in seconds.
    pub ttl: u32,
    /// Routing policy.
    pub routing: Routing,
}

/// A submitted DNS change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsChange {
    /// Change identifier.
    pub id: String,
    /// Whether the change has propagated to all authoritative servers.
    pub in_sync: bool,
}

/// Health as a health check (DNS-level or a probe) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
    /// Not known (no data yet).
    Unknown,
}

/// A DNS service with failover (Route 53, Cloud DNS, the simulated cloud).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{DnsFailover, DnsRecord, Routing};
/// use dr_core::sim::SimCloud;
///
/// tokio::time::pause();
/// let cloud = SimCloud::new(1);
/// cloud.add_record("zone-1", "api.example.com", "lb.us-east-1.example.com");
/// let dns = cloud.dns();
/// let mut record = dns.get_record("zone-1", "api.example.com").await?;
/// record.values = vec!["lb.us-west-2.example.com".into()];
/// let change = dns.switch_record(&record).await?;
/// dns.wait_change(&change.id, Duration::from_secs(600)).await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DnsFailover: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `route53`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The record set `name` in `zone` (the first one, for failover/weighted names use
    /// [`get_record_set`](Self::get_record_set)).
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_record(&self, zone: &str, name: &str) -> Result<DnsRecord> {
        self.get_record_set(zone, name, None).await
    }

    /// The record set `name` in `zone` with set identifier `set_id` (`None` for simple
    /// routing).
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<DnsRecord>;

    /// Creates or replaces (UPSERT) the record set. A switch to the values a record already
    /// has returns an in-sync change and changes nothing.
    ///
    /// # Errors
    /// `NotFound` (zone); `InvalidRequest`.
    async fn switch_record(&self, record: &DnsRecord) -> Result<DnsChange>;

    /// The current state of a change.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_change(&self, change_id: &str) -> Result<DnsChange>;

    /// Polls [`get_change`](Self::get_change) until the change is in sync. Temporary errors
    /// of a poll do not end the wait; the deadline does.
    ///
    /// # Errors
    /// `Timeout` after `deadline`.
    async fn wait_change(&self, change_id: &str, deadline: Duration) -> Result<DnsChange> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_secs(2);
        loop {
            match self.get_change(change_id).await {
                Ok(change) if change.in_sync => return Ok(change),
                Ok(_) => {}
                // A throttled or failed poll does not end the wait: the deadline does.
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => tracing::debug!(change_id, error = %e, "poll failed, polling on"),
            }
            let elapsed = start.elapsed();
            if elapsed >= deadline {
                return Err(Error::Timeout {
                    operation: format!("waiting for DNS change {change_id}"),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay.min(deadline - elapsed)).await;
            delay = (delay * 2).min(Duration::from_secs(15));
        }
    }

    /// Status of a DNS health check by id.
    ///
    /// # Errors
    /// `NotFound`; `NotSupported`.
    async fn health_check_status(&self, health_check_id: &str) -> Result<HealthStatus>;
}

/// A `DnsFailover` trait object.
pub type DynDnsFailover = dyn DnsFailover;

#[async_trait]
impl<T: DnsFailover + ?Sized> DnsFailover for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn get_record(&self, zone: &str, name: &str) -> Result<DnsRecord> {
        (**self).get_record(zone, name).await
    }
    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<DnsRecord> {
        (**self).get_record_set(zone, name, set_id).await
    }
    async fn switch_record(&self, record: &DnsRecord) -> Result<DnsChange> {
        (**self).switch_record(record).await
    }
    async fn get_change(&self, change_id: &str) -> Result<DnsChange> {
        (**self).get_change(change_id).await
    }
    async fn wait_change(&self, change_id: &str, deadline: Duration) -> Result<DnsChange> {
        (**self).wait_change(change_id, deadline).await
    }
    async fn health_check_status(&self, health_check_id: &str) -> Result<HealthStatus> {
        (**self).health_check_status(health_check_id).await
    }
}
