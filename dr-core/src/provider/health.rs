//! Health probes and notifications.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Capabilities, HealthStatus};
use crate::Result;

/// Checks whether an endpoint serves (an HTTP health URL, a TCP port, a SQL `SELECT 1`).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{HealthProbe, HealthStatus};
/// use dr_core::sim::SimCloud;
///
/// let cloud = SimCloud::new(1);
/// cloud.set_endpoint_health("https://api.example.com/health", HealthStatus::Healthy);
/// let status = cloud.probe().check("https://api.example.com/health").await?;
/// assert_eq!(status, HealthStatus::Healthy);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait HealthProbe: std::fmt::Debug + Send + Sync + 'static {
    /// The probe's name (`sim`, `http`).
    fn name(&self) -> &str;

    /// The operations this probe supports.
    fn capabilities(&self) -> Capabilities;

    /// Probes `target` once.
    ///
    /// # Errors
    /// Errors reaching the target are reported as `Unhealthy`, not as errors; errors are for
    /// a probe that cannot run at all (bad target).
    async fn check(&self, target: &str) -> Result<HealthStatus>;
}

/// A `HealthProbe` trait object.
pub type DynHealthProbe = dyn HealthProbe;

#[async_trait]
impl<T: HealthProbe + ?Sized> HealthProbe for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn check(&self, target: &str) -> Result<HealthStatus> {
        (**self).check(target).await
    }
}

/// Severity of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Progress and resolution.
    Info,
    /// Degraded service.
    Warning,
    /// Outage, data loss, a failed recovery.
    Critical,
}

/// A message to a channel (a pager, a chat room, a status page).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// Severity.
    pub severity: Severity,
    /// Short title.
    pub title: String,
    /// Body text.
    pub body: String,
}

/// Sends notifications.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{Notification, Notifier, Severity};
/// use dr_core::sim::SimCloud;
///
/// let cloud = SimCloud::new(1);
/// let note = Notification { severity: Severity::Info, title: "failover".into(), body: "started".into() };
/// cloud.notifier().notify("oncall", &note).await?;
/// assert_eq!(cloud.notifications().len(), 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Notifier: std::fmt::Debug + Send + Sync + 'static {
    /// The notifier's name.
    fn name(&self) -> &str;

    /// The operations this notifier supports.
    fn capabilities(&self) -> Capabilities;

    /// Sends `notification` to `channel`.
    ///
    /// # Errors
    /// `NotFound` for an unknown channel; delivery errors.
    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()>;
}

/// A `Notifier` trait object.
pub type DynNotifier = dyn Notifier;

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()> {
        (**self).notify(channel, notification).await
    }
}
