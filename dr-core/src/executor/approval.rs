//! Manual approval gates: the hook the embedding service implements.

use async_trait::async_trait;

use crate::Result;

/// What an [`Approval`](crate::step::approval::Approval) step asks a person to decide.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApprovalRequest {
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// The approval step's id.
    pub step: String,
    /// The service concerned, if any.
    pub service: Option<String>,
    /// What is being approved.
    pub prompt: String,
}

/// The answer to an [`ApprovalRequest`].
///
/// # Examples
///
/// ```
/// use dr_core::executor::Decision;
///
/// let no = Decision::Reject { reason: "change freeze".into() };
/// assert_eq!(serde_json::to_value(&no).unwrap()["decision"], "reject");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Go ahead.
    Approve,
    /// Stop: the step fails with [`Error::ApprovalDenied`](crate::Error::ApprovalDenied).
    Reject {
        /// Why (shown in the report).
        reason: String,
    },
}

/// Asks a person (a chat button, a CLI prompt, a ticket) to approve a step.
///
/// The executor calls it once per approval step and never retries it. When no hook is
/// configured, every approval is rejected with the reason `no approval hook configured`:
/// nothing that needs a person goes ahead unattended by default.
///
/// # Examples
///
/// ```
/// use async_trait::async_trait;
/// use dr_core::executor::{ApprovalHook, ApprovalRequest, Decision};
///
/// #[derive(Debug)]
/// struct OnlyDuringBusinessHours;
///
/// #[async_trait]
/// impl ApprovalHook for OnlyDuringBusinessHours {
///     async fn decide(&self, request: &ApprovalRequest) -> dr_core::Result<Decision> {
///         Ok(Decision::Reject { reason: format!("{} needs a person", request.step) })
///     }
/// }
/// ```
#[async_trait]
pub trait ApprovalHook: std::fmt::Debug + Send + Sync + 'static {
    /// Decides on `request`.
    ///
    /// # Errors
    /// Any error fails the approval step (it is not retried).
    async fn decide(&self, request: &ApprovalRequest) -> Result<Decision>;
}

/// Approves every request without asking anyone. For simulations, game days and tests only.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use dr_core::executor::{AutoApprove, Executor};
/// use dr_core::Providers;
///
/// let executor = Executor::new(Providers::new()).approvals(Arc::new(AutoApprove));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoApprove;

#[async_trait]
impl ApprovalHook for AutoApprove {
    async fn decide(&self, _request: &ApprovalRequest) -> Result<Decision> {
        Ok(Decision::Approve)
    }
}
