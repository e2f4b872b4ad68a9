//! Checks, before anything runs, that every call a step makes has a provider that supports
//! it — derived from the same [`Call`](crate::step::Call) list the dry run shows and the run
//! follows.

use crate::graph::RecoveryGraph;
use crate::provider::Capabilities;
use crate::step::Role;
use crate::{Providers, Result};

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

/// The name and capabilities of the provider serving `role`, when the role has providers.
pub(crate) fn provider_for(p: &Providers, role: &Role) -> Option<Result<(String, Capabilities)>> {
    fn of<T: ?Sized>(
        r: Result<&std::sync::Arc<T>>,
        f: impl Fn(&T) -> (String, Capabilities),
    ) -> Option<Result<(String, Capabilities)>> {
        Some(r.map(|p| f(p)))
    }
    match role {
        Role::Database { region } => {
            of(p.database(region), |d| (d.name().into(), d.capabilities()))
        }
        Role::Dns { zone } => of(p.dns(zone), |d| (d.name().into(), d.capabilities())),
        Role::Cluster { cluster } => {
            of(p.cluster(cluster), |d| (d.name().into(), d.capabilities()))
        }
        Role::Store { store } => of(p.store(store), |d| (d.name().into(), d.capabilities())),
        Role::Probe => of(p.probe(), |d| (d.name().into(), d.capabilities())),
        Role::Notifier { channel } => {
            of(p.notifier(channel), |d| (d.name().into(), d.capabilities()))
        }
        Role::Cdn { distribution } => {
            of(p.cdn(distribution), |d| (d.name().into(), d.capabilities()))
        }
        Role::LoadBalancer { group } => of(p.load_balancer(group), |d| {
            (d.name().into(), d.capabilities())
        }),
        Role::Nodes { cluster } => of(p.nodes(cluster), |d| (d.name().into(), d.capabilities())),
        Role::Volumes { region } => of(p.volumes(region), |d| (d.name().into(), d.capabilities())),
        Role::Secrets { region } => of(p.secrets(region), |d| (d.name().into(), d.capabilities())),
        Role::Caches { region } => of(p.caches(region), |d| (d.name().into(), d.capabilities())),
        Role::Approval | Role::Http | Role::Process | Role::External { .. } => None,
    }
}

/// Every missing provider and unsupported operation in `graph`, in step order.
pub(crate) fn preflight(
    graph: &RecoveryGraph,
    p: &Providers,
    has_approvals: bool,
) -> Vec<PreflightProblem> {
    let mut problems = Vec::new();
    for step in &graph.steps {
        let mut push = |message: String| {
            if !problems
                .iter()
                .any(|q: &PreflightProblem| q.step == step.id && q.message == message)
            {
                problems.push(PreflightProblem {
                    step: step.id.to_string(),
                    message,
                });
            }
        };
        for call in step.action.calls() {
            if call.role == Role::Approval && !has_approvals {
                push("no approval hook is configured: the gate would be refused".into());
                continue;
            }
            match provider_for(p, &call.role) {
                None => {}
                Some(Err(e)) => push(e.to_string()),
                Some(Ok((name, caps))) => {
                    if let Some(op) = call.provider_operation() {
                        if !caps.supports(op) {
                            push(format!("provider `{name}` does not support {op}"));
                        }
                    }
                }
            }
        }
    }
    problems
}
