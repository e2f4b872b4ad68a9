//! Simulated managed caches and their backups: a cache restored from a backup is `creating`
//! until the configured cache restore duration has passed, then `available`; a cache in a
//! failed region cannot be read or restored into.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SimInstant as Instant;
use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    CacheBackup, CacheBackupState, CacheCluster, CacheRestore, CacheState, Capabilities, Operation,
};
use crate::{Error, Result};

const ROLE: &str = "caches";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Cache {
    ready_at: Instant,
    /// The backup it was restored from, if it was.
    from: Option<String>,
    node_type: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Backup {
    cache: String,
    taken_at: DateTime<Utc>,
    node_type: String,
}

/// Caches and cache backups of the simulated cloud, by (region, id).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Caches {
    caches: BTreeMap<(String, String), Cache>,
    backups: BTreeMap<(String, String), Backup>,
}

/// The node type of a cache the simulation provisions.
const NODE_TYPE: &str = "cache.sim.medium";

fn key(region: &str, id: &str) -> (String, String) {
    (region.to_string(), id.to_string())
}

impl Caches {
    fn view(&self, region: &str, id: &str, now: Instant) -> Result<CacheCluster> {
        let c = self
            .caches
            .get(&key(region, id))
            .ok_or_else(|| Error::not_found(PROVIDER, format!("cache {region}/{id}")))?;
        let available = now >= c.ready_at;
        Ok(CacheCluster {
            id: id.to_string(),
            region: region.to_string(),
            state: if available {
                CacheState::Available
            } else {
                CacheState::Creating
            },
            endpoint: available.then(|| format!("{id}.{region}.cache.sim:6379")),
        })
    }
}

impl SimCloud {
    /// Adds an available cache `id` in `region`.
    pub fn add_cache(&self, region: &str, id: &str) {
        self.with_state(|st, env| {
            st.caches.caches.insert(
                key(region, id),
                Cache {
                    ready_at: env.now,
                    from: None,
                    node_type: NODE_TYPE.into(),
                },
            )
        });
    }

    /// Adds an available backup `name` of the cache `cache` in `region`, taken `age` ago.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> dr_core::Result<()> {
    /// use std::time::Duration;
    /// use dr_core::provider::{CacheRestore, CacheState};
    /// use dr_core::sim::SimCloud;
    ///
    /// let cloud = SimCloud::new(1);
    /// cloud.add_cache_backup("us-west-2", "sessions", "sessions-0400", Duration::from_secs(3600));
    /// let caches = cloud.caches();
    /// let backups = caches.list_cache_backups("us-west-2", "sessions").await?;
    /// assert_eq!(backups[0].name, "sessions-0400");
    /// let c = caches.restore_cache("us-west-2", "sessions-dr", "sessions-0400", None).await?;
    /// assert_eq!(c.state, CacheState::Creating);
    /// tokio::time::sleep(cloud.config().cache_restore.get()).await;
    /// let c = caches.describe_cache("us-west-2", "sessions-dr").await?;
    /// assert_eq!(c.state, CacheState::Available);
    /// # Ok(()) }
    /// ```
    pub fn add_cache_backup(&self, region: &str, cache: &str, name: &str, age: Duration) {
        self.with_state(|st, env| {
            st.caches.backups.insert(
                key(region, name),
                Backup {
                    cache: cache.to_string(),
                    taken_at: env.wall
                        - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX),
                    node_type: NODE_TYPE.into(),
                },
            )
        });
    }

    /// Removes every cache backup held in `region` (backups that never arrived there); how
    /// many there were.
    pub fn remove_cache_backups(&self, region: &str) -> usize {
        self.with_state(|st, _| {
            let before = st.caches.backups.len();
            st.caches.backups.retain(|(r, _), _| r != region);
            before - st.caches.backups.len()
        })
    }

    /// Removes the cache `id` of `region`; whether it was there.
    pub fn remove_cache(&self, region: &str, id: &str) -> bool {
        self.with_state(|st, _| st.caches.caches.remove(&key(region, id)).is_some())
    }

    /// Every cache of the cloud with the backup it was restored from, if any (for
    /// assertions).
    pub fn caches_restored(&self) -> Vec<(CacheCluster, Option<String>)> {
        self.with_state(|st, env| {
            st.caches
                .caches
                .iter()
                .filter_map(|((r, id), c)| {
                    let view = st.caches.view(r, id, env.now).ok()?;
                    Some((view, c.from.clone()))
                })
                .collect()
        })
    }

    /// The managed cache service (every region of the cloud).
    pub fn caches(&self) -> std::sync::Arc<dyn CacheRestore> {
        std::sync::Arc::new(SimCaches {
            cloud: self.clone(),
        })
    }
}

/// The simulated cloud's [`CacheRestore`] service ([`SimCloud::caches`]).
#[derive(Debug, Clone)]
pub struct SimCaches {
    cloud: SimCloud,
}

impl SimCaches {
    async fn call<T>(
        &self,
        op: Operation,
        target: &str,
        regions: &[&str],
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        self.cloud.call(ROLE, op, target, regions, f).await
    }
}

#[async_trait]
impl CacheRestore for SimCaches {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([DescribeCache, ListCacheBackups, RestoreCache])
    }

    async fn describe_cache(&self, region: &str, id: &str) -> Result<CacheCluster> {
        let target = format!("{region}/{id}");
        self.call(Operation::DescribeCache, &target, &[region], |st, env| {
            st.caches.view(region, id, env.now)
        })
        .await
    }

    async fn list_cache_backups(&self, region: &str, cache: &str) -> Result<Vec<CacheBackup>> {
        let target = format!("{region}/{cache}");
        self.call(Operation::ListCacheBackups, &target, &[region], |st, _| {
            let mut out: Vec<CacheBackup> = st
                .caches
                .backups
                .iter()
                .filter(|((r, _), b)| r == region && b.cache == cache)
                .map(|((r, name), b)| CacheBackup {
                    name: name.clone(),
                    cache: b.cache.clone(),
                    region: r.clone(),
                    state: CacheBackupState::Available,
                    taken_at: Some(b.taken_at),
                })
                .collect();
            out.sort_by_key(|b| b.taken_at);
            Ok(out)
        })
        .await
    }

    async fn restore_cache(
        &self,
        region: &str,
        id: &str,
        backup: &str,
        node_type: Option<&str>,
    ) -> Result<CacheCluster> {
        let target = format!("{region}/{id}");
        self.call(Operation::RestoreCache, &target, &[region], |st, env| {
            let c = &mut st.caches;
            if c.caches.contains_key(&key(region, id)) {
                return Err(Error::AlreadyExists {
                    provider: PROVIDER.into(),
                    resource: format!("cache {region}/{id}"),
                });
            }
            let b = c.backups.get(&key(region, backup)).ok_or_else(|| {
                Error::not_found(PROVIDER, format!("cache backup {region}/{backup}"))
            })?;
            let node_type = node_type.map_or_else(|| b.node_type.clone(), str::to_string);
            c.caches.insert(
                key(region, id),
                Cache {
                    ready_at: env.now + env.cfg.cache_restore.get(),
                    from: Some(backup.to_string()),
                    node_type,
                },
            );
            c.view(region, id, env.now)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backups_are_listed_oldest_first_and_only_of_their_cache_and_region() {
        let cloud = SimCloud::new(1);
        let h = |n: u64| Duration::from_secs(n * 3600);
        cloud.add_cache_backup("west", "sessions", "newer", h(1));
        cloud.add_cache_backup("west", "sessions", "older", h(5));
        cloud.add_cache_backup("west", "other", "unrelated", h(1));
        cloud.add_cache_backup("east", "sessions", "elsewhere", h(1));
        let list = cloud
            .caches()
            .list_cache_backups("west", "sessions")
            .await
            .unwrap();
        let names: Vec<_> = list.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["older", "newer"]);
        assert!(list.iter().all(|b| b.state == CacheBackupState::Available));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restore_is_refused_twice_and_without_its_backup_and_in_a_failed_region() {
        let cloud = SimCloud::new(1);
        cloud.add_cache_backup("west", "sessions", "b1", Duration::from_secs(60));
        let caches = cloud.caches();
        caches
            .restore_cache("west", "dr", "b1", Some("cache.r6g.large"))
            .await
            .unwrap();
        let again = caches.restore_cache("west", "dr", "b1", None).await;
        assert!(
            matches!(again, Err(Error::AlreadyExists { .. })),
            "{again:?}"
        );
        let missing = caches.restore_cache("west", "dr2", "nope", None).await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );
        cloud.fail_region("west");
        let down = caches.describe_cache("west", "dr").await;
        assert!(down.is_err(), "{down:?}");
        let restored = cloud.caches_restored();
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].1.as_deref(), Some("b1"));
    }
}
