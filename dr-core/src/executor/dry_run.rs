//! What a run would do, listed without touching anything.

use std::fmt;
use std::time::Duration;

use crate::graph::{RecoveryGraph, Risk, ServiceForecast, Step};

/// One provider call a run would make.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedCall {
    /// The step making it.
    pub step: String,
    /// The provider role: `database`, `dns`, `cluster`, `store`, `probe`, `notifier`,
    /// `approval`, `http`, `process`, or an external service's name.
    pub provider_role: String,
    /// The operation ([`Operation`](crate::provider::Operation) names; `decide` for the
    /// approval hook, `request` for a webhook, `run` for a command).
    pub operation: String,
    /// What it acts on.
    pub target: String,
}

/// One step in a [`DryRun`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DryRunStep {
    /// Step id.
    pub id: String,
    /// Its step kind.
    pub action: String,
    /// Its parameters (secrets redacted).
    pub params: serde_json::Value,
    /// The service it recovers, if any.
    pub service: Option<String>,
    /// Steps it waits for.
    pub depends_on: Vec<String>,
    /// Forecast duration.
    #[serde(rename = "estimate_seconds", with = "crate::duration::seconds")]
    pub estimate: Duration,
    /// Whether its failure fails the run.
    pub critical: bool,
    /// Whether repeating it after an unknown outcome is safe without a read-back.
    pub idempotent: bool,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// The calls it would make, in order (read-backs included), on the path where every call
    /// succeeds the first time.
    pub calls: Vec<PlannedCall>,
    /// The safety gates checked right before the step's call, as the run will check them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
}

/// The result of [`Executor::dry_run`](super::Executor::dry_run): every provider call a run
/// would make, in order, with nothing called.
///
/// # Examples
///
/// ```no_run
/// # fn demo(executor: dr_core::executor::Executor, graph: dr_core::RecoveryGraph) {
/// let dry = executor.dry_run(&graph);
/// for call in dry.calls() {
///     println!("{} {} {}", call.provider_role, call.operation, call.target);
/// }
/// println!("{}", serde_json::to_string_pretty(&dry).unwrap_or_default());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DryRun {
    /// Always `planned`.
    pub outcome: &'static str,
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// Forecast RTO of the scenario.
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast_rto: Duration,
    /// Step ids of the critical path.
    pub critical_path: Vec<String>,
    /// Per-service forecasts against the targets.
    pub services: Vec<ServiceForecast>,
    /// What is at risk before anything runs.
    pub risks: Vec<Risk>,
    /// Every step in graph (topological) order.
    pub steps: Vec<DryRunStep>,
}

impl DryRun {
    /// Every planned call, in order.
    pub fn calls(&self) -> impl Iterator<Item = &PlannedCall> + '_ {
        self.steps.iter().flat_map(|s| s.calls.iter())
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Dry run: plan {} / scenario {} (forecast RTO {}, nothing was called)",
            self.plan,
            self.scenario,
            crate::duration::human(self.forecast_rto)
        )?;
        for (n, s) in self.steps.iter().enumerate() {
            let deps = if s.depends_on.is_empty() {
                String::new()
            } else {
                format!(" after {}", s.depends_on.join(", "))
            };
            let optional = if s.critical { "" } else { " (optional)" };
            writeln!(
                f,
                "{:>3}. {} [{}]{optional}{deps}, est. {}",
                n + 1,
                s.id,
                s.action,
                crate::duration::human(s.estimate)
            )?;
            for c in &s.calls {
                writeln!(f, "       {} {} {}", c.provider_role, c.operation, c.target)?;
            }
            for g in &s.gates {
                writeln!(f, "       gate: {g}")?;
            }
        }
        Ok(())
    }
}

pub(crate) fn dry_run(graph: &RecoveryGraph) -> DryRun {
    let affected = super::gates::Dependants::of(graph);
    let forecasts: std::collections::HashMap<&str, &crate::graph::ServiceForecast> = graph
        .services
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    DryRun {
        outcome: "planned",
        plan: graph.plan.clone(),
        scenario: graph.scenario.clone(),
        forecast_rto: graph.forecast,
        critical_path: graph.critical_path.clone(),
        services: graph.services.clone(),
        risks: graph.risks.clone(),
        steps: graph
            .steps
            .iter()
            .map(|s| DryRunStep {
                id: s.id.to_string(),
                action: s.action.kind().to_string(),
                params: s.action.params(),
                service: s.service.clone(),
                depends_on: s.depends_on.iter().map(|d| d.to_string()).collect(),
                estimate: s.estimate,
                critical: s.critical,
                idempotent: s.action.is_idempotent(),
                idempotency_key: s.idempotency_key.clone(),
                calls: planned_calls(s),
                gates: gates(graph, s, &affected, &forecasts),
            })
            .collect(),
    }
}

/// The calls `step` makes when every call succeeds first time, in order: its
/// [`StepAction::calls`](crate::step::StepAction::calls), the same list preflight checks.
/// The gates of `step`, in words: the RPO gate with the services it judges against (and the
/// forecast window, flagged when it is beyond one), the plan's interlocks the step checks.
fn gates(
    graph: &RecoveryGraph,
    step: &Step,
    affected: &super::gates::Dependants,
    forecasts: &std::collections::HashMap<&str, &crate::graph::ServiceForecast>,
) -> Vec<String> {
    /// How many services the line names; the rest are counted.
    const NAMED: usize = 8;
    let mut out = Vec::new();
    if step.action.get().loses_data() {
        let mut judged: Vec<&crate::graph::ServiceForecast> = affected
            .affected(&step.id)
            .into_iter()
            .filter_map(|name| forecasts.get(name).copied())
            .collect();
        // The strictest first: those are the ones that refuse a window first.
        judged.sort_by(|a, b| a.rpo_target.cmp(&b.rpo_target).then(a.name.cmp(&b.name)));
        let shown: Vec<String> = judged
            .iter()
            .take(NAMED)
            .map(|s| {
                let risk = match s.forecast_rpo {
                    Some(f) if f > s.rpo_target => format!(
                        ", forecast window {}: REFUSED unless the loss is accepted",
                        crate::duration::human(f)
                    ),
                    _ => String::new(),
                };
                format!(
                    "{} (RPO {}{risk})",
                    s.name,
                    crate::duration::human(s.rpo_target)
                )
            })
            .collect();
        if !shown.is_empty() {
            let more = judged.len().saturating_sub(NAMED);
            let more = if more > 0 {
                format!(
                    " and {more} more service{}",
                    if more == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            out.push(format!(
                "rpo: the data-loss window is read again right before the call and judged against {}{more}",
                shown.join(", ")
            ));
        }
    }
    for il in step.action.get().interlocks() {
        if graph.interlocks.contains(il) {
            out.push(format!(
                "interlock {il}: {}",
                match il {
                    crate::plan::Interlock::NoSplitBrain => {
                        "refused while the old primary may still accept writes"
                    }
                    crate::plan::Interlock::HealthyTarget => {
                        "refused unless one of the new values answers the service's health check"
                    }
                }
            ));
        }
    }
    out
}

pub(crate) fn planned_calls(step: &Step) -> Vec<PlannedCall> {
    step.action
        .calls()
        .into_iter()
        .map(|c| PlannedCall {
            step: step.id.to_string(),
            provider_role: c.role.name().to_string(),
            operation: c.operation,
            target: c.target,
        })
        .collect()
}
