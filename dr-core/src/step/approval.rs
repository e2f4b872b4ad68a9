//! Approval gates: a person decides, through the embedding service's hook.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{to_json, Action, Call, Observed, Role, StepAction, StepContext};
use crate::executor::{ApprovalRequest, Decision, RunEvent};
use crate::{Error, Result};

/// Wait for a person (through the embedding service's approval hook) to approve. Never
/// retried; with no hook configured the gate is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// What is being approved.
    pub prompt: String,
}

impl Approval {
    /// The `approval` kind of plan steps: `{ prompt: "…" }`.
    ///
    /// # Errors
    /// A missing or malformed `prompt`.
    pub fn from_params(params: &serde_json::Value) -> std::result::Result<Action, String> {
        Ok(Action::new(super::registry::params::<Approval>(params)?))
    }
}

#[async_trait]
impl StepAction for Approval {
    fn kind(&self) -> &str {
        "approval"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::new(Role::Approval, "decide", self.prompt.clone())]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn is_approval(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(120)
    }
    async fn observe(&self, _ctx: &mut StepContext<'_>) -> Observed {
        // A decision is not an effect that can be read back: ask.
        Observed::NotDone
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.emit(RunEvent::ApprovalRequested {
            at: ctx.now(),
            step: ctx.step_id().to_string(),
            prompt: self.prompt.clone(),
        });
        let Some(hook) = ctx.approvals() else {
            return Err(Error::ApprovalDenied {
                step: ctx.step_id().to_string(),
                reason: "no approval hook configured".into(),
            });
        };
        let request = ApprovalRequest {
            plan: ctx.plan().to_string(),
            scenario: ctx.scenario().to_string(),
            step: ctx.step_id().to_string(),
            service: ctx.service().map(str::to_string),
            prompt: self.prompt.clone(),
        };
        match hook.decide(&request).await? {
            Decision::Approve => Ok(()),
            Decision::Reject { reason } => Err(Error::ApprovalDenied {
                step: ctx.step_id().to_string(),
                reason,
            }),
        }
    }
}
