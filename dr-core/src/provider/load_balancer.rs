//! `LoadBalancer`: move a load balancer's targets (register the new, deregister the old).

use std::sync::Arc;

use async_trait::async_trait;

use super::Capabilities;
use crate::Result;

/// One target of a target group: an instance id or an IP address, with an optional port
/// (the group's port when `None`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct LbTarget {
    /// Instance id (`i-0abc…`) or IP address (`10.1.2.3`).
    pub id: String,
    /// Port, when it differs from the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl LbTarget {
    /// Parses `id` or `id:port` (`10.1.2.3:8080`, `i-0abc`).
    ///
    /// ```
    /// use dr_core::provider::LbTarget;
    ///
    /// let t = LbTarget::parse("10.1.2.3:8080").unwrap();
    /// assert_eq!((t.id.as_str(), t.port), ("10.1.2.3", Some(8080)));
    /// assert_eq!(LbTarget::parse("i-0abc").unwrap().port, None);
    /// assert!(LbTarget::parse("10.1.2.3:http").is_err());
    /// ```
    ///
    /// # Errors
    /// `InvalidRequest` for an empty id or a port that is not a number from 1 to 65535.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| crate::Error::InvalidRequest {
            provider: "plan".into(),
            operation: "parse target".into(),
            message: format!("load balancer target `{s}`: {why}"),
        };
        let (id, port) = match s.rsplit_once(':') {
            Some((id, p)) => {
                let port: u16 = p
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
                (id, Some(port))
            }
            None => (s, None),
        };
        if id.trim().is_empty() {
            return Err(bad("the id is empty"));
        }
        Ok(LbTarget {
            id: id.to_string(),
            port,
        })
    }
}

impl LbTarget {
    /// Whether `reported` (a target as a health read gives it) is this target: the same id,
    /// and the same port, where a port left out on either side is the group's. A plan may
    /// write the group's port out (`10.2.0.10:8080` on a group on 8080) while a provider
    /// reports it as `None`, or the other way round; neither side needs to know the group's
    /// port. (One address registered both on the group's port and on another one cannot be
    /// told apart this way; ELBv2 keeps them apart, and a plan rarely does that.)
    ///
    /// ```
    /// use dr_core::provider::LbTarget;
    ///
    /// let planned = LbTarget::parse("10.2.0.10:8080").unwrap();
    /// assert!(planned.matches(&LbTarget::parse("10.2.0.10").unwrap()));
    /// assert!(planned.matches(&LbTarget::parse("10.2.0.10:8080").unwrap()));
    /// assert!(!planned.matches(&LbTarget::parse("10.2.0.10:9090").unwrap()));
    /// assert!(!planned.matches(&LbTarget::parse("10.2.0.11").unwrap()));
    /// ```
    pub fn matches(&self, reported: &LbTarget) -> bool {
        self.id == reported.id
            && match (self.port, reported.port) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for LbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// Health of a registered target, as the load balancer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Registered; the first health checks are under way.
    Initial,
    /// Receiving traffic.
    Healthy,
    /// Failing its health checks.
    Unhealthy,
    /// Being deregistered; in-flight requests drain.
    Draining,
    /// Registered but not used (no listener, or its zone is disabled).
    Unused,
    /// Not known.
    Unknown,
}

/// A registered target and its health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetHealth {
    /// The target.
    pub target: LbTarget,
    /// Its health.
    pub state: TargetState,
}

/// A load balancer's target groups (ELBv2, the simulated cloud).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{LbTarget, LoadBalancer, TargetState};
///
/// async fn moved(lb: &dyn LoadBalancer, group: &str) -> dr_core::Result<bool> {
///     let west = LbTarget::parse("10.2.0.10:8080")?;
///     lb.register_targets(group, &[west.clone()]).await?;
///     let health = lb.target_health(group).await?;
///     Ok(health.iter().any(|t| t.target == west && t.state == TargetState::Healthy))
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait LoadBalancer: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `elbv2`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// Every target registered in `group` (a target group ARN or name) and its health.
    ///
    /// # Errors
    /// `NotFound` (group).
    async fn target_health(&self, group: &str) -> Result<Vec<TargetHealth>>;

    /// Registers `targets` in `group`. Idempotent: a registered target stays registered.
    ///
    /// # Errors
    /// `NotFound` (group); `InvalidRequest` for a target the group cannot take.
    async fn register_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()>;

    /// Deregisters `targets` from `group`; in-flight requests drain. Idempotent: a target
    /// not registered is not an error.
    ///
    /// # Errors
    /// `NotFound` (group).
    async fn deregister_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()>;
}

/// A `LoadBalancer` trait object.
pub type DynLoadBalancer = dyn LoadBalancer;

#[async_trait]
impl<T: LoadBalancer + ?Sized> LoadBalancer for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn target_health(&self, group: &str) -> Result<Vec<TargetHealth>> {
        (**self).target_health(group).await
    }
    async fn register_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        (**self).register_targets(group, targets).await
    }
    async fn deregister_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        (**self).deregister_targets(group, targets).await
    }
}
