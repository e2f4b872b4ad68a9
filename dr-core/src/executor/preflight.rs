//! Checks, before anything runs, that every step has a provider that supports what it does.

use crate::graph::{Action, RecoveryGraph};
use crate::provider::{Capabilities, Operation};
use crate::Providers;

/// A step that cannot run with the configured providers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreflightProblem {
    /// The step.
    pub step: String,
    /// What is missing: no provider for a role, or an operation its provider does not support.
    pub message: String,
}

impl std::fmt::Display for PreflightProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

fn need(
    problems: &mut Vec<PreflightProblem>,
    step: &str,
    found: crate::Result<(&str, Capabilities)>,
    ops: &[Operation],
) {
    match found {
        Err(e) => problems.push(PreflightProblem {
            step: step.to_string(),
            message: e.to_string(),
        }),
        Ok((name, caps)) => {
            for op in ops.iter().filter(|op| !caps.supports(**op)) {
                problems.push(PreflightProblem {
                    step: step.to_string(),
                    message: format!("provider `{name}` does not support {op}"),
                });
            }
        }
    }
}

/// Every missing provider and unsupported operation in `graph`, in step order.
pub(crate) fn preflight(
    graph: &RecoveryGraph,
    p: &Providers,
    has_approvals: bool,
) -> Vec<PreflightProblem> {
    use Operation::*;
    let mut problems = Vec::new();
    for step in &graph.steps {
        let id = step.id.as_str();
        let db = |region: &str| p.database(region).map(|d| (d.name(), d.capabilities()));
        let cluster = |c: &str| p.cluster(c).map(|d| (d.name(), d.capabilities()));
        let pr = &mut problems;
        match &step.action {
            Action::Notify { channel, .. } => need(
                pr,
                id,
                p.notifier(channel).map(|n| (n.name(), n.capabilities())),
                &[Notify],
            ),
            Action::Approval { .. } => {
                if !has_approvals {
                    pr.push(PreflightProblem {
                        step: id.to_string(),
                        message: "no approval hook is configured: the gate would be refused".into(),
                    });
                }
            }
            Action::RebootDatabase { db: d, .. } => {
                need(pr, id, db(&d.region), &[Describe, Reboot])
            }
            Action::PromoteReplica { db: d } => need(pr, id, db(&d.region), &[Describe, Promote]),
            Action::RestoreSnapshot { target, .. } => need(
                pr,
                id,
                db(&target.region),
                &[ListSnapshots, RestoreSnapshot, Describe],
            ),
            Action::RestorePointInTime { target, .. } => {
                need(pr, id, db(&target.region), &[RestorePointInTime, Describe])
            }
            Action::WaitDatabase { db: d } => need(pr, id, db(&d.region), &[Describe]),
            Action::CreateDbSnapshot { db: d, .. } => {
                need(pr, id, db(&d.region), &[CreateSnapshot, DescribeSnapshot])
            }
            Action::CreateReplica { replica, .. } => {
                need(pr, id, db(&replica.region), &[CreateReplica, Describe])
            }
            Action::SwitchDns { zone, .. } => need(
                pr,
                id,
                p.dns(zone).map(|d| (d.name(), d.capabilities())),
                &[GetRecord, SwitchRecord, WaitChange],
            ),
            Action::ApplyManifests { cluster: c, .. } => need(pr, id, cluster(c), &[Apply]),
            Action::Scale { workload, .. } => need(pr, id, cluster(&workload.cluster), &[Scale]),
            Action::RolloutRestart { workload } => need(
                pr,
                id,
                cluster(&workload.cluster),
                &[RolloutStatus, RolloutRestart],
            ),
            Action::RolloutUndo { workload, .. } => need(
                pr,
                id,
                cluster(&workload.cluster),
                &[RolloutStatus, RolloutUndo],
            ),
            Action::SetSecret {
                cluster: c, value, ..
            } => {
                need(pr, id, cluster(c), &[PatchSecret]);
                if let crate::graph::SecretSource::DatabaseEndpoint { db: d, .. } = value {
                    need(pr, id, db(&d.region), &[Describe]);
                }
            }
            Action::WaitWorkload { workload } => {
                need(pr, id, cluster(&workload.cluster), &[RolloutStatus])
            }
            Action::IsolateWorkload { workload } => {
                need(pr, id, cluster(&workload.cluster), &[IsolateWorkload])
            }
            Action::ExportResources {
                cluster: c, store, ..
            } => {
                need(pr, id, cluster(c), &[Export]);
                need(
                    pr,
                    id,
                    p.store(store).map(|s| (s.name(), s.capabilities())),
                    &[Put],
                );
            }
            Action::VerifyHealth { .. } => need(
                pr,
                id,
                p.probe().map(|h| (h.name(), h.capabilities())),
                &[Probe],
            ),
        }
    }
    problems
}
