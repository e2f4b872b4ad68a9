//! Backup steps: wait for and copy database snapshots, export a namespace as a backup with
//! a manifest, verify a store's backups, prune them by grandfather-father-son retention.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{exists, to_json, Call, Observed, Role, StepAction, StepContext};
use crate::backup::{Backups, RetentionClass, RetentionPolicy, WriteOptions};
use crate::provider::Operation as O;
use crate::{Error, Result};

fn db(region: &str) -> Role {
    Role::Database {
        region: region.to_string(),
    }
}

fn store(name: &str) -> Role {
    Role::Store {
        store: name.to_string(),
    }
}

/// Waits until snapshot `id` in `region` is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitDbSnapshot {
    /// Region holding the snapshot.
    pub region: String,
    /// Snapshot id.
    pub id: String,
}

#[async_trait]
impl StepAction for WaitDbSnapshot {
    fn kind(&self) -> &str {
        "wait_db_snapshot"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            db(&self.region),
            O::DescribeSnapshot,
            format!("{}/{} (until available)", self.region, self.id),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(600)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.database(&self.region)?;
        let budget = ctx.remaining();
        let mut wait = super::Backoff::new(budget, Duration::from_secs(30));
        loop {
            let snap = ctx
                .read(|| p.describe_snapshot(&self.region, &self.id))
                .await?;
            if snap.available {
                return Ok(());
            }
            if wait.expired() {
                return Err(Error::Timeout {
                    operation: format!("waiting for snapshot {}/{}", self.region, self.id),
                    after: budget,
                });
            }
            wait.sleep().await;
        }
    }
}

/// Copies snapshot `id` of `region` to `target_region` as `target_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyDbSnapshot {
    /// Region holding the snapshot.
    pub region: String,
    /// Snapshot id.
    pub id: String,
    /// Region to copy to.
    pub target_region: String,
    /// Id of the copy.
    pub target_id: String,
}

#[async_trait]
impl StepAction for CopyDbSnapshot {
    fn kind(&self) -> &str {
        "copy_db_snapshot"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                db(&self.target_region),
                O::DescribeSnapshot,
                format!("{}/{}", self.target_region, self.target_id),
            ),
            Call::provider(
                db(&self.region),
                O::DescribeSnapshot,
                format!("{}/{}", self.region, self.id),
            ),
            Call::provider(
                db(&self.target_region),
                O::CopySnapshot,
                format!(
                    "{}/{} to {}/{}",
                    self.region, self.id, self.target_region, self.target_id
                ),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        match ctx.database(&self.target_region) {
            Ok(p) => exists(
                ctx.read(|| p.describe_snapshot(&self.target_region, &self.target_id))
                    .await,
            ),
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let source = ctx.database(&self.region)?;
        let snap = ctx
            .read(|| source.describe_snapshot(&self.region, &self.id))
            .await?;
        ctx.database(&self.target_region)?
            .copy_snapshot(&snap, &self.target_region, &self.target_id)
            .await?;
        Ok(())
    }
}

/// Exports a namespace's objects into a store as a backup: the object and its manifest
/// (checksum, size, source, time), so it can be verified and pruned like any backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupResources {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Store name.
    pub store: String,
    /// Key of the backup.
    pub key: String,
}

#[async_trait]
impl StepAction for BackupResources {
    fn kind(&self) -> &str {
        "backup_resources"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                Role::Cluster {
                    cluster: self.cluster.clone(),
                },
                O::Export,
                format!("{}/{}", self.cluster, self.namespace),
            ),
            Call::provider(
                store(&self.store),
                O::Put,
                format!("{}/{} (and its manifest)", self.store, self.key),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let cp = ctx.cluster(&self.cluster)?;
        let manifests = ctx
            .read(|| cp.export(&self.cluster, &self.namespace, &[]))
            .await?;
        let mut yaml = String::new();
        for m in &manifests {
            yaml.push_str("---\n");
            yaml.push_str(m.body.trim_end());
            yaml.push('\n');
        }
        let backups = Backups::new(ctx.store(&self.store)?.clone());
        let data = futures::stream::iter([Ok(bytes::Bytes::from(yaml))]);
        let m = backups
            .write(
                &self.key,
                Box::pin(data),
                &format!("namespace {}/{}", self.cluster, self.namespace),
                RetentionClass::Daily,
                WriteOptions::default().with_created(ctx.now()),
            )
            .await?;
        ctx.output = Some(serde_json::json!({ "key": m.key, "sha256": m.sha256, "size": m.size }));
        Ok(())
    }
}

/// Verifies every backup under `prefix` of a store against its manifest; fails, listing
/// them, when any is corrupt, incomplete or unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyBackups {
    /// Store name.
    pub store: String,
    /// Prefix of the backups.
    pub prefix: String,
}

#[async_trait]
impl StepAction for VerifyBackups {
    fn kind(&self) -> &str {
        "verify_backups"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                store(&self.store),
                O::List,
                format!("{}/{}", self.store, self.prefix),
            ),
            Call::provider(
                store(&self.store),
                O::Get,
                format!(
                    "{}/{}* (every backup and manifest)",
                    self.store, self.prefix
                ),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(120)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let backups = Backups::new(ctx.store(&self.store)?.clone());
        let reports = ctx.read(|| backups.verify_all(&self.prefix)).await?;
        let bad: Vec<String> = reports
            .iter()
            .filter(|r| !r.is_ok())
            .map(|r| format!("{} ({:?})", r.key, r.status))
            .collect();
        ctx.output = Some(serde_json::json!({
            "verified": reports.len() - bad.len(),
            "failed": bad,
        }));
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidState {
                provider: self.store.clone(),
                resource: format!(
                    "{} of {} backups under {}",
                    bad.len(),
                    reports.len(),
                    self.prefix
                ),
                state: format!("not intact: {}", bad.join(", ")),
                operation: "prune".into(),
            })
        }
    }
}

/// Deletes the backups under `prefix` that `policy` does not keep (objects first, manifests
/// last); manual backups are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneBackups {
    /// Store name.
    pub store: String,
    /// Prefix of the backups.
    pub prefix: String,
    /// What is kept.
    pub policy: RetentionPolicy,
}

#[async_trait]
impl StepAction for PruneBackups {
    fn kind(&self) -> &str {
        "prune_backups"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::provider(
                store(&self.store),
                O::List,
                format!("{}/{}", self.store, self.prefix),
            ),
            Call::provider(
                store(&self.store),
                O::Get,
                format!("{}/{}* (manifests)", self.store, self.prefix),
            ),
            Call::provider(
                store(&self.store),
                O::Delete,
                format!(
                    "{}/{}* (what the retention does not keep)",
                    self.store, self.prefix
                ),
            ),
        ]
    }
    fn idempotent(&self) -> bool {
        // Deleting what is already gone is harmless, and the retention decision is the same.
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let s = ctx.store(&self.store)?;
        let report =
            crate::backup::prune(s.as_ref(), &self.prefix, &self.policy, ctx.now(), false).await?;
        ctx.output = Some(serde_json::to_value(&report).unwrap_or_default());
        Ok(())
    }
}
