//! Dump steps: pick a database dump from a snapshot store, verify it against its manifest
//! before anything is touched, restore it into a new instance.
//!
//! A dump is a backup written by [`Backups`] (an object and its manifest). Its snapshot id at
//! the database provider is its key's last segment without extension
//! (`dumps/orders-db/2026-11-30.sql` → `2026-11-30`): the way providers that keep dumps as
//! snapshots name them (dr-postgres with a dump store, the simulated cloud).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{to_json, Call, Observed, Role, StepAction, StepContext};
use crate::backup::{BackupManifest, Backups, VerifyStatus};
use crate::provider::{DbRef, DbSnapshot, Operation as O};
use crate::{Error, Result};

/// The dump under `prefix` named `key`, or the newest one.
async fn select(
    ctx: &StepContext<'_>,
    store: &str,
    prefix: &str,
    key: Option<&str>,
) -> Result<BackupManifest> {
    let backups = Backups::new(ctx.store(store)?.clone());
    match key {
        Some(k) => ctx.read(|| backups.manifest(k)).await,
        None => ctx
            .read(|| backups.list(prefix))
            .await?
            .into_iter()
            .max_by_key(|m| m.created)
            .ok_or_else(|| Error::not_found(store, format!("a dump under `{prefix}`"))),
    }
}

/// The snapshot id of the dump at `key`.
pub fn snapshot_id(key: &str) -> &str {
    let last = key.rsplit('/').next().unwrap_or(key);
    last.rsplit_once('.').map_or(last, |(stem, _)| stem)
}

fn selection_calls(store: &str, prefix: &str, key: Option<&str>) -> Vec<Call> {
    let role = Role::Store {
        store: store.to_string(),
    };
    match key {
        Some(k) => vec![Call::provider(role, O::Get, format!("{store}/{k}"))],
        None => vec![
            Call::provider(role.clone(), O::List, format!("{store}/{prefix}")),
            Call::provider(role, O::Get, format!("{store}/{prefix}* (manifests)")),
        ],
    }
}

/// Picks the dump (`key`, else the newest under `prefix`) and verifies its content against
/// its manifest's checksum; a corrupt, incomplete or unreadable dump fails the step
/// permanently, before anything is restored.
///
/// # Examples
///
/// ```
/// use dr_core::step::{dump::VerifyDump, StepAction};
///
/// let step = VerifyDump { store: "backups".into(), prefix: "dumps/orders-db/".into(), key: None };
/// assert_eq!(step.kind(), "verify_dump");
/// assert!(step.idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyDump {
    /// The snapshot store holding the dumps.
    pub store: String,
    /// Where the dumps are.
    pub prefix: String,
    /// A named dump (default: the newest under `prefix`).
    pub key: Option<String>,
}

#[async_trait]
impl StepAction for VerifyDump {
    fn kind(&self) -> &str {
        "verify_dump"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let mut calls = selection_calls(&self.store, &self.prefix, self.key.as_deref());
        calls.push(Call::provider(
            Role::Store {
                store: self.store.clone(),
            },
            O::Get,
            format!("{}/{} (verified)", self.store, self.prefix),
        ));
        calls
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(120)
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let m = select(ctx, &self.store, &self.prefix, self.key.as_deref()).await?;
        let backups = Backups::new(ctx.store(&self.store)?.clone());
        let report = ctx.read(|| backups.verify(&m.key)).await?;
        let refuse = |detail: String| Error::InvalidState {
            provider: self.store.clone(),
            resource: format!("dump {}", m.key),
            state: detail,
            operation: "restore it".into(),
        };
        match report.status {
            VerifyStatus::Ok { size, .. } => {
                ctx.data_loss = Some(ctx.age_at_incident(m.created));
                ctx.output = Some(serde_json::json!({
                    "dump": m.key,
                    "created": m.created,
                    "size": size,
                    "sha256": m.sha256,
                }));
                Ok(())
            }
            VerifyStatus::Corrupt { detail } => Err(refuse(format!("corrupt ({detail})"))),
            other => Err(refuse(format!("not restorable ({other:?})"))),
        }
    }
}

/// Restores the dump (`key`, else the newest under `prefix`, as [`VerifyDump`] picked it)
/// into the new instance `target`, through the database provider's snapshot restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreDump {
    /// The snapshot store holding the dumps.
    pub store: String,
    /// Where the dumps are.
    pub prefix: String,
    /// A named dump (default: the newest under `prefix`).
    pub key: Option<String>,
    /// The database the dump was taken of.
    pub source: DbRef,
    /// The instance to create.
    pub target: DbRef,
}

#[async_trait]
impl StepAction for RestoreDump {
    fn kind(&self) -> &str {
        "restore_dump"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let db = Role::Database {
            region: self.target.region.clone(),
        };
        let mut calls = vec![Call::provider(
            db.clone(),
            O::Describe,
            self.target.to_string(),
        )];
        calls.extend(selection_calls(
            &self.store,
            &self.prefix,
            self.key.as_deref(),
        ));
        calls.push(Call::provider(
            db,
            O::RestoreSnapshot,
            format!("{} from a dump in {}", self.target, self.store),
        ));
        calls
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1800)
    }
    fn loses_data(&self) -> bool {
        true
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("database restored")
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        match ctx.database(&self.target.region) {
            Ok(p) => super::exists(ctx.read(|| p.describe(&self.target)).await),
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let m = select(ctx, &self.store, &self.prefix, self.key.as_deref()).await?;
        let snapshot = DbSnapshot {
            region: self.target.region.clone(),
            id: snapshot_id(&m.key).to_string(),
            source: self.source.clone(),
            created: m.created,
            available: true,
        };
        ctx.data_loss = Some(ctx.age_at_incident(m.created));
        ctx.database(&self.target.region)?
            .restore_snapshot(&snapshot, &self.target)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_id;

    #[test]
    fn snapshot_ids_are_the_key_stems() {
        assert_eq!(snapshot_id("dumps/orders-db/2026-11-30.sql"), "2026-11-30");
        assert_eq!(snapshot_id("nightly"), "nightly");
    }
}
