//! Managed cache steps: restore a cache from its newest backup in the recovery region, wait
//! until it answers.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{exists, to_json, Call, Observed, Role, StepAction, StepContext};
use crate::provider::{CacheBackup, CacheBackupState, CacheCluster, CacheState, Operation as O};
use crate::{Error, Result};

fn role(region: &str) -> Role {
    Role::Caches {
        region: region.to_string(),
    }
}

/// Restore the cache `target` in `region` from the newest available backup there of the
/// cache `source` (the cache of the failed region), with `node_type` or the backup's own.
///
/// It is not idempotent: a second restore would be a second cache. Before its first
/// attempt, and after an attempt whose outcome is unknown, it reads whether `target`
/// exists; a cache already there (a resumed run) is taken as restored. The backup it chose
/// is remembered, so a retry restores from the same one. Its output names the backup, when
/// it was taken and its age at the incident: what the restored cache lacks. The restored
/// cache is left in place by a compensation (it serves nothing until traffic moves).
///
/// # Examples
///
/// ```
/// use dr_core::step::{cache::RestoreCache, Action};
///
/// let step = Action::new(RestoreCache {
///     region: "us-west-2".into(),
///     source: "shop-sessions".into(),
///     target: "shop-sessions-dr".into(),
///     node_type: None,
/// });
/// assert_eq!(step.kind(), "restore_cache");
/// assert!(!step.is_idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreCache {
    /// The region restored into, where the backups are.
    pub region: String,
    /// The cache whose backups are used.
    pub source: String,
    /// The cache to create.
    pub target: String,
    /// Node type of the new cache (default: the backup's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
}

/// The newest available backup: the latest `taken_at`, or, among backups without one, the
/// last listed.
fn newest(backups: Vec<CacheBackup>) -> Option<CacheBackup> {
    backups
        .into_iter()
        .filter(|b| b.state == CacheBackupState::Available)
        .enumerate()
        .max_by_key(|(i, b)| (b.taken_at, *i))
        .map(|(_, b)| b)
}

#[async_trait]
impl StepAction for RestoreCache {
    fn kind(&self) -> &str {
        "restore_cache"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        let r = role(&self.region);
        let target = format!("{}/{}", self.region, self.target);
        vec![
            Call::provider(r.clone(), O::DescribeCache, target.clone()),
            Call::provider(
                r.clone(),
                O::ListCacheBackups,
                format!("{}/{} (backups)", self.region, self.source),
            ),
            Call::provider(r, O::RestoreCache, target),
        ]
    }
    fn idempotent(&self) -> bool {
        false
    }
    /// The restore it starts, for a small cache (planned as a call, then a wait that
    /// carries this estimate); a plan with a large one sets `estimates: { restore_cache: … }`.
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("cache restore started")
    }
    async fn observe(&self, ctx: &mut StepContext<'_>) -> Observed {
        match ctx.caches(&self.region) {
            Ok(p) => exists(
                ctx.read(|| p.describe_cache(&self.region, &self.target))
                    .await,
            ),
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.caches(&self.region)?;
        let backup = match ctx.memory.get::<CacheBackup>("backup") {
            Some(b) => b,
            None => {
                let listed = ctx
                    .read(|| p.list_cache_backups(&self.region, &self.source))
                    .await?;
                let b = newest(listed).ok_or_else(|| {
                    Error::not_found(
                        "executor",
                        format!(
                            "available backup of cache {} in {}",
                            self.source, self.region
                        ),
                    )
                })?;
                ctx.memory.set("backup", b.clone());
                b
            }
        };
        let age = backup.taken_at.map(|t| ctx.age_at_incident(t));
        ctx.output = Some(serde_json::json!({
            "backup": backup.name,
            "taken_at": backup.taken_at,
            "age_at_incident_s": age.map(|a| a.as_secs()),
        }));
        match p
            .restore_cache(
                &self.region,
                &self.target,
                &backup.name,
                self.node_type.as_deref(),
            )
            .await
        {
            Ok(_) => {}
            // Restored by an attempt whose answer was lost.
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(
            region = %self.region,
            cache = %self.target,
            backup = %backup.name,
            age_s = age.map(|a| a.as_secs()),
            "cache restore started"
        );
        Ok(())
    }
    fn describe(&self) -> String {
        format!(
            "restore cache {}/{} from a backup of {}",
            self.region, self.target, self.source
        )
    }
}

/// Wait until the cache `id` in `region` is available (answering). A cache that failed
/// ends the wait at once.
///
/// # Examples
///
/// ```
/// use dr_core::step::{cache::WaitCache, Action};
///
/// let step = Action::new(WaitCache { region: "us-west-2".into(), id: "shop-sessions-dr".into() });
/// assert_eq!(step.kind(), "wait_cache");
/// assert!(step.is_idempotent());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitCache {
    /// The region.
    pub region: String,
    /// The cache.
    pub id: String,
}

fn state_name(c: &CacheCluster) -> String {
    format!("{:?}", c.state).to_lowercase()
}

#[async_trait]
impl StepAction for WaitCache {
    fn kind(&self) -> &str {
        "wait_cache"
    }
    fn params(&self) -> serde_json::Value {
        to_json(self)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::provider(
            role(&self.region),
            O::DescribeCache,
            format!("{}/{} (until available)", self.region, self.id),
        )]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn milestone(&self) -> Option<&'static str> {
        Some("cache restored")
    }
    async fn execute(&self, ctx: &mut StepContext<'_>) -> Result<()> {
        let p = ctx.caches(&self.region)?;
        let deadline = ctx.remaining();
        let mut wait = super::Backoff::new(deadline, Duration::from_secs(30));
        let mut last: Option<CacheCluster> = None;
        loop {
            match p.describe_cache(&self.region, &self.id).await {
                Ok(c) if c.state == CacheState::Available => {
                    ctx.output = c.endpoint.map(|e| serde_json::json!({ "endpoint": e }));
                    return Ok(());
                }
                Ok(c) if c.state == CacheState::Failed => {
                    return Err(Error::InvalidState {
                        provider: p.name().into(),
                        resource: format!("cache {}/{}", self.region, self.id),
                        state: "failed".into(),
                        operation: "wait until available".into(),
                    })
                }
                Ok(c) => last = Some(c),
                Err(e) if crate::reads::ends_wait(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!(cache = %self.id, error = %e, "poll failed, polling on")
                }
            }
            if wait.expired() {
                let seen = last
                    .as_ref()
                    .map_or_else(|| "no state read".to_string(), state_name);
                return Err(Error::Timeout {
                    operation: format!("waiting for cache {}/{} ({seen})", self.region, self.id),
                    after: deadline,
                });
            }
            wait.sleep().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(name: &str, state: CacheBackupState, hour: Option<u32>) -> CacheBackup {
        use chrono::TimeZone;
        CacheBackup {
            name: name.into(),
            cache: "c".into(),
            region: "r".into(),
            state,
            taken_at: hour.and_then(|h| chrono::Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).single()),
        }
    }

    #[test]
    fn the_newest_available_backup_is_chosen() {
        use CacheBackupState::*;
        let pick = |v: Vec<CacheBackup>| newest(v).map(|b| b.name);
        assert_eq!(
            pick(vec![
                backup("old", Available, Some(1)),
                backup("new", Available, Some(5)),
                backup("newest-but-failed", Failed, Some(9)),
                backup("newest-but-creating", Creating, Some(8)),
            ])
            .as_deref(),
            Some("new")
        );
        // Without times, the last listed.
        assert_eq!(
            pick(vec![
                backup("a", Available, None),
                backup("b", Available, None)
            ])
            .as_deref(),
            Some("b")
        );
        assert_eq!(pick(vec![backup("x", Failed, Some(1))]), None);
    }
}
