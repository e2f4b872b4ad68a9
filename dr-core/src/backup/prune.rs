//! Applying a retention policy to a store.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::manifest::{manifest_key, BackupManifest, RetentionClass, MANIFEST_SUFFIX};
use super::retention::{retain, BackupInfo, RetainReason, RetentionDecision, RetentionPolicy};
use crate::provider::{DynSnapshotStore, SnapshotStoreExt};
use crate::Result;

/// What [`prune`] decided and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// `true` when nothing was deleted on purpose.
    pub dry_run: bool,
    /// The decision, over all sources (keep lists manual backups with
    /// [`RetainReason::Manual`]).
    pub decision: RetentionDecision,
    /// Backups deleted (object and manifest); empty in a dry run.
    pub deleted: Vec<String>,
    /// Manifests whose object is missing (lost, or an interrupted prune): left in place and
    /// taken out of the decision, so a backup that is gone never fills a retention slot.
    pub dangling_manifests: Vec<String>,
    /// Manifests that cannot be read: their backups are left alone.
    pub unreadable_manifests: Vec<String>,
}

/// Applies `policy` to the backups under `prefix` and, unless `dry_run`, deletes what it
/// does not keep.
///
/// Lists the manifests under `prefix` and groups the backups by
/// [`source`](BackupManifest::source): each source gets its own [`retain`] (so two databases
/// under one prefix do not compete for slots). [`RetentionClass::Manual`] backups are always
/// kept. A dry run reports exactly the decision a real run would carry out.
///
/// Each deleted backup loses its object first and its manifest last (see the
/// [module documentation](super) for why). Deletions are idempotent, so an interrupted prune
/// can simply be run again.
///
/// # Errors
/// Listing errors, and the first deletion that fails (backups deleted before it stay
/// deleted).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::sync::Arc;
/// use chrono::{Duration, Utc};
/// use dr_core::backup::{prune, Backups, RetentionClass, RetentionPolicy, WriteOptions};
/// use dr_core::store::InMemoryStore;
/// use futures::StreamExt;
///
/// let store = Arc::new(InMemoryStore::new());
/// let backups = Backups::new(store.clone());
/// let now = Utc::now();
/// for days in 0..5 {
///     let data = futures::stream::iter([Ok(bytes::Bytes::from("dump"))]).boxed();
///     let opts = WriteOptions::default().with_created(now - Duration::days(days));
///     backups.write(&format!("db/{days}"), data, "orders-db", RetentionClass::Daily, opts).await?;
/// }
/// let policy = RetentionPolicy { daily: 3, weekly: 0, monthly: 0, yearly: 0 };
/// let report = prune(store.as_ref(), "db/", &policy, now, false).await?;
/// assert_eq!(report.deleted, ["db/3", "db/4"]);
/// assert_eq!(backups.list("db/").await?.len(), 3);
/// # Ok(()) }
/// ```
pub async fn prune(
    store: &DynSnapshotStore,
    prefix: &str,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<PruneReport> {
    let mut objects = BTreeSet::new();
    let mut manifest_keys = Vec::new();
    for meta in store.list_all(prefix).await? {
        match meta.key.strip_suffix(MANIFEST_SUFFIX) {
            Some(k) => manifest_keys.push(k.to_string()),
            None => {
                objects.insert(meta.key);
            }
        }
    }
    let mut report = PruneReport {
        dry_run,
        ..PruneReport::default()
    };
    let mut by_source: BTreeMap<String, Vec<BackupInfo>> = BTreeMap::new();
    let mut manual = Vec::new();
    for key in manifest_keys {
        let parsed = match store.get_bytes(&manifest_key(&key)).await {
            Ok(bytes) => serde_json::from_slice::<BackupManifest>(&bytes).ok(),
            // Deleted while listing.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let Some(m) = parsed.filter(|m| m.key == key) else {
            report.unreadable_manifests.push(key);
            continue;
        };
        if !objects.contains(&key) {
            report.dangling_manifests.push(key);
        } else if m.retention_class == RetentionClass::Manual {
            manual.push((key, vec![RetainReason::Manual]));
        } else {
            by_source
                .entry(m.source)
                .or_default()
                .push(BackupInfo::new(key, m.created));
        }
    }
    for backups in by_source.values() {
        let d = retain(policy, backups, now);
        report.decision.keep.extend(d.keep);
        report.decision.delete.extend(d.delete);
    }
    report.decision.keep.extend(manual);
    if !dry_run {
        for key in &report.decision.delete {
            store.delete(key).await?;
            store.delete(&manifest_key(key)).await?;
            report.deleted.push(key.clone());
        }
    }
    Ok(report)
}
