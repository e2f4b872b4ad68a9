//! `Lease`: one leader among runners of the same plan, with a fencing token.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{Error, Result};

/// Proof of leadership returned by [`Lease::acquire`].
///
/// Pass [`fencing_token`](Self::fencing_token) with every write a leader makes where the
/// target can check it: a token lower than one already seen comes from a deposed leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGuard {
    /// Who holds the lease.
    pub holder: String,
    /// Increases by one each time the lease changes hands (or is taken after expiry).
    pub fencing_token: u64,
    /// How long the lease lasts without renewal.
    pub ttl: Duration,
    version: String,
}

impl LeaseGuard {
    /// A guard; for implementations of [`Lease`]. `version` is the implementation's own
    /// version tag of the lease record (a resourceVersion).
    pub fn new(
        holder: impl Into<String>,
        fencing_token: u64,
        ttl: Duration,
        version: impl Into<String>,
    ) -> Self {
        LeaseGuard {
            holder: holder.into(),
            fencing_token,
            ttl,
            version: version.into(),
        }
    }

    /// The version tag of the lease record when this guard was issued.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// A lease electing one leader among runners of the same plan.
///
/// Holders must be unique per runner (host name, process id and a random suffix): acquiring
/// again under the holder that already holds the lease renews it.
///
/// Implementations: [`InMemoryLease`] (one process), `dr_k8s::KubeLease` (a
/// coordination.k8s.io/v1 Lease object).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::{InMemoryLease, Lease};
///
/// let lease = InMemoryLease::new();
/// let guard = lease.acquire("runner-a", Duration::from_secs(30)).await?.expect("free");
/// assert!(lease.acquire("runner-b", Duration::from_secs(30)).await?.is_none());
/// let guard = lease.renew(&guard).await?;
/// lease.release(guard).await?;
/// assert!(lease.acquire("runner-b", Duration::from_secs(30)).await?.is_some());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Lease: fmt::Debug + Send + Sync + 'static {
    /// Takes the lease for `holder` when it is free, expired or already `holder`'s;
    /// `None` when another holder has it (or won a race for it).
    ///
    /// # Errors
    /// Errors of the store of the lease (throttling, unavailability, authorisation).
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<LeaseGuard>>;

    /// Extends the lease by its ttl from now.
    ///
    /// # Errors
    /// `InvalidState` when the lease was lost (taken by another holder or deleted): stop
    /// leading at once.
    async fn renew(&self, guard: &LeaseGuard) -> Result<LeaseGuard>;

    /// Gives the lease up, so another runner may take it without waiting for expiry.
    /// Releasing a lease no longer held succeeds.
    ///
    /// # Errors
    /// Errors of the store of the lease.
    async fn release(&self, guard: LeaseGuard) -> Result<()>;

    /// Who holds the lease now, if anyone (for the message of a runner that could not take
    /// it). The default does not know.
    ///
    /// # Errors
    /// Errors of the store of the lease.
    async fn holder(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A [`Lease`] held in this process's memory: for one service running several recovery
/// tasks, and for tests. Expiry follows tokio time.
#[derive(Debug, Default)]
pub struct InMemoryLease {
    state: Mutex<LeaseState>,
}

#[derive(Debug, Default)]
struct LeaseState {
    holder: Option<(String, Instant)>,
    token: u64,
    version: u64,
}

impl InMemoryLease {
    /// A free lease.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Lease for InMemoryLease {
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<LeaseGuard>> {
        let mut st = self.lock();
        let now = Instant::now();
        match &st.holder {
            Some((h, until)) if h != holder && *until > now => return Ok(None),
            Some((h, _)) if h == holder => {}
            _ => st.token += 1,
        }
        st.version += 1;
        st.holder = Some((holder.to_string(), now + ttl));
        Ok(Some(LeaseGuard::new(
            holder,
            st.token,
            ttl,
            st.version.to_string(),
        )))
    }

    async fn renew(&self, guard: &LeaseGuard) -> Result<LeaseGuard> {
        let mut st = self.lock();
        let now = Instant::now();
        let held = matches!(&st.holder, Some((h, until)) if *h == guard.holder && *until > now)
            && st.token == guard.fencing_token;
        if !held {
            return Err(Error::InvalidState {
                provider: "memory".into(),
                resource: "lease".into(),
                state: "lost".into(),
                operation: format!("renew for {}", guard.holder),
            });
        }
        st.version += 1;
        st.holder = Some((guard.holder.clone(), now + guard.ttl));
        Ok(LeaseGuard::new(
            &guard.holder,
            st.token,
            guard.ttl,
            st.version.to_string(),
        ))
    }

    async fn release(&self, guard: LeaseGuard) -> Result<()> {
        let mut st = self.lock();
        if matches!(&st.holder, Some((h, _)) if *h == guard.holder)
            && st.token == guard.fencing_token
        {
            st.holder = None;
            st.version += 1;
        }
        Ok(())
    }

    async fn holder(&self) -> Result<Option<String>> {
        let st = self.lock();
        let now = Instant::now();
        Ok(st
            .holder
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(h, _)| h.clone()))
    }
}

impl fmt::Display for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lease held by {} (fencing token {})",
            self.holder, self.fencing_token
        )
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn in_memory_lease_passes_the_lease_checks() {
        let lease = InMemoryLease::new();
        crate::testkit::lease::run_all(&[&lease, &lease, &lease])
            .await
            .expect("checks");
    }
}
