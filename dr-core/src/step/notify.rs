//! Notification steps.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Role, StepAction, StepContext};
use crate::provider::{Notification, Operation as O};
use crate::Result;

/// Send a notification to a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notify {
    /// Channel name.
    pub channel: String,
    /// The message.
    pub notification: Notification,
}

#[async_trait]
impl StepAction for Notify {
    fn kind(&self) -> &str {
        "notify"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            Role::Notifier {
                channel: self.channel.clone(),
            },
            O::Notify,
            self.channel.clone(),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.notifier(&self.channel)?
            .notify(&self.channel, &self.notification)
            .await
    }
}
