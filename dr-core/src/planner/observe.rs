//! What the planner knows about the world when it plans.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plan::Plan;
use crate::provider::{DbRef, DbState, DbStatus};

/// The observed state of one replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReplicaObservation {
    /// Its state; `None` when it could not be reached.
    pub state: Option<DbState>,
    /// Its replication lag, when reported.
    #[serde(with = "crate::duration::seconds_opt")]
    pub lag: Option<Duration>,
}

/// The observed state of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct DbObservation {
    /// The primary's status; `None` when it could not be reached.
    pub primary: Option<DbStatus>,
    /// Replicas by instance id.
    pub replicas: BTreeMap<String, ReplicaObservation>,
    /// Creation time of the newest available snapshot, per region holding one.
    pub latest_snapshot: BTreeMap<String, DateTime<Utc>>,
}

/// The observed backups of one managed cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct CacheObservation {
    /// Per recovery region whose backups were read: when the newest available backup there
    /// was taken (`None`: none there, or one without a time).
    pub newest_backup: BTreeMap<String, Option<DateTime<Utc>>>,
    /// Per recovery region: whether an available backup is there.
    pub has_backup: BTreeMap<String, bool>,
}

/// What the planner knows about the resources of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ObservedState {
    /// When it was observed (data-loss forecasts are measured from here).
    pub observed_at: DateTime<Utc>,
    /// Databases by plan name.
    pub databases: BTreeMap<String, DbObservation>,
    /// Managed caches by plan name (absent: not observed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub caches: BTreeMap<String, CacheObservation>,
}

impl ObservedState {
    /// The nominal state: every instance available, every replica at its expected lag, the
    /// newest snapshot one full backup interval old (the worst case) in the primary region and
    /// every region it is copied to.
    pub fn nominal(plan: &Plan, at: DateTime<Utc>) -> Self {
        let mut databases = BTreeMap::new();
        for db in &plan.databases {
            let mut obs = DbObservation {
                primary: Some(DbStatus {
                    db: DbRef::new(&db.region, db.instance()),
                    state: DbState::Available,
                    role: crate::provider::DbRole::Primary,
                    endpoint: None,
                    replication_lag: None,
                    latest_restorable_time: db.pitr.as_ref().map(|p| before(at, p.lag.get())),
                }),
                ..Default::default()
            };
            for r in &db.replicas {
                obs.replicas.insert(
                    r.id.clone(),
                    ReplicaObservation {
                        state: Some(DbState::Available),
                        lag: Some(r.expected_lag.get()),
                    },
                );
            }
            if let Some(b) = &db.backups {
                let created = before(at, b.every.get());
                obs.latest_snapshot.insert(db.region.clone(), created);
                for region in &b.copy_to {
                    obs.latest_snapshot.insert(region.clone(), created);
                }
            }
            databases.insert(db.name.clone(), obs);
        }
        // Each cache's newest backup one full backup interval old in every recovery region.
        let caches = plan
            .caches
            .iter()
            .map(|c| {
                let taken = before(at, c.backup_interval());
                let obs = CacheObservation {
                    newest_backup: c.restore.keys().map(|r| (r.clone(), Some(taken))).collect(),
                    has_backup: c.restore.keys().map(|r| (r.clone(), true)).collect(),
                };
                (c.name.clone(), obs)
            })
            .collect();
        ObservedState {
            observed_at: at,
            databases,
            caches,
        }
    }

    /// Age of the newest snapshot of `db` in `region`, if any.
    pub fn snapshot_age(&self, db: &str, region: &str) -> Option<Duration> {
        let created = self.databases.get(db)?.latest_snapshot.get(region)?;
        Some((self.observed_at - *created).to_std().unwrap_or_default())
    }
}

/// `d` before `at`, or the earliest representable instant when that is out of range (only
/// for durations far above [`HumanDuration::MAX`](crate::HumanDuration::MAX), which
/// validation rejects).
fn before(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(chrono_dur(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
