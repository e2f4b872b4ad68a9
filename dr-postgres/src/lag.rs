//! Replication lag, measured on the standby and, when it answers, on its primary; the
//! window of commits a promotion now could lose.
//!
//! A standby knows the commit time of the last transaction it replayed
//! (`pg_last_xact_replay_timestamp()`), and the WAL positions it received and replayed
//! (`pg_last_wal_receive_lsn()`, `pg_last_wal_replay_lsn()`, kept after its WAL receiver
//! stops). It does not know what its primary wrote after that. The primary does: when it
//! answers, its `pg_current_wal_lsn()` read *after* the standby's replay position shows
//! whether the standby held everything the primary had written at the instant the standby
//! was read. Such a **proof of completeness** (an instant and a WAL position) is remembered
//! per standby and source, so that once the primary is gone the window runs from the last
//! proven-complete instant rather than from the last commit replayed, which on an idle
//! database may be hours old.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dr_core::provider::DbRef;
use dr_core::{Error, Result};

use crate::client::{parse_lsn, PROVIDER};
use crate::database::PostgresDatabase;

/// How long a standby that is streaming but slightly behind is given to catch up before its
/// lag is measured from its last complete instant.
const CATCH_UP_GRACE: Duration = Duration::from_millis(250);

/// What a standby reports about its replay, read in one query.
pub(crate) struct Recovery {
    pub(crate) now: DateTime<Utc>,
    pub(crate) last_replay: Option<DateTime<Utc>>,
    pub(crate) replay_lsn: Option<u64>,
    pub(crate) receive_lsn: Option<u64>,
    pub(crate) streaming: bool,
    pub(crate) sender: Option<(String, u16)>,
    pub(crate) conninfo: Option<(String, u16)>,
}

/// A proof of completeness: at `at` (the standby's clock), the primary `source` had written
/// nothing past `lsn`.
#[derive(Debug, Clone)]
struct Proof {
    at: DateTime<Utc>,
    lsn: u64,
    source: DbRef,
}

/// The latest proof of completeness per standby, kept for the provider's lifetime.
#[derive(Debug, Default)]
pub(crate) struct Proofs(Mutex<BTreeMap<DbRef, Proof>>);

impl Proofs {
    fn record(&self, standby: &DbRef, proof: Proof) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(standby) {
            Some(old) if old.source == proof.source && old.at >= proof.at => {}
            _ => {
                map.insert(standby.clone(), proof);
            }
        }
    }

    /// The proof for `standby` of `source` that its replay position `replayed` covers.
    fn covering(&self, standby: &DbRef, source: &DbRef, replayed: u64) -> Option<Proof> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(standby)
            .filter(|p| &p.source == source && replayed >= p.lsn)
            .cloned()
    }
}

/// What the window of a [`LagMeasure`] is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LagBasis {
    /// The standby has replayed up to its reachable primary's current WAL position: the
    /// window is zero.
    CaughtUp,
    /// The last instant at which this provider saw the standby hold everything its primary
    /// had written (the primary's `pg_current_wal_lsn()`, read after the standby's replay
    /// position, at or below it), later than the last commit replayed.
    KnownComplete,
    /// The commit time of the last transaction the standby replayed
    /// (`pg_last_xact_replay_timestamp()`): every commit after it may be missing.
    LastReplayedCommit,
}

/// A standby's measured replication lag: the window of commits a promotion at
/// `measured_at` could lose, and what it is measured from.
///
/// The window is an upper bound: commits from `complete_until` to `measured_at` *may* be
/// missing on the standby (they are, if the primary wrote any and the standby did not
/// receive them); every commit before `complete_until` is on it. While the primary answers
/// the bound is exact to the WAL position; once it is gone the standby cannot tell an
/// idle primary from one still writing behind a partition, so the window keeps growing
/// from the last instant it was proven complete.
///
/// # Examples
///
/// ```no_run
/// # async fn f(pg: dr_postgres::PostgresDatabase) -> dr_core::Result<()> {
/// use dr_core::provider::DbRef;
/// use dr_postgres::LagBasis;
///
/// let lag = pg.measure_lag(&DbRef::new("dc2", "orders-standby")).await?;
/// if lag.basis == LagBasis::CaughtUp {
///     assert!(lag.window.is_zero());
/// }
/// println!("{:?} of commits since {} may be missing", lag.window, lag.complete_until);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LagMeasure {
    /// The window of commits a promotion now could lose (`measured_at - complete_until`).
    pub window: Duration,
    /// Every commit of the primary up to this instant is replayed on the standby.
    pub complete_until: DateTime<Utc>,
    /// When the standby was read (its clock).
    pub measured_at: DateTime<Utc>,
    /// What `complete_until` comes from.
    pub basis: LagBasis,
    /// WAL received but not replayed yet, in bytes: a promotion replays it first
    /// (PostgreSQL ≥ 14), so it lengthens the promotion, not the loss.
    pub unreplayed_bytes: u64,
    /// Whether the standby's WAL receiver is streaming.
    pub streaming: bool,
}

impl PostgresDatabase {
    pub(crate) async fn recovery(
        &self,
        db: &DbRef,
        client: &tokio_postgres::Client,
    ) -> Result<Recovery> {
        let row = client
            .query_one(
                "SELECT now(), pg_last_xact_replay_timestamp(), \
                        pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text, \
                        (SELECT status FROM pg_stat_wal_receiver LIMIT 1), \
                        (SELECT sender_host FROM pg_stat_wal_receiver LIMIT 1), \
                        (SELECT sender_port FROM pg_stat_wal_receiver LIMIT 1), \
                        current_setting('primary_conninfo', true)",
                &[],
            )
            .await
            .map_err(|e| self.map("describe", db, e))?;
        let get = |i: usize| -> Result<Option<String>> {
            row.try_get(i).map_err(|e| self.map("describe", db, e))
        };
        let sender = match (get(5)?, row.try_get::<_, Option<i32>>(6)) {
            (Some(h), Ok(Some(p))) => u16::try_from(p).ok().map(|p| (h, p)),
            _ => None,
        };
        // Only host and port are read from primary_conninfo: it may hold a password.
        let conninfo = get(7)?.and_then(|c| crate::database::conninfo_host_port(&c));
        Ok(Recovery {
            now: row.try_get(0).map_err(|e| self.map("describe", db, e))?,
            last_replay: row.try_get(1).map_err(|e| self.map("describe", db, e))?,
            replay_lsn: get(2)?.as_deref().and_then(parse_lsn),
            receive_lsn: get(3)?.as_deref().and_then(parse_lsn),
            streaming: get(4)?.as_deref() == Some("streaming"),
            sender,
            conninfo,
        })
    }

    /// The current WAL position of `primary`, if it is configured, reachable and a primary.
    async fn primary_lsn(&self, primary: &DbRef) -> Option<u64> {
        let client = self.client(primary).await.ok()?;
        let row = client
            .query_one(
                "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
                        ELSE pg_current_wal_lsn()::text END",
                &[],
            )
            .await
            .ok()?;
        row.try_get::<_, Option<String>>(0)
            .ok()
            .flatten()
            .as_deref()
            .and_then(parse_lsn)
    }

    /// Measures the replication lag of `standby`: see [`LagMeasure`].
    ///
    /// Its primary (the instance it streams from, or its configured source) is asked for
    /// its current WAL position when it answers; a standby found caught up is remembered as
    /// complete at that instant (per provider, for its lifetime), and that instant bounds
    /// the window once the primary is gone. A provider that never saw the standby caught up
    /// (a process started after the primary was lost) measures from the last replayed
    /// commit. [`describe`](dr_core::provider::DatabaseReplica::describe) reports
    /// [`LagMeasure::window`] as the replication lag.
    ///
    /// # Errors
    /// As `describe`; `InvalidState` when `standby` is a primary; `InvalidResponse` when it
    /// has replayed nothing yet and was never seen complete (no bound is known).
    pub async fn measure_lag(&self, standby: &DbRef) -> Result<LagMeasure> {
        let client = self.client(standby).await?;
        let in_recovery: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(|e| self.map("describe", standby, e))?
            .try_get(0)
            .map_err(|e| self.map("describe", standby, e))?;
        if !in_recovery {
            return Err(Error::InvalidState {
                provider: PROVIDER.into(),
                resource: standby.to_string(),
                state: "a primary".into(),
                operation: "measure replication lag".into(),
            });
        }
        let rec = self.recovery(standby, &client).await?;
        let source = self.source_of(standby, &rec);
        self.lag(standby, &client, rec, &source)
            .await?
            .ok_or_else(|| Error::InvalidResponse {
                provider: PROVIDER.into(),
                operation: format!("measure the replication lag of {standby}"),
                message: "the standby has replayed no transaction and was never seen caught up"
                    .into(),
            })
    }

    /// The last instant at which this provider saw `standby` hold everything its primary
    /// had written (see [`LagBasis::KnownComplete`]), if it ever did.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(pg: dr_postgres::PostgresDatabase) {
    /// use dr_core::provider::DbRef;
    /// println!("{:?}", pg.known_complete(&DbRef::new("dc2", "orders-standby")));
    /// # }
    /// ```
    pub fn known_complete(&self, standby: &DbRef) -> Option<DateTime<Utc>> {
        let map = self
            .inner
            .proofs
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(standby).map(|p| p.at)
    }

    /// The standby's lag (see [`LagMeasure`]); `None` when no bound is known.
    pub(crate) async fn lag(
        &self,
        db: &DbRef,
        client: &tokio_postgres::Client,
        rec: Recovery,
        source: &DbRef,
    ) -> Result<Option<LagMeasure>> {
        let unreplayed = match (rec.receive_lsn, rec.replay_lsn) {
            (Some(recv), Some(rep)) => recv.saturating_sub(rep),
            _ => 0,
        };
        let caught_up = |at: DateTime<Utc>| LagMeasure {
            window: Duration::ZERO,
            complete_until: at,
            measured_at: at,
            basis: LagBasis::CaughtUp,
            unreplayed_bytes: unreplayed,
            streaming: rec.streaming,
        };
        let Some(replayed) = rec.replay_lsn else {
            return Ok(rec.last_replay.map(|t| LagMeasure {
                window: (rec.now - t).to_std().unwrap_or_default(),
                complete_until: t,
                measured_at: rec.now,
                basis: LagBasis::LastReplayedCommit,
                unreplayed_bytes: unreplayed,
                streaming: rec.streaming,
            }));
        };
        // Read after the standby: the primary had written nothing past `p` when the
        // standby was read, so `replayed >= p` proves it complete at `rec.now`.
        if let Some(p) = self.primary_lsn(source).await {
            let proof = Proof {
                at: rec.now,
                lsn: p,
                source: source.clone(),
            };
            if replayed >= p {
                self.inner.proofs.record(db, proof);
                return Ok(Some(caught_up(rec.now)));
            }
            if rec.streaming {
                // A healthy stream is a few records behind at any instant: look again.
                tokio::time::sleep(CATCH_UP_GRACE).await;
                let again = self.recovery(db, client).await?;
                if again.replay_lsn.is_some_and(|r| r >= p) {
                    self.inner.proofs.record(db, proof);
                    return Ok(Some(caught_up(rec.now)));
                }
            }
        }
        let known = self
            .inner
            .proofs
            .covering(db, source, replayed)
            .map(|p| p.at);
        let (complete_until, basis) = match (known, rec.last_replay) {
            (Some(k), Some(t)) if t > k => (t, LagBasis::LastReplayedCommit),
            (Some(k), _) => (k, LagBasis::KnownComplete),
            (None, Some(t)) => (t, LagBasis::LastReplayedCommit),
            (None, None) => return Ok(None),
        };
        Ok(Some(LagMeasure {
            window: (rec.now - complete_until).to_std().unwrap_or_default(),
            complete_until,
            measured_at: rec.now,
            basis,
            unreplayed_bytes: unreplayed,
            streaming: rec.streaming,
        }))
    }
}
