//! Progress events streamed while a graph runs.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Outcome;
use crate::Retry;

/// One progress event of a run, sent on the channel given to
/// [`Executor::events`](super::Executor::events) and logged through `tracing`.
///
/// Every variant carries `at`, the time it happened (from the executor's [`Clock`](crate::Clock)).
/// Errors are rendered as text; secret values never appear in any event.
///
/// # Examples
///
/// ```
/// use dr_core::executor::RunEvent;
///
/// let event = RunEvent::StepSkipped {
///     at: chrono::DateTime::UNIX_EPOCH,
///     step: "api/switch-dns".into(),
///     reason: "dependency `db/promote` failed".into(),
/// };
/// let json = serde_json::to_value(&event).unwrap();
/// assert_eq!(json["event"], "step_skipped");
/// assert_eq!(event.step(), Some("api/switch-dns"));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
#[non_exhaustive]
pub enum RunEvent {
    /// The run began.
    RunStarted {
        /// When.
        at: DateTime<Utc>,
        /// Scenario name.
        scenario: String,
        /// Number of steps in the graph.
        steps: usize,
    },
    /// An attempt of a step began.
    StepStarted {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An attempt failed with a temporary error; the step is tried again after `backoff`.
    StepRetrying {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// The attempt that failed.
        attempt: u32,
        /// Its error.
        error: String,
        /// Wait before the next attempt.
        #[serde(rename = "backoff_seconds", with = "crate::duration::seconds")]
        backoff: Duration,
    },
    /// A step succeeded.
    StepSucceeded {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// Time from its first attempt to success.
        #[serde(rename = "elapsed_seconds", with = "crate::duration::seconds")]
        elapsed: Duration,
        /// Its effect was found already in place by a read-back (not re-executed).
        already_done: bool,
    },
    /// A step failed for good.
    StepFailed {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// The final error.
        error: String,
        /// Its retry class (`persistent` once retries ran out).
        retry_class: Retry,
    },
    /// A step was not run because a dependency failed or was skipped.
    StepSkipped {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// Why.
        reason: String,
    },
    /// An approval step is waiting for the approval hook.
    ApprovalRequested {
        /// When.
        at: DateTime<Utc>,
        /// Step id.
        step: String,
        /// What is being approved.
        prompt: String,
    },
    /// The run ended.
    RunFinished {
        /// When.
        at: DateTime<Utc>,
        /// Its outcome.
        outcome: Outcome,
    },
}

impl RunEvent {
    /// When the event happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            RunEvent::RunStarted { at, .. }
            | RunEvent::StepStarted { at, .. }
            | RunEvent::StepRetrying { at, .. }
            | RunEvent::StepSucceeded { at, .. }
            | RunEvent::StepFailed { at, .. }
            | RunEvent::StepSkipped { at, .. }
            | RunEvent::ApprovalRequested { at, .. }
            | RunEvent::RunFinished { at, .. } => *at,
        }
    }

    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            RunEvent::StepStarted { step, .. }
            | RunEvent::StepRetrying { step, .. }
            | RunEvent::StepSucceeded { step, .. }
            | RunEvent::StepFailed { step, .. }
            | RunEvent::StepSkipped { step, .. }
            | RunEvent::ApprovalRequested { step, .. } => Some(step),
            RunEvent::RunStarted { .. } | RunEvent::RunFinished { .. } => None,
        }
    }

    /// Logs the event through `tracing`.
    pub(crate) fn trace(&self) {
        match self {
            RunEvent::RunStarted {
                scenario, steps, ..
            } => {
                tracing::info!(%scenario, steps, "recovery run started");
            }
            RunEvent::StepStarted { step, attempt, .. } => {
                tracing::info!(%step, attempt, "step started");
            }
            RunEvent::StepRetrying {
                step,
                attempt,
                error,
                backoff,
                ..
            } => {
                tracing::warn!(%step, attempt, %error, backoff = %crate::duration::human(*backoff), "step failed, retrying");
            }
            RunEvent::StepSucceeded {
                step,
                elapsed,
                already_done,
                ..
            } => {
                tracing::info!(%step, elapsed = %crate::duration::human(*elapsed), already_done, "step succeeded");
            }
            RunEvent::StepFailed {
                step,
                error,
                retry_class,
                ..
            } => {
                tracing::error!(%step, %error, %retry_class, "step failed");
            }
            RunEvent::StepSkipped { step, reason, .. } => {
                tracing::warn!(%step, %reason, "step skipped");
            }
            RunEvent::ApprovalRequested { step, prompt, .. } => {
                tracing::info!(%step, %prompt, "approval requested");
            }
            RunEvent::RunFinished { outcome, .. } => {
                tracing::info!(%outcome, "recovery run finished");
            }
        }
    }
}

/// One line of progress, without the timestamp: `db/promote started (attempt 1)`.
impl std::fmt::Display for RunEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::duration::human;
        match self {
            RunEvent::RunStarted {
                scenario, steps, ..
            } => write!(f, "run of `{scenario}` started ({steps} steps)"),
            RunEvent::StepStarted { step, attempt, .. } => {
                if *attempt == 1 {
                    write!(f, "{step} started")
                } else {
                    write!(f, "{step} started (attempt {attempt})")
                }
            }
            RunEvent::StepRetrying {
                step,
                attempt,
                error,
                backoff,
                ..
            } => write!(
                f,
                "{step} attempt {attempt} failed: {error}; retrying in {}",
                human(*backoff)
            ),
            RunEvent::StepSucceeded {
                step,
                elapsed,
                already_done,
                ..
            } => {
                if *already_done {
                    write!(f, "{step} already done (read back), not repeated")
                } else {
                    write!(f, "{step} done in {}", human(*elapsed))
                }
            }
            RunEvent::StepFailed {
                step,
                error,
                retry_class,
                ..
            } => write!(f, "{step} FAILED ({retry_class}): {error}"),
            RunEvent::StepSkipped { step, reason, .. } => write!(f, "{step} skipped: {reason}"),
            RunEvent::ApprovalRequested { step, prompt, .. } => {
                write!(f, "{step} waiting for approval: {prompt}")
            }
            RunEvent::RunFinished { outcome, .. } => write!(f, "run finished: {outcome}"),
        }
    }
}
