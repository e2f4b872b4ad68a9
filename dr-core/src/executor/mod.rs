//! Runs a [`RecoveryGraph`]: bounded concurrency, retries with read-backs, per-attempt
//! timeouts, approval gates, a progress stream and a [`RunReport`].
//!
//! # Rules
//!
//! * A step starts once every dependency finished: when all succeeded, or when a failed
//!   dependency was *optional* (the dependant runs degraded). Dependants of a failed or
//!   skipped *critical* step are skipped, and a critical failure stops the run from starting
//!   anything new (steps already running finish). The outcome is then `failed`.
//! * Every attempt runs under `tokio::time::timeout(step.timeout)`; a timeout is a
//!   temporary [`Error::Timeout`].
//! * A temporary error is retried (with [`RetryPolicy`] backoff) when the action is
//!   idempotent, or when a read-back shows its effect did not happen. When the read-back
//!   shows the effect is there, the step succeeds without another call; when it cannot
//!   tell, the step fails with the error marked persistent. Approvals are never retried.
//! * Before the first attempt of a non-idempotent step, the same read-back runs: an effect
//!   already in place (a replica already promoted, a restored instance already there) marks
//!   the step succeeded with `already_done`, so a resumed run does not repeat it.
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

mod actions;
mod approval;
mod dry_run;
mod event;
mod preflight;
mod report;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
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
pub use preflight::PreflightProblem;
pub use report::{Outcome, RunReport, ServiceReport, StepReport, StepStatus};

use crate::graph::{ActionKind, RecoveryGraph, Step};
use crate::{Clock, Error, Providers, Result, Retry};
use actions::{Observed, Record};

/// How temporary errors are retried.
///
/// The delay before retry `n` (from 1) is `initial_backoff × multiplier^(n-1)`, capped at
/// `max_backoff`; with `jitter`, a uniformly random part of it ("full jitter") drawn from a
/// PRNG seeded by [`Executor::seed`], the step id and the attempt, so a run is repeatable.
///
/// The default: 4 attempts, 2 s doubling to at most 60 s, full jitter.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::executor::RetryPolicy;
///
/// let policy = RetryPolicy { jitter: false, ..RetryPolicy::default() };
/// assert_eq!(policy.max_attempts, 4);
/// assert_eq!(policy.backoff(1), Duration::from_secs(2));
/// assert_eq!(policy.backoff(3), Duration::from_secs(8));
/// assert_eq!(policy.backoff(10), Duration::from_secs(60));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Largest delay.
    pub max_backoff: Duration,
    /// Growth factor per retry.
    pub multiplier: f64,
    /// Full jitter: wait a random part of the computed delay.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry `retry` (from 1), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// SplitMix64: a small, fast, well-mixed PRNG step.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in `[0, 1)` from the seed, a step id and an attempt: the same on every
/// run, whatever order concurrent steps fail in.
fn unit_random(seed: u64, step: &str, attempt: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in step.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let r = splitmix64(seed ^ splitmix64(h ^ u64::from(attempt)));
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs recovery graphs against a set of [`Providers`].
///
/// Defaults: 8 steps at a time, [`RetryPolicy::default`], seed 0, no approval hook (every
/// approval is rejected), no event channel, [`Clock::new`] at run start, and the incident
/// taken to start when the run does.
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
    retry: RetryPolicy,
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
            concurrency: 8,
            retry: RetryPolicy::default(),
            seed: 0,
            approvals: None,
            events: None,
            clock: None,
            incident_started_at: None,
        }
    }

    /// At most `n` steps run at the same time (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How temporary errors are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
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
            graph,
            clock,
            incident: self.incident_started_at.unwrap_or(started_at),
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
    result: Result<()>,
}

/// What one step's future returns.
#[derive(Debug)]
struct StepOutput {
    attempts: u32,
    already_done: bool,
    data_loss: Option<Duration>,
    result: Result<()>,
}

enum Readiness {
    Ready,
    Waiting,
    Blocked(String),
}

/// One run in progress.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    exec: &'a Executor,
    graph: &'a RecoveryGraph,
    clock: Clock,
    incident: DateTime<Utc>,
}

impl Run<'_> {
    fn emit(&self, event: RunEvent) {
        event.trace();
        if let Some(tx) = &self.exec.events {
            // A dropped receiver only means nobody listens any more.
            let _ = tx.send(event);
        }
    }

    async fn run(&self, started_at: DateTime<Utc>) -> RunReport {
        let steps = &self.graph.steps;
        self.emit(RunEvent::RunStarted {
            at: started_at,
            scenario: self.graph.scenario.clone(),
            steps: steps.len(),
        });
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            index.entry(s.id.as_str()).or_insert(i);
        }
        let mut states: Vec<State> = steps.iter().map(|_| State::Pending).collect();
        let mut stopped = false;
        let mut in_flight = FuturesUnordered::new();

        loop {
            // Skip what can no longer run, start what is ready, until nothing changes.
            let mut changed = true;
            while changed {
                changed = false;
                for (i, step) in steps.iter().enumerate() {
                    if !matches!(states[i], State::Pending) {
                        continue;
                    }
                    match readiness(step, steps, &index, &states) {
                        Readiness::Blocked(reason) => {
                            self.emit(RunEvent::StepSkipped {
                                at: self.clock.now(),
                                step: step.id.clone(),
                                reason: reason.clone(),
                            });
                            states[i] = State::Skipped { reason };
                            changed = true;
                        }
                        Readiness::Ready if !stopped && in_flight.len() < self.exec.concurrency => {
                            states[i] = State::Running {
                                started_at: self.clock.now(),
                            };
                            let fut = AssertUnwindSafe(self.run_step(step))
                                .catch_unwind()
                                .map(move |r| (i, r));
                            in_flight.push(fut);
                        }
                        Readiness::Ready | Readiness::Waiting => {}
                    }
                }
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
                result: Err(Error::Other {
                    provider: "executor".into(),
                    operation: step.action.kind().name().into(),
                    retry: Retry::Permanent,
                    source: format!("a provider panicked: {}", panic_message(&*panic)).into(),
                }),
            });
            match &output.result {
                Ok(()) => self.emit(RunEvent::StepSucceeded {
                    at: finished_at,
                    step: step.id.clone(),
                    elapsed: (finished_at - started).to_std().unwrap_or_default(),
                    already_done: output.already_done,
                }),
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
                }
            }
            states[i] = State::Finished(Finished {
                started_at: started,
                finished_at,
                attempts: output.attempts,
                already_done: output.already_done,
                data_loss: output.data_loss,
                result: output.result,
            });
        }

        let finished_at = self.clock.now();
        let report = self.report(started_at, finished_at, states);
        self.emit(RunEvent::RunFinished {
            at: finished_at,
            outcome: report.outcome,
        });
        report
    }

    /// Runs one step: the read-back, then attempts with retries.
    async fn run_step(&self, step: &Step) -> StepOutput {
        let mut rec = Record::default();
        let mut attempts = 0;
        let result = self.attempts(step, &mut rec, &mut attempts).await;
        let (already_done, result) = match result {
            Ok(done) => (done, Ok(())),
            Err(e) => (false, Err(e)),
        };
        StepOutput {
            attempts,
            already_done,
            data_loss: rec.data_loss,
            result,
        }
    }

    /// `Ok(true)` when a read-back found the effect in place.
    async fn attempts(&self, step: &Step, rec: &mut Record, attempts: &mut u32) -> Result<bool> {
        let kind = step.action.kind();
        let guarded = !kind.is_idempotent() && kind != ActionKind::Approval;
        if guarded {
            let before = self.observe(step, rec).await;
            rec.prechecked = true;
            if before == Observed::Done {
                tracing::info!(step = %step.id, "effect already in place: not executing");
                return Ok(true);
            }
        }
        let policy = &self.exec.retry;
        loop {
            *attempts += 1;
            let attempt = *attempts;
            self.emit(RunEvent::StepStarted {
                at: self.clock.now(),
                step: step.id.clone(),
                attempt,
            });
            let err = match tokio::time::timeout(step.timeout, self.execute(step, rec)).await {
                Ok(Ok(())) => return Ok(false),
                Ok(Err(err)) => err,
                Err(_) => Error::Timeout {
                    operation: describe(step),
                    after: step.timeout,
                },
            };
            if err.retry() != Retry::Temporary || kind == ActionKind::Approval {
                return Err(err);
            }
            if guarded {
                match self.observe(step, rec).await {
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
            if attempt >= policy.max_attempts.max(1) {
                return Err(err.exhausted(attempt));
            }
            let mut backoff = policy.backoff(attempt);
            if policy.jitter {
                backoff = backoff.mul_f64(unit_random(self.exec.seed, &step.id, attempt));
            }
            self.emit(RunEvent::StepRetrying {
                at: self.clock.now(),
                step: step.id.clone(),
                attempt,
                error: err.to_string(),
                backoff,
            });
            tokio::time::sleep(backoff).await;
        }
    }

    fn report(
        &self,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        states: Vec<State>,
    ) -> RunReport {
        report::build(self.graph, started_at, finished_at, states)
    }
}

/// A short description of what a step does, for timeout errors (`verify_health check
/// api-health (https://…)`).
fn describe(step: &Step) -> String {
    use crate::graph::Action;
    let what = match &step.action {
        Action::VerifyHealth { check, target } => {
            format!("health check {check} ({target}) to report healthy")
        }
        _ => dry_run::planned_calls(step)
            .last()
            .map(|c| format!("{} {}", c.operation, c.target))
            .unwrap_or_default(),
    };
    format!("step {} [{}]: {what}", step.id, step.action.kind())
}

fn readiness(
    step: &Step,
    steps: &[Step],
    index: &HashMap<&str, usize>,
    states: &[State],
) -> Readiness {
    let mut waiting = false;
    for dep in &step.depends_on {
        let Some(&j) = index.get(dep.as_str()) else {
            return Readiness::Blocked(format!("unknown dependency `{dep}`"));
        };
        match &states[j] {
            State::Pending | State::Running { .. } => waiting = true,
            State::Skipped { .. } => {
                return Readiness::Blocked(format!("dependency `{dep}` was skipped"))
            }
            State::Finished(f) => {
                // An optional dependency that failed does not block (degraded run).
                if f.result.is_err() && steps[j].critical {
                    return Readiness::Blocked(format!("dependency `{dep}` failed"));
                }
            }
        }
    }
    if waiting {
        Readiness::Waiting
    } else {
        Readiness::Ready
    }
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
