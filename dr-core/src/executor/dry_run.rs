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
    let forecasts = forecasts_by_name(graph);
    // What every RPO gate judges against, for all data-losing steps at once; a graph out of
    // topological order, or with an id twice, is walked step by step instead.
    let mut all = judged_all(graph, &forecasts, NAMED);
    let affected = all.is_none().then(|| super::gates::Dependants::of(graph));
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
            .enumerate()
            .map(|(i, s)| DryRunStep {
                id: s.id.to_string(),
                action: s.action.kind().to_string(),
                params: s.action.params(),
                service: s.service.as_deref().map(str::to_string),
                depends_on: s.depends_on.iter().map(|d| d.to_string()).collect(),
                estimate: s.estimate,
                critical: s.critical,
                idempotent: s.action.is_idempotent(),
                idempotency_key: s.idempotency_key.clone(),
                calls: planned_calls(s),
                gates: gates(
                    graph,
                    s,
                    match (&mut all, &affected) {
                        (Some(all), _) => all.get_mut(i).and_then(Option::take),
                        (None, Some(affected)) => judged_by_walk(s, affected, &forecasts),
                        (None, None) => None,
                    },
                ),
            })
            .collect(),
    }
}

/// The calls `step` makes when every call succeeds first time, in order: its
/// [`StepAction::calls`](crate::step::StepAction::calls), the same list preflight checks.
/// The gates of `step`, in words: the RPO gate with the services it judges against (and the
/// forecast window, flagged when it is beyond one), the plan's interlocks the step checks.
/// The graph's service forecasts by service name.
fn forecasts_by_name(graph: &RecoveryGraph) -> std::collections::HashMap<&str, &ServiceForecast> {
    graph
        .services
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect()
}

/// How many services a gate's line names; the rest are counted.
const NAMED: usize = 8;

/// The strictest first (by RPO target, then name): those refuse a window first.
fn strictest(a: &&ServiceForecast, b: &&ServiceForecast) -> std::cmp::Ordering {
    a.rpo_target.cmp(&b.rpo_target).then(a.name.cmp(&b.name))
}

/// Services an RPO gate judges against: the [`NAMED`] strictest, in order, and how many in
/// all.
type Judged<'g> = (Vec<&'g ServiceForecast>, usize);

/// [`Judged`] for one data-losing step, by a walk of what depends on it.
fn judged_by_walk<'g>(
    step: &Step,
    affected: &super::gates::Dependants,
    forecasts: &std::collections::HashMap<&str, &'g ServiceForecast>,
) -> Option<Judged<'g>> {
    if !step.action.get().loses_data() {
        return None;
    }
    let mut judged: Vec<&ServiceForecast> = affected
        .affected(&step.id)
        .into_iter()
        .filter_map(|name| forecasts.get(name).copied())
        .collect();
    // Only the named ones need an order: pick them out (linear), then sort those few.
    if judged.len() > NAMED {
        judged.select_nth_unstable_by(NAMED - 1, strictest);
    }
    let count = judged.len();
    judged.truncate(NAMED);
    judged.sort_by(strictest);
    Some((judged, count))
}

/// [`Judged`] for every data-losing step at once, by position (`None` for the others).
///
/// Walking what depends on each data-losing step costs the whole graph per step: quadratic
/// in a plan with a database per ten services. Here the data-losing steps are taken 64 at a
/// time, and one pass over the graph in its topological order gives each step a word of
/// which of them it comes after; each service's word is the union of its steps'. Time is
/// (steps + dependencies) × data-losing steps / 64, memory linear in the graph. `None` when
/// the graph is out of topological order or uses an id twice.
fn judged_all<'g>(
    graph: &'g RecoveryGraph,
    forecasts: &std::collections::HashMap<&str, &'g ServiceForecast>,
    named: usize,
) -> Option<Vec<Option<Judged<'g>>>> {
    let n = graph.steps.len();
    let mut index: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(n);
    for (i, s) in graph.steps.iter().enumerate() {
        if index.insert(s.id.as_str(), i).is_some() {
            return None;
        }
    }
    let mut deps: Vec<usize> = Vec::with_capacity(n * 3);
    let mut starts = Vec::with_capacity(n + 1);
    for (i, s) in graph.steps.iter().enumerate() {
        starts.push(deps.len());
        for d in &s.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                if j >= i {
                    return None;
                }
                deps.push(j);
            }
        }
    }
    starts.push(deps.len());
    let mut ranked: Vec<&ServiceForecast> = forecasts.values().copied().collect();
    ranked.sort_by(strictest);
    let rank: std::collections::HashMap<&str, usize> = ranked
        .iter()
        .enumerate()
        .map(|(r, s)| (s.name.as_str(), r))
        .collect();
    let service_rank: Vec<Option<usize>> = graph
        .steps
        .iter()
        .map(|s| {
            s.service
                .as_deref()
                .and_then(|name| rank.get(name).copied())
        })
        .collect();
    let sources: Vec<usize> = (0..n)
        .filter(|&i| graph.steps[i].action.get().loses_data())
        .collect();
    let mut out: Vec<Option<Judged<'g>>> = vec![None; n];
    let mut word = vec![0u64; n];
    let mut by_service = vec![0u64; ranked.len()];
    for block in sources.chunks(64) {
        word.fill(0);
        by_service.fill(0);
        for (b, &i) in block.iter().enumerate() {
            word[i] |= 1 << b;
        }
        for i in 0..n {
            let w = deps[starts[i]..starts[i + 1]]
                .iter()
                .fold(word[i], |w, &j| w | word[j]);
            word[i] = w;
            if let Some(r) = service_rank[i] {
                by_service[r] |= w;
            }
        }
        let mut judged: Vec<Judged<'g>> = vec![(Vec::new(), 0); block.len()];
        // Services in order of strictness, so each gate's first `named` are its strictest.
        for (r, &w) in by_service.iter().enumerate() {
            let mut bits = w;
            while bits != 0 {
                let (shown, count) = &mut judged[bits.trailing_zeros() as usize];
                bits &= bits - 1;
                if shown.len() < named {
                    shown.push(ranked[r]);
                }
                *count += 1;
            }
        }
        for (&i, j) in block.iter().zip(judged) {
            out[i] = Some(j);
        }
    }
    Some(out)
}

fn gates(graph: &RecoveryGraph, step: &Step, judged: Option<Judged<'_>>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((judged, count)) = judged {
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
            let more = count.saturating_sub(NAMED);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::planner::{self, ObservedState};

    /// What a gate judges against, by names, for comparison.
    fn names(j: Option<Judged<'_>>) -> Option<(Vec<String>, usize)> {
        j.map(|(shown, count)| (shown.iter().map(|s| s.name.clone()).collect(), count))
    }

    #[test]
    fn every_gate_judges_the_same_services_as_a_walk_from_its_step() {
        let plan = Plan::from_yaml_str(&planner::pinned::generated(300)).expect("plan");
        let observed = ObservedState::nominal(&plan, chrono::Utc::now());
        let mut gated = 0;
        for scenario in &plan.scenarios {
            let graph = planner::plan(&plan, &scenario.name, &observed).expect("graph");
            let forecasts = forecasts_by_name(&graph);
            let all = judged_all(&graph, &forecasts, NAMED).expect("in order, ids unique");
            let affected = super::super::gates::Dependants::of(&graph);
            for (i, step) in graph.steps.iter().enumerate() {
                let walked = names(judged_by_walk(step, &affected, &forecasts));
                assert_eq!(
                    names(all[i].clone()),
                    walked,
                    "{} / {}",
                    scenario.name,
                    step.id
                );
                gated += usize::from(walked.is_some_and(|(_, n)| n > 1));
            }
        }
        // The plan has promotions and restores that many services depend on.
        assert!(gated > 10, "{gated}");
    }

    #[test]
    fn a_graph_out_of_order_or_with_an_id_twice_is_walked() {
        let plan = Plan::from_yaml_str(&planner::pinned::generated(30)).expect("plan");
        let observed = ObservedState::nominal(&plan, chrono::Utc::now());
        let mut graph = planner::plan(&plan, "failover", &observed).expect("graph");
        let forecasts = forecasts_by_name(&graph);
        assert!(judged_all(&graph, &forecasts, NAMED).is_some());
        let before = dry_run(&graph);
        graph.steps.reverse();
        let forecasts = forecasts_by_name(&graph);
        assert!(judged_all(&graph, &forecasts, NAMED).is_none());
        let mut after = dry_run(&graph);
        after.steps.reverse();
        let gates = |d: &DryRun| d.steps.iter().map(|s| s.gates.clone()).collect::<Vec<_>>();
        assert_eq!(gates(&before), gates(&after));
        assert!(gates(&before)
            .iter()
            .any(|g| g.iter().any(|l| l.starts_with("rpo:"))));
    }
}
