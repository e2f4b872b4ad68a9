//! Runs a [`RecoveryGraph`]: bounded concurrency, retries with read-backs, per-attempt
//! timeouts, approval gates, a progress stream and a [`RunReport`].
//!
//! # Rules
//!
//! * A step starts once every dependency finished: when all succeeded, or when a failed
//!   dependency was *optional* (the dependant runs degraded). Dependants of a failed or
//!   skipped *critical* step are skipped, and a critical failure stops the run from starting
//!   anything new (steps already running finish). The outcome is then `failed`.
//! * Ready steps start longest-remaining-chain first (the critical path leads), within an
//!   optional global cap; provider calls are limited per target ([`Limits`]: per database
//!   region, DNS zone, cluster API server, store, channel).
//! * Every attempt runs under `tokio::time::timeout(step.timeout)`; a timeout is a
//!   temporary [`Error::Timeout`] whose effect is unknown.
//! * Retries follow the one retry layer ([`crate::retry`]): temporary errors only, within the
//!   step's attempts and deadline and the run's budget. An error that certainly did not take
//!   effect ([`Effect::NotApplied`](crate::Effect)) is retried by any step; one whose effect
//!   is unknown is retried by an idempotent step, and by any other only after its read-back
//!   shows the effect did not happen. When the read-back shows the effect is there, the step
//!   succeeds without another call; when it cannot tell, the step fails with the error marked
//!   persistent. Approvals are never retried.
//! * Before the first attempt, each step prepares ([`StepAction::prepare`](crate::step::StepAction::prepare)): it remembers
//!   what it needs from before its call and reads its effect back; an effect already in place
//!   (a replica already promoted, a record already pointing at the target) marks the step
//!   succeeded with `already_done`, so a repeated run does not repeat it.
//!
//! # Examples
//!
//! ```no_run
//! # async fn demo(providers: dr_core::Providers, graph: dr_core::RecoveryGraph) {
//! use std::sync::Arc;
//! use dr_core::executor::{AutoApprove, Executor, RetryPolicy};
//!
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let executor = Executor::new(providers)
//!     .concurrency(4)
//!     .retry(RetryPolicy::default())
//!     .seed(7)
//!     .approvals(Arc::new(AutoApprove))
//!     .events(tx);
//! tokio::spawn(async move {
//!     while let Some(event) = rx.recv().await {
//!         println!("{}", serde_json::to_string(&event).unwrap_or_default());
//!     }
//! });
//! let report = executor.run(&graph).await;
//! println!("{report}");
//! # }
//! ```

mod approval;
mod compensate;
mod dry_run;
mod durable;
mod event;
mod gates;
mod limits;
mod observe;
mod preflight;
mod report;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc::UnboundedSender;

pub use approval::{ApprovalHook, ApprovalRequest, AutoApprove, Decision};
pub use compensate::CompensationReport;
pub use dry_run::{DryRun, DryRunStep, PlannedCall};
pub use durable::{graph_digest, new_run_id};
pub use event::RunEvent;
pub(crate) use gates::Gates;
pub use gates::OverrideReport;
pub use limits::Limits;
pub use preflight::PreflightProblem;
pub use report::{EvidenceReport, Outcome, RunReport, ServiceReport, StepReport, StepStatus};

use crate::graph::{RecoveryGraph, Step};
use crate::journal::{Journal, Record};
use crate::provider::Lease;
use crate::retry::Stop;
pub use crate::retry::{Retrier, RetryBudget, RetryPolicy};
use crate::step::{Observed, StepContext};
use crate::{Clock, Effect, Error, Providers, Result, Retry};
use durable::{JournalHandle, Leader, LeaseConfig, Resumption};

/// Sends `event` to `tx` (if any) after tracing it.
pub(crate) fn emit(tx: Option<&UnboundedSender<RunEvent>>, event: RunEvent) {
    event.trace();
    if let Some(tx) = tx {
        // A dropped receiver only means nobody listens any more.
        let _ = tx.send(event);
    }
}

/// Runs recovery graphs against a set of [`Providers`].
///
/// Defaults: [`Limits::default`] per target and no global cap, [`RetryPolicy::default`]
/// within [`RetryBudget::default`], seed 0, no approval hook (every approval is rejected), no
/// event channel, [`Clock::new`] at run start, and the incident taken to start when the run
/// does.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(graph: dr_core::RecoveryGraph) {
/// use dr_core::executor::Executor;
/// use dr_core::Providers;
///
/// let executor = Executor::new(Providers::new()).concurrency(2);
/// println!("{}", executor.dry_run(&graph));
/// let report = executor.run(&graph).await;
/// assert!(report.succeeded() || !report.steps.is_empty());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Executor {
    providers: Providers,
    concurrency: usize,
    limits: Limits,
    retry: RetryPolicy,
    budget: RetryBudget,
    seed: u64,
    approvals: Option<Arc<dyn ApprovalHook>>,
    events: Option<UnboundedSender<RunEvent>>,
    clock: Option<Clock>,
    incident_started_at: Option<DateTime<Utc>>,
    journal: Option<Arc<dyn Journal>>,
    run_id: Option<String>,
    lease: Option<LeaseConfig>,
    accepted_loss: std::collections::BTreeMap<String, Duration>,
    waived: std::collections::BTreeSet<crate::plan::Interlock>,
    compensate: Option<bool>,
}

impl Executor {
    /// An executor over `providers`, with the defaults above.
    pub fn new(providers: Providers) -> Self {
        Executor {
            providers,
            concurrency: usize::MAX,
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            budget: RetryBudget::default(),
            seed: 0,
            approvals: None,
            events: None,
            clock: None,
            incident_started_at: None,
            journal: None,
            run_id: None,
            lease: None,
            accepted_loss: std::collections::BTreeMap::new(),
            waived: std::collections::BTreeSet::new(),
            compensate: None,
        }
    }

    /// At most `n` steps run at the same time in all (at least 1), on top of the per-target
    /// [`limits`](Self::limits).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Concurrency limits per target (database region, DNS zone, cluster, store, channel).
    /// A graph planned from a plan with a `limits:` section carries it, and its entries are
    /// applied over these for that run ([`Limits::with_plan`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How temporary errors are retried (a step's own policy, if it has one, wins).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The run-wide retry budget.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Seed of the jitter PRNG.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The hook that decides approval steps.
    pub fn approvals(mut self, hook: Arc<dyn ApprovalHook>) -> Self {
        self.approvals = Some(hook);
        self
    }

    /// Where progress events are sent (a closed receiver is ignored).
    pub fn events(mut self, tx: UnboundedSender<RunEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// The clock for timestamps.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// When the outage began: data-loss windows (snapshot and restore-point age) are
    /// measured against it.
    pub fn incident_started_at(mut self, at: DateTime<Utc>) -> Self {
        self.incident_started_at = Some(at);
        self
    }

    /// Journals the run: its start (with the graph's digest), every step's intent —
    /// durable before the call it announces — and outcome, approvals, overrides and
    /// compensations, so that [`resume`](Self::resume) can continue it after a crash.
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The run's id (default: generated from the start time and random bits).
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }

    /// Holds `lease` as `holder` for the whole run (taken for `ttl`, renewed every third of
    /// it): a runner that cannot take it does nothing, and one that loses it stops making
    /// calls and journal appends before its ttl could have ended.
    pub fn lease(
        mut self,
        lease: Arc<dyn Lease>,
        holder: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        self.lease = Some(LeaseConfig {
            lease,
            holder: holder.into(),
            ttl: ttl.max(Duration::from_millis(10)),
        });
        self
    }

    /// Accepts, explicitly, a data loss of up to `window` for `service`: the RPO gate lets
    /// a promotion or restore whose data-loss window is beyond the service's RPO (but within
    /// `window`) go ahead, and the report and journal record the override.
    pub fn accept_data_loss(mut self, service: impl Into<String>, window: Duration) -> Self {
        self.accepted_loss.insert(service.into(), window);
        self
    }

    /// Waives the plan's `interlock` for this run: a step that would break it goes ahead,
    /// and the report and journal record the override. For when the invariant is known to
    /// hold by other means (the old primary was fenced by hand).
    pub fn waive(mut self, interlock: crate::plan::Interlock) -> Self {
        self.waived.insert(interlock);
        self
    }

    /// On a critical failure, undo what already ran, in reverse order of completion, for
    /// every step that can be undone (a DNS switch back, a scale back up, a rollout undone);
    /// the report lists what was compensated and what could not be, and why. Overrides the
    /// scenario's `compensate_on_failure` (which applies when this is not called).
    pub fn compensate_on_failure(mut self, on: bool) -> Self {
        self.compensate = Some(on);
        self
    }

    /// Checks, calling nothing, that every step of `graph` has a provider that supports what
    /// it does, and that approval gates have a hook to answer them. An empty list means the
    /// run will not fail for a missing provider or an unsupported operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::executor::Executor;
    /// use dr_core::plan::Plan;
    /// use dr_core::{planner, Providers};
    ///
    /// let plan = Plan::from_yaml_str(r#"
    /// name: shop
    /// regions: [{ name: east, role: primary }, { name: west, role: secondary }]
    /// databases: [{ name: db, region: east, replicas: [{ id: db-west, region: west }] }]
    /// services: [{ name: orders, rto: 30m, rpo: 5m, database: db }]
    /// scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]
    /// "#).unwrap();
    /// let graph = planner::plan_nominal(&plan, "failover").unwrap();
    /// let problems = Executor::new(Providers::new()).preflight(&graph);
    /// assert!(problems[0].message.contains("database provider for region west"));
    /// ```
    pub fn preflight(&self, graph: &RecoveryGraph) -> Vec<PreflightProblem> {
        preflight::preflight(graph, &self.providers, self.approvals.is_some())
    }

    /// Lists every provider call a run of `graph` would make, in order, calling nothing.
    pub fn dry_run(&self, graph: &RecoveryGraph) -> DryRun {
        dry_run::dry_run(graph)
    }

    /// Runs `graph` to the end. Never panics and returns no error: every outcome, including
    /// a provider that panicked, is in the report. With a [`journal`](Self::journal) or a
    /// [`lease`](Self::lease), a run that cannot start (the lease is held elsewhere, the
    /// journal already holds a run or cannot be written) makes no call and returns a failed
    /// report whose `error` says why; [`start`](Self::start) returns that as an error.
    pub async fn run(&self, graph: &RecoveryGraph) -> RunReport {
        match self.start(graph).await {
            Ok(report) => report,
            Err(e) => self.refused(graph, e),
        }
    }

    /// Starts a new run of `graph`: takes the lease (if any), writes the journal's start
    /// record (if any), runs to the end.
    ///
    /// # Errors
    /// The lease is held by another runner; the journal already holds a run (resume it
    /// instead) or cannot be read or written. Nothing was called.
    pub async fn start(&self, graph: &RecoveryGraph) -> Result<RunReport> {
        let clock = self.clock.unwrap_or_default();
        let started_at = clock.now();
        let leader = self.lead().await?;
        let journal = self
            .journal
            .clone()
            .map(|j| JournalHandle::new(j, leader.clone()));
        // A journaled run always has an id; another only when it was given one.
        let run_id = self
            .run_id
            .clone()
            .or_else(|| journal.as_ref().map(|_| durable::new_run_id(started_at)));
        let result = async {
            if let Some(j) = &journal {
                let loaded = j.load().await?;
                if let Some(Record::Started { run_id, .. }) = loaded.records.first() {
                    return Err(Error::InvalidRequest {
                        provider: "journal".into(),
                        operation: "start".into(),
                        message: format!(
                            "the journal already holds run {run_id}: resume it, or start a new run in a new journal"
                        ),
                    });
                }
                if !loaded.records.is_empty() || loaded.torn_tail {
                    return Err(Error::InvalidRequest {
                        provider: "journal".into(),
                        operation: "start".into(),
                        message: "the journal is not empty but holds no run start: refusing to write into it".into(),
                    });
                }
                j.append(Record::Started {
                    run_id: run_id.clone().unwrap_or_default(),
                    at: started_at,
                    plan: graph.plan.clone(),
                    scenario: graph.scenario.clone(),
                    digest: graph_digest(graph),
                    graph: serde_json::to_value(graph).unwrap_or_default(),
                })
                .await?;
            }
            Ok(self
                .execute(graph, clock, started_at, run_id, journal, leader.clone(), None)
                .await)
        }
        .await;
        if let Some(l) = &leader {
            l.release().await;
        }
        result
    }

    /// Continues the run recorded in the [`journal`](Self::journal) after a crash: refuses a
    /// journal written for another graph; steps the journal says finished are not run
    /// again; for a step whose intent has no outcome, its effect is read back first, with
    /// what it remembered before its call (is the replica already promoted? is the record
    /// already pointing at the target?). A step that is not idempotent is never issued
    /// twice: when its effect cannot be read back, it runs again only if the approval hook
    /// approves, and fails otherwise.
    ///
    /// # Errors
    /// No journal was given; it cannot be read, holds no run, or was written for another
    /// graph; the lease is held by another runner. Nothing was called.
    pub async fn resume(&self, graph: &RecoveryGraph) -> Result<RunReport> {
        let Some(journal) = self.journal.clone() else {
            return Err(Error::InvalidRequest {
                provider: "executor".into(),
                operation: "resume".into(),
                message: "no journal to resume from: give one with Executor::journal".into(),
            });
        };
        let clock = self.clock.unwrap_or_default();
        let leader = self.lead().await?;
        let handle = JournalHandle::new(journal, leader.clone());
        let result = async {
            let loaded = handle.load().await?;
            let resumption = Resumption::read(loaded, graph)?;
            if resumption.torn_tail {
                tracing::warn!("the journal's last record was torn by the crash: its step counts as in flight");
            }
            let in_flight: Vec<String> = graph
                .steps
                .iter()
                .filter(|s| {
                    resumption
                        .steps
                        .get(s.id.as_str())
                        .is_some_and(|h| h.intent.is_some() && h.outcome.is_none())
                })
                .map(|s| s.id.to_string())
                .collect();
            let finished = resumption
                .steps
                .values()
                .filter(|h| matches!(h.outcome, Some(Record::Outcome { succeeded: true, .. })))
                .count();
            tracing::info!(run_id = %resumption.run_id, finished, in_flight = in_flight.len(), "resuming");
            handle
                .append(Record::Resumed {
                    at: clock.now(),
                    finished,
                    in_flight,
                })
                .await?;
            let started_at = resumption.started_at;
            let run_id = resumption.run_id.clone();
            Ok(self
                .execute(
                    graph,
                    clock,
                    started_at,
                    Some(run_id),
                    Some(handle),
                    leader.clone(),
                    Some(resumption),
                )
                .await)
        }
        .await;
        if let Some(l) = &leader {
            l.release().await;
        }
        result
    }

    async fn lead(&self) -> Result<Option<Arc<Leader>>> {
        match &self.lease {
            Some(cfg) => Ok(Some(Leader::acquire(cfg.clone()).await?)),
            None => Ok(None),
        }
    }

    /// A report for a run that could not start.
    fn refused(&self, graph: &RecoveryGraph, e: Error) -> RunReport {
        let now = self.clock.unwrap_or_default().now();
        let states = graph.steps.iter().map(|_| State::Pending).collect();
        let mut report = report::build(graph, now, now, states, 0);
        report.outcome = Outcome::Failed;
        report.error = Some(e.to_string());
        report
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        graph: &RecoveryGraph,
        clock: Clock,
        started_at: DateTime<Utc>,
        run_id: Option<String>,
        journal: Option<JournalHandle>,
        leader: Option<Arc<Leader>>,
        resumption: Option<Resumption>,
    ) -> RunReport {
        // The fence innermost: checked right before each call, after any wait for a permit.
        let mut providers = self.providers.clone();
        if let Some(l) = &leader {
            providers = providers.layer(Arc::new(durable::Fence(l.clone())));
        }
        let limits = match &graph.limits {
            Some(plan) => self.limits.clone().with_plan(plan),
            None => self.limits.clone(),
        };
        let providers = providers.layer(limits.start());
        let gates = Gates {
            rpo: graph
                .services
                .iter()
                .map(|s| (s.name.clone(), s.rpo_target))
                .collect(),
            accepted: self.accepted_loss.clone(),
            affected: gates::Dependants::of(graph),
            interlocks: graph.interlocks.iter().copied().collect(),
            waived: self.waived.clone(),
            journal: journal.clone(),
            overrides: std::sync::Mutex::new(
                resumption
                    .as_ref()
                    .map(|r| {
                        r.overrides
                            .iter()
                            .map(|(step, gate, detail)| OverrideReport {
                                step: step.clone(),
                                gate: gate.clone(),
                                detail: detail.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        };
        let run = Run {
            exec: self,
            providers,
            graph,
            clock,
            incident: self.incident_started_at.unwrap_or(started_at),
            retrier: Retrier::new(self.retry.clone(), self.budget, self.seed),
            journal,
            gates,
            resumption,
        };
        let fut = run.run(started_at);
        let mut report = match &leader {
            Some(l) => {
                tokio::pin!(fut);
                let keep = l.keep();
                tokio::pin!(keep);
                tokio::select! {
                    report = &mut fut => report,
                    () = &mut keep => {
                        // Lost: the fence refuses every further call; let the run wind down.
                        fut.await
                    }
                }
            }
            None => fut.await,
        };
        report.run_id = run_id;
        if let Some(l) = &leader {
            report.fencing_token = l.fencing_token();
        }
        report
    }
}

/// The state of one step during a run.
#[derive(Debug)]
enum State {
    Pending,
    Running { started_at: DateTime<Utc> },
    Finished(Box<Finished>),
    Skipped { reason: String },
}

#[derive(Debug)]
struct Finished {
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    attempts: u32,
    already_done: bool,
    data_loss: Option<Duration>,
    output: Option<serde_json::Value>,
    memory: crate::step::Memory,
    result: Result<()>,
}

/// What one step's future returns.
#[derive(Debug)]
struct StepOutput {
    attempts: u32,
    already_done: bool,
    data_loss: Option<Duration>,
    output: Option<serde_json::Value>,
    memory: crate::step::Memory,
    result: Result<()>,
}

/// One run in progress.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    exec: &'a Executor,
    /// The executor's providers inside the run's per-target limits.
    providers: Providers,
    graph: &'a RecoveryGraph,
    clock: Clock,
    incident: DateTime<Utc>,
    retrier: Retrier,
    journal: Option<JournalHandle>,
    gates: Gates,
    resumption: Option<Resumption>,
}

impl Run<'_> {
    fn emit(&self, event: RunEvent) {
        emit(self.exec.events.as_ref(), event);
    }

    async fn run(&self, started_at: DateTime<Utc>) -> RunReport {
        let steps = &self.graph.steps;
        let n = steps.len();
        self.emit(RunEvent::RunStarted {
            at: started_at,
            scenario: self.graph.scenario.clone(),
            steps: n,
        });
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, s) in steps.iter().enumerate() {
            index.entry(s.id.as_str()).or_insert(i);
        }
        let mut states: Vec<State> = steps.iter().map(|_| State::Pending).collect();
        // In-degrees and dependants, so each completion touches only its own dependants.
        let mut waiting_on: Vec<usize> = vec![0; n];
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut unknown: Vec<(usize, String)> = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            for d in &s.depends_on {
                match index.get(d.as_str()) {
                    Some(&j) => {
                        waiting_on[i] += 1;
                        dependants[j].push(i);
                    }
                    None => unknown.push((i, format!("unknown dependency `{d}`"))),
                }
            }
        }
        let tail = remaining_chain(steps, &dependants);
        // The ready set: longest remaining chain first, ties in graph order; O(log n) each.
        let mut ready: BinaryHeap<(Duration, Reverse<usize>)> = BinaryHeap::new();
        for (i, reason) in unknown {
            self.skip(i, reason, &mut states, &dependants);
        }
        // A resume: what the journal says finished is done; its dependants wait on less.
        if let Some(r) = &self.resumption {
            for (i, s) in steps.iter().enumerate() {
                let Some(Record::Outcome {
                    succeeded: true,
                    already_done,
                    attempts,
                    started_at,
                    at,
                    data_loss,
                    output,
                    ..
                }) = r.steps.get(s.id.as_str()).and_then(|h| h.outcome.as_ref())
                else {
                    continue;
                };
                if !matches!(states[i], State::Pending) {
                    continue;
                }
                states[i] = State::Finished(Box::new(Finished {
                    started_at: *started_at,
                    finished_at: *at,
                    attempts: *attempts,
                    already_done: *already_done,
                    data_loss: *data_loss,
                    output: output.clone(),
                    memory: r
                        .steps
                        .get(s.id.as_str())
                        .and_then(|h| h.intent.as_ref())
                        .map(|(_, m)| m.clone())
                        .unwrap_or_default(),
                    result: Ok(()),
                }));
                for &d in &dependants[i] {
                    waiting_on[d] = waiting_on[d].saturating_sub(1);
                }
            }
        }
        let mut completed: Vec<usize> = Vec::new();
        for i in 0..n {
            if waiting_on[i] == 0 && matches!(states[i], State::Pending) {
                ready.push((tail[i], Reverse(i)));
            }
        }
        let mut stopped = false;
        let mut in_flight = FuturesUnordered::new();

        loop {
            // Start what is ready, best first, within the limits.
            if !stopped && self.journal.as_ref().is_some_and(JournalHandle::broken) {
                stopped = true;
            }
            while !stopped && in_flight.len() < self.exec.concurrency {
                let Some((_, Reverse(i))) = ready.pop() else {
                    break;
                };
                if !matches!(states[i], State::Pending) {
                    continue;
                }
                let started_at = self.clock.now();
                states[i] = State::Running { started_at };
                let fut = AssertUnwindSafe(self.run_step(&steps[i], started_at))
                    .catch_unwind()
                    .map(move |r| (i, r));
                in_flight.push(fut);
            }

            let Some((i, output)) = in_flight.next().await else {
                break;
            };
            let step = &steps[i];
            let finished_at = self.clock.now();
            let started = match states[i] {
                State::Running { started_at } => started_at,
                _ => finished_at,
            };
            let output = output.unwrap_or_else(|panic| StepOutput {
                attempts: 1,
                already_done: false,
                data_loss: None,
                output: None,
                memory: crate::step::Memory::default(),
                result: Err(Error::Other {
                    provider: "executor".into(),
                    operation: step.action.kind().into(),
                    retry: Retry::Permanent,
                    source: format!("a provider panicked: {}", panic_message(&*panic)).into(),
                }),
            });
            let blocks = match &output.result {
                Ok(()) => {
                    completed.push(i);
                    self.emit(RunEvent::StepSucceeded {
                        at: finished_at,
                        step: step.id.to_string(),
                        elapsed: (finished_at - started).to_std().unwrap_or_default(),
                        already_done: output.already_done,
                    });
                    false
                }
                Err(err) => {
                    self.emit(RunEvent::StepFailed {
                        at: finished_at,
                        step: step.id.to_string(),
                        error: err.to_string(),
                        retry_class: err.retry(),
                    });
                    if step.critical && !stopped {
                        stopped = true;
                        tracing::error!(step = %step.id, "critical step failed: starting no new steps");
                    }
                    step.critical
                }
            };
            states[i] = State::Finished(Box::new(Finished {
                started_at: started,
                finished_at,
                attempts: output.attempts,
                already_done: output.already_done,
                data_loss: output.data_loss,
                output: output.output,
                memory: output.memory,
                result: output.result,
            }));
            for &d in &dependants[i] {
                if !matches!(states[d], State::Pending) {
                    continue;
                }
                if blocks {
                    let reason = format!("dependency `{}` failed", step.id);
                    self.skip(d, reason, &mut states, &dependants);
                } else {
                    waiting_on[d] -= 1;
                    if waiting_on[d] == 0 {
                        ready.push((tail[d], Reverse(d)));
                    }
                }
            }
        }

        let compensate = self
            .exec
            .compensate
            .unwrap_or(self.graph.compensate_on_failure);
        let compensated = if stopped && compensate {
            let failed = states
                .iter()
                .any(|st| matches!(st, State::Finished(f) if f.result.is_err()));
            if failed {
                compensate::run(self, &completed, &states).await
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        let finished_at = self.clock.now();
        let mut report = report::build(
            self.graph,
            started_at,
            finished_at,
            states,
            self.retrier.retries(),
        );
        report.overrides = self.gates.overrides();
        report.compensated = compensated;
        report.resumed = self.resumption.is_some();
        if let Some(j) = &self.journal {
            if j.broken() {
                report.error = Some(
                    "the journal could not be written: the run stopped before the call it would have announced".into(),
                );
            }
            let _ = j
                .append(Record::Finished {
                    outcome: report.outcome.to_string(),
                })
                .await;
        }
        self.emit(RunEvent::RunFinished {
            at: finished_at,
            outcome: report.outcome,
        });
        report
    }

    /// Skips `i` and, transitively, every pending step that depends on it.
    fn skip(&self, i: usize, reason: String, states: &mut [State], dependants: &[Vec<usize>]) {
        let mut todo = vec![(i, reason)];
        while let Some((j, reason)) = todo.pop() {
            if !matches!(states[j], State::Pending) {
                continue;
            }
            let id = &self.graph.steps[j].id;
            self.emit(RunEvent::StepSkipped {
                at: self.clock.now(),
                step: id.to_string(),
                reason: reason.clone(),
            });
            states[j] = State::Skipped { reason };
            for &d in &dependants[j] {
                todo.push((d, format!("dependency `{id}` was skipped")));
            }
        }
    }

    /// Runs one step: prepare (remember, read back) — or, on a resume of a step that was in
    /// flight, read back with what it remembered — then attempts through the retry layer;
    /// the outcome is journaled before the step counts as finished.
    async fn run_step(&self, step: &Step, started_at: DateTime<Utc>) -> StepOutput {
        let resumed = self.resumption.as_ref().and_then(|r| {
            r.steps
                .get(step.id.as_str())
                .and_then(|h| h.intent.as_ref())
                .map(|(attempt, memory)| (*attempt, memory.clone()))
        });
        let mut ctx = self.context(step);
        let mut attempts = 0;
        let result = self.attempts(step, &mut ctx, &mut attempts, resumed).await;
        let (already_done, result) = match result {
            Ok(done) => (done, Ok(())),
            Err(e) => (false, Err(e)),
        };
        if let Some(j) = &self.journal {
            if step.action.get().is_approval() {
                let _ = j
                    .append(Record::Approval {
                        step: step.id.to_string(),
                        approved: result.is_ok(),
                        reason: result.as_ref().err().map(ToString::to_string),
                    })
                    .await;
            }
            let _ = j
                .append(Record::Outcome {
                    step: step.id.to_string(),
                    succeeded: result.is_ok(),
                    already_done,
                    attempts,
                    started_at,
                    at: self.clock.now(),
                    data_loss: ctx.data_loss,
                    output: ctx.output.clone(),
                    error: result.as_ref().err().map(ToString::to_string),
                })
                .await;
        }
        StepOutput {
            attempts,
            already_done,
            data_loss: ctx.data_loss,
            output: ctx.output,
            memory: ctx.memory,
            result,
        }
    }

    fn context<'s>(&'s self, step: &'s Step) -> StepContext<'s> {
        StepContext {
            providers: &self.providers,
            approvals: self.exec.approvals.as_ref(),
            events: self.exec.events.as_ref(),
            clock: self.clock,
            incident: self.incident,
            plan: &self.graph.plan,
            scenario: &self.graph.scenario,
            step_id: &step.id,
            idempotency_key: &step.idempotency_key,
            service: step.service.as_deref(),
            timeout: step.timeout,
            started: tokio::time::Instant::now(),
            reads: &self.retrier,
            gates: &self.gates,
            memory: crate::step::Memory::default(),
            data_loss: None,
            output: None,
        }
    }

    /// A step that was in flight when the run stopped: read its effect back with what it
    /// remembered. `Ok(true)` when the effect is in place; `Ok(false)` when the step may be
    /// issued (again).
    async fn read_back_in_flight(
        &self,
        step: &Step,
        ctx: &mut StepContext<'_>,
        attempt: u32,
    ) -> Result<bool> {
        let action = step.action.get();
        match action.observe(ctx).await {
            Observed::Done => {
                tracing::info!(step = %step.id, "in flight at the crash; its effect is in place");
                Ok(true)
            }
            Observed::NotDone => Ok(false),
            Observed::Unknown if action.idempotent() => Ok(false),
            Observed::Unknown => {
                let prompt = format!(
                    "step {} ({}) was in flight (attempt {attempt}) when the run stopped, and its effect                      cannot be read back: issue it again?",
                    step.id,
                    action.describe()
                );
                let refused = |why: String| {
                    Error::Other {
                    provider: "executor".into(),
                    operation: format!(
                        "resume of step {} (in flight at the crash; its effect could not be read back, so it was not issued again)",
                        step.id
                    ),
                    retry: Retry::Persistent,
                    source: why.into(),
                }
                };
                let Some(hook) = self.exec.approvals.as_ref() else {
                    return Err(refused("no approval hook to ask".into()));
                };
                let request = ApprovalRequest {
                    plan: self.graph.plan.clone(),
                    scenario: self.graph.scenario.clone(),
                    step: step.id.to_string(),
                    service: step.service.as_deref().map(str::to_string),
                    prompt,
                };
                match hook.decide(&request).await {
                    Ok(Decision::Approve) => {
                        if let Some(j) = &self.journal {
                            j.append(Record::Override {
                                step: step.id.to_string(),
                                gate: "reissue".into(),
                                detail:
                                    "issued again after a crash, its effect unknown, by approval"
                                        .into(),
                            })
                            .await?;
                        }
                        Ok(false)
                    }
                    Ok(Decision::Reject { reason }) => Err(refused(format!("rejected: {reason}"))),
                    Err(e) => Err(refused(format!("the approval hook failed: {e}"))),
                }
            }
        }
    }

    /// `Ok(true)` when a read-back found the effect in place.
    async fn attempts(
        &self,
        step: &Step,
        ctx: &mut StepContext<'_>,
        attempts: &mut u32,
        resumed: Option<(u32, crate::step::Memory)>,
    ) -> Result<bool> {
        let action = step.action.get();
        match resumed {
            Some((attempt, memory)) if !action.is_approval() => {
                ctx.memory = memory;
                if self.read_back_in_flight(step, ctx, attempt).await? {
                    return Ok(true);
                }
            }
            _ => {
                if !action.is_approval() && action.prepare(ctx).await == Observed::Done {
                    tracing::info!(step = %step.id, "effect already in place: not executing");
                    return Ok(true);
                }
            }
        }
        let policy = step.retry.as_ref().unwrap_or(self.retrier.policy());
        let deadline = policy.deadline_for(step.timeout);
        let first = tokio::time::Instant::now();
        self.retrier.first_attempt();
        loop {
            *attempts += 1;
            let attempt = *attempts;
            self.emit(RunEvent::StepStarted {
                at: self.clock.now(),
                step: step.id.to_string(),
                attempt,
            });
            if let Some(j) = &self.journal {
                // Durable before the call it announces; without it, no call.
                j.append(Record::Intent {
                    step: step.id.to_string(),
                    key: step.idempotency_key.clone(),
                    attempt,
                    at: self.clock.now(),
                    memory: ctx.memory.clone(),
                })
                .await?;
            }
            ctx.started = tokio::time::Instant::now();
            let err = match tokio::time::timeout(step.timeout, action.execute(ctx)).await {
                Ok(Ok(())) => return Ok(false),
                Ok(Err(err)) => err,
                Err(_) => Error::Timeout {
                    operation: format!(
                        "step {} [{}]: {}",
                        step.id,
                        action.kind(),
                        action.describe()
                    ),
                    after: step.timeout,
                },
            };
            if action.is_approval() {
                return Err(err);
            }
            if err.is_retryable() && !action.idempotent() && err.effect() == Effect::Unknown {
                match action.observe(ctx).await {
                    Observed::Done => {
                        tracing::info!(step = %step.id, %err, "attempt failed but its effect is in place");
                        return Ok(true);
                    }
                    Observed::NotDone => {}
                    Observed::Unknown => {
                        // Never retried blindly: a second promotion or restart could do harm.
                        return Err(Error::Other {
                            provider: "executor".into(),
                            operation: format!(
                                "step {} (its effect could not be read back, so it was not retried)",
                                step.id
                            ),
                            retry: Retry::Persistent,
                            source: Box::new(err),
                        });
                    }
                }
            }
            match self
                .retrier
                .next(policy, &err, &step.id, attempt, first.elapsed(), deadline)
            {
                Ok(backoff) => {
                    self.emit(RunEvent::StepRetrying {
                        at: self.clock.now(),
                        step: step.id.to_string(),
                        attempt,
                        error: err.to_string(),
                        backoff,
                    });
                    tokio::time::sleep(backoff).await;
                }
                Err(Stop::NotRetryable) => return Err(err),
                Err(stop) => {
                    tracing::warn!(step = %step.id, ?stop, attempt, "giving up");
                    return Err(err.exhausted(attempt));
                }
            }
        }
    }
}

/// For each step, the estimated length of the longest chain from its start to the end of
/// the graph: the scheduler's priority (critical path first).
fn remaining_chain(steps: &[Step], dependants: &[Vec<usize>]) -> Vec<Duration> {
    let n = steps.len();
    // Kahn's order over the dependant edges, then a reverse sweep.
    let mut indeg = vec![0usize; n];
    for ds in dependants {
        for &d in ds {
            indeg[d] += 1;
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut k = 0;
    while k < order.len() {
        let i = order[k];
        k += 1;
        for &d in &dependants[i] {
            indeg[d] -= 1;
            if indeg[d] == 0 {
                order.push(d);
            }
        }
    }
    let mut tail = vec![Duration::ZERO; n];
    for &i in order.iter().rev() {
        let after = dependants[i]
            .iter()
            .map(|&d| tail[d])
            .max()
            .unwrap_or_default();
        tail[i] = steps[i].estimate.saturating_add(after);
    }
    tail
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
