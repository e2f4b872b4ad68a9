//! What makes a run durable: its journal (written before every call it announces), what a
//! resume reads back from it, and the lease that keeps a second runner from acting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::graph::RecoveryGraph;
use crate::journal::{Journal, Loaded, Record};
use crate::layer::{CallInfo, Guard, Layer};
use crate::provider::{Lease, LeaseGuard};
use crate::step::Memory;
use crate::{Error, Result, Retry};

/// The SHA-256 of what a graph executes: every step's id, kind, parameters (secrets
/// redacted), dependencies and idempotency key, in order. A resume refuses a journal whose
/// digest differs.
///
/// # Examples
///
/// ```
/// use dr_core::{executor::graph_digest, plan::Plan, planner};
///
/// let plan = Plan::from_yaml_str(r#"
/// name: shop
/// regions: [{ name: east, role: primary }, { name: west, role: secondary }]
/// databases: [{ name: db, region: east, replicas: [{ id: db-west, region: west }] }]
/// services: [{ name: orders, rto: 30m, rpo: 5m, database: db }]
/// scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]
/// "#).unwrap();
/// let graph = planner::plan_nominal(&plan, "failover").unwrap();
/// assert_eq!(graph_digest(&graph), graph_digest(&graph.clone()));
/// assert_eq!(graph_digest(&graph).len(), 64);
/// ```
pub fn graph_digest(graph: &RecoveryGraph) -> String {
    let mut h = Sha256::new();
    h.update(graph.plan.as_bytes());
    h.update([0]);
    h.update(graph.scenario.as_bytes());
    for s in &graph.steps {
        let params = s.action.get().params();
        h.update([1]);
        h.update(s.id.as_bytes());
        h.update([0]);
        h.update(s.action.kind().as_bytes());
        h.update([0]);
        h.update(params.to_string().as_bytes());
        h.update([0]);
        for d in &s.depends_on {
            h.update(d.as_bytes());
            h.update([0]);
        }
        h.update(s.idempotency_key.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A new run id: the start time and 48 random bits (`run-20260101T000000Z-1a2b3c4d5e6f`).
///
/// # Examples
///
/// ```
/// let id = dr_core::executor::new_run_id(chrono::Utc::now());
/// assert!(id.starts_with("run-") && id.len() == 33);
/// ```
pub fn new_run_id(at: DateTime<Utc>) -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: the time alone still orders runs.
        bytes = [0; 6];
    }
    format!("run-{}-{}", at.format("%Y%m%dT%H%M%SZ"), hex::encode(bytes))
}

/// What a step's last journal records say.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepHistory {
    /// The last intent's attempt and memory, when an intent was written.
    pub(crate) intent: Option<(u32, Memory)>,
    /// The outcome after that intent (an outcome written before a later intent is stale).
    pub(crate) outcome: Option<Record>,
    /// An approval decided for it.
    pub(crate) approval: Option<(bool, Option<String>)>,
}

/// A journal read back for a resume.
#[derive(Debug)]
pub(crate) struct Resumption {
    pub(crate) run_id: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) steps: HashMap<String, StepHistory>,
    pub(crate) overrides: Vec<(String, String, String)>,
    pub(crate) torn_tail: bool,
}

impl Resumption {
    /// Reads `loaded` for `graph`: refuses a journal without a start, or written for
    /// another graph.
    pub(crate) fn read(loaded: Loaded, graph: &RecoveryGraph) -> Result<Self> {
        let refuse = |message: String| Error::InvalidRequest {
            provider: "journal".into(),
            operation: "resume".into(),
            message,
        };
        let mut records = loaded.records.into_iter();
        let (run_id, started_at) = match records.next() {
            Some(Record::Started {
                run_id,
                at,
                digest,
                plan,
                scenario,
                ..
            }) => {
                let ours = graph_digest(graph);
                if digest != ours {
                    return Err(refuse(format!(
                        "the journal of run {run_id} was written for another graph (plan {plan}, \
                         scenario {scenario}, digest {}…; this graph's is {}…): the plan or the \
                         state it was planned from changed, so the journal cannot be resumed",
                        digest.get(..12).unwrap_or(&digest),
                        ours.get(..12).unwrap_or(&ours)
                    )));
                }
                (run_id, at)
            }
            Some(_) => {
                return Err(refuse(
                    "the journal does not begin with the run's start record".into(),
                ))
            }
            None => {
                return Err(refuse(
                    "the journal is empty: there is no run to resume".into(),
                ))
            }
        };
        let mut steps: HashMap<String, StepHistory> = HashMap::new();
        let mut overrides = Vec::new();
        for r in records {
            match &r {
                Record::Intent {
                    step,
                    attempt,
                    memory,
                    ..
                } => {
                    let h = steps.entry(step.clone()).or_default();
                    h.intent = Some((*attempt, memory.clone()));
                    h.outcome = None;
                }
                Record::Outcome { step, .. } => {
                    steps.entry(step.clone()).or_default().outcome = Some(r.clone());
                }
                Record::Approval {
                    step,
                    approved,
                    reason,
                } => {
                    steps.entry(step.clone()).or_default().approval =
                        Some((*approved, reason.clone()));
                }
                Record::Override { step, gate, detail } => {
                    overrides.push((step.clone(), gate.clone(), detail.clone()));
                }
                Record::Started { .. }
                | Record::Resumed { .. }
                | Record::Compensated { .. }
                | Record::Finished { .. } => {}
            }
        }
        Ok(Resumption {
            run_id,
            started_at,
            steps,
            overrides,
            torn_tail: loaded.torn_tail,
        })
    }
}

/// The run's journal, with the leader check before every append.
#[derive(Debug, Clone)]
pub(crate) struct JournalHandle {
    journal: Arc<dyn Journal>,
    leader: Option<Arc<Leader>>,
    broken: Arc<AtomicBool>,
    appended: Arc<AtomicU64>,
}

impl JournalHandle {
    pub(crate) fn new(journal: Arc<dyn Journal>, leader: Option<Arc<Leader>>) -> Self {
        JournalHandle {
            journal,
            leader,
            broken: Arc::new(AtomicBool::new(false)),
            appended: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Appends `record` durably; an error means the call it announces must not be made.
    pub(crate) async fn append(&self, record: Record) -> Result<()> {
        if let Some(leader) = &self.leader {
            leader.check()?;
        }
        match self.journal.append(&record).await {
            Ok(()) => {
                self.appended.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.broken.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, "journal append failed: starting no new calls");
                Err(Error::Other {
                    provider: "journal".into(),
                    operation: "append".into(),
                    retry: Retry::Persistent,
                    source: Box::new(e),
                })
            }
        }
    }

    pub(crate) async fn load(&self) -> Result<Loaded> {
        self.journal.load().await
    }

    /// Whether an append failed (the run must start nothing new).
    pub(crate) fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// How the executor holds its lease: the lease, who it is, and for how long it takes it.
#[derive(Debug, Clone)]
pub(crate) struct LeaseConfig {
    pub(crate) lease: Arc<dyn Lease>,
    pub(crate) holder: String,
    pub(crate) ttl: Duration,
}

/// A held lease: renewed in the background of the run; calls stop before it could have
/// expired.
#[derive(Debug)]
pub(crate) struct Leader {
    config: LeaseConfig,
    guard: Mutex<Option<(LeaseGuard, tokio::time::Instant)>>,
    lost: AtomicBool,
}

impl Leader {
    /// Takes the lease, or says who holds it.
    pub(crate) async fn acquire(config: LeaseConfig) -> Result<Arc<Leader>> {
        let taken = tokio::time::Instant::now();
        match config.lease.acquire(&config.holder, config.ttl).await? {
            Some(guard) => {
                tracing::info!(holder = %guard.holder, fencing_token = guard.fencing_token, "lease taken");
                Ok(Arc::new(Leader {
                    config,
                    guard: Mutex::new(Some((guard, taken))),
                    lost: AtomicBool::new(false),
                }))
            }
            None => {
                let holder = config
                    .lease
                    .holder()
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another runner".into());
                Err(Error::InvalidState {
                    provider: "lease".into(),
                    resource: "the plan's lease".into(),
                    state: format!("held by {holder}"),
                    operation:
                        "start the run (another runner is executing the plan; nothing was done)"
                            .into(),
                })
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(LeaseGuard, tokio::time::Instant)>> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fencing token of the held lease.
    pub(crate) fn fencing_token(&self) -> Option<u64> {
        self.lock().as_ref().map(|(g, _)| g.fencing_token)
    }

    /// `Ok` while the lease is certainly held: not lost, and renewed less than four fifths
    /// of its ttl ago (so calls stop before another runner could take it).
    pub(crate) fn check(&self) -> Result<()> {
        let lost = || Error::InvalidState {
            provider: "lease".into(),
            resource: "the plan's lease".into(),
            state: "lost".into(),
            operation: "make a call (this runner makes no further calls)".into(),
        };
        if self.lost.load(Ordering::Relaxed) {
            return Err(lost());
        }
        let guard = self.lock();
        match guard.as_ref() {
            Some((g, renewed)) if renewed.elapsed() < g.ttl.mul_f64(0.8) => Ok(()),
            _ => {
                self.lost.store(true, Ordering::Relaxed);
                Err(lost())
            }
        }
    }

    /// Renews the lease every third of its ttl until the lease is lost. Never returns
    /// while the lease is held.
    pub(crate) async fn keep(&self) {
        loop {
            tokio::time::sleep(self.config.ttl / 3).await;
            let current = self.lock().as_ref().map(|(g, _)| g.clone());
            let Some(guard) = current else { return };
            let asked = tokio::time::Instant::now();
            match self.config.lease.renew(&guard).await {
                Ok(renewed) => *self.lock() = Some((renewed, asked)),
                Err(e) if e.retry() == Retry::Temporary => {
                    tracing::warn!(error = %e, "lease renewal failed: trying again");
                }
                Err(e) => {
                    tracing::error!(error = %e, "lease lost: stopping every call");
                    self.lost.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Gives the lease up.
    pub(crate) async fn release(&self) {
        let guard = self.lock().take();
        if let Some((g, _)) = guard {
            if let Err(e) = self.config.lease.release(g).await {
                tracing::warn!(error = %e, "releasing the lease failed; it expires by itself");
            }
        }
    }
}

/// The layer that refuses every provider call once the lease may have been lost.
#[derive(Debug)]
pub(crate) struct Fence(pub(crate) Arc<Leader>);

#[async_trait]
impl Layer for Fence {
    async fn before(&self, call: &CallInfo) -> Result<Guard> {
        self.0.check().inspect_err(|_| {
            tracing::error!(call = %call, "refused: the lease is not held");
        })?;
        Ok(None)
    }
}
