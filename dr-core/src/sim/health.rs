//! Simulated health probes (explicit or derived from DNS and cluster state) and notifier.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{cluster, Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, HealthProbe, HealthStatus, Notification, Notifier, Operation, WorkloadRef,
};
use crate::Result;

/// What an endpoint's health is derived from, for [`SimCloud::bind_endpoint`].
///
/// The endpoint is healthy iff the record's propagated answer is non-empty and every value
/// in it is the ingress host of a cluster (see [`SimCloud::add_cluster`]) whose region is
/// up, and on that cluster every listed workload has a complete rollout with at least one
/// available replica and is not isolated. A cluster with none of the listed workloads
/// serves nothing, so it is unhealthy too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointBinding {
    /// DNS zone of the record clients resolve.
    pub zone: String,
    /// The record clients resolve.
    pub record: String,
    /// The workloads that serve the endpoint, on every cluster that may serve it.
    pub workloads: Vec<WorkloadRef>,
    /// The endpoint is one target of the record, reached at this host directly (a health
    /// check of one value of a record set) instead of through the record's answer. Such an
    /// endpoint may front several services (one load balancer): it is healthy while the
    /// cluster at the host is up and any one of the listed workloads there serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Probe and notifier state.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Health {
    explicit: BTreeMap<String, HealthStatus>,
    bindings: BTreeMap<String, EndpointBinding>,
    pub(super) notifications: Vec<(String, crate::provider::Notification)>,
}

impl State {
    /// Whether the clusters behind `values` serve `workloads`.
    fn serves(&self, values: &[String], workloads: &[WorkloadRef], env: &Env<'_>) -> bool {
        !values.is_empty()
            && values.iter().all(|host| {
                let Some(cluster) = self.clusters.by_ingress(host) else {
                    return false;
                };
                if self
                    .clusters
                    .region(cluster)
                    .is_some_and(|r| self.down.contains(r))
                {
                    return false;
                }
                let mut listed = workloads.iter().filter(|w| w.cluster == cluster).peekable();
                listed.peek().is_some()
                    && listed.all(|w| {
                        cluster::rollout_status(self, w, env).is_ok_and(|s| {
                            s.is_complete() && s.available_replicas >= 1 && !s.isolated
                        })
                    })
            })
    }

    /// The health of `target` now: from its binding, else as set, else unknown.
    pub(super) fn endpoint_health(&self, target: &str, env: &Env<'_>) -> HealthStatus {
        if let Some(b) = self.health.bindings.get(target) {
            if let Some(host) = &b.via {
                let any = b
                    .workloads
                    .iter()
                    .any(|w| self.serves(std::slice::from_ref(host), std::slice::from_ref(w), env));
                return if any {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unhealthy
                };
            }
            let answer = self.dns.answer(&b.zone, &b.record, env.now, |values| {
                self.serves(values, &b.workloads, env)
            });
            return if self.serves(&answer, &b.workloads, env) {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy
            };
        }
        self.health
            .explicit
            .get(target)
            .copied()
            .unwrap_or(HealthStatus::Unknown)
    }
}

impl SimCloud {
    /// Sets the health the probe reports for `target` (replacing a binding).
    pub fn set_endpoint_health(&self, target: &str, status: HealthStatus) {
        self.with_state(|st, _| {
            st.health.bindings.remove(target);
            st.health.explicit.insert(target.to_string(), status);
        });
    }

    /// Derives the health of `target` from DNS and cluster state (see [`EndpointBinding`]),
    /// so that a failover that forgets a step probes unhealthy.
    pub fn bind_endpoint(&self, target: &str, binding: EndpointBinding) {
        self.with_state(|st, _| {
            st.health.explicit.remove(target);
            st.health.bindings.insert(target.to_string(), binding);
        });
    }
}

/// The simulated cloud's [`HealthProbe`] ([`SimCloud::probe`]). Unknown targets are
/// reported as [`HealthStatus::Unknown`].
#[derive(Debug, Clone)]
pub struct SimProbe {
    cloud: SimCloud,
}

impl SimProbe {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimProbe { cloud }
    }
}

#[async_trait]
impl HealthProbe for SimProbe {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Probe])
    }

    async fn check(&self, target: &str) -> Result<HealthStatus> {
        self.cloud
            .call("probe", Operation::Probe, target, &[], |st, env| {
                Ok(st.endpoint_health(target, env))
            })
            .await
    }
}

/// The simulated cloud's [`Notifier`] ([`SimCloud::notifier`]): records every notification,
/// on any channel ([`SimCloud::notifications`]).
#[derive(Debug, Clone)]
pub struct SimNotifier {
    cloud: SimCloud,
}

impl SimNotifier {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimNotifier { cloud }
    }
}

#[async_trait]
impl Notifier for SimNotifier {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Notify])
    }

    async fn notify(&self, channel: &str, notification: &Notification) -> Result<()> {
        self.cloud
            .call("notifier", Operation::Notify, channel, &[], |st, _| {
                st.health
                    .notifications
                    .push((channel.to_string(), notification.clone()));
                Ok(())
            })
            .await
    }
}

impl SimCloud {
    /// Removes what [`bind_endpoint`](Self::bind_endpoint) bound to `target`; `true` if
    /// it was bound.
    pub fn unbind_endpoint(&self, target: &str) -> bool {
        self.with_state(|st, _| st.health.bindings.remove(target).is_some())
    }
}
