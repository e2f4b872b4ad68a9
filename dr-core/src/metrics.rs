//! Recovery metrics in the Prometheus text exposition format, through `prometheus-client`.
//!
//! [`RecoveryMetrics`] registers its metrics in a [`Registry`] — its own, or one the
//! embedding service already serves — and is fed the executor's [`RunEvent`]s while a run
//! is under way and each [`RunReport`] at its end:
//!
//! | metric | type | labels | from |
//! |---|---|---|---|
//! | `failover_time_seconds` | gauge | plan, scenario | the last run's achieved recovery time |
//! | `recovery_test_results` | gauge | plan, scenario | 1 when the last run (a drill, a test) met every target, else 0 |
//! | `recovery_runs_total` | counter | plan, scenario, outcome | reports |
//! | `recovery_runs_in_progress` | gauge | | events |
//! | `recovery_step_duration_seconds` | histogram | kind | reports |
//! | `recovery_step_retries_total` | counter | kind | reports (attempts after the first) |
//! | `recovery_retries_total` | counter | | events, live |
//! | `recovery_rto_seconds`, `recovery_rpo_seconds` | gauge | service, value (`target`/`achieved`) | reports |
//! | `recovery_targets_met` | gauge | service | reports |
//! | `backup_success_rate` | gauge | | backups and restores verified ([`observe_backup`](RecoveryMetrics::observe_backup)) and snapshot steps |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::executor::{RunEvent, RunReport, StepStatus};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    plan: String,
    scenario: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    plan: String,
    scenario: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    service: String,
    value: String,
}

type F64Gauge = Gauge<f64, AtomicU64>;

fn step_histogram() -> Histogram {
    // 0.1 s to about 3.6 h.
    Histogram::new(exponential_buckets(0.1, 2.0, 18))
}

/// Step kinds that take or copy a backup.
const BACKUP_KINDS: [&str; 3] = ["snapshot", "copy_snapshot", "create_snapshot"];

/// The metrics of recovery runs, drills and backups. Cheap to clone (all clones update the
/// same metrics).
///
/// # Examples
///
/// ```no_run
/// # async fn demo(executor: dr_core::executor::Executor, graph: dr_core::RecoveryGraph) {
/// use dr_core::metrics::RecoveryMetrics;
///
/// let metrics = RecoveryMetrics::new();
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// tokio::spawn(metrics.clone().follow(rx));
/// let report = executor.events(tx).run(&graph).await;
/// metrics.observe_report(&report);
/// print!("{}", metrics.encode()); // serve this at /metrics
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RecoveryMetrics {
    registry: Option<Arc<Registry>>,
    failover_time: Family<RunLabels, F64Gauge>,
    test_results: Family<RunLabels, Gauge>,
    runs: Family<OutcomeLabels, Counter>,
    in_progress: Gauge,
    step_duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    step_retries: Family<KindLabels, Counter>,
    retries: Counter,
    rto: Family<TargetLabels, F64Gauge>,
    rpo: Family<TargetLabels, F64Gauge>,
    met: Family<ServiceLabels, Gauge>,
    backup_rate: F64Gauge,
    backups: Arc<(AtomicU64, AtomicU64)>,
}

impl Default for RecoveryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RecoveryMetrics {
    /// Metrics in a registry of their own, rendered by [`encode`](Self::encode).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut m = Self::unregistered();
        m.register(&mut registry);
        m.registry = Some(Arc::new(registry));
        m
    }

    /// Metrics registered in `registry` (the embedding service's), which it encodes and
    /// serves itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// use dr_core::metrics::RecoveryMetrics;
    ///
    /// let mut registry = Registry::default();
    /// let metrics = RecoveryMetrics::register_in(&mut registry);
    /// metrics.observe_backup(true);
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains("# TYPE backup_success_rate gauge"));
    /// assert!(metrics.encode().is_empty()); // the caller's registry is the one to encode
    /// ```
    pub fn register_in(registry: &mut Registry) -> Self {
        let mut m = Self::unregistered();
        m.register(registry);
        m
    }

    fn unregistered() -> Self {
        RecoveryMetrics {
            registry: None,
            failover_time: Family::default(),
            test_results: Family::default(),
            runs: Family::default(),
            in_progress: Gauge::default(),
            step_duration: Family::new_with_constructor(step_histogram as fn() -> Histogram),
            step_retries: Family::default(),
            retries: Counter::default(),
            rto: Family::default(),
            rpo: Family::default(),
            met: Family::default(),
            backup_rate: F64Gauge::default(),
            backups: Arc::default(),
        }
    }

    fn register(&mut self, r: &mut Registry) {
        r.register(
            "failover_time_seconds",
            "Achieved recovery time of the last run, from its start to its last critical step",
            self.failover_time.clone(),
        );
        r.register(
            "recovery_test_results",
            "1 when the last run (drill or test) met every RTO and RPO target, else 0",
            self.test_results.clone(),
        );
        r.register(
            "recovery_runs",
            "Recovery runs finished, by outcome",
            self.runs.clone(),
        );
        r.register(
            "recovery_runs_in_progress",
            "Recovery runs under way",
            self.in_progress.clone(),
        );
        r.register(
            "recovery_step_duration_seconds",
            "Duration of recovery steps, by step kind",
            self.step_duration.clone(),
        );
        r.register(
            "recovery_step_retries",
            "Step attempts after the first, by step kind",
            self.step_retries.clone(),
        );
        r.register(
            "recovery_retries",
            "Step retries, counted live as they happen",
            self.retries.clone(),
        );
        r.register(
            "recovery_rto_seconds",
            "Recovery time objective per service: the target and the last achieved value",
            self.rto.clone(),
        );
        r.register(
            "recovery_rpo_seconds",
            "Recovery point objective per service: the target and the last achieved data-loss window",
            self.rpo.clone(),
        );
        r.register(
            "recovery_targets_met",
            "1 when the service met its RTO and RPO in the last run, else 0",
            self.met.clone(),
        );
        r.register(
            "backup_success_rate",
            "Share of backups (snapshots taken, backups verified by a restore) that succeeded",
            self.backup_rate.clone(),
        );
    }

    /// The metrics in the Prometheus text exposition format (empty when they were
    /// registered in a registry of the caller's: encode that one).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(r) = &self.registry {
            if prometheus_client::encoding::text::encode(&mut out, r).is_err() {
                out.clear();
            }
        }
        out
    }

    /// Updates the live metrics from one event.
    pub fn observe_event(&self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { .. } => {
                self.in_progress.inc();
            }
            RunEvent::RunFinished { .. } => {
                self.in_progress.dec();
            }
            RunEvent::StepRetrying { .. } => {
                self.retries.inc();
            }
            _ => {}
        }
    }

    /// Follows an event stream until it closes.
    pub async fn follow(self, mut rx: UnboundedReceiver<RunEvent>) {
        while let Some(event) = rx.recv().await {
            self.observe_event(&event);
        }
    }

    /// Records a finished run: its recovery time, whether it met its targets, step
    /// durations and retries by kind, RTO and RPO per service, snapshots taken.
    pub fn observe_report(&self, report: &RunReport) {
        let run = RunLabels {
            plan: report.plan.clone(),
            scenario: report.scenario.clone(),
        };
        self.failover_time
            .get_or_create(&run)
            .set(report.achieved_rto.as_secs_f64());
        self.test_results
            .get_or_create(&run)
            .set(i64::from(report.targets_met()));
        self.runs
            .get_or_create(&OutcomeLabels {
                plan: report.plan.clone(),
                scenario: report.scenario.clone(),
                outcome: report.outcome.to_string(),
            })
            .inc();
        for s in &report.steps {
            let kind = KindLabels {
                kind: s.action.clone(),
            };
            if let (Some(a), Some(b)) = (s.started_at, s.finished_at) {
                let took = (b - a).to_std().unwrap_or_default();
                self.step_duration
                    .get_or_create(&kind)
                    .observe(took.as_secs_f64());
            }
            if s.attempts > 1 {
                self.step_retries
                    .get_or_create(&kind)
                    .inc_by(u64::from(s.attempts - 1));
            }
            if BACKUP_KINDS.contains(&s.action.as_str())
                && matches!(s.status, StepStatus::Succeeded | StepStatus::Failed)
            {
                self.observe_backup(s.status == StepStatus::Succeeded);
            }
        }
        for svc in &report.services {
            let label = |value: &str| TargetLabels {
                service: svc.name.clone(),
                value: value.into(),
            };
            self.rto
                .get_or_create(&label("target"))
                .set(svc.rto_target.as_secs_f64());
            self.rpo
                .get_or_create(&label("target"))
                .set(svc.rpo_target.as_secs_f64());
            // Not recovered, or a data-loss window that is unknown: +Inf, never met.
            self.rto
                .get_or_create(&label("achieved"))
                .set(svc.achieved_rto.map_or(f64::INFINITY, |d| d.as_secs_f64()));
            self.rpo
                .get_or_create(&label("achieved"))
                .set(svc.achieved_rpo.map_or(f64::INFINITY, |d| d.as_secs_f64()));
            self.met
                .get_or_create(&ServiceLabels {
                    service: svc.name.clone(),
                })
                .set(i64::from(svc.met));
        }
    }

    /// Records one backup (taken, or verified by a restore): `backup_success_rate` is the
    /// share of them that succeeded.
    pub fn observe_backup(&self, ok: bool) {
        let (all, good) = &*self.backups;
        let n = all.fetch_add(1, Ordering::Relaxed) + 1;
        let g = if ok {
            good.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            good.load(Ordering::Relaxed)
        };
        self.backup_rate.set(g as f64 / n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_rate_is_a_share() {
        let m = RecoveryMetrics::new();
        m.observe_backup(true);
        m.observe_backup(true);
        m.observe_backup(false);
        m.observe_backup(true);
        let text = m.encode();
        assert!(text.contains("backup_success_rate 0.75"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
