//! Simulated load balancer: target groups whose targets pass health checks only while
//! the region and the workloads behind them serve, and drain when deregistered.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SimInstant as Instant;
use super::{cluster, Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, LbTarget, LoadBalancer, Operation, TargetHealth, TargetState, WorkloadRef,
};
use crate::{Error, Result};

const ROLE: &str = "load_balancer";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Registration {
    /// Health checks count from then on (`Initial` before).
    checked_from: Instant,
    /// Set once deregistered: draining until then, gone after.
    draining_until: Option<Instant>,
}

/// What answers a target's health checks.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Backend {
    region: String,
    workloads: Vec<WorkloadRef>,
}

/// The target groups of the simulated cloud.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Balancers {
    groups: BTreeMap<String, BTreeMap<LbTarget, Registration>>,
    /// By target group, then target id (an instance id or an address): each group checks
    /// its targets' health its own way.
    backends: BTreeMap<String, BTreeMap<String, Backend>>,
}

impl State {
    /// Whether what stands behind target `id` answers health checks now: its region is up
    /// and, when workloads are bound, one of them has an available pod and is not isolated.
    fn target_serves(&self, group: &str, id: &str, env: &Env<'_>) -> bool {
        let Some(b) = self.lb.backends.get(group).and_then(|g| g.get(id)) else {
            return false;
        };
        if self.down.contains(&b.region) {
            return false;
        }
        b.workloads.is_empty()
            || b.workloads.iter().any(|w| {
                cluster::rollout_status(self, w, env)
                    .is_ok_and(|s| s.available_replicas >= 1 && !s.isolated)
            })
    }

    fn target_health(&self, group: &str, env: &Env<'_>) -> Result<Vec<TargetHealth>> {
        let targets = self.lb.groups.get(group).ok_or_else(|| not_found(group))?;
        Ok(targets
            .iter()
            .filter_map(|(t, r)| {
                let state = match r.draining_until {
                    Some(until) if env.now >= until => return None,
                    Some(_) => TargetState::Draining,
                    None if env.now < r.checked_from => TargetState::Initial,
                    None if self.target_serves(group, &t.id, env) => TargetState::Healthy,
                    None => TargetState::Unhealthy,
                };
                Some(TargetHealth {
                    target: t.clone(),
                    state,
                })
            })
            .collect())
    }
}

fn not_found(group: &str) -> Error {
    Error::not_found(PROVIDER, format!("target group {group}"))
}

impl SimCloud {
    /// Adds an empty target group `group` (a name or an ARN), emptying it if it exists.
    pub fn add_target_group(&self, group: &str) {
        self.with_state(|st, _| {
            st.lb.groups.insert(group.to_string(), BTreeMap::new());
        });
    }

    /// Says what stands behind target `id` (an instance id or an address) of `group`: it
    /// answers the group's health checks while `region` is up and, when `workloads` is not
    /// empty, one of them has an available pod and is not isolated. A target with nothing
    /// bound fails its checks.
    pub fn bind_target(&self, group: &str, id: &str, region: &str, workloads: Vec<WorkloadRef>) {
        self.with_state(|st, _| {
            st.lb.backends.entry(group.to_string()).or_default().insert(
                id.to_string(),
                Backend {
                    region: region.to_string(),
                    workloads,
                },
            );
        });
    }

    /// Removes target group `group` and what its targets were bound to; `true` if it
    /// existed.
    pub fn remove_target_group(&self, group: &str) -> bool {
        self.with_state(|st, _| {
            st.lb.backends.remove(group);
            st.lb.groups.remove(group).is_some()
        })
    }

    /// Registers `targets` in `group` (created if needed) as if long ago: their health is
    /// judged at once, with no initial checks (seeding).
    pub fn add_registered_targets(&self, group: &str, targets: &[LbTarget]) {
        self.with_state(|st, env| {
            let g = st.lb.groups.entry(group.to_string()).or_default();
            for t in targets {
                g.insert(
                    t.clone(),
                    Registration {
                        checked_from: env.now,
                        draining_until: None,
                    },
                );
            }
        });
    }

    /// The targets of `group` and their health now, without a call (for tests and
    /// inspection); `None` for an unknown group.
    pub fn targets(&self, group: &str) -> Option<Vec<TargetHealth>> {
        self.with_state(|st, env| st.target_health(group, env).ok())
    }
}

/// The simulated cloud's [`LoadBalancer`] service ([`SimCloud::load_balancer`]).
#[derive(Debug, Clone)]
pub struct SimLoadBalancer {
    cloud: SimCloud,
}

impl SimLoadBalancer {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimLoadBalancer { cloud }
    }

    async fn call<T>(
        &self,
        op: Operation,
        target: &str,
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        self.cloud.call(ROLE, op, target, &[], f).await
    }
}

fn listed(group: &str, targets: &[LbTarget]) -> String {
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    format!("{group} [{}]", names.join(","))
}

#[async_trait]
impl LoadBalancer for SimLoadBalancer {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([TargetHealth, RegisterTargets, DeregisterTargets])
    }

    async fn target_health(&self, group: &str) -> Result<Vec<TargetHealth>> {
        self.call(Operation::TargetHealth, group, |st, env| {
            st.target_health(group, env)
        })
        .await
    }

    async fn register_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        if let Some(t) = targets.iter().find(|t| t.id.trim().is_empty()) {
            return Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: Operation::RegisterTargets.name().into(),
                message: format!("target group {group}: target `{t}` has no id"),
            });
        }
        let target = listed(group, targets);
        self.call(Operation::RegisterTargets, &target, |st, env| {
            let checks = env.cfg.lb_health_check.get();
            let g = st
                .lb
                .groups
                .get_mut(group)
                .ok_or_else(|| not_found(group))?;
            for t in targets {
                let fresh = Registration {
                    checked_from: env.now + checks,
                    draining_until: None,
                };
                match g.get_mut(t) {
                    // Registered and not leaving: nothing to do.
                    Some(r) if r.draining_until.is_none() => {}
                    Some(r) => *r = fresh,
                    None => {
                        g.insert(t.clone(), fresh);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn deregister_targets(&self, group: &str, targets: &[LbTarget]) -> Result<()> {
        let target = listed(group, targets);
        self.call(Operation::DeregisterTargets, &target, |st, env| {
            let drain = env.now + env.cfg.lb_drain.get();
            let g = st
                .lb
                .groups
                .get_mut(group)
                .ok_or_else(|| not_found(group))?;
            for t in targets {
                if let Some(r) = g.get_mut(t) {
                    match r.draining_until {
                        Some(until) if env.now >= until => {
                            g.remove(t);
                        }
                        Some(_) => {}
                        None => r.draining_until = Some(drain),
                    }
                }
            }
            Ok(())
        })
        .await
    }
}
