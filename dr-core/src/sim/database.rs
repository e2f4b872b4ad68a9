//! Simulated managed databases: roles, replication, snapshots, restores, promotion.

use std::collections::BTreeMap;
use std::time::Duration;

use super::SimInstant as Instant;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus, Operation,
    RestorePoint,
};
use crate::{Error, Result};

const ROLE: &str = "database";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Instance {
    role: DbRole,
    /// A transition in progress: its state, when it ends, the role it ends in.
    busy: Option<(DbState, Instant, DbRole)>,
    lag: Option<Duration>,
    /// Broken on its own (its region may be up): see [`SimCloud::fail_database`].
    failed: bool,
    /// Serves (and takes writes) even while its region is down: a partial outage, see
    /// [`SimCloud::keep_serving`].
    #[serde(default)]
    survives: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    source: DbRef,
    created: DateTime<Utc>,
    ready_at: Instant,
}

/// Databases and snapshots of the simulated cloud.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Databases {
    instances: BTreeMap<DbRef, Instance>,
    snapshots: BTreeMap<(String, String), Snapshot>,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn target_of(db: &DbRef) -> String {
    format!("{}/{}", db.region, db.id)
}

fn already_exists(what: String) -> Error {
    Error::AlreadyExists {
        provider: PROVIDER.into(),
        resource: what,
    }
}

impl Databases {
    /// Completes transitions whose time has come.
    fn settle(&mut self, now: Instant) {
        for inst in self.instances.values_mut() {
            if let Some((_, ready_at, role)) = &inst.busy {
                if *ready_at <= now {
                    inst.role = role.clone();
                    inst.busy = None;
                }
            }
        }
    }

    fn get(&self, db: &DbRef) -> Result<&Instance> {
        self.instances
            .get(db)
            .ok_or_else(|| Error::not_found(PROVIDER, db.to_string()))
    }

    fn insert_new(&mut self, db: &DbRef, role: DbRole, ready_at: Instant) -> Result<()> {
        if self.instances.contains_key(db) {
            return Err(already_exists(db.to_string()));
        }
        self.instances.insert(
            db.clone(),
            Instance {
                role: role.clone(),
                busy: Some((DbState::Creating, ready_at, role)),
                lag: None,
                failed: false,
                survives: false,
            },
        );
        Ok(())
    }

    fn snapshot(&self, region: &str, id: &str, env: &Env<'_>) -> Result<DbSnapshot> {
        let snap = self
            .snapshots
            .get(&(region.to_string(), id.to_string()))
            .ok_or_else(|| Error::not_found(PROVIDER, format!("snapshot {region}/{id}")))?;
        Ok(DbSnapshot {
            region: region.to_string(),
            id: id.to_string(),
            source: snap.source.clone(),
            created: snap.created,
            available: snap.ready_at <= env.now,
        })
    }
}

fn status(st: &State, db: &DbRef, env: &Env<'_>) -> Result<DbStatus> {
    let inst = st.db.get(db)?;
    let down = (st.down.contains(&db.region) && !inst.survives) || inst.failed;
    let state = match (&inst.busy, down) {
        (_, true) => DbState::Failed,
        (Some((s, _, _)), false) => *s,
        (None, false) => DbState::Available,
    };
    let creating = state == DbState::Creating;
    let replication_lag = match &inst.role {
        DbRole::Replica { .. } if !creating && !down => {
            Some(inst.lag.unwrap_or(env.cfg.replication_lag.get()))
        }
        _ => None,
    };
    let latest_restorable_time = match &inst.role {
        DbRole::Primary if !creating && !down => Some(env.wall - to_chrono(env.cfg.pitr_lag.get())),
        _ => None,
    };
    Ok(DbStatus {
        db: db.clone(),
        state,
        role: inst.role.clone(),
        endpoint: (!creating).then(|| format!("{}.{}.sim.internal:5432", db.id, db.region)),
        replication_lag,
        latest_restorable_time,
    })
}

/// Refuses an operation unless the instance is `Available`.
fn require_available(st: &State, db: &DbRef, env: &Env<'_>, op: Operation) -> Result<DbStatus> {
    let s = status(st, db, env)?;
    if s.state != DbState::Available {
        return Err(Error::InvalidState {
            provider: PROVIDER.into(),
            resource: db.to_string(),
            state: s.state.to_string(),
            operation: op.name().into(),
        });
    }
    Ok(s)
}

impl SimCloud {
    /// Adds an available database: a primary, or a replica of `source`.
    pub fn add_database(&self, db: &DbRef, source: Option<&DbRef>) {
        let role = match source {
            Some(s) => DbRole::Replica { source: s.clone() },
            None => DbRole::Primary,
        };
        self.with_state(|st, _| {
            st.db.instances.insert(
                db.clone(),
                Instance {
                    role,
                    busy: None,
                    lag: None,
                    failed: false,
                    survives: false,
                },
            )
        });
    }

    /// Sets the replication lag a replica reports (default [`SimConfig::replication_lag`]).
    ///
    /// [`SimConfig::replication_lag`]: super::SimConfig::replication_lag
    pub fn set_replication_lag(&self, replica: &DbRef, lag: Duration) {
        self.with_state(|st, _| {
            if let Some(inst) = st.db.instances.get_mut(replica) {
                inst.lag = Some(lag);
            }
        });
    }

    /// Keeps one instance serving — answering and taking writes — even while its region is
    /// failed (a partial outage: the old primary the failover would leave behind).
    pub fn keep_serving(&self, db: &DbRef) {
        self.with_state(|st, _| {
            if let Some(inst) = st.db.instances.get_mut(db) {
                inst.survives = true;
            }
        });
    }

    /// Breaks one instance (a storage failure, a corrupted engine): it reports `Failed` and
    /// refuses every change, while the rest of its region keeps serving.
    pub fn fail_database(&self, db: &DbRef) {
        self.with_state(|st, _| {
            if let Some(inst) = st.db.instances.get_mut(db) {
                inst.failed = true;
            }
        });
    }

    /// Adds an available snapshot `id` of `db`, stored in `region`, taken `age` ago.
    pub fn add_snapshot(&self, db: &DbRef, region: &str, id: &str, age: Duration) {
        self.with_state(|st, env| {
            st.db.snapshots.insert(
                (region.to_string(), id.to_string()),
                Snapshot {
                    source: db.clone(),
                    created: env.wall - to_chrono(age),
                    ready_at: env.now,
                },
            )
        });
    }
}

/// The simulated cloud's [`DatabaseReplica`] service ([`SimCloud::database`]).
#[derive(Debug, Clone)]
pub struct SimDatabase {
    cloud: SimCloud,
}

impl SimDatabase {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimDatabase { cloud }
    }

    async fn call<T>(
        &self,
        op: Operation,
        target: &str,
        regions: &[&str],
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        self.cloud
            .call(ROLE, op, target, regions, |st, env| {
                st.db.settle(env.now);
                f(st, env)
            })
            .await
    }
}

#[async_trait]
impl DatabaseReplica for SimDatabase {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([
            Describe,
            CreateSnapshot,
            DescribeSnapshot,
            ListSnapshots,
            CopySnapshot,
            RestoreSnapshot,
            RestorePointInTime,
            Promote,
            Reboot,
            CreateReplica,
        ])
    }

    async fn describe(&self, db: &DbRef) -> Result<DbStatus> {
        self.call(Operation::Describe, &target_of(db), &[], |st, env| {
            status(st, db, env)
        })
        .await
    }

    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot> {
        let op = Operation::CreateSnapshot;
        self.call(op, &target_of(db), &[&db.region], |st, env| {
            require_available(st, db, env, op)?;
            let key = (db.region.clone(), snapshot_id.to_string());
            if st.db.snapshots.contains_key(&key) {
                return Err(already_exists(format!(
                    "snapshot {}/{snapshot_id}",
                    db.region
                )));
            }
            st.db.snapshots.insert(
                key,
                Snapshot {
                    source: db.clone(),
                    created: env.wall,
                    ready_at: env.now + env.cfg.snapshot.get(),
                },
            );
            st.db.snapshot(&db.region, snapshot_id, env)
        })
        .await
    }

    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot> {
        let target = format!("{region}/snapshot/{snapshot_id}");
        self.call(Operation::DescribeSnapshot, &target, &[], |st, env| {
            st.db.snapshot(region, snapshot_id, env)
        })
        .await
    }

    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        let target = format!("{region}/snapshots-of/{}", target_of(db));
        self.call(Operation::ListSnapshots, &target, &[], |st, env| {
            let mut out = Vec::new();
            for ((r, id), snap) in &st.db.snapshots {
                if r == region && &snap.source == db {
                    out.push(st.db.snapshot(r, id, env)?);
                }
            }
            out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
            Ok(out)
        })
        .await
    }

    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot> {
        let target = format!(
            "{}/snapshot/{} -> {target_region}/snapshot/{target_id}",
            snapshot.region, snapshot.id
        );
        let regions = [snapshot.region.as_str(), target_region];
        self.call(Operation::CopySnapshot, &target, &regions, |st, env| {
            let src = st.db.snapshot(&snapshot.region, &snapshot.id, env)?;
            if !src.available {
                return Err(Error::InvalidState {
                    provider: PROVIDER.into(),
                    resource: format!("snapshot {}/{}", src.region, src.id),
                    state: "creating".into(),
                    operation: "copy_snapshot".into(),
                });
            }
            let key = (target_region.to_string(), target_id.to_string());
            if st.db.snapshots.contains_key(&key) {
                return Err(already_exists(format!(
                    "snapshot {target_region}/{target_id}"
                )));
            }
            st.db.snapshots.insert(
                key,
                Snapshot {
                    source: src.source,
                    created: src.created,
                    ready_at: env.now + env.cfg.copy_snapshot.get(),
                },
            );
            st.db.snapshot(target_region, target_id, env)
        })
        .await
    }

    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        let t = format!(
            "{}/snapshot/{} -> {}",
            snapshot.region,
            snapshot.id,
            target_of(target)
        );
        self.call(
            Operation::RestoreSnapshot,
            &t,
            &[&target.region],
            |st, env| {
                let snap = st.db.snapshot(&snapshot.region, &snapshot.id, env)?;
                if !snap.available {
                    return Err(Error::InvalidState {
                        provider: PROVIDER.into(),
                        resource: format!("snapshot {}/{}", snap.region, snap.id),
                        state: "creating".into(),
                        operation: "restore_snapshot".into(),
                    });
                }
                if snap.region != target.region {
                    return Err(Error::InvalidRequest {
                        provider: PROVIDER.into(),
                        operation: "restore_snapshot".into(),
                        message: format!(
                            "snapshot {} is in {}, {target} is in {}: copy it first",
                            snap.id, snap.region, target.region
                        ),
                    });
                }
                st.db
                    .insert_new(target, DbRole::Primary, env.now + env.cfg.restore.get())?;
                status(st, target, env)
            },
        )
        .await
    }

    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus> {
        let t = format!("{} -> {}", target_of(source), target_of(target));
        let regions = [source.region.as_str(), target.region.as_str()];
        self.call(Operation::RestorePointInTime, &t, &regions, |st, env| {
            let src = status(st, source, env)?;
            let Some(latest) = src.latest_restorable_time else {
                return Err(Error::InvalidState {
                    provider: PROVIDER.into(),
                    resource: source.to_string(),
                    state: format!("{} without backups", src.state),
                    operation: "restore_to_point_in_time".into(),
                });
            };
            let earliest = env.wall - to_chrono(env.cfg.pitr_retention.get());
            if let RestorePoint::At(when) = at {
                if when < earliest || when > latest {
                    return Err(Error::InvalidRequest {
                        provider: PROVIDER.into(),
                        operation: "restore_to_point_in_time".into(),
                        message: format!(
                            "{when} is outside the restorable window [{earliest}, {latest}] of {source}"
                        ),
                    });
                }
            }
            st.db.insert_new(target, DbRole::Primary, env.now + env.cfg.pitr.get())?;
            status(st, target, env)
        })
        .await
    }

    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        let op = Operation::Promote;
        self.call(op, &target_of(replica), &[&replica.region], |st, env| {
            let s = require_available(st, replica, env, op)?;
            if s.role == DbRole::Primary {
                return Err(Error::InvalidState {
                    provider: PROVIDER.into(),
                    resource: replica.to_string(),
                    state: "a primary".into(),
                    operation: op.name().into(),
                });
            }
            if let Some(inst) = st.db.instances.get_mut(replica) {
                let ready = env.now + env.cfg.promote.get();
                inst.busy = Some((DbState::Modifying, ready, DbRole::Primary));
            }
            status(st, replica, env)
        })
        .await
    }

    async fn reboot(&self, db: &DbRef, _force_failover: bool) -> Result<DbStatus> {
        let op = Operation::Reboot;
        self.call(op, &target_of(db), &[&db.region], |st, env| {
            let s = require_available(st, db, env, op)?;
            if let Some(inst) = st.db.instances.get_mut(db) {
                let ready = env.now + env.cfg.reboot.get();
                inst.busy = Some((DbState::Rebooting, ready, s.role));
            }
            status(st, db, env)
        })
        .await
    }

    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus> {
        let op = Operation::CreateReplica;
        let t = format!("{} -> {}", target_of(source), target_of(replica));
        let regions = [source.region.as_str(), replica.region.as_str()];
        self.call(op, &t, &regions, |st, env| {
            require_available(st, source, env, op)?;
            let role = DbRole::Replica {
                source: source.clone(),
            };
            st.db
                .insert_new(replica, role, env.now + env.cfg.create_replica.get())?;
            status(st, replica, env)
        })
        .await
    }
}

impl SimCloud {
    /// Removes an instance (what deleting a test database does); `true` if it existed.
    pub fn remove_database(&self, db: &DbRef) -> bool {
        self.with_state(|st, _| st.db.instances.remove(db).is_some())
    }
}
