//! The plan's own steps (`scenarios[].steps`), added to the built-in ones.

use std::collections::{BTreeSet, HashSet};

use super::build::GraphBuilder;
use super::PlanningError;
use crate::graph::StepId;
use crate::step::{Action, Call, Observed, StepAction, StepContext, StepRegistry};
use crate::Result;

/// A plan step whose `idempotent:` overrides its kind's.
#[derive(Debug)]
struct Idempotence {
    inner: Action,
    idempotent: bool,
}

#[async_trait::async_trait]
impl StepAction for Idempotence {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn params(&self) -> serde_json::Value {
        self.inner.params()
    }
    fn calls(&self) -> Vec<Call> {
        self.inner.calls()
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    fn default_estimate(&self) -> std::time::Duration {
        self.inner.default_estimate()
    }
    fn default_timeout(&self) -> std::time::Duration {
        self.inner.default_timeout()
    }
    fn loses_data(&self) -> bool {
        self.inner.loses_data()
    }
    fn milestone(&self) -> Option<&'static str> {
        self.inner.milestone()
    }
    fn is_approval(&self) -> bool {
        self.inner.is_approval()
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        if self.idempotent {
            Observed::NotDone
        } else {
            self.inner.prepare(ctx).await
        }
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        self.inner.observe(ctx).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        self.inner.execute(ctx).await
    }
    fn compensable(&self) -> bool {
        self.inner.compensable()
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        self.inner.compensate(ctx).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Adds the scenario's plan steps to `g`, resolving each `after:` entry to step ids: a step
/// id (built-in or the plan's), a service (its last steps) or a milestone (every step that
/// marks it).
pub(super) fn add(g: &mut GraphBuilder<'_>, registry: &StepRegistry) -> Result<(), PlanningError> {
    let scenario = g.scenario;
    if scenario.steps.is_empty() {
        return Ok(());
    }
    let base = g.step_ids();
    let own: HashSet<&str> = scenario.steps.iter().map(|s| s.id.as_str()).collect();
    let mut seen = HashSet::new();
    let mut built = Vec::with_capacity(scenario.steps.len());
    for (i, ps) in scenario.steps.iter().enumerate() {
        let at = format!("scenarios[{}].steps[{}]", scenario.name, ps.id);
        if ps.id.trim().is_empty() {
            return Err(PlanningError::InvalidStep {
                at: format!("scenarios[{}].steps[{i}]", scenario.name),
                message: "the step needs an id".into(),
            });
        }
        if base.contains(ps.id.as_str()) || !seen.insert(ps.id.as_str()) {
            return Err(PlanningError::InvalidStep {
                at,
                message: format!("duplicate step id `{}`", ps.id),
            });
        }
        let mut action =
            registry
                .build(&ps.kind, &ps.params)
                .map_err(|message| PlanningError::InvalidStep {
                    at: format!("{at}.kind"),
                    message,
                })?;
        if let Some(idem) = ps.idempotent {
            if idem != action.is_idempotent() {
                action = Action::new(Idempotence {
                    inner: action,
                    idempotent: idem,
                });
            }
        }
        if let Some(svc) = &ps.service {
            if g.plan.service(svc).is_none() {
                return Err(PlanningError::InvalidStep {
                    at: format!("{at}.service"),
                    message: format!("unknown service `{svc}`"),
                });
            }
        }
        let mut deps = BTreeSet::new();
        for entry in &ps.after {
            if let Some(id) = base.get(entry.as_str()) {
                // The step's own id, found again without reading its text.
                deps.insert(id.clone());
            } else if own.contains(entry.as_str()) {
                deps.insert(StepId::from(entry));
            } else if g.plan.service(entry).is_some() {
                let sinks = g.service_sinks(entry);
                if sinks.is_empty() {
                    return Err(PlanningError::InvalidStep {
                        at: format!("{at}.after"),
                        message: format!(
                            "service `{entry}` has no steps in scenario `{}`",
                            scenario.name
                        ),
                    });
                }
                deps.extend(sinks);
            } else {
                let marked = g.milestone_steps(entry);
                if marked.is_empty() {
                    return Err(PlanningError::InvalidStep {
                        at: format!("{at}.after"),
                        message: format!(
                            "`{entry}` is not a step, a service or a milestone reached in scenario `{}` (milestones: {})",
                            scenario.name,
                            g.milestones().join(", ")
                        ),
                    });
                }
                deps.extend(marked);
            }
        }
        built.push((ps, action, deps.into_iter().collect::<Vec<_>>()));
    }
    for (ps, action, deps) in built {
        let estimate = ps
            .estimate
            .map_or_else(|| g.plan.estimate_of(&action), |d| d.get());
        let timeout = ps
            .timeout
            .map_or_else(|| g.plan.timeout_of(&action), |d| d.get());
        let retry = ps
            .retry
            .as_ref()
            .map(|r| r.policy(&crate::RetryPolicy::default()));
        g.add_plan_step(
            ps.id.as_str().into(),
            action,
            ps.service.as_deref(),
            deps,
            estimate,
            timeout,
            ps.critical,
            retry,
        );
    }
    Ok(())
}
