//! [`StoreLease`]: a [`Lease`] kept in one object of a [`SnapshotStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{DynSnapshotStore, Lease, LeaseGuard, Precondition, Version};
use crate::{Clock, Error, Result};

/// Conditional writes a call tries before it gives up on a record that keeps changing.
const ATTEMPTS: usize = 4;

/// The lease object's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LeaseRecord {
    /// The holder, `None` once released.
    holder: Option<String>,
    /// Increases by one each time the lease changes hands.
    fencing_token: u64,
    /// When the lease lapses unless renewed (the writer's wall clock).
    expires: DateTime<Utc>,
}

/// A [`Lease`] in one object of a [`SnapshotStore`](super::SnapshotStore) (S3, Blob
/// Storage, Cloud Storage, a local disk shared by the runners, memory), so runners in
/// different processes or hosts that share a bucket elect one leader.
///
/// The object holds a small JSON record: holder, fencing token and expiry. Every change is a
/// [`put_if`](super::SnapshotStore::put_if) conditioned on the version just read (create-only
/// for the first), so of runners that read the same state only one can write it; the others
/// see the precondition fail and are not leader. The fencing token increases by one each
/// time the lease changes hands (kept when the holder re-acquires); a released lease keeps
/// its record, so tokens never go back — do not delete the object.
///
/// Expiry is wall-clock time (`chrono::Utc`, read from a [`Clock`]): the runners' clocks must
/// agree to well within the ttl. A runner stops leading when [`renew`](Lease::renew) fails
/// with [`Error::InvalidState`], which it does once the lease expired or changed hands.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use dr_core::provider::{Lease, StoreLease};
/// use dr_core::store::InMemoryStore;
///
/// let store = Arc::new(InMemoryStore::new());
/// let a = StoreLease::new(store.clone(), "leases/shop-web");
/// let b = StoreLease::new(store, "leases/shop-web");
/// let guard = a.acquire("runner-a", Duration::from_secs(30)).await?.expect("free");
/// assert!(b.acquire("runner-b", Duration::from_secs(30)).await?.is_none());
/// let guard = a.renew(&guard).await?;
/// a.release(guard).await?;
/// assert_eq!(b.acquire("runner-b", Duration::from_secs(30)).await?.unwrap().fencing_token, 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StoreLease {
    store: Arc<DynSnapshotStore>,
    key: String,
    clock: Clock,
}

impl StoreLease {
    /// The lease in the object `key` of `store` (created on first acquire), with expiry on
    /// the wall clock.
    pub fn new(store: Arc<DynSnapshotStore>, key: impl Into<String>) -> Self {
        Self::with_clock(store, key, Clock::new())
    }

    /// As [`new`](Self::new), reading time from `clock` (tests on a paused tokio clock).
    pub fn with_clock(store: Arc<DynSnapshotStore>, key: impl Into<String>, clock: Clock) -> Self {
        StoreLease {
            store,
            key: key.into(),
            clock,
        }
    }

    /// The key of the lease object.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Who holds the lease now, with its fencing token; `None` when it is free, released or
    /// expired. For a runner that lost the race, to report who leads.
    ///
    /// # Errors
    /// The store's errors; `InvalidResponse` for a record that is not a lease.
    pub async fn holder(&self) -> Result<Option<(String, u64)>> {
        let now = self.clock.now();
        Ok(self.read().await?.and_then(|(rec, _)| match rec.holder {
            Some(h) if rec.expires > now => Some((h, rec.fencing_token)),
            _ => None,
        }))
    }

    /// Takes the lease from `dead`, a holder known to be gone (a process of this host that
    /// no longer runs), for `holder`, without waiting for its expiry: the fencing token goes
    /// up as for any change of hands. `None` when `dead` does not hold it (any more).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn take_over(
        &self,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<LeaseGuard>> {
        let Some((rec, version)) = self.read().await? else {
            return Ok(None);
        };
        if rec.holder.as_deref() != Some(dead) {
            return Ok(None);
        }
        let token = rec.fencing_token + 1;
        let record = LeaseRecord {
            holder: Some(holder.to_string()),
            fencing_token: token,
            expires: self.until(ttl),
        };
        Ok(self
            .write(&record, Some(version))
            .await?
            .map(|v| LeaseGuard::new(holder, token, ttl, v.as_str())))
    }

    fn resource(&self) -> String {
        format!("lease {}", self.key)
    }

    fn lost(&self, holder: &str, state: &str) -> Error {
        Error::InvalidState {
            provider: self.store.name().to_string(),
            resource: self.resource(),
            state: state.to_string(),
            operation: format!("renew for {holder}"),
        }
    }

    async fn read(&self) -> Result<Option<(LeaseRecord, Version)>> {
        let Some((bytes, version)) = self.store.get_versioned(&self.key).await? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidResponse {
            provider: self.store.name().to_string(),
            operation: "read lease".into(),
            message: format!("{} is not a lease record: {e}", self.resource()),
        })?;
        Ok(Some((record, version)))
    }

    /// Writes `record` if the object is still at `version` (absent for `None`): the new
    /// version, or `None` when another runner changed it first.
    async fn write(
        &self,
        record: &LeaseRecord,
        version: Option<Version>,
    ) -> Result<Option<Version>> {
        let json = serde_json::to_vec(record).map_err(|e| Error::InvalidRequest {
            provider: self.store.name().to_string(),
            operation: "write lease".into(),
            message: format!("cannot serialise the lease record: {e}"),
        })?;
        let condition = match version {
            Some(v) => Precondition::Matches(v),
            None => Precondition::Absent,
        };
        match self
            .store
            .put_if(&self.key, Bytes::from(json), condition)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_precondition_failed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn until(&self, ttl: Duration) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
    }
}

#[async_trait]
impl Lease for StoreLease {
    async fn holder(&self) -> Result<Option<String>> {
        Ok(StoreLease::holder(self)
            .await?
            .map(|(h, token)| format!("{h} (fencing token {token})")))
    }

    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<LeaseGuard>> {
        let now = self.clock.now();
        let (token, version) = match self.read().await? {
            None => (1, None),
            Some((rec, v)) => match rec.holder.as_deref() {
                Some(h) if h == holder => (rec.fencing_token, Some(v)),
                Some(_) if rec.expires > now => return Ok(None),
                _ => (rec.fencing_token + 1, Some(v)),
            },
        };
        let record = LeaseRecord {
            holder: Some(holder.to_string()),
            fencing_token: token,
            expires: self.until(ttl),
        };
        // A runner that changed the record since it was read won the race.
        Ok(self
            .write(&record, version)
            .await?
            .map(|v| LeaseGuard::new(holder, token, ttl, v.as_str())))
    }

    async fn renew(&self, guard: &LeaseGuard) -> Result<LeaseGuard> {
        for _ in 0..ATTEMPTS {
            let Some((rec, version)) = self.read().await? else {
                return Err(self.lost(&guard.holder, "gone"));
            };
            if rec.holder.as_deref() != Some(guard.holder.as_str())
                || rec.fencing_token != guard.fencing_token
            {
                return Err(self.lost(&guard.holder, "lost"));
            }
            if rec.expires <= self.clock.now() {
                return Err(self.lost(&guard.holder, "expired"));
            }
            let record = LeaseRecord {
                expires: self.until(guard.ttl),
                ..rec
            };
            if let Some(v) = self.write(&record, Some(version)).await? {
                return Ok(LeaseGuard::new(
                    &guard.holder,
                    guard.fencing_token,
                    guard.ttl,
                    v.as_str(),
                ));
            }
            // Changed since read: look again (another runner may have taken it).
        }
        Err(self.lost(&guard.holder, "contended"))
    }

    async fn release(&self, guard: LeaseGuard) -> Result<()> {
        for _ in 0..ATTEMPTS {
            let Some((rec, version)) = self.read().await? else {
                return Ok(());
            };
            if rec.holder.as_deref() != Some(guard.holder.as_str())
                || rec.fencing_token != guard.fencing_token
            {
                return Ok(());
            }
            let record = LeaseRecord {
                holder: None,
                expires: self.clock.now(),
                ..rec
            };
            if self.write(&record, Some(version)).await?.is_some() {
                return Ok(());
            }
        }
        Err(Error::InvalidState {
            provider: self.store.name().to_string(),
            resource: self.resource(),
            state: "contended".into(),
            operation: format!("release for {}", guard.holder),
        })
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::store::{InMemoryStore, LocalDiskStore};

    fn handles(store: Arc<DynSnapshotStore>, n: usize) -> Vec<StoreLease> {
        (0..n)
            .map(|_| StoreLease::new(store.clone(), "leases/plan"))
            .collect()
    }

    async fn checks(store: Arc<DynSnapshotStore>) -> Result<()> {
        let runners = handles(store.clone(), 3);
        let dyns: Vec<&dyn Lease> = runners.iter().map(|l| l as &dyn Lease).collect();
        crate::testkit::lease::run_all(&dyns).await?;
        let racers = handles(store, 16);
        let dyns: Vec<&dyn Lease> = racers.iter().map(|l| l as &dyn Lease).collect();
        crate::testkit::lease::race(&dyns, 5).await
    }

    #[tokio::test(start_paused = true)]
    async fn store_lease_on_memory_passes_the_lease_checks() -> Result<()> {
        checks(Arc::new(InMemoryStore::new())).await
    }

    #[tokio::test(start_paused = true)]
    async fn store_lease_on_local_disk_passes_the_lease_checks() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        checks(Arc::new(LocalDiskStore::new(dir.path())?)).await
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_is_reported_and_a_foreign_record_is_an_error() -> Result<()> {
        use crate::provider::SnapshotStoreExt;
        let store = Arc::new(InMemoryStore::new());
        let lease = StoreLease::new(store.clone(), "leases/p");
        assert_eq!(lease.holder().await?, None);
        let g = lease
            .acquire("runner-a", Duration::from_secs(10))
            .await?
            .expect("free");
        assert_eq!(lease.holder().await?, Some(("runner-a".into(), 1)));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(lease.holder().await?, None);
        let err = lease.renew(&g).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        store.put_bytes("leases/p", "not json".into()).await?;
        let err = lease.acquire("runner-b", Duration::from_secs(10)).await;
        assert!(matches!(err, Err(Error::InvalidResponse { .. })), "{err:?}");
        Ok(())
    }
}
