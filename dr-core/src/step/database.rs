//! Database steps: reboot, promote, restore (snapshot or point in time), wait, snapshot,
//! create a replica.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{exists, to_json, Call, Observed, Role, StepAction, StepContext};
use crate::plan::Interlock;
use crate::provider::{DbRef, DbRole, DbState, Operation as O, RestorePoint};
use crate::{Error, Result};

/// The read-back of a step that creates `db`: it exists, or it does not.
async fn created(ctx: &StepContext<'_>, db: &DbRef) -> Observed {
    match ctx.database(&db.region) {
        Ok(p) => exists(ctx.read(|| p.describe(db)).await),
        Err(_) => Observed::Unknown,
    }
}

fn db_role(db: &DbRef) -> Role {
    Role::Database {
        region: db.region.clone(),
    }
}

/// Reboot a database, failing over to its standby when `force_failover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebootDatabase {
    /// The database.
    pub db: DbRef,
    /// Multi-AZ forced failover.
    pub force_failover: bool,
}

#[async_trait]
impl StepAction for RebootDatabase {
    fn kind(&self) -> &str {
        "reboot_database"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(db_role(&self.db), O::Describe, self.db.to_string()),
            Call::provider(db_role(&self.db), O::Reboot, self.db.to_string()),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(p) = ctx.database(&self.db.region) else {
            return Observed::Unknown;
        };
        match ctx.read(|| p.describe(&self.db)).await {
            Ok(s) if s.state == DbState::Rebooting => Observed::Done,
            // A database that is not rebooting may not have been rebooted, or may have
            // finished rebooting already.
            _ => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.database(&self.db.region)?
            .reboot(&self.db, self.force_failover)
            .await?;
        Ok(())
    }
}

/// Promote a read replica to primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromoteReplica {
    /// The replica.
    pub db: DbRef,
}

#[async_trait]
impl StepAction for PromoteReplica {
    fn kind(&self) -> &str {
        "promote_replica"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(db_role(&self.db), O::Describe, self.db.to_string()),
            Call::provider(db_role(&self.db), O::Promote, self.db.to_string()),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn loses_data(&self) -> bool {
        true
    }
    fn interlocks(&self) -> &'static [Interlock] {
        &[Interlock::NoSplitBrain]
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("database promoted")
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        let Ok(p) = ctx.database(&self.db.region) else {
            return Observed::Unknown;
        };
        let status = match ctx.read(|| p.describe(&self.db)).await {
            Ok(status) => status,
            Err(_) => return Observed::Unknown,
        };
        if matches!(status.role, DbRole::Replica { .. }) && status.state.is_transitional() {
            // Observed only when this step's promotion was in flight: a replica modifying
            // now is that promotion under way (RDS shows the replica role until it ends), and
            // issuing it again would be refused or repeat it. The wait that follows waits
            // for it to end.
            return Observed::Done;
        }
        match status.role {
            DbRole::Primary => Observed::Done,
            DbRole::Replica { .. } => {
                // The lag right before promotion is the data-loss window.
                if ctx.data_loss.is_none() {
                    ctx.data_loss = status.replication_lag;
                }
                Observed::NotDone
            }
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.database(&self.db.region)?;
        // The read-back right before the first attempt measured the lag; without it, read.
        if ctx.data_loss.is_none() {
            ctx.data_loss = ctx.read(|| p.describe(&self.db)).await?.replication_lag;
        }
        // The RPO gate judges the window right before the promotion.
        ctx.check_data_loss(ctx.data_loss, "replica lag").await?;
        if ctx.interlock(Interlock::NoSplitBrain) {
            let violation = self.old_primary_may_write(ctx).await;
            ctx.check_interlock(Interlock::NoSplitBrain, violation)
                .await?;
        }
        p.promote(&self.db).await?;
        Ok(())
    }
}

impl PromoteReplica {
    /// How the old primary may still accept writes, if it may: it answers and is not
    /// failed, stopped or deleted — or it cannot be read at all.
    async fn old_primary_may_write(&self, ctx: &StepContext<'_>) -> Option<String> {
        let source = match ctx.database(&self.db.region) {
            Ok(p) => match ctx.read(|| p.describe(&self.db)).await {
                Ok(status) => match status.role {
                    DbRole::Replica { source } => source,
                    DbRole::Primary => return None,
                },
                Err(e) => return Some(format!("the replica {} cannot be read ({e})", self.db)),
            },
            Err(e) => return Some(e.to_string()),
        };
        let read = match ctx.database(&source.region) {
            Ok(p) => ctx.read(|| p.describe(&source)).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(s) if matches!(s.state, DbState::Failed | DbState::Deleted) => None,
            Ok(s) => Some(format!(
                "the old primary {source} is {} and may still accept writes",
                s.state
            )),
            Err(e) => Some(format!(
                "the old primary {source} cannot be read ({e}), so it may still accept writes"
            )),
        }
    }
}

/// Restore a new instance from the latest available snapshot of `source` held in
/// `snapshot_region`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreSnapshot {
    /// The database whose snapshots are used.
    pub source: DbRef,
    /// Region holding the snapshot (a cross-region copy in a region failover).
    pub snapshot_region: String,
    /// The instance to create.
    pub target: DbRef,
}

#[async_trait]
impl StepAction for RestoreSnapshot {
    fn kind(&self) -> &str {
        "restore_snapshot"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(db_role(&self.target), O::Describe, self.target.to_string()),
            Call::provider(
                Role::Database {
                    region: self.snapshot_region.clone(),
                },
                O::ListSnapshots,
                format!("{} (snapshots in {})", self.source, self.snapshot_region),
            ),
            Call::provider(
                db_role(&self.target),
                O::RestoreSnapshot,
                self.target.to_string(),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1200)
    }
    fn loses_data(&self) -> bool {
        true
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("database restored")
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        created(ctx, &self.target).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.database(&self.snapshot_region)?;
        let snaps = ctx
            .read(|| p.list_snapshots(&self.source, &self.snapshot_region))
            .await?;
        let newest = snaps
            .into_iter()
            .filter(|s| s.available)
            .max_by_key(|s| s.created)
            .ok_or_else(|| {
                Error::not_found(
                    "executor",
                    format!(
                        "available snapshot of {} in {}",
                        self.source, self.snapshot_region
                    ),
                )
            })?;
        ctx.data_loss = Some(ctx.age_at_incident(newest.created));
        ctx.check_data_loss(ctx.data_loss, "age of the newest snapshot")
            .await?;
        ctx.database(&self.target.region)?
            .restore_snapshot(&newest, &self.target)
            .await?;
        Ok(())
    }
}

/// Restore a new instance from `source` at a point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePointInTime {
    /// Source database.
    pub source: DbRef,
    /// The instance to create.
    pub target: DbRef,
    /// The point in time.
    pub at: RestorePoint,
}

#[async_trait]
impl StepAction for RestorePointInTime {
    fn kind(&self) -> &str {
        "restore_point_in_time"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let mut calls = vec![Call::provider(
            db_role(&self.target),
            O::Describe,
            self.target.to_string(),
        )];
        if matches!(self.at, RestorePoint::Latest) {
            calls.push(Call::provider(
                db_role(&self.source),
                O::Describe,
                self.source.to_string(),
            ));
        }
        calls.push(Call::provider(
            db_role(&self.target),
            O::RestorePointInTime,
            format!("{} from {}", self.target, self.source),
        ));
        calls
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1500)
    }
    fn loses_data(&self) -> bool {
        true
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("database restored")
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        created(ctx, &self.target).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let point = match self.at {
            RestorePoint::At(t) => Some(t),
            RestorePoint::Latest => {
                let p = ctx.database(&self.source.region)?;
                ctx.read(|| p.describe(&self.source))
                    .await?
                    .latest_restorable_time
            }
        };
        ctx.data_loss = point.map(|t| ctx.age_at_incident(t));
        ctx.check_data_loss(ctx.data_loss, "age of the restore point")
            .await?;
        ctx.database(&self.target.region)?
            .restore_to_point_in_time(&self.source, &self.target, self.at)
            .await?;
        Ok(())
    }
}

/// Wait until a database is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitDatabase {
    /// The database.
    pub db: DbRef,
}

#[async_trait]
impl StepAction for WaitDatabase {
    fn kind(&self) -> &str {
        "wait_database"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            db_role(&self.db),
            O::Describe,
            format!("{} (until available)", self.db),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("database available")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let remaining = ctx.remaining();
        ctx.database(&self.db.region)?
            .wait_available(&self.db, remaining)
            .await?;
        Ok(())
    }
}

/// Take a snapshot (evidence, or before a risky change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateDbSnapshot {
    /// The database.
    pub db: DbRef,
    /// Snapshot identifier.
    pub snapshot_id: String,
}

#[async_trait]
impl StepAction for CreateDbSnapshot {
    fn kind(&self) -> &str {
        "create_db_snapshot"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                db_role(&self.db),
                O::DescribeSnapshot,
                format!("{}/{}", self.db.region, self.snapshot_id),
            ),
            Call::provider(
                db_role(&self.db),
                O::CreateSnapshot,
                format!("{} as {}", self.db, self.snapshot_id),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        match ctx.database(&self.db.region) {
            Ok(p) => exists(
                ctx.read(|| p.describe_snapshot(&self.db.region, &self.snapshot_id))
                    .await,
            ),
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.database(&self.db.region)?
            .create_snapshot(&self.db, &self.snapshot_id)
            .await?;
        Ok(())
    }
}

/// Create a new read replica (to restore redundancy after a promotion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateReplica {
    /// Source (the new primary).
    pub source: DbRef,
    /// Replica to create.
    pub replica: DbRef,
}

#[async_trait]
impl StepAction for CreateReplica {
    fn kind(&self) -> &str {
        "create_replica"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                db_role(&self.replica),
                O::Describe,
                self.replica.to_string(),
            ),
            Call::provider(
                db_role(&self.replica),
                O::CreateReplica,
                format!("{} from {}", self.replica, self.source),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(900)
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        created(ctx, &self.replica).await
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        ctx.database(&self.replica.region)?
            .create_replica(&self.source, &self.replica)
            .await?;
        Ok(())
    }
}
