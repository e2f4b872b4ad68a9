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
mod dry_run;
mod event;
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
pub use dry_run::{DryRun, DryRunStep, PlannedCall};
pub use event::RunEvent;
pub use limits::Limits;
pub use preflight::PreflightProblem;
pub use report::{Outcome, RunReport, ServiceReport, StepReport, StepStatus};

use crate::graph::{RecoveryGraph, Step};
use crate::retry::Stop;
pub use crate::retry::{Retrier, RetryBudget, RetryPolicy};
use crate::step::{Observed, StepContext};
use crate::{Clock, Effect, Error, Providers, Result, Retry};

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
        }
    }

    /// At most `n` steps run at the same time in all (at least 1), on top of the per-target
    /// [`limits`](Self::limits).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Concurrency limits per target (database region, DNS zone, cluster, store, channel).
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
    /// a provider that panicked, is in the report.
    pub async fn run(&self, graph: &RecoveryGraph) -> RunReport {
        let clock = self.clock.unwrap_or_default();
        let started_at = clock.now();
        let run = Run {
            exec: self,
            providers: self.providers.clone().layer(self.limits.start()),
            graph,
            clock,
            incident: self.incident_started_at.unwrap_or(started_at),
            retrier: Retrier::new(self.retry.clone(), self.budget, self.seed),
        };
        run.run(started_at).await
    }
}

/// The state of one step during a run.
#[derive(Debug)]
enum State {
    Pending,
    Running { started_at: DateTime<Utc> },
    Finished(Finished),
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
    result: Result<()>,
}

/// What one step's future returns.
#[derive(Debug)]
struct StepOutput {
    attempts: u32,
    already_done: bool,
    data_loss: Option<Duration>,
    output: Option<serde_json::Value>,
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
        for i in 0..n {
            if waiting_on[i] == 0 && matches!(states[i], State::Pending) {
                ready.push((tail[i], Reverse(i)));
            }
        }
        let mut stopped = false;
        let mut in_flight = FuturesUnordered::new();

        loop {
            // Start what is ready, best first, within the limits.
            while !stopped && in_flight.len() < self.exec.concurrency {
                let Some((_, Reverse(i))) = ready.pop() else {
                    break;
                };
                if !matches!(states[i], State::Pending) {
                    continue;
                }
                states[i] = State::Running {
                    started_at: self.clock.now(),
                };
                let fut = AssertUnwindSafe(self.run_step(&steps[i]))
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
                result: Err(Error::Other {
                    provider: "executor".into(),
                    operation: step.action.kind().into(),
                    retry: Retry::Permanent,
                    source: format!("a provider panicked: {}", panic_message(&*panic)).into(),
                }),
            });
            let blocks = match &output.result {
                Ok(()) => {
                    self.emit(RunEvent::StepSucceeded {
                        at: finished_at,
                        step: step.id.clone(),
                        elapsed: (finished_at - started).to_std().unwrap_or_default(),
                        already_done: output.already_done,
                    });
                    false
                }
                Err(err) => {
                    self.emit(RunEvent::StepFailed {
                        at: finished_at,
                        step: step.id.clone(),
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
            states[i] = State::Finished(Finished {
                started_at: started,
                finished_at,
                attempts: output.attempts,
                already_done: output.already_done,
                data_loss: output.data_loss,
                output: output.output,
                result: output.result,
            });
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

        let finished_at = self.clock.now();
        let report = report::build(
            self.graph,
            started_at,
            finished_at,
            states,
            self.retrier.retries(),
        );
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
                step: id.clone(),
                reason: reason.clone(),
            });
            states[j] = State::Skipped { reason };
            for &d in &dependants[j] {
                todo.push((d, format!("dependency `{id}` was skipped")));
            }
        }
    }

    /// Runs one step: prepare (remember, read back), then attempts through the retry layer.
    async fn run_step(&self, step: &Step) -> StepOutput {
        let mut ctx = StepContext {
            providers: &self.providers,
            approvals: self.exec.approvals.as_ref(),
            events: self.exec.events.as_ref(),
            clock: self.clock,
            incident: self.incident,
            plan: &self.graph.plan,
            scenario: &self.graph.scenario,
            step_id: &step.id,
            service: step.service.as_deref(),
            timeout: step.timeout,
            started: tokio::time::Instant::now(),
            reads: &self.retrier,
            memory: crate::step::Memory::default(),
            data_loss: None,
            output: None,
        };
        let mut attempts = 0;
        let result = self.attempts(step, &mut ctx, &mut attempts).await;
        let (already_done, result) = match result {
            Ok(done) => (done, Ok(())),
            Err(e) => (false, Err(e)),
        };
        StepOutput {
            attempts,
            already_done,
            data_loss: ctx.data_loss,
            output: ctx.output,
            result,
        }
    }

    /// `Ok(true)` when a read-back found the effect in place.
    async fn attempts(
        &self,
        step: &Step,
        ctx: &mut StepContext<'_>,
        attempts: &mut u32,
    ) -> Result<bool> {
        let action = step.action.get();
        if !action.is_approval() && action.prepare(ctx).await == Observed::Done {
            tracing::info!(step = %step.id, "effect already in place: not executing");
            return Ok(true);
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
                step: step.id.clone(),
                attempt,
            });
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
                        step: step.id.clone(),
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
