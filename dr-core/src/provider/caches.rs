//! `CacheRestore`: managed caches (Redis) restored from their backups in another region.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Capabilities;
use crate::Result;

/// State of a managed cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// Being created (restored from a backup).
    Creating,
    /// Answering.
    Available,
    /// Being changed (resized, rebooted) but answering.
    Modifying,
    /// Being deleted.
    Deleting,
    /// Failed: it will not become available by itself.
    Failed,
}

/// A managed cache (an ElastiCache cluster, a simulated one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheCluster {
    /// Cache id at the provider (`shop-sessions-dr`).
    pub id: String,
    /// Region.
    pub region: String,
    /// State.
    pub state: CacheState,
    /// `host:port` clients connect to, once the provider knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// State of a cache backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackupState {
    /// Being taken or copied.
    Creating,
    /// Complete: a cache can be restored from it.
    Available,
    /// Failed.
    Failed,
}

/// A backup (snapshot) of a cache, in one region.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheBackup {
    /// Backup name at the provider (`shop-sessions-2026-12-01-0400`).
    pub name: String,
    /// The cache it was taken of.
    pub cache: String,
    /// Region the backup is in.
    pub region: String,
    /// State.
    pub state: CacheBackupState,
    /// When its data was taken, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<DateTime<Utc>>,
}

/// Managed caches restored from their backups (ElastiCache, the simulated cloud).
///
/// A region failover restores each cache of the failed region from its newest backup in the
/// recovery region, under an id the plan names: a resumed run that finds that id already
/// there waits for it instead of restoring a second copy.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{CacheBackupState, CacheRestore};
///
/// async fn restore_newest(c: &dyn CacheRestore) -> dr_core::Result<String> {
///     let backups = c.list_cache_backups("us-west-2", "shop-sessions").await?;
///     let newest = backups
///         .iter()
///         .filter(|b| b.state == CacheBackupState::Available)
///         .max_by_key(|b| b.taken_at)
///         .ok_or_else(|| dr_core::Error::NotFound {
///             provider: c.name().into(),
///             resource: "a backup of shop-sessions".into(),
///         })?;
///     Ok(c.restore_cache("us-west-2", "shop-sessions-dr", &newest.name, None).await?.id)
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CacheRestore: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `elasticache`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// One cache.
    ///
    /// # Errors
    /// `NotFound` (cache).
    async fn describe_cache(&self, region: &str, id: &str) -> Result<CacheCluster>;

    /// The backups in `region` taken of the cache `cache` (which may be in another region
    /// or gone), oldest first where the provider gives their time.
    ///
    /// # Errors
    /// Provider errors; a cache without backups there yields an empty list.
    async fn list_cache_backups(&self, region: &str, cache: &str) -> Result<Vec<CacheBackup>>;

    /// Starts creating the cache `id` in `region` from the backup `backup` (of that region),
    /// with the node type `node_type` or, when `None`, the backup's own.
    ///
    /// # Errors
    /// `AlreadyExists` (a cache `id` exists), `NotFound` (backup), `InvalidState` (the
    /// backup is not available).
    async fn restore_cache(
        &self,
        region: &str,
        id: &str,
        backup: &str,
        node_type: Option<&str>,
    ) -> Result<CacheCluster>;
}

/// A `CacheRestore` trait object.
pub type DynCacheRestore = dyn CacheRestore;

#[async_trait]
impl<T: CacheRestore + ?Sized> CacheRestore for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn describe_cache(&self, region: &str, id: &str) -> Result<CacheCluster> {
        (**self).describe_cache(region, id).await
    }
    async fn list_cache_backups(&self, region: &str, cache: &str) -> Result<Vec<CacheBackup>> {
        (**self).list_cache_backups(region, cache).await
    }
    async fn restore_cache(
        &self,
        region: &str,
        id: &str,
        backup: &str,
        node_type: Option<&str>,
    ) -> Result<CacheCluster> {
        (**self).restore_cache(region, id, backup, node_type).await
    }
}
