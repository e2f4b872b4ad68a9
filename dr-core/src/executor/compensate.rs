//! Compensation: after a critical failure, undo what already ran, in reverse order.

use crate::journal::Record;

use super::{Run, State};

/// One step the run tried to undo after a critical failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompensationReport {
    /// The step.
    pub step: String,
    /// Its kind.
    pub action: String,
    /// Whether its effect was undone.
    pub compensated: bool,
    /// Why it could not be undone (the step cannot be undone, or the undo failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Undoes the steps of `completed` (indices, in order of completion) in reverse order. A
/// step that cannot be undone is listed with the reason; an undo that fails does not stop
/// the others.
pub(super) async fn run(
    run: &Run<'_>,
    completed: &[usize],
    states: &[State],
) -> Vec<CompensationReport> {
    let mut out = Vec::new();
    for &i in completed.iter().rev() {
        let step = &run.graph.steps[i];
        let action = step.action.get();
        if action.is_approval() || action.calls().is_empty() {
            continue;
        }
        let memory = match &states[i] {
            State::Finished(f) => f.memory.clone(),
            _ => continue,
        };
        let (compensated, reason) = if !action.compensable() {
            (
                false,
                Some(format!("a {} step cannot be undone", action.kind())),
            )
        } else {
            let mut ctx = run.context(step);
            ctx.memory = memory;
            tracing::warn!(step = %step.id, "compensating");
            match tokio::time::timeout(step.timeout, action.compensate(&mut ctx)).await {
                Ok(Ok(())) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (
                    false,
                    Some(format!("the undo timed out after {:?}", step.timeout)),
                ),
            }
        };
        if let Some(j) = &run.journal {
            let _ = j
                .append(Record::Compensated {
                    step: step.id.to_string(),
                    succeeded: compensated,
                    error: reason.clone(),
                })
                .await;
        }
        out.push(CompensationReport {
            step: step.id.to_string(),
            action: action.kind().to_string(),
            compensated,
            reason,
        });
    }
    out
}
