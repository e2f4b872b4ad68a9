//! Observation: reading the state the planner plans from, next to the executor that does
//! the rest of the I/O. The planner itself stays pure: it takes an [`ObservedState`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::plan::Plan;
use crate::planner::{DbObservation, ObservedState, ReplicaObservation};
use crate::provider::DbRef;
use crate::Providers;

impl ObservedState {
    /// Reads the state of every database of `plan` from `providers`: the primary, each
    /// replica's lag, the newest snapshot in every region that may hold one. A resource that
    /// cannot be reached is recorded as unreachable, not an error: that is what an incident
    /// looks like.
    pub async fn observe(plan: &Plan, providers: &Providers, at: DateTime<Utc>) -> Self {
        let mut databases = BTreeMap::new();
        for db in &plan.databases {
            let primary_ref = DbRef::new(&db.region, db.instance());
            let mut obs = DbObservation::default();
            if let Ok(p) = providers.database(&db.region) {
                match crate::reads::patiently(|| p.describe(&primary_ref)).await {
                    Ok(status) => obs.primary = Some(status),
                    Err(e) => {
                        tracing::warn!(database = %db.name, error = %e, "primary unreachable")
                    }
                }
            }
            for r in &db.replicas {
                let rref = DbRef::new(&r.region, &r.id);
                let o = match providers.database(&r.region) {
                    Ok(p) => match crate::reads::patiently(|| p.describe(&rref)).await {
                        Ok(s) => ReplicaObservation {
                            state: Some(s.state),
                            lag: s.replication_lag,
                        },
                        Err(e) => {
                            tracing::warn!(replica = %r.id, error = %e, "replica unreachable");
                            ReplicaObservation {
                                state: None,
                                lag: None,
                            }
                        }
                    },
                    Err(_) => ReplicaObservation {
                        state: None,
                        lag: None,
                    },
                };
                obs.replicas.insert(r.id.clone(), o);
            }
            let mut regions = vec![db.region.clone()];
            if let Some(b) = &db.backups {
                regions.extend(b.copy_to.iter().cloned());
            }
            for region in regions {
                let Ok(p) = providers.database(&region) else {
                    continue;
                };
                match crate::reads::patiently(|| p.list_snapshots(&primary_ref, &region)).await {
                    Ok(snaps) => {
                        if let Some(s) = snaps
                            .iter()
                            .filter(|s| s.available)
                            .map(|s| s.created)
                            .max()
                        {
                            obs.latest_snapshot.insert(region, s);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(database = %db.name, %region, error = %e, "cannot list snapshots")
                    }
                }
            }
            databases.insert(db.name.clone(), obs);
        }
        let mut caches = BTreeMap::new();
        for c in &plan.caches {
            let mut obs = crate::planner::CacheObservation::default();
            for region in c.restore.keys() {
                let Ok(p) = providers.caches(region) else {
                    continue;
                };
                match crate::reads::patiently(|| p.list_cache_backups(region, &c.id)).await {
                    Ok(backups) => {
                        let available: Vec<_> = backups
                            .iter()
                            .filter(|b| b.state == crate::provider::CacheBackupState::Available)
                            .collect();
                        obs.has_backup.insert(region.clone(), !available.is_empty());
                        obs.newest_backup.insert(
                            region.clone(),
                            available.iter().filter_map(|b| b.taken_at).max(),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(cache = %c.name, %region, error = %e, "cannot list cache backups")
                    }
                }
            }
            caches.insert(c.name.clone(), obs);
        }
        ObservedState {
            observed_at: at,
            databases,
            caches,
        }
    }
}
