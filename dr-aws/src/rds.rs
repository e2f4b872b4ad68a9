//! [`RdsDatabase`]: [`DatabaseReplica`] over Amazon RDS DB instances.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::Region;
use aws_sdk_rds::types::{DbInstance, DbSnapshot as SdkSnapshot};
use aws_sdk_rds::Client;
use chrono::{DateTime, Utc};
use dr_core::provider::{
    Capabilities, DatabaseReplica, DbRef, DbRole, DbSnapshot, DbState, DbStatus, Operation,
    RestorePoint,
};
use dr_core::{Error, Result};

use crate::error::{map_sdk, missing, Ctx};

const NAME: &str = "rds";

/// [`DatabaseReplica`] over Amazon RDS DB instances (not Aurora clusters).
///
/// A [`DbRef`]'s region picks the client: one is made per region, from the same settings, on
/// first use. Cross-region snapshot copies and read replicas refer to their source by ARN.
///
/// What RDS does not report, this provider does not invent:
///
/// * `replication_lag` is always `None`: RDS publishes `ReplicaLag` only as a CloudWatch
///   metric; `DescribeDBInstances` has no lag field.
/// * Copying an encrypted snapshot across regions needs a KMS key and a pre-signed URL
///   that the Rust SDK does not generate; only unencrypted snapshots are copied here.
///
/// RDS statuses map to [`DbState`] as: `available` → `Available`; `creating` → `Creating`;
/// `rebooting` → `Rebooting`; `deleting`/`deleted` → `Deleted`; `failed`, `stopped`,
/// `storage-full`, `incompatible-*`, `inaccessible-encryption-credentials`, `restore-error`,
/// `insufficient-capacity` → `Failed` (none of them recovers by itself); every other status
/// (`modifying`, `backing-up`, `upgrading`, `starting`, `stopping`, `maintenance`,
/// `configuring-*`, …) → `Modifying`.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{DatabaseReplica, DbRef};
///
/// let rds = dr_aws::AwsConfig::from_env().await?.build_rds();
/// let replica = DbRef::new("us-west-2", "orders-replica");
/// rds.promote(&replica).await?;
/// rds.wait_available(&replica, Duration::from_secs(3600)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RdsDatabase {
    base: aws_sdk_rds::Config,
    clients: Arc<Mutex<HashMap<String, Client>>>,
    timeout: Option<Duration>,
}

impl RdsDatabase {
    /// A provider whose per-region clients are made from `base` (its region is replaced).
    pub fn from_conf(base: aws_sdk_rds::Config) -> Self {
        RdsDatabase {
            base,
            clients: Arc::default(),
            timeout: None,
        }
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The RDS client for `region`.
    pub fn client(&self, region: &str) -> Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = self
                    .base
                    .to_builder()
                    .region(Region::new(region.to_string()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    async fn instance(&self, db: &DbRef) -> Result<DbInstance> {
        let resource = db.to_string();
        let out = self
            .client(&db.region)
            .describe_db_instances()
            .db_instance_identifier(&db.id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("describe", &resource), e))?;
        out.db_instances()
            .iter()
            .find(|i| i.db_instance_identifier() == Some(db.id.as_str()))
            .cloned()
            .ok_or_else(|| Error::not_found(NAME, resource))
    }

    /// The ARN of an instance, for cross-region references.
    async fn instance_arn(&self, db: &DbRef) -> Result<String> {
        self.instance(db)
            .await?
            .db_instance_arn()
            .map(str::to_string)
            .ok_or_else(|| missing(NAME, "describe", "DBInstanceArn"))
    }

    fn status(&self, region: &str, instance: Option<&DbInstance>, op: &str) -> Result<DbStatus> {
        let instance = instance.ok_or_else(|| missing(NAME, op, "DBInstance"))?;
        to_status(region, instance).ok_or_else(|| missing(NAME, op, "DBInstanceIdentifier"))
    }
}

/// Maps an RDS instance status to a [`DbState`] (see [`RdsDatabase`]).
pub fn db_state(status: &str) -> DbState {
    match status {
        "available" => DbState::Available,
        "creating" => DbState::Creating,
        "rebooting" => DbState::Rebooting,
        "deleting" | "deleted" => DbState::Deleted,
        "failed"
        | "stopped"
        | "storage-full"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "restore-error"
        | "insufficient-capacity" => DbState::Failed,
        s if s.starts_with("incompatible-") => DbState::Failed,
        _ => DbState::Modifying,
    }
}

/// A source reference as RDS reports it: an identifier in the same region, or an ARN
/// (`arn:aws:rds:us-east-1:123456789012:db:orders`) for a cross-region source.
pub(crate) fn source_ref(region: &str, source: &str) -> DbRef {
    let parts: Vec<&str> = source.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "rds", src_region, _, "db", id] => DbRef::new(*src_region, *id),
        _ => DbRef::new(region, source),
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn to_status(region: &str, i: &DbInstance) -> Option<DbStatus> {
    let id = i.db_instance_identifier()?;
    let role = match i.read_replica_source_db_instance_identifier() {
        Some(src) => DbRole::Replica {
            source: source_ref(region, src),
        },
        None => DbRole::Primary,
    };
    let endpoint = i.endpoint().and_then(|e| {
        let addr = e.address()?;
        Some(match e.port() {
            Some(port) => format!("{addr}:{port}"),
            None => addr.to_string(),
        })
    });
    Some(DbStatus {
        db: DbRef::new(region, id),
        state: db_state(i.db_instance_status().unwrap_or("")),
        role,
        endpoint,
        replication_lag: None,
        latest_restorable_time: i.latest_restorable_time().and_then(to_chrono),
    })
}

fn to_snapshot(region: &str, s: &SdkSnapshot) -> Option<DbSnapshot> {
    let id = s.db_snapshot_identifier()?;
    let created = s
        .snapshot_create_time()
        .or(s.original_snapshot_create_time())
        .and_then(to_chrono)
        .unwrap_or_else(Utc::now);
    Some(DbSnapshot {
        region: region.to_string(),
        id: id.to_string(),
        source: DbRef::new(
            s.source_region().unwrap_or(region),
            s.db_instance_identifier().unwrap_or(""),
        ),
        created,
        available: s.status() == Some("available"),
    })
}

fn snapshot_name(region: &str, id: &str) -> String {
    format!("snapshot {region}/{id}")
}

#[async_trait]
impl DatabaseReplica for RdsDatabase {
    fn name(&self) -> &str {
        NAME
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
        let instance = self.instance(db).await?;
        self.status(&db.region, Some(&instance), "describe")
    }

    async fn create_snapshot(&self, db: &DbRef, snapshot_id: &str) -> Result<DbSnapshot> {
        let resource = snapshot_name(&db.region, snapshot_id);
        let out = self
            .client(&db.region)
            .create_db_snapshot()
            .db_instance_identifier(&db.id)
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("create_snapshot", &resource), e))?;
        out.db_snapshot()
            .and_then(|s| to_snapshot(&db.region, s))
            .ok_or_else(|| missing(NAME, "create_snapshot", "DBSnapshot"))
    }

    async fn describe_snapshot(&self, region: &str, snapshot_id: &str) -> Result<DbSnapshot> {
        let resource = snapshot_name(region, snapshot_id);
        let out = self
            .client(region)
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("describe_snapshot", &resource), e))?;
        out.db_snapshots()
            .iter()
            .find_map(|s| to_snapshot(region, s))
            .ok_or_else(|| Error::not_found(NAME, resource))
    }

    async fn list_snapshots(&self, db: &DbRef, region: &str) -> Result<Vec<DbSnapshot>> {
        let resource = format!("snapshots of {db} in {region}");
        let client = self.client(region);
        let mut marker: Option<String> = None;
        let mut snapshots = Vec::new();
        loop {
            let out = client
                .describe_db_snapshots()
                .db_instance_identifier(&db.id)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| map_sdk(self.ctx("list_snapshots", &resource), e))?;
            snapshots.extend(
                out.db_snapshots()
                    .iter()
                    .filter_map(|s| to_snapshot(region, s)),
            );
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(snapshots)
    }

    async fn copy_snapshot(
        &self,
        snapshot: &DbSnapshot,
        target_region: &str,
        target_id: &str,
    ) -> Result<DbSnapshot> {
        let source = if snapshot.id.starts_with("arn:") {
            snapshot.id.clone()
        } else {
            let resource = snapshot_name(&snapshot.region, &snapshot.id);
            let out = self
                .client(&snapshot.region)
                .describe_db_snapshots()
                .db_snapshot_identifier(&snapshot.id)
                .send()
                .await
                .map_err(|e| map_sdk(self.ctx("copy_snapshot", &resource), e))?;
            out.db_snapshots()
                .first()
                .and_then(|s| s.db_snapshot_arn())
                .map(str::to_string)
                .ok_or_else(|| Error::not_found(NAME, resource))?
        };
        let resource = snapshot_name(target_region, target_id);
        let out = self
            .client(target_region)
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(target_id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("copy_snapshot", &resource), e))?;
        out.db_snapshot()
            .and_then(|s| to_snapshot(target_region, s))
            .ok_or_else(|| missing(NAME, "copy_snapshot", "DBSnapshot"))
    }

    async fn restore_snapshot(&self, snapshot: &DbSnapshot, target: &DbRef) -> Result<DbStatus> {
        if snapshot.region != target.region {
            return Err(Error::InvalidRequest {
                provider: NAME.into(),
                operation: "restore_snapshot".into(),
                message: format!(
                    "snapshot {} is in {}, target {target}: copy it to {} first",
                    snapshot.id, snapshot.region, target.region
                ),
            });
        }
        let resource = target.to_string();
        let out = self
            .client(&target.region)
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(&snapshot.id)
            .db_instance_identifier(&target.id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("restore_snapshot", &resource), e))?;
        self.status(&target.region, out.db_instance(), "restore_snapshot")
    }

    async fn restore_to_point_in_time(
        &self,
        source: &DbRef,
        target: &DbRef,
        at: RestorePoint,
    ) -> Result<DbStatus> {
        if source.region != target.region {
            return Err(Error::InvalidRequest {
                provider: NAME.into(),
                operation: "restore_to_point_in_time".into(),
                message: format!("{source} and {target} are in different regions"),
            });
        }
        let resource = target.to_string();
        let req = self
            .client(&target.region)
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(&source.id)
            .target_db_instance_identifier(&target.id);
        let req = match at {
            RestorePoint::Latest => req.use_latest_restorable_time(true),
            RestorePoint::At(t) => {
                req.restore_time(aws_smithy_types::DateTime::from_secs_and_nanos(
                    t.timestamp(),
                    t.timestamp_subsec_nanos(),
                ))
            }
        };
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("restore_to_point_in_time", &resource), e))?;
        self.status(
            &target.region,
            out.db_instance(),
            "restore_to_point_in_time",
        )
    }

    async fn promote(&self, replica: &DbRef) -> Result<DbStatus> {
        let resource = replica.to_string();
        let out = self
            .client(&replica.region)
            .promote_read_replica()
            .db_instance_identifier(&replica.id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("promote", &resource), e))?;
        self.status(&replica.region, out.db_instance(), "promote")
    }

    async fn reboot(&self, db: &DbRef, force_failover: bool) -> Result<DbStatus> {
        let resource = db.to_string();
        let out = self
            .client(&db.region)
            .reboot_db_instance()
            .db_instance_identifier(&db.id)
            .force_failover(force_failover)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("reboot", &resource), e))?;
        self.status(&db.region, out.db_instance(), "reboot")
    }

    async fn create_replica(&self, source: &DbRef, replica: &DbRef) -> Result<DbStatus> {
        let source_id = if source.region == replica.region {
            source.id.clone()
        } else {
            self.instance_arn(source).await?
        };
        let resource = replica.to_string();
        let out = self
            .client(&replica.region)
            .create_db_instance_read_replica()
            .db_instance_identifier(&replica.id)
            .source_db_instance_identifier(source_id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("create_replica", &resource), e))?;
        self.status(&replica.region, out.db_instance(), "create_replica")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(db_state("available"), DbState::Available);
        assert_eq!(db_state("backing-up"), DbState::Modifying);
        assert_eq!(db_state("incompatible-parameters"), DbState::Failed);
        assert_eq!(db_state("deleting"), DbState::Deleted);
        assert!(db_state("upgrading").is_transitional());
    }

    #[test]
    fn sources_by_id_or_arn() {
        assert_eq!(
            source_ref("us-west-2", "arn:aws:rds:us-east-1:123456789012:db:orders"),
            DbRef::new("us-east-1", "orders")
        );
        assert_eq!(
            source_ref("us-west-2", "orders"),
            DbRef::new("us-west-2", "orders")
        );
    }
}
