//! `DatabaseReplica`: a managed database with replicas, snapshots and point-in-time restore.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Capabilities;
use crate::plan::DataCheck;
use crate::{Error, Result};

/// A database instance, addressed by region and identifier.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DbRef {
    /// Region (`us-west-2`).
    pub region: String,
    /// Instance identifier (`orders-db-replica`).
    pub id: String,
}

impl DbRef {
    /// A reference to `id` in `region`.
    pub fn new(region: impl Into<String>, id: impl Into<String>) -> Self {
        DbRef {
            region: region.into(),
            id: id.into(),
        }
    }
}

impl std::fmt::Display for DbRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database {}/{}", self.region, self.id)
    }
}

/// Lifecycle state of a database instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DbState {
    /// Serving.
    Available,
    /// Being created (new instance, restore, new replica).
    Creating,
    /// Being modified or promoted.
    Modifying,
    /// Rebooting, possibly failing over.
    Rebooting,
    /// Broken or unreachable.
    Failed,
    /// Being deleted, or gone.
    Deleted,
}

impl DbState {
    /// Whether the instance is on its way to `Available` by itself.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            DbState::Creating | DbState::Modifying | DbState::Rebooting
        )
    }
}

impl std::fmt::Display for DbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbState::Available => "available",
            DbState::Creating => "creating",
            DbState::Modifying => "modifying",
            DbState::Rebooting => "rebooting",
            DbState::Failed => "failed",
            DbState::Deleted => "deleted",
        })
    }
}

/// Whether an instance is a primary or a read replica.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum DbRole {
    /// Accepts writes.
    Primary,
    /// Replicates from `source`.
    Replica {
        /// The instance it replicates from.
        source: DbRef,
    },
}

/// What [`DatabaseReplica::describe`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbStatus {
    /// The instance.
    pub db: DbRef,
    /// Its state.
    pub state: DbState,
    /// Primary or replica.
    pub role: DbRole,
    /// Connection endpoint (`host:port`), when it has one.
    pub endpoint: Option<String>,
    /// Replication lag behind the source, for replicas where the provider reports it.
    pub replication_lag: Option<Duration>,
    /// Latest time a point-in-time restore can reach, where the provider supports PITR.
    pub latest_restorable_time: Option<DateTime<Utc>>,
}

/// A database snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbSnapshot {
    /// Region the snapshot is stored in.
    pub region: String,
    /// Snapshot identifier (or ARN).
    pub id: String,
    /// The instance it was taken of.
    pub source: DbRef,
    /// The point in time its data reflects.
    pub created: DateTime<Utc>,
    /// Whether it can be restored from yet (copies and new snapshots take time).
    pub available: bool,
}

/// Where a point-in-time restore should land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestorePoint {
    /// The latest restorable time.
    Latest,
    /// An explicit time.
    At(DateTime<Utc>),
}

/// A managed database service (RDS, Cloud SQL, the simulated cloud).
///
/// Mutating operations return as soon as the provider accepted them; the instance is then in
/// a transitional state until [`wait_available`](Self::wait_available) sees it `Available`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{DatabaseReplica, DbRef, DbRole};
/// use dr_core::sim::SimCloud;
///
/// tokio::time::pause();
/// let cloud = SimCloud::new(7);
/// let primary = DbRef::new("us-east-1", "orders");
/// let replica = DbRef::new("us-west-2", "orders-replica");
/// cloud.add_database(&primary, None);
/// cloud.add_database(&replica, Some(&primary));
/// cloud.database().promote(&replica).await?;
/// let status = cloud.database().wait_available(&replica, Duration::from_secs(3600)).await?;
/// assert_eq!(status.role, DbRole::Primary);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DatabaseReplica: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `rds`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The instance's state, role, endpoint, replication lag and latest restorable time.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    async fn describe(&self, db: &DbRef) -> Result<DbStatus>;

    /// Starts a snapshot named `snapshot_id` of `db`.
    ///
    /// # Errors
    /// `AlreadyExists` when a snapshot of that name exists; `NotFound`; `InvalidState`.
    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot>;

    /// A snapshot by region and id.
    ///
    /// # Errors
    /// `NotFound`.
    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot>;

    /// The snapshots of `db` held in `region` (which may differ from the instance's region,
    /// for cross-region copies), newest first.
    ///
    /// # Errors
    /// Provider errors.
    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>>;

    /// Copies a snapshot to another region under `target_id`.
    ///
    /// # Errors
    /// `NotFound`; `AlreadyExists`.
    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot>;

    /// Creates the instance `target` from a snapshot.
    ///
    /// # Errors
    /// `NotFound` (snapshot); `AlreadyExists` (target); `InvalidState` (snapshot not ready).
    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus>;

    /// Creates the instance `target` from `source`'s backups at a point in time.
    ///
    /// # Errors
    /// `NotFound`; `AlreadyExists`; `InvalidRequest` when the point is outside the window.
    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus>;

    /// Promotes a read replica to a standalone primary.
    ///
    /// # Errors
    /// `InvalidState` when it is not a replica (a read-back shows whether it already was
    /// promoted); `NotFound`.
    async fn promote(&self, replica: &DbRef) -> Result<DbStatus>;

    /// Reboots the instance, failing over to its standby when `force_failover`.
    ///
    /// # Errors
    /// `InvalidState`; `NotFound`.
    async fn reboot(&self, db: &DbRef, force_failover: bool) -> Result<DbStatus>;

    /// Creates `replica` as a read replica of `source` (possibly in another region).
    ///
    /// # Errors
    /// `AlreadyExists`; `NotFound`; `InvalidState`.
    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus>;

    /// Runs the plan's data `checks` against `db` (all in one consistent snapshot where the
    /// engine allows) and returns the value each read, in order (`None` for SQL `NULL`).
    /// Judging the values is the caller's: see [`DataCheck::judge`].
    ///
    /// The default does not support it: engines that run queries implement it (dr-postgres
    /// does), and list [`Operation::CheckData`](super::Operation::CheckData) in their
    /// capabilities.
    ///
    /// # Errors
    /// `NotSupported`; `NotFound`; `InvalidRequest` for a check the engine refuses (a
    /// missing table, invalid SQL).
    async fn check_data(&self, db: &DbRef, checks: &[DataCheck]) -> Result<Vec<Option<String>>> {
        let _ = (db, checks);
        Err(Error::not_supported(self.name(), "check_data"))
    }

    /// Polls [`describe`](Self::describe) with backoff until the instance is `Available`.
    ///
    /// Temporary errors of a poll (throttling, a 5xx) do not end the wait; the deadline does.
    ///
    /// # Errors
    /// `Timeout` after `deadline`; `InvalidState` when it reaches `Failed` or `Deleted`;
    /// a permanent error of `describe` (`NotFound`).
    async fn wait_available(&self, db: &DbRef, deadline: Duration) -> Result<DbStatus> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_secs(5);
        loop {
            match self.describe(db).await {
                Ok(status) => match status.state {
                    DbState::Available => return Ok(status),
                    DbState::Failed | DbState::Deleted => {
                        return Err(Error::InvalidState {
                            provider: self.name().to_string(),
                            resource: db.to_string(),
                            state: status.state.to_string(),
                            operation: "wait until available".into(),
                        })
                    }
                    state => tracing::debug!(%db, %state, "waiting for database"),
                },
                // A throttled or failed poll does not end the wait: the deadline does.
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => tracing::debug!(%db, error = %e, "poll failed, polling on"),
            }
            let elapsed = start.elapsed();
            if elapsed >= deadline {
                return Err(Error::Timeout {
                    operation: format!("waiting for {db} to be available"),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay.min(deadline - elapsed)).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}

/// A `DatabaseReplica` trait object.
pub type DynDatabaseReplica = dyn DatabaseReplica;

#[async_trait]
impl<T: DatabaseReplica + ?Sized> DatabaseReplica for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn describe(&self, db: &DbRef) -> Result<DbStatus> {
        (**self).describe(db).await
    }
    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot> {
        (**self).create_snapshot(db, snapshot_id).await
    }
    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot> {
        (**self).describe_snapshot(region, snapshot_id).await
    }
    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        (**self).list_snapshots(db, region).await
    }
    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot> {
        (**self)
            .copy_snapshot(snapshot, target_region, target_id)
            .await
    }
    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        (**self).restore_snapshot(snapshot, target).await
    }
    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus> {
        (**self).restore_to_point_in_time(source, target, at).await
    }
    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        (**self).promote(replica).await
    }
    async fn reboot(&self, db: &DbRef, force_failover: bool) -> Result<DbStatus> {
        (**self).reboot(db, force_failover).await
    }
    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus> {
        (**self).create_replica(source, replica).await
    }
    async fn check_data(&self, db: &DbRef, checks: &[DataCheck]) -> Result<Vec<Option<String>>> {
        (**self).check_data(db, checks).await
    }
    async fn wait_available(&self, db: &DbRef, deadline: Duration) -> Result<DbStatus> {
        (**self).wait_available(db, deadline).await
    }
}
