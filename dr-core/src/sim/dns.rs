//! Simulated DNS: zones, record sets with routing policies, propagating changes.

use std::collections::BTreeMap;

use super::SimInstant as Instant;
use async_trait::async_trait;

use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, DnsChange, DnsFailover, DnsRecord, HealthStatus, Operation, Routing,
};
use crate::{Error, Result};

const ROLE: &str = "dns";

type SetKey = (String, Option<String>);

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RecordSet {
    /// The record as last written (what the API returns).
    record: DnsRecord,
    /// What resolvers were answered before the last change propagated.
    previous: Vec<String>,
    /// When the last change is in sync.
    sync_at: Instant,
}

impl RecordSet {
    fn served(&self, now: Instant) -> &[String] {
        if now >= self.sync_at {
            &self.record.values
        } else {
            &self.previous
        }
    }
}

/// Zones, changes and health checks of the simulated cloud.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Dns {
    zones: BTreeMap<String, BTreeMap<SetKey, RecordSet>>,
    changes: BTreeMap<String, Instant>,
    next_change: u64,
    pub(super) health_checks: BTreeMap<String, String>,
}

fn set_id(routing: &Routing) -> Option<String> {
    match routing {
        Routing::Simple => None,
        Routing::Failover { set_id, .. } | Routing::Weighted { set_id, .. } => Some(set_id.clone()),
    }
}

impl Dns {
    fn new_change(&mut self, sync_at: Instant) -> String {
        self.next_change += 1;
        let id = format!("C{:06}", self.next_change);
        self.changes.insert(id.clone(), sync_at);
        id
    }

    fn upsert_now(&mut self, record: DnsRecord, now: Instant) {
        let key = (record.name.clone(), set_id(&record.routing));
        let previous = record.values.clone();
        self.zones.entry(record.zone.clone()).or_default().insert(
            key,
            RecordSet {
                record,
                previous,
                sync_at: now,
            },
        );
    }

    /// The values resolvers get for `name` now: a simple set's values, the primary
    /// failover set's (the secondary's when `healthy` says the primary's targets are not),
    /// or every weighted set with a weight.
    pub(super) fn answer(
        &self,
        zone: &str,
        name: &str,
        now: Instant,
        healthy: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let Some(sets) = self.zones.get(zone) else {
            return Vec::new();
        };
        let sets: Vec<&RecordSet> = sets
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, s)| s)
            .collect();
        if let Some(simple) = sets.iter().find(|s| s.record.routing == Routing::Simple) {
            return simple.served(now).to_vec();
        }
        let failover = |want: bool| {
            sets.iter()
                .find(|s| matches!(&s.record.routing, Routing::Failover { primary, .. } if *primary == want))
                .map(|s| s.served(now).to_vec())
        };
        if let Some(primary) = failover(true) {
            if healthy(&primary) {
                return primary;
            }
            return failover(false).unwrap_or_default();
        }
        if let Some(secondary) = failover(false) {
            return secondary;
        }
        sets.iter()
            .filter(|s| matches!(s.record.routing, Routing::Weighted { weight, .. } if weight > 0))
            .flat_map(|s| s.served(now).iter().cloned())
            .collect()
    }
}

impl SimCloud {
    /// Adds a simple record `name` in `zone` (created if needed) pointing at `value`: an `A`
    /// record for an IPv4 address, `AAAA` for IPv6, else a `CNAME`. TTL 60 s.
    pub fn add_record(&self, zone: &str, name: &str, value: &str) {
        let record_type = match value.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => "A",
            Ok(std::net::IpAddr::V6(_)) => "AAAA",
            Err(_) => "CNAME",
        };
        self.add_record_set(DnsRecord {
            zone: zone.to_string(),
            name: name.to_string(),
            record_type: record_type.to_string(),
            values: vec![value.to_string()],
            ttl: 60,
            routing: Routing::Simple,
        });
    }

    /// Adds (or replaces) a record set of any routing policy, in sync at once.
    pub fn add_record_set(&self, record: DnsRecord) {
        self.with_state(|st, env| st.dns.upsert_now(record, env.now));
    }

    /// Adds a DNS health check `id` that checks `target` as [`probe`](Self::probe) would.
    pub fn add_health_check(&self, id: &str, target: &str) {
        self.with_state(|st, _| {
            st.dns
                .health_checks
                .insert(id.to_string(), target.to_string())
        });
    }
}

/// The simulated cloud's [`DnsFailover`] service ([`SimCloud::dns`]).
#[derive(Debug, Clone)]
pub struct SimDns {
    cloud: SimCloud,
}

impl SimDns {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimDns { cloud }
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

fn invalid(message: String) -> Error {
    Error::InvalidRequest {
        provider: PROVIDER.into(),
        operation: "switch_record".into(),
        message,
    }
}

#[async_trait]
impl DnsFailover for SimDns {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([GetRecord, SwitchRecord, WaitChange, HealthCheckStatus])
    }

    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<DnsRecord> {
        let target = format!("{zone}/{name}");
        self.call(Operation::GetRecord, &target, |st, _| {
            let sets = st
                .dns
                .zones
                .get(zone)
                .ok_or_else(|| Error::not_found(PROVIDER, format!("zone {zone}")))?;
            let exact = sets.get(&(name.to_string(), set_id.map(str::to_string)));
            let first = || {
                set_id
                    .is_none()
                    .then(|| sets.iter().find(|((n, _), _)| n == name).map(|(_, s)| s))
                    .flatten()
            };
            exact
                .or_else(first)
                .map(|s| s.record.clone())
                .ok_or_else(|| Error::not_found(PROVIDER, format!("record {name} in zone {zone}")))
        })
        .await
    }

    async fn switch_record(&self, record: &DnsRecord) -> Result<DnsChange> {
        let target = format!("{}/{}", record.zone, record.name);
        self.call(Operation::SwitchRecord, &target, |st, env| {
            if record.name.is_empty() || record.values.is_empty() {
                return Err(invalid(format!(
                    "record {:?} needs a name and at least one value",
                    record.name
                )));
            }
            let now = env.now;
            let sets = st
                .dns
                .zones
                .get_mut(&record.zone)
                .ok_or_else(|| Error::not_found(PROVIDER, format!("zone {}", record.zone)))?;
            let key = (record.name.clone(), set_id(&record.routing));
            let sync_at = now + env.cfg.dns_propagation.get();
            match sets.get_mut(&key) {
                Some(set) if set.record == *record => {
                    // Nothing to change: an in-sync change that changes nothing.
                    let id = st.dns.new_change(now);
                    return Ok(DnsChange { id, in_sync: true });
                }
                Some(set) => {
                    set.previous = set.served(now).to_vec();
                    set.record = record.clone();
                    set.sync_at = sync_at;
                }
                None => {
                    sets.insert(
                        key,
                        RecordSet {
                            record: record.clone(),
                            previous: Vec::new(),
                            sync_at,
                        },
                    );
                }
            }
            let id = st.dns.new_change(sync_at);
            Ok(DnsChange { id, in_sync: false })
        })
        .await
    }

    async fn get_change(&self, change_id: &str) -> Result<DnsChange> {
        self.call(Operation::WaitChange, change_id, |st, env| {
            let sync_at = st
                .dns
                .changes
                .get(change_id)
                .ok_or_else(|| Error::not_found(PROVIDER, format!("change {change_id}")))?;
            Ok(DnsChange {
                id: change_id.to_string(),
                in_sync: *sync_at <= env.now,
            })
        })
        .await
    }

    async fn health_check_status(&self, health_check_id: &str) -> Result<HealthStatus> {
        self.call(Operation::HealthCheckStatus, health_check_id, |st, env| {
            let target = st
                .dns
                .health_checks
                .get(health_check_id)
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(PROVIDER, format!("health check {health_check_id}"))
                })?;
            Ok(st.endpoint_health(&target, env))
        })
        .await
    }
}

impl SimCloud {
    /// Removes every record set named `name` in `zone`; `true` if there was one.
    pub fn remove_record(&self, zone: &str, name: &str) -> bool {
        self.with_state(|st, _| {
            st.dns.zones.get_mut(zone).is_some_and(|z| {
                let before = z.len();
                z.retain(|(n, _), _| n != name);
                z.len() != before
            })
        })
    }
}
