//! Detection and readiness: a watcher the embedding service runs.
//!
//! Every runbook starts with "Detection". A [`Watcher`] samples, on an interval, the signals
//! of every scenario that has a [`Trigger`] (its health checks through the plan's probe, its
//! databases through their providers), applies the trigger's thresholds with hysteresis
//! (`failures` failed samples within `window` fire it once; `recover_after` healthy samples
//! in a row re-arm it), and when a trigger fires, plans the scenario against the state it
//! observed and starts it — or asks the approval hook first (`start: approval`, the
//! default). It never starts a run while one it started is under way, nor while another
//! runner holds the plan's lease.
//!
//! The same pass evaluates readiness of every scenario: planned against the observed state
//! (replicas healthy and within RPO, snapshots recent enough), preflighted against the
//! providers, and forecast against each service's RTO and RPO. What is at risk is published.
//! Every decision is a [`WatchEvent`] and a metric ([`WatchMetrics`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dr_core::executor::{AutoApprove, Executor};
//! use dr_core::simulation::Simulation;
//! use dr_core::sim::SimConfig;
//! use dr_core::watch::Watcher;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = dr_core::plan::Plan::load("examples/plans/region-failover.yaml")?;
//! let sim = Simulation::new(&plan, 1, SimConfig::default());
//! let (providers, clock) = (sim.providers(), sim.cloud().clock());
//! let factory = {
//!     let (providers, clock) = (providers.clone(), clock);
//!     move || Executor::new(providers.clone()).clock(clock).approvals(Arc::new(AutoApprove))
//! };
//! let watcher = Watcher::new(plan, providers)?
//!     .clock(clock)
//!     .interval(Duration::from_secs(60))
//!     .approvals(Arc::new(AutoApprove))
//!     .executor(factory);
//! let tick = watcher.tick().await;
//! for r in &tick.readiness {
//!     println!("{}: {}", r.scenario, if r.ready { "ready" } else { "at risk" });
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::executor::{ApprovalHook, ApprovalRequest, Decision as Answer, Executor, RunReport};
use crate::plan::{Plan, PlanError, Trigger, TriggerStart, TriggerWhen};
use crate::planner::ObservedState;
use crate::provider::{DbState, HealthStatus, Lease};
use crate::{Clock, Providers, RecoveryGraph};

/// What one signal of a trigger showed in a sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signal {
    /// `health_check api-health`, `database orders-db`.
    pub name: String,
    /// Whether it failed.
    pub failed: bool,
    /// What was seen (`unhealthy`, `primary unreachable`, `available`).
    pub detail: String,
}

/// What the watcher decided when a trigger fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum WatchDecision {
    /// The scenario was planned and its run started.
    Started {
        /// Steps in its graph.
        steps: usize,
        /// Whether the approval hook approved it first.
        approved: bool,
    },
    /// The approval hook said no (or none is configured for `start: approval`).
    Declined {
        /// Why.
        reason: String,
    },
    /// A run is under way already (this watcher's, or another runner's holding the lease).
    AlreadyRunning {
        /// Who runs it: the scenario this watcher started, or the lease's holder.
        by: String,
    },
    /// The scenario could not be planned against the observed state.
    PlanFailed {
        /// The planner's error.
        error: String,
    },
}

/// The readiness of one scenario: could it run now, and would it meet its targets?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The scenario.
    pub scenario: String,
    /// Nothing is at risk: it plans, preflights clean, and its forecast meets every target.
    pub ready: bool,
    /// What is at risk, in words (planner risks, preflight problems, missed targets).
    pub at_risk: Vec<String>,
    /// The forecast recovery time of the whole scenario.
    #[serde(with = "crate::duration::seconds_opt")]
    pub forecast: Option<Duration>,
}

/// What a watcher reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// A trigger was sampled.
    Sampled {
        /// When.
        at: DateTime<Utc>,
        /// The scenario.
        scenario: String,
        /// Whether the sample failed.
        failed: bool,
        /// Failed samples within the window, this one included.
        failures_in_window: u32,
        /// Each signal.
        signals: Vec<Signal>,
    },
    /// A trigger crossed its threshold.
    Fired {
        /// When.
        at: DateTime<Utc>,
        /// The scenario.
        scenario: String,
        /// Why, in words.
        reason: String,
    },
    /// What was done about it.
    Decided {
        /// When.
        at: DateTime<Utc>,
        /// The scenario.
        scenario: String,
        /// The decision.
        decision: WatchDecision,
    },
    /// A fired trigger saw enough healthy samples in a row and re-armed.
    Rearmed {
        /// When.
        at: DateTime<Utc>,
        /// The scenario.
        scenario: String,
    },
    /// A run the watcher started ended.
    RunFinished {
        /// When.
        at: DateTime<Utc>,
        /// The scenario.
        scenario: String,
        /// Whether it succeeded and met its targets.
        succeeded: bool,
        /// One line on how it ended.
        summary: String,
    },
    /// A scenario's readiness changed: its verdict, or what is at risk (not only the
    /// figures), and on the first pass.
    ReadinessChanged {
        /// When.
        at: DateTime<Utc>,
        /// The readiness now.
        readiness: Readiness,
    },
}

/// What one pass of the watcher saw and did.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// When it observed.
    pub at: DateTime<Utc>,
    /// The events of the pass, in order.
    pub events: Vec<WatchEvent>,
    /// Every scenario's readiness.
    pub readiness: Vec<Readiness>,
}

impl Tick {
    /// The decisions of the pass, by scenario.
    pub fn decisions(&self) -> Vec<(&str, &WatchDecision)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                WatchEvent::Decided {
                    scenario, decision, ..
                } => Some((scenario.as_str(), decision)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    scenario: String,
    decision: String,
}

/// The watcher's metrics (Prometheus, through `prometheus-client`):
/// `dr_watch_passes` (counter), `dr_watch_triggers_fired` and `dr_watch_decisions` (counters
/// by scenario and decision), `dr_watch_trigger_failures` (failed samples in the window),
/// `dr_scenario_ready` (1 or 0) and `dr_scenario_risks` (how many risks) per scenario.
///
/// ```
/// let mut registry = prometheus_client::registry::Registry::default();
/// let _metrics = dr_core::watch::WatchMetrics::register_in(&mut registry);
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
/// assert!(text.contains("# TYPE dr_watch_passes counter"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct WatchMetrics {
    passes: Counter,
    fired: Family<ScenarioLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    failures: Family<ScenarioLabels, Gauge>,
    ready: Family<ScenarioLabels, Gauge>,
    risks: Family<ScenarioLabels, Gauge>,
}

impl WatchMetrics {
    /// The metrics, registered in `registry` (which the embedding service encodes).
    pub fn register_in(registry: &mut Registry) -> Self {
        let m = WatchMetrics::default();
        registry.register(
            "dr_watch_passes",
            "Passes of the DR watcher",
            m.passes.clone(),
        );
        registry.register(
            "dr_watch_triggers_fired",
            "Scenario triggers that crossed their threshold",
            m.fired.clone(),
        );
        registry.register(
            "dr_watch_decisions",
            "What the watcher did about a fired trigger, by decision",
            m.decisions.clone(),
        );
        registry.register(
            "dr_watch_trigger_failures",
            "Failed samples of a scenario's trigger within its window",
            m.failures.clone(),
        );
        registry.register(
            "dr_scenario_ready",
            "1 when the scenario plans, preflights clean and its forecast meets every target",
            m.ready.clone(),
        );
        registry.register(
            "dr_scenario_risks",
            "How many risks the scenario's readiness check found",
            m.risks.clone(),
        );
        m
    }
}

/// A trigger's memory between samples.
#[derive(Debug, Default)]
struct TriggerState {
    failed_at: VecDeque<DateTime<Utc>>,
    healthy_in_a_row: u32,
    fired: bool,
}

type Factory = Arc<dyn Fn() -> Executor + Send + Sync>;

#[derive(Debug, Default)]
struct Shared {
    triggers: BTreeMap<String, TriggerState>,
    readiness: BTreeMap<String, Readiness>,
    /// The scenario of the run this watcher started, while it is under way.
    running: Option<String>,
}

/// Samples triggers, decides, and evaluates readiness ([module docs](self)).
pub struct Watcher {
    plan: Arc<Plan>,
    providers: Providers,
    clock: Clock,
    interval: Duration,
    factory: Factory,
    approvals: Option<Arc<dyn ApprovalHook>>,
    lease: Option<(Arc<dyn Lease>, String, Duration)>,
    events: Option<UnboundedSender<WatchEvent>>,
    metrics: WatchMetrics,
    shared: Arc<Mutex<Shared>>,
    runs: Mutex<Vec<tokio::task::JoinHandle<RunReport>>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("plan", &self.plan.name)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher of `plan`'s scenarios on `providers`, sampling every minute.
    ///
    /// # Errors
    /// [`PlanError::Invalid`] when the plan is not valid (a trigger naming a health check or
    /// database the plan does not have, a threshold of 0).
    pub fn new(plan: Plan, providers: Providers) -> Result<Self, PlanError> {
        plan.validate()?;
        let factory_providers = providers.clone();
        Ok(Watcher {
            plan: Arc::new(plan),
            providers,
            clock: Clock::system(),
            interval: Duration::from_secs(60),
            factory: Arc::new(move || Executor::new(factory_providers.clone())),
            approvals: None,
            lease: None,
            events: None,
            metrics: WatchMetrics::default(),
            shared: Arc::default(),
            runs: Mutex::new(Vec::new()),
        })
    }

    /// The clock samples are timed by (the simulated cloud's, in a simulation).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Time between passes of [`run`](Self::run) (at least 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// How an executor for a triggered run is made (its clock, approvals, journal, lease,
    /// notifications). Default: `Executor::new` on the watcher's providers.
    pub fn executor(mut self, factory: impl Fn() -> Executor + Send + Sync + 'static) -> Self {
        self.factory = Arc::new(factory);
        self
    }

    /// The hook asked before a `start: approval` trigger starts its scenario. Without one,
    /// such a trigger is declined (and says so).
    pub fn approvals(mut self, hook: Arc<dyn ApprovalHook>) -> Self {
        self.approvals = Some(hook);
        self
    }

    /// The plan's lease: a trigger does not start a run while another runner holds it, and a
    /// triggered run holds it as `holder` (for `ttl`, renewed) while it runs.
    pub fn lease(
        mut self,
        lease: Arc<dyn Lease>,
        holder: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        self.lease = Some((lease, holder.into(), ttl));
        self
    }

    /// Sends every [`WatchEvent`] to `tx` as it happens.
    pub fn events(mut self, tx: UnboundedSender<WatchEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// Updates `metrics` ([`WatchMetrics::register_in`]) as it goes.
    pub fn metrics(mut self, metrics: WatchMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The plan watched.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether a run this watcher started is under way.
    pub fn running(&self) -> Option<String> {
        self.lock().running.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, out: &mut Vec<WatchEvent>, event: WatchEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event.clone());
        }
        out.push(event);
    }

    /// One pass: observe, sample every trigger, decide on those that fire, evaluate every
    /// scenario's readiness.
    pub async fn tick(&self) -> Tick {
        let at = self.clock.now();
        let mut events = Vec::new();
        self.metrics.passes.inc();
        let observed = ObservedState::observe(&self.plan, &self.providers, at).await;
        let checks = self.probe_checks().await;
        // Every scenario planned once against what was observed: for its readiness, and
        // for the run a trigger starts.
        let mut graphs: BTreeMap<String, Result<RecoveryGraph, String>> = self
            .plan
            .scenarios
            .iter()
            .map(|sc| {
                let g = crate::planner::plan(&self.plan, &sc.name, &observed)
                    .map_err(|e| e.to_string());
                (sc.name.clone(), g)
            })
            .collect();
        let readiness = self.readiness(&graphs);
        for sc in &self.plan.scenarios {
            let Some(trigger) = &sc.trigger else {
                continue;
            };
            let signals = signals(trigger, &checks, &observed);
            let failed = !signals.is_empty()
                && match trigger.when {
                    TriggerWhen::All => signals.iter().all(|s| s.failed),
                    TriggerWhen::Any => signals.iter().any(|s| s.failed),
                };
            let (count, fire, rearmed) = {
                let mut shared = self.lock();
                let st = shared.triggers.entry(sc.name.clone()).or_default();
                sample(st, trigger, at, failed)
            };
            self.metrics
                .failures
                .get_or_create(&ScenarioLabels {
                    scenario: sc.name.clone(),
                })
                .set(i64::from(count));
            let reason = signals
                .iter()
                .filter(|s| s.failed)
                .map(|s| format!("{} {}", s.name, s.detail))
                .collect::<Vec<_>>()
                .join(", ");
            self.emit(
                &mut events,
                WatchEvent::Sampled {
                    at,
                    scenario: sc.name.clone(),
                    failed,
                    failures_in_window: count,
                    signals,
                },
            );
            if rearmed {
                self.emit(
                    &mut events,
                    WatchEvent::Rearmed {
                        at,
                        scenario: sc.name.clone(),
                    },
                );
            }
            if fire {
                self.metrics
                    .fired
                    .get_or_create(&ScenarioLabels {
                        scenario: sc.name.clone(),
                    })
                    .inc();
                let reason = format!(
                    "{count} failed samples within {} ({reason})",
                    crate::duration::human(trigger.window.get())
                );
                tracing::warn!(scenario = %sc.name, %reason, "trigger fired");
                self.emit(
                    &mut events,
                    WatchEvent::Fired {
                        at,
                        scenario: sc.name.clone(),
                        reason: reason.clone(),
                    },
                );
                let graph = graphs
                    .remove(&sc.name)
                    .unwrap_or_else(|| Err(format!("no scenario `{}`", sc.name)));
                let decision = self.decide(&sc.name, trigger, &reason, graph).await;
                self.metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        scenario: sc.name.clone(),
                        decision: decision_name(&decision).into(),
                    })
                    .inc();
                tracing::info!(scenario = %sc.name, decision = ?decision, "watch decision");
                self.emit(
                    &mut events,
                    WatchEvent::Decided {
                        at,
                        scenario: sc.name.clone(),
                        decision,
                    },
                );
            }
        }
        for r in &readiness {
            let labels = ScenarioLabels {
                scenario: r.scenario.clone(),
            };
            self.metrics
                .ready
                .get_or_create(&labels)
                .set(i64::from(r.ready));
            self.metrics
                .risks
                .get_or_create(&labels)
                .set(i64::try_from(r.at_risk.len()).unwrap_or(i64::MAX));
            // A change is a change of verdict or of what is at risk, not of the figures
            // (a lag that grows by the minute is the same risk).
            let changed = {
                let mut shared = self.lock();
                let prev = shared.readiness.insert(r.scenario.clone(), r.clone());
                prev.is_none_or(|p| p.ready != r.ready || shape(&p.at_risk) != shape(&r.at_risk))
            };
            if changed {
                self.emit(
                    &mut events,
                    WatchEvent::ReadinessChanged {
                        at,
                        readiness: r.clone(),
                    },
                );
            }
        }
        Tick {
            at,
            events,
            readiness,
        }
    }

    /// Passes every [`interval`](Self::interval) until `stop` completes; then waits for a
    /// run it started to end.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.tick().await;
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        self.wait_runs().await;
    }

    /// Waits for every run this watcher started, and returns their reports.
    pub async fn wait_runs(&self) -> Vec<RunReport> {
        let handles: Vec<_> =
            std::mem::take(&mut *self.runs.lock().unwrap_or_else(|p| p.into_inner()));
        let mut out = Vec::new();
        for h in handles {
            if let Ok(report) = h.await {
                out.push(report);
            }
        }
        out
    }

    /// Probes every health check a trigger names, once each.
    async fn probe_checks(&self) -> BTreeMap<String, Result<HealthStatus, String>> {
        let mut out = BTreeMap::new();
        let names: std::collections::BTreeSet<&str> = self
            .plan
            .scenarios
            .iter()
            .filter_map(|s| s.trigger.as_ref())
            .flat_map(|t| t.health_checks.iter().map(String::as_str))
            .collect();
        for name in names {
            let Some(check) = self.plan.health_check(name) else {
                continue;
            };
            let status = match self.providers.probe() {
                Ok(p) => p.check(&check.target).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.insert(name.to_string(), status);
        }
        out
    }

    async fn decide(
        &self,
        scenario: &str,
        trigger: &Trigger,
        reason: &str,
        graph: Result<RecoveryGraph, String>,
    ) -> WatchDecision {
        if let Some(by) = self.running() {
            return WatchDecision::AlreadyRunning {
                by: format!("this watcher's run of `{by}`"),
            };
        }
        if let Some((lease, holder, _)) = &self.lease {
            match lease.holder().await {
                Ok(Some(other)) if other != *holder => {
                    return WatchDecision::AlreadyRunning {
                        by: format!("the lease's holder `{other}`"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    return WatchDecision::Declined {
                        reason: format!("the lease cannot be read ({e}); starting nothing"),
                    }
                }
            }
        }
        let graph = match graph {
            Ok(g) => g,
            Err(error) => return WatchDecision::PlanFailed { error },
        };
        let approved = match trigger.start {
            TriggerStart::Auto => false,
            TriggerStart::Approval => {
                let Some(hook) = &self.approvals else {
                    return WatchDecision::Declined {
                        reason: "the trigger asks for approval and no approval hook is configured"
                            .into(),
                    };
                };
                let request = ApprovalRequest {
                    plan: self.plan.name.clone(),
                    scenario: scenario.to_string(),
                    step: "watch:trigger".into(),
                    service: None,
                    prompt: format!(
                        "Start scenario `{scenario}` of plan `{}`? Its trigger fired: {reason}. Forecast recovery: {}.",
                        self.plan.name,
                        crate::duration::human(graph.forecast)
                    ),
                };
                match hook.decide(&request).await {
                    Ok(Answer::Approve) => true,
                    Ok(Answer::Reject { reason }) => {
                        return WatchDecision::Declined {
                            reason: format!("rejected: {reason}"),
                        }
                    }
                    Err(e) => {
                        return WatchDecision::Declined {
                            reason: format!("the approval hook failed: {e}"),
                        }
                    }
                }
            }
        };
        let steps = graph.steps.len();
        let mut executor = (self.factory)();
        if let Some((lease, holder, ttl)) = &self.lease {
            executor = executor.lease(lease.clone(), holder.clone(), *ttl);
        }
        self.lock().running = Some(scenario.to_string());
        let shared = self.shared.clone();
        let events = self.events.clone();
        let clock = self.clock;
        let name = scenario.to_string();
        let handle = tokio::spawn(async move {
            let report = executor.run(&graph).await;
            shared.lock().unwrap_or_else(|p| p.into_inner()).running = None;
            let succeeded = report.succeeded();
            tracing::info!(scenario = %name, succeeded, "triggered run finished");
            if let Some(tx) = events {
                let _ = tx.send(WatchEvent::RunFinished {
                    at: clock.now(),
                    scenario: name,
                    succeeded,
                    summary: format!(
                        "{} in {}",
                        if succeeded { "succeeded" } else { "failed" },
                        crate::duration::human(report.achieved_rto)
                    ),
                });
            }
            report
        });
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        WatchDecision::Started { steps, approved }
    }

    fn readiness(
        &self,
        graphs: &BTreeMap<String, Result<RecoveryGraph, String>>,
    ) -> Vec<Readiness> {
        let executor = (self.factory)();
        self.plan
            .scenarios
            .iter()
            .map(|sc| match graphs.get(&sc.name).map(Result::as_ref) {
                None => Readiness {
                    scenario: sc.name.clone(),
                    ready: false,
                    at_risk: vec!["not planned".into()],
                    forecast: None,
                },
                Some(Err(e)) => Readiness {
                    scenario: sc.name.clone(),
                    ready: false,
                    at_risk: vec![format!("cannot be planned: {e}")],
                    forecast: None,
                },
                Some(Ok(graph)) => {
                    let mut at_risk: Vec<String> = graph
                        .risks
                        .iter()
                        .map(|r| match &r.service {
                            Some(s) => format!("{s}: {}", r.message),
                            None => r.message.clone(),
                        })
                        .collect();
                    at_risk.extend(
                        executor
                            .preflight(graph)
                            .iter()
                            .map(|p| format!("preflight: {p}")),
                    );
                    for s in graph.services.iter().filter(|s| !s.within_targets) {
                        at_risk.push(format!(
                            "{}: forecast recovery {} (RTO {}){}",
                            s.name,
                            crate::duration::human(s.forecast_rto),
                            crate::duration::human(s.rto_target),
                            s.forecast_rpo.map_or_else(String::new, |l| format!(
                                ", data loss {} (RPO {})",
                                crate::duration::human(l),
                                crate::duration::human(s.rpo_target)
                            ))
                        ));
                    }
                    at_risk.sort();
                    at_risk.dedup();
                    Readiness {
                        scenario: sc.name.clone(),
                        ready: at_risk.is_empty(),
                        at_risk,
                        forecast: Some(graph.forecast),
                    }
                }
            })
            .collect()
    }
}

/// What is at risk without its figures: each message with its digits taken out.
fn shape(risks: &[String]) -> Vec<String> {
    risks
        .iter()
        .map(|r| r.chars().filter(|c| !c.is_ascii_digit()).collect())
        .collect()
}

fn decision_name(d: &WatchDecision) -> &'static str {
    match d {
        WatchDecision::Started { .. } => "started",
        WatchDecision::Declined { .. } => "declined",
        WatchDecision::AlreadyRunning { .. } => "already_running",
        WatchDecision::PlanFailed { .. } => "plan_failed",
    }
}

/// Each signal of `trigger` in this sample.
fn signals(
    trigger: &Trigger,
    checks: &BTreeMap<String, Result<HealthStatus, String>>,
    observed: &ObservedState,
) -> Vec<Signal> {
    let mut out = Vec::new();
    for name in &trigger.health_checks {
        let (failed, detail) = match checks.get(name) {
            Some(Ok(HealthStatus::Healthy)) => (false, "healthy".to_string()),
            Some(Ok(HealthStatus::Unhealthy)) => (true, "unhealthy".to_string()),
            Some(Ok(HealthStatus::Unknown)) => (true, "health unknown".to_string()),
            Some(Err(e)) => (true, format!("probe failed: {e}")),
            None => (true, "not probed".to_string()),
        };
        out.push(Signal {
            name: format!("health_check {name}"),
            failed,
            detail,
        });
    }
    for name in &trigger.databases {
        let primary = observed
            .databases
            .get(name)
            .and_then(|d| d.primary.as_ref());
        let (failed, detail) = match primary {
            None => (true, "primary unreachable".to_string()),
            Some(s) if s.state == DbState::Available => (false, "available".to_string()),
            Some(s) => (true, format!("primary {}", s.state)),
        };
        out.push(Signal {
            name: format!("database {name}"),
            failed,
            detail,
        });
    }
    out
}

/// Records one sample; returns the failed samples in the window, whether the trigger fires
/// now, and whether it re-armed.
fn sample(
    st: &mut TriggerState,
    t: &Trigger,
    at: DateTime<Utc>,
    failed: bool,
) -> (u32, bool, bool) {
    let window = chrono::Duration::from_std(t.window.get()).unwrap_or(chrono::Duration::MAX);
    while st
        .failed_at
        .front()
        .is_some_and(|&f| at.signed_duration_since(f) > window)
    {
        st.failed_at.pop_front();
    }
    let mut rearmed = false;
    if failed {
        st.failed_at.push_back(at);
        st.healthy_in_a_row = 0;
    } else {
        st.healthy_in_a_row = st.healthy_in_a_row.saturating_add(1);
        if st.fired && st.healthy_in_a_row >= t.recover_after {
            st.fired = false;
            st.failed_at.clear();
            rearmed = true;
        }
    }
    let count = u32::try_from(st.failed_at.len()).unwrap_or(u32::MAX);
    let fire = failed && !st.fired && count >= t.failures;
    if fire {
        st.fired = true;
    }
    (count, fire, rearmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(failures: u32, window_s: u64, recover_after: u32) -> Trigger {
        Trigger {
            failures,
            window: crate::HumanDuration(Duration::from_secs(window_s)),
            recover_after,
            ..Trigger::on_health_checks(["h"])
        }
    }

    #[test]
    fn fires_once_at_the_threshold_within_the_window_and_rearms_after_recovery() {
        let trig = t(3, 120, 2);
        let mut st = TriggerState::default();
        let base = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s: i64| base + chrono::Duration::seconds(s);
        // Failures spread wider than the window never fire.
        assert_eq!(sample(&mut st, &trig, at(0), true), (1, false, false));
        assert_eq!(sample(&mut st, &trig, at(100), true), (2, false, false));
        assert_eq!(sample(&mut st, &trig, at(230), true), (1, false, false));
        // A healthy sample in between does not reset the window count (flapping counts).
        assert_eq!(sample(&mut st, &trig, at(240), false), (1, false, false));
        assert_eq!(sample(&mut st, &trig, at(250), true), (2, false, false));
        assert_eq!(sample(&mut st, &trig, at(260), true), (3, true, false));
        // Fired: further failures do not fire again.
        assert_eq!(sample(&mut st, &trig, at(270), true), (4, false, false));
        // One healthy sample is not enough to re-arm; two in a row are.
        assert_eq!(sample(&mut st, &trig, at(280), false), (4, false, false));
        assert_eq!(sample(&mut st, &trig, at(290), false), (0, false, true));
        // Re-armed: it can fire again, from a clean count.
        for s in [300, 310] {
            assert!(!sample(&mut st, &trig, at(s), true).1);
        }
        assert!(sample(&mut st, &trig, at(320), true).1);
    }
}
