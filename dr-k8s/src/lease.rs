//! [`Lease`]: one leader among runners, with a fencing token; [`KubeLease`] keeps it in a
//! coordination.k8s.io/v1 Lease object.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::provider::{Lease, LeaseGuard};
use dr_core::{Error, Result};
use k8s_openapi::api::coordination::v1::{Lease as KubeLeaseObject, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;

use crate::error::{is_already_exists, is_conflict, map, PROVIDER};

/// Annotation of the Lease object holding the fencing token.
pub const FENCING_TOKEN_ANNOTATION: &str = "dr-orchestrator.io/fencing-token";

/// Wall-clock time read as the wall time at creation plus the (tokio) monotonic time since:
/// immune to wall-clock steps, and driven by a paused tokio clock in tests.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: Timestamp,
    start: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall: Timestamp::now(),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Timestamp {
        add(self.wall, self.start.elapsed())
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// A [`Lease`] on a coordination.k8s.io/v1 Lease object.
///
/// Every change is a replace guarded by the object's resourceVersion, so of two runners that
/// read the same state only one can write; the other sees a conflict and is not leader. The
/// fencing token lives in the [`FENCING_TOKEN_ANNOTATION`] annotation (and
/// `spec.leaseTransitions` counts hand-overs as client-go does). Expiry is judged as
/// client-go does: `renewTime + leaseDurationSeconds` against this process's clock.
pub struct KubeLease {
    api: Api<KubeLeaseObject>,
    namespace: String,
    name: String,
    clock: Clock,
}

impl fmt::Debug for KubeLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeLease")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KubeLease {
    /// The Lease `namespace/name` through `client`. The object is created on first acquire.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        KubeLease {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            clock: Clock::new(),
        }
    }

    fn resource(&self) -> String {
        format!("lease {}/{}", self.namespace, self.name)
    }

    fn lost(&self, state: String, operation: &str) -> Error {
        Error::InvalidState {
            provider: PROVIDER.to_string(),
            resource: self.resource(),
            state,
            operation: operation.to_string(),
        }
    }
}

fn token_of(lease: &KubeLeaseObject) -> u64 {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FENCING_TOKEN_ANNOTATION))
        .and_then(|t| t.parse().ok())
        .or_else(|| {
            let t = lease.spec.as_ref()?.lease_transitions?;
            u64::try_from(t).ok()
        })
        .unwrap_or(0)
}

fn set_token(lease: &mut KubeLeaseObject, token: u64) {
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(FENCING_TOKEN_ANNOTATION.to_string(), token.to_string());
}

fn ttl_seconds(ttl: Duration) -> i32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

fn holder_of(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0);
    add(renewed.0, Duration::from_secs(secs)) <= now
}

fn guard(lease: &KubeLeaseObject, holder: &str, ttl: Duration) -> LeaseGuard {
    LeaseGuard::new(
        holder,
        token_of(lease),
        ttl,
        lease.metadata.resource_version.clone().unwrap_or_default(),
    )
}

#[async_trait]
impl Lease for KubeLease {
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<LeaseGuard>> {
        let resource = self.resource();
        let now = self.clock.now();
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| map(e, "acquire", &resource))?;
        let Some(mut lease) = current else {
            let mut lease = KubeLeaseObject {
                metadata: kube::api::ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.to_string()),
                    lease_duration_seconds: Some(ttl_seconds(ttl)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            set_token(&mut lease, 1);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(Some(guard(&created, holder, ttl))),
                // Another runner created it first: it leads.
                Err(e) if is_already_exists(&e) => Ok(None),
                Err(e) => Err(map(e, "acquire", &resource)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let is_expired = expired(&spec, now);
        let ours = holder_of(&spec) == Some(holder) && !is_expired;
        if holder_of(&spec).is_some() && !is_expired && !ours {
            return Ok(None);
        }
        let token = if ours {
            token_of(&lease)
        } else {
            token_of(&lease) + 1
        };
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(ttl_seconds(ttl)),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..spec
        });
        set_token(&mut lease, token);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(replaced) => {
                tracing::info!(lease = %resource, holder, token, "lease acquired");
                Ok(Some(guard(&replaced, holder, ttl)))
            }
            // Someone wrote in between (another runner took it): not leader.
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(map(e, "acquire", &resource)),
        }
    }

    async fn renew(&self, held: &LeaseGuard) -> Result<LeaseGuard> {
        let resource = self.resource();
        // One retry: a conflict may come from a write that left us holder (none of ours
        // races with itself, but an operator may annotate the object).
        for attempt in 0..2 {
            let now = self.clock.now();
            let mut lease = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| map(e, "renew", &resource))?
                .ok_or_else(|| self.lost("deleted".into(), "renew"))?;
            let spec = lease.spec.clone().unwrap_or_default();
            let holder = holder_of(&spec).unwrap_or("nobody").to_string();
            if holder != held.holder || token_of(&lease) != held.fencing_token {
                return Err(self.lost(
                    format!("held by {holder} (token {})", token_of(&lease)),
                    "renew",
                ));
            }
            lease.spec = Some(LeaseSpec {
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(ttl_seconds(held.ttl)),
                ..spec
            });
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(replaced) => return Ok(guard(&replaced, &held.holder, held.ttl)),
                Err(e) if is_conflict(&e) && attempt == 0 => continue,
                Err(e) => return Err(map(e, "renew", &resource)),
            }
        }
        Err(self.lost("modified concurrently".into(), "renew"))
    }

    async fn release(&self, held: LeaseGuard) -> Result<()> {
        let resource = self.resource();
        for attempt in 0..2 {
            let Some(mut lease) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| map(e, "release", &resource))?
            else {
                return Ok(());
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if holder_of(&spec) != Some(held.holder.as_str())
                || token_of(&lease) != held.fencing_token
            {
                return Ok(());
            }
            lease.spec = Some(LeaseSpec {
                holder_identity: None,
                acquire_time: None,
                renew_time: None,
                ..spec
            });
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    tracing::info!(lease = %resource, holder = %held.holder, "lease released");
                    return Ok(());
                }
                Err(e) if is_conflict(&e) && attempt == 0 => continue,
                Err(e) => return Err(map(e, "release", &resource)),
            }
        }
        Err(self.lost("modified concurrently".into(), "release"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_ttl() {
        let t0 = Timestamp::UNIX_EPOCH;
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(t0)),
            lease_duration_seconds: Some(10),
            ..Default::default()
        };
        assert!(!expired(&spec, add(t0, Duration::from_secs(9))));
        assert!(expired(&spec, add(t0, Duration::from_secs(10))));
        assert!(expired(&LeaseSpec::default(), t0));
        assert_eq!(ttl_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
    }
}
