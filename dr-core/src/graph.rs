//! The recovery graph: typed steps with dependencies, idempotency keys and estimates, as the
//! planner produces them and the executor runs them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use crate::provider::{DbRef, Manifest, Notification, RestorePoint, WorkloadRef};
use crate::Secret;

/// Where the value written into a secret comes from, resolved when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum SecretSource {
    /// The connection endpoint of a database, read (`describe`) when the step runs, so it is
    /// the endpoint of the instance that was just promoted or restored.
    DatabaseEndpoint {
        /// The database whose endpoint is written.
        db: DbRef,
        /// Template around the endpoint; `{endpoint}` is replaced
        /// (`postgres://app@{endpoint}/orders`). `None` writes the bare endpoint.
        template: Option<String>,
    },
    /// A literal value from the plan or the embedding service.
    Literal {
        /// The value (never printed).
        value: Secret,
    },
}

/// What a step does. Every variant carries everything needed to run it: the executor looks
/// nothing up in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Action {
    /// Send a notification.
    Notify {
        /// Channel name.
        channel: String,
        /// The message.
        notification: Notification,
    },
    /// Wait for a person (through the embedding service's approval hook) to approve.
    Approval {
        /// What is being approved.
        prompt: String,
    },
    /// Reboot a database, failing over to its standby when `force_failover`.
    RebootDatabase {
        /// The database.
        db: DbRef,
        /// Multi-AZ forced failover.
        force_failover: bool,
    },
    /// Promote a read replica to primary.
    PromoteReplica {
        /// The replica.
        db: DbRef,
    },
    /// Restore a new instance from the latest available snapshot of `source` held in
    /// `snapshot_region`.
    RestoreSnapshot {
        /// The database whose snapshots are used.
        source: DbRef,
        /// Region holding the snapshot (a cross-region copy in a region failover).
        snapshot_region: String,
        /// The instance to create.
        target: DbRef,
    },
    /// Restore a new instance from `source` at a point in time.
    RestorePointInTime {
        /// Source database.
        source: DbRef,
        /// The instance to create.
        target: DbRef,
        /// The point in time.
        at: RestorePoint,
    },
    /// Wait until a database is available.
    WaitDatabase {
        /// The database.
        db: DbRef,
    },
    /// Take a snapshot (evidence, or before a risky change).
    CreateDbSnapshot {
        /// The database.
        db: DbRef,
        /// Snapshot identifier.
        snapshot_id: String,
    },
    /// Create a new read replica (to restore redundancy after a promotion).
    CreateReplica {
        /// Source (the new primary).
        source: DbRef,
        /// Replica to create.
        replica: DbRef,
    },
    /// Point a DNS record set at new values and wait until the change is in sync.
    SwitchDns {
        /// Hosted zone.
        zone: String,
        /// Record name.
        name: String,
        /// Set identifier for failover/weighted sets.
        set_id: Option<String>,
        /// New values.
        values: Vec<String>,
    },
    /// Apply manifests to a cluster.
    ApplyManifests {
        /// Cluster name.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// The manifests.
        manifests: Vec<Manifest>,
    },
    /// Scale a workload.
    Scale {
        /// The workload.
        workload: WorkloadRef,
        /// Replica count.
        replicas: u32,
    },
    /// Restart a workload's pods through a rollout.
    RolloutRestart {
        /// The workload.
        workload: WorkloadRef,
    },
    /// Roll a workload back.
    RolloutUndo {
        /// The workload.
        workload: WorkloadRef,
        /// Target revision, or the previous one.
        revision: Option<u64>,
    },
    /// Write one key of a Secret.
    SetSecret {
        /// Cluster name.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
        /// Key within the secret.
        key: String,
        /// Where the value comes from.
        value: SecretSource,
    },
    /// Wait until a workload's rollout is complete.
    WaitWorkload {
        /// The workload.
        workload: WorkloadRef,
    },
    /// Cut a workload off from traffic.
    IsolateWorkload {
        /// The workload.
        workload: WorkloadRef,
    },
    /// Export a namespace's objects into a snapshot store (evidence, or a backup).
    ExportResources {
        /// Cluster name.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// Kinds to export (all when empty).
        kinds: Vec<String>,
        /// Snapshot store name.
        store: String,
        /// Object key to write.
        key: String,
    },
    /// Probe a health endpoint until it reports healthy (within the step timeout).
    VerifyHealth {
        /// Health check name, as in the plan.
        check: String,
        /// The probe target (URL).
        target: String,
    },
}

/// The kind of an [`Action`], without its parameters: the key of per-kind estimates and
/// defaults.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ActionKind {
    Notify,
    Approval,
    RebootDatabase,
    PromoteReplica,
    RestoreSnapshot,
    RestorePointInTime,
    WaitDatabase,
    CreateDbSnapshot,
    CreateReplica,
    SwitchDns,
    ApplyManifests,
    Scale,
    RolloutRestart,
    RolloutUndo,
    SetSecret,
    WaitWorkload,
    IsolateWorkload,
    ExportResources,
    VerifyHealth,
}

impl ActionKind {
    /// Every kind, in declaration order.
    pub const ALL: [ActionKind; 19] = [
        ActionKind::Notify,
        ActionKind::Approval,
        ActionKind::RebootDatabase,
        ActionKind::PromoteReplica,
        ActionKind::RestoreSnapshot,
        ActionKind::RestorePointInTime,
        ActionKind::WaitDatabase,
        ActionKind::CreateDbSnapshot,
        ActionKind::CreateReplica,
        ActionKind::SwitchDns,
        ActionKind::ApplyManifests,
        ActionKind::Scale,
        ActionKind::RolloutRestart,
        ActionKind::RolloutUndo,
        ActionKind::SetSecret,
        ActionKind::WaitWorkload,
        ActionKind::IsolateWorkload,
        ActionKind::ExportResources,
        ActionKind::VerifyHealth,
    ];

    /// The kind's name in plans and reports (`promote_replica`).
    pub fn name(self) -> &'static str {
        use ActionKind::*;
        match self {
            Notify => "notify",
            Approval => "approval",
            RebootDatabase => "reboot_database",
            PromoteReplica => "promote_replica",
            RestoreSnapshot => "restore_snapshot",
            RestorePointInTime => "restore_point_in_time",
            WaitDatabase => "wait_database",
            CreateDbSnapshot => "create_db_snapshot",
            CreateReplica => "create_replica",
            SwitchDns => "switch_dns",
            ApplyManifests => "apply_manifests",
            Scale => "scale",
            RolloutRestart => "rollout_restart",
            RolloutUndo => "rollout_undo",
            SetSecret => "set_secret",
            WaitWorkload => "wait_workload",
            IsolateWorkload => "isolate_workload",
            ExportResources => "export_resources",
            VerifyHealth => "verify_health",
        }
    }

    /// Whether repeating the action after an unknown outcome is safe without reading back
    /// its effect first. Creates, promotions, reboots, restarts, rollbacks and approvals are
    /// not: the executor retries them only after a read-back shows the effect did not happen.
    pub fn is_idempotent(self) -> bool {
        use ActionKind::*;
        match self {
            Notify | WaitDatabase | SwitchDns | ApplyManifests | Scale | SetSecret
            | WaitWorkload | IsolateWorkload | ExportResources | VerifyHealth => true,
            Approval | RebootDatabase | PromoteReplica | RestoreSnapshot | RestorePointInTime
            | CreateDbSnapshot | CreateReplica | RolloutRestart | RolloutUndo => false,
        }
    }

    /// A conservative default estimate, used when the plan gives none. Based on what the
    /// runbooks record (an RDS promotion takes minutes, a DNS change a minute to propagate).
    pub fn default_estimate(self) -> Duration {
        use ActionKind::*;
        let secs = match self {
            Notify => 5,
            Approval => 120,
            RebootDatabase => 300,
            PromoteReplica => 300,
            RestoreSnapshot => 1200,
            RestorePointInTime => 1500,
            WaitDatabase => 60,
            CreateDbSnapshot => 300,
            CreateReplica => 900,
            SwitchDns => 90,
            ApplyManifests => 60,
            Scale => 10,
            RolloutRestart => 60,
            RolloutUndo => 60,
            SetSecret => 5,
            WaitWorkload => 120,
            IsolateWorkload => 10,
            ExportResources => 30,
            VerifyHealth => 30,
        };
        Duration::from_secs(secs)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Action {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Notify { .. } => ActionKind::Notify,
            Action::Approval { .. } => ActionKind::Approval,
            Action::RebootDatabase { .. } => ActionKind::RebootDatabase,
            Action::PromoteReplica { .. } => ActionKind::PromoteReplica,
            Action::RestoreSnapshot { .. } => ActionKind::RestoreSnapshot,
            Action::RestorePointInTime { .. } => ActionKind::RestorePointInTime,
            Action::WaitDatabase { .. } => ActionKind::WaitDatabase,
            Action::CreateDbSnapshot { .. } => ActionKind::CreateDbSnapshot,
            Action::CreateReplica { .. } => ActionKind::CreateReplica,
            Action::SwitchDns { .. } => ActionKind::SwitchDns,
            Action::ApplyManifests { .. } => ActionKind::ApplyManifests,
            Action::Scale { .. } => ActionKind::Scale,
            Action::RolloutRestart { .. } => ActionKind::RolloutRestart,
            Action::RolloutUndo { .. } => ActionKind::RolloutUndo,
            Action::SetSecret { .. } => ActionKind::SetSecret,
            Action::WaitWorkload { .. } => ActionKind::WaitWorkload,
            Action::IsolateWorkload { .. } => ActionKind::IsolateWorkload,
            Action::ExportResources { .. } => ActionKind::ExportResources,
            Action::VerifyHealth { .. } => ActionKind::VerifyHealth,
        }
    }

    /// Whether the action is idempotent (see [`ActionKind::is_idempotent`]).
    pub fn is_idempotent(&self) -> bool {
        self.kind().is_idempotent()
    }
}

/// One step of a recovery graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Unique id within the graph (`api/switch-dns`).
    pub id: String,
    /// What it does.
    pub action: Action,
    /// The service it recovers, if any.
    pub service: Option<String>,
    /// Steps that must succeed first.
    pub depends_on: Vec<String>,
    /// Stable key identifying the step's effect across runs and resumes
    /// (plan, scenario, step and target), for the journal and for read-backs.
    pub idempotency_key: String,
    /// Forecast duration.
    #[serde(with = "crate::duration::seconds")]
    pub estimate: Duration,
    /// Deadline for one attempt.
    #[serde(with = "crate::duration::seconds")]
    pub timeout: Duration,
    /// A critical failure stops its dependants and fails the run; an optional one degrades.
    pub critical: bool,
}

/// Something that puts a target at risk, found before execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// The service concerned, if any.
    pub service: Option<String>,
    /// What is at risk and why.
    pub message: String,
}

/// The forecast for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceForecast {
    /// Service name.
    pub name: String,
    /// RTO target.
    #[serde(rename = "rto_target_seconds", with = "crate::duration::seconds")]
    pub rto_target: Duration,
    /// Forecast time until the service is recovered (longest estimated path to its last step).
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast_rto: Duration,
    /// RPO target.
    #[serde(rename = "rpo_target_seconds", with = "crate::duration::seconds")]
    pub rpo_target: Duration,
    /// Forecast data-loss window from the observed replication lag or snapshot age, when the
    /// service holds data.
    #[serde(rename = "forecast_rpo_seconds", with = "crate::duration::seconds_opt")]
    pub forecast_rpo: Option<Duration>,
    /// Whether the forecasts are within the targets.
    pub within_targets: bool,
}

/// The executable plan for one scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveryGraph {
    /// Plan name.
    pub plan: String,
    /// Scenario name.
    pub scenario: String,
    /// Steps in a topological order: every step after its dependencies.
    pub steps: Vec<Step>,
    /// Step ids of the longest estimated chain.
    pub critical_path: Vec<String>,
    /// Length of the critical path: the forecast recovery time of the whole scenario.
    #[serde(rename = "forecast_rto_seconds", with = "crate::duration::seconds")]
    pub forecast: Duration,
    /// Per-service forecasts.
    pub services: Vec<ServiceForecast>,
    /// What is at risk before anything runs.
    pub risks: Vec<Risk>,
}

impl RecoveryGraph {
    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps that recover `service`.
    pub fn service_steps<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps
            .iter()
            .filter(move |s| s.service.as_deref() == Some(service))
    }

    /// Earliest finish time of every step when each starts as soon as its dependencies
    /// finished and takes its estimate (unbounded concurrency). Steps must be in topological
    /// order.
    pub fn earliest_finish(&self) -> HashMap<&str, Duration> {
        let mut finish: HashMap<&str, Duration> = HashMap::with_capacity(self.steps.len());
        for step in &self.steps {
            let start = step
                .depends_on
                .iter()
                .filter_map(|d| finish.get(d.as_str()).copied())
                .max()
                .unwrap_or_default();
            finish.insert(step.id.as_str(), start + step.estimate);
        }
        finish
    }

    /// Sum of every step's estimate: the time a strictly sequential runbook would take.
    pub fn sequential_estimate(&self) -> Duration {
        self.steps.iter().map(|s| s.estimate).sum()
    }

    /// Number of steps per action kind.
    pub fn kind_counts(&self) -> BTreeMap<ActionKind, usize> {
        let mut counts = BTreeMap::new();
        for s in &self.steps {
            *counts.entry(s.action.kind()).or_insert(0) += 1;
        }
        counts
    }
}

/// The forecast, as a person reads it before anything runs: per-service targets against
/// forecasts, the critical path and the risks.
impl std::fmt::Display for RecoveryGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::duration::human;
        writeln!(
            f,
            "Forecast: plan {} / scenario {}: {} steps, recovery in {} (a sequential runbook: {})",
            self.plan,
            self.scenario,
            self.steps.len(),
            human(self.forecast),
            human(self.sequential_estimate())
        )?;
        if !self.services.is_empty() {
            writeln!(
                f,
                "{:<20} {:>10} {:>10} {:>10} {:>10}  ok",
                "service", "RTO target", "forecast", "RPO target", "forecast"
            )?;
            for s in &self.services {
                writeln!(
                    f,
                    "{:<20} {:>10} {:>10} {:>10} {:>10}  {}",
                    s.name,
                    human(s.rto_target),
                    human(s.forecast_rto),
                    human(s.rpo_target),
                    s.forecast_rpo.map_or_else(|| "-".to_string(), human),
                    if s.within_targets { "✓" } else { "at risk" }
                )?;
            }
        }
        writeln!(f, "Critical path: {}", self.critical_path.join(" → "))?;
        for r in &self.risks {
            match &r.service {
                Some(s) => writeln!(f, "Risk ({s}): {}", r.message)?,
                None => writeln!(f, "Risk: {}", r.message)?,
            }
        }
        Ok(())
    }
}
