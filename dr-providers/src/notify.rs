//! The `log` notification channel.

use async_trait::async_trait;
use dr_core::provider::{Capabilities, Notification, Notifier, Operation, Severity};
use dr_core::redact::safe;

/// Writes each notification as a `tracing` event (target `dr_providers::notify`): a warning
/// for critical ones, info otherwise. Text is redacted and escaped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{Notification, Notifier, Severity};
/// use dr_providers::LogNotifier;
///
/// let n = LogNotifier::new();
/// let note = Notification { severity: Severity::Info, title: "failover".into(), body: "started".into() };
/// n.notify("oncall", &note).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogNotifier;

impl LogNotifier {
    /// The notifier.
    pub fn new() -> Self {
        LogNotifier
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &str {
        "log"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Notify])
    }
    async fn notify(&self, channel: &str, n: &Notification) -> dr_core::Result<()> {
        let (channel, title, body) = (safe(channel), safe(&n.title), safe(&n.body));
        match n.severity {
            Severity::Critical => {
                tracing::warn!(target: "dr_providers::notify", %channel, severity = "critical", %title, %body)
            }
            Severity::Warning => {
                tracing::warn!(target: "dr_providers::notify", %channel, severity = "warning", %title, %body)
            }
            Severity::Info => {
                tracing::info!(target: "dr_providers::notify", %channel, severity = "info", %title, %body)
            }
        }
        Ok(())
    }
}
