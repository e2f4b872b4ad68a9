//! What people hear during a recovery: a webhook [`Notifier`](crate::provider::Notifier)
//! (Slack, Teams, JSON) and [`IncidentComms`], which turns the executor's event stream into
//! status-page phases, an escalation schedule, RTO warnings and periodic updates.

mod status;
mod webhook;

pub use status::{fan_out, CommsConfig, EscalationLevel, IncidentComms, Phase, Reason, Sent};
pub use webhook::{WebhookFormat, WebhookNotifier};
