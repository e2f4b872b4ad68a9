//! What a run would do, listed without touching anything.

use std::fmt;
use std::time::Duration;

use crate::graph::{Action, ActionKind, RecoveryGraph, SecretSource, Step};
use crate::provider::Operation;

/// One provider call a run would make.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedCall {
    /// The step making it.
    pub step: String,
    /// The provider role: `database`, `dns`, `cluster`, `store`, `probe`, `notifier` or
    /// `approval`.
    pub provider_role: String,
    /// The operation ([`Operation`] names; `decide` for the approval hook).
    pub operation: String,
    /// What it acts on.
    pub target: String,
}

/// One step in a [`DryRun`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DryRunStep {
    /// Step id.
    pub id: String,
    /// Its action kind.
    pub action: ActionKind,
    /// The service it recovers, if any.
    pub service: Option<String>,
    /// Steps it waits for.
    pub depends_on: Vec<String>,
    /// Forecast duration.
    #[serde(rename = "estimate_seconds", with = "crate::duration::seconds")]
    pub estimate: Duration,
    /// Whether its failure fails the run.
    pub critical: bool,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// The calls it would make, in order (read-backs included), on the path where every call
    /// succeeds the first time.
    pub calls: Vec<PlannedCall>,
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
        }
        Ok(())
    }
}

pub(crate) fn dry_run(graph: &RecoveryGraph) -> DryRun {
    DryRun {
        outcome: "planned",
        plan: graph.plan.clone(),
        scenario: graph.scenario.clone(),
        forecast_rto: graph.forecast,
        critical_path: graph.critical_path.clone(),
        steps: graph
            .steps
            .iter()
            .map(|s| DryRunStep {
                id: s.id.clone(),
                action: s.action.kind(),
                service: s.service.clone(),
                depends_on: s.depends_on.clone(),
                estimate: s.estimate,
                critical: s.critical,
                idempotency_key: s.idempotency_key.clone(),
                calls: planned_calls(s),
            })
            .collect(),
    }
}

/// The calls `step` makes when every call succeeds first time, in order. Kept next to
/// `actions.rs`, which makes them: a test checks both agree on a fake cloud.
pub(crate) fn planned_calls(step: &Step) -> Vec<PlannedCall> {
    let mut calls = Vec::new();
    let mut call = |role: &str, op: &str, target: String| {
        calls.push(PlannedCall {
            step: step.id.clone(),
            provider_role: role.to_string(),
            operation: op.to_string(),
            target,
        });
    };
    use Operation as O;
    let db = "database";
    let cl = "cluster";
    match &step.action {
        Action::Notify { channel, .. } => call("notifier", O::Notify.name(), channel.clone()),
        Action::Approval { prompt } => call("approval", "decide", prompt.clone()),
        Action::RebootDatabase { db: d, .. } => {
            call(db, O::Describe.name(), d.to_string());
            call(db, O::Reboot.name(), d.to_string());
        }
        Action::PromoteReplica { db: d } => {
            call(db, O::Describe.name(), d.to_string());
            call(db, O::Promote.name(), d.to_string());
        }
        Action::RestoreSnapshot {
            source,
            snapshot_region,
            target,
        } => {
            call(db, O::Describe.name(), target.to_string());
            call(
                db,
                O::ListSnapshots.name(),
                format!("{source} (snapshots in {snapshot_region})"),
            );
            call(db, O::RestoreSnapshot.name(), target.to_string());
        }
        Action::RestorePointInTime { source, target, at } => {
            call(db, O::Describe.name(), target.to_string());
            if matches!(at, crate::provider::RestorePoint::Latest) {
                call(db, O::Describe.name(), source.to_string());
            }
            call(
                db,
                O::RestorePointInTime.name(),
                format!("{target} from {source}"),
            );
        }
        Action::WaitDatabase { db: d } => {
            call(db, O::Describe.name(), format!("{d} (until available)"))
        }
        Action::CreateDbSnapshot { db: d, snapshot_id } => {
            call(
                db,
                O::DescribeSnapshot.name(),
                format!("{}/{snapshot_id}", d.region),
            );
            call(
                db,
                O::CreateSnapshot.name(),
                format!("{d} as {snapshot_id}"),
            );
        }
        Action::CreateReplica { source, replica } => {
            call(db, O::Describe.name(), replica.to_string());
            call(
                db,
                O::CreateReplica.name(),
                format!("{replica} from {source}"),
            );
        }
        Action::SwitchDns {
            zone,
            name,
            set_id,
            values,
        } => {
            let rec = match set_id {
                Some(id) => format!("{zone}/{name} ({id})"),
                None => format!("{zone}/{name}"),
            };
            call("dns", O::GetRecord.name(), rec.clone());
            call(
                "dns",
                O::SwitchRecord.name(),
                format!("{rec} -> {}", values.join(",")),
            );
            call("dns", O::WaitChange.name(), rec);
        }
        Action::ApplyManifests {
            cluster,
            namespace,
            manifests,
        } => call(
            cl,
            O::Apply.name(),
            format!("{cluster}/{namespace} ({} manifests)", manifests.len()),
        ),
        Action::Scale { workload, replicas } => {
            call(cl, O::Scale.name(), format!("{workload} to {replicas}"));
        }
        Action::RolloutRestart { workload } => {
            call(cl, O::RolloutStatus.name(), workload.to_string());
            call(cl, O::RolloutRestart.name(), workload.to_string());
        }
        Action::RolloutUndo { workload, revision } => {
            call(cl, O::RolloutStatus.name(), workload.to_string());
            let to = revision.map_or_else(
                || "previous revision".to_string(),
                |r| format!("revision {r}"),
            );
            call(cl, O::RolloutUndo.name(), format!("{workload} to {to}"));
        }
        Action::SetSecret {
            cluster,
            namespace,
            secret,
            key,
            value,
        } => {
            if let SecretSource::DatabaseEndpoint { db: d, .. } = value {
                call(db, O::Describe.name(), d.to_string());
            }
            call(
                cl,
                O::PatchSecret.name(),
                format!("{cluster}/{namespace}/{secret} key {key}"),
            );
        }
        Action::WaitWorkload { workload } => {
            call(
                cl,
                O::RolloutStatus.name(),
                format!("{workload} (until ready)"),
            );
        }
        Action::IsolateWorkload { workload } => {
            call(cl, O::IsolateWorkload.name(), workload.to_string());
        }
        Action::ExportResources {
            cluster,
            namespace,
            kinds,
            store,
            key,
        } => {
            let kinds = if kinds.is_empty() {
                "all kinds".to_string()
            } else {
                kinds.join(",")
            };
            call(
                cl,
                O::Export.name(),
                format!("{cluster}/{namespace} ({kinds})"),
            );
            call("store", O::Put.name(), format!("{store}/{key}"));
        }
        Action::VerifyHealth { check, target } => {
            call("probe", O::Probe.name(), format!("{check} ({target})"));
        }
    }
    calls
}
