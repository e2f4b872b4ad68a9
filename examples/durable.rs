//! A run that survives its process: the journal directory of `run-plan --journal DIR`, the
//! simulated cloud's state beside it, resume, the crash hook for tests, and `--speed`.
//!
//! A directory holds, per run id: `ID.journal` (the executor's journal), `ID.sim` (the
//! simulated cloud, saved after every call) and `ID.observed.json` (the state the graph was
//! planned from, so a resume plans the same graph).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::journal::{FileJournal, Journal, Loaded, Record};
use dr_core::planner::ObservedState;
use dr_core::provider::StoreLease;
use dr_core::sim::{SimCloud, SimConfig};
use dr_core::store::LocalDiskStore;
use dr_core::Clock;
use dr_core::{Error, Result};

/// How long the lease of a journal directory lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// The lease of a journal directory (`DIR/.lease/lease`, a local-disk store), expiring on the
/// system's wall clock: one runner at a time executes in the directory.
///
/// # Errors
/// The directory cannot be created.
pub fn dir_lease(dir: &Path) -> Result<Arc<StoreLease>> {
    let store = LocalDiskStore::new(dir.join(".lease"))?;
    Ok(Arc::new(StoreLease::with_clock(
        Arc::new(store),
        "lease",
        Clock::system(),
    )))
}

/// This process's name as a lease holder: `HOST:PID:NONCE`.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let mut nonce = [0u8; 4];
    let _ = getrandom::fill(&mut nonce);
    format!(
        "{host}:{}:{:02x}{:02x}{:02x}{:02x}",
        std::process::id(),
        nonce[0],
        nonce[1],
        nonce[2],
        nonce[3]
    )
}

/// Whether process `pid` of this host still runs (not a zombie). `true` when it cannot be
/// told (no `/proc`): then the lease is left to expire.
fn alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.is_dir() {
        return true;
    }
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        // `PID (COMM) STATE …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// When the lease is held by a process of this host that no longer runs (a runner that
/// crashed), takes it over for `holder` at once instead of waiting for it to expire, and
/// returns the dead holder.
///
/// # Errors
/// The lease store's errors.
pub async fn take_over_if_dead(
    lease: &StoreLease,
    holder: &str,
    ttl: Duration,
) -> Result<Option<String>> {
    let Some((current, _)) = lease.holder().await? else {
        return Ok(None);
    };
    let me = holder.split(':').next().unwrap_or_default();
    let mut parts = current.split(':');
    let (host, pid) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
    );
    match (host, pid) {
        (Some(h), Some(pid)) if h == me && pid != std::process::id() && !alive(pid) => Ok(lease
            .take_over(&current, holder, ttl)
            .await?
            .map(|_| current)),
        _ => Ok(None),
    }
}

/// The environment variable that makes the process abort right after its N-th journal
/// record is durable (for crash tests).
pub const CRASH_AFTER_RECORDS: &str = "DR_CRASH_AFTER_RECORDS";

/// The files of one run in a journal directory.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The run id.
    pub run_id: String,
    /// The journal.
    pub journal: PathBuf,
    /// The simulated cloud's state.
    pub sim: PathBuf,
    /// The observed state the graph was planned from.
    pub observed: PathBuf,
}

impl RunFiles {
    /// The files of run `run_id` in `dir`. The id must be a plain name.
    ///
    /// # Errors
    /// An id with a path separator or other characters outside `[A-Za-z0-9._-]`.
    pub fn new(dir: &Path, run_id: &str) -> Result<Self> {
        if run_id.is_empty()
            || run_id.starts_with('.')
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::InvalidRequest {
                provider: "run-plan".into(),
                operation: "resume".into(),
                message: "a run id is the `run-…` name printed when the run started (letters, digits, `-`, `_`, `.`)".into(),
            });
        }
        Ok(RunFiles {
            run_id: run_id.to_string(),
            journal: dir.join(format!("{run_id}.journal")),
            sim: dir.join(format!("{run_id}.sim")),
            observed: dir.join(format!("{run_id}.observed.json")),
        })
    }

    /// Writes the observed state (before the journal exists).
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn save_observed(&self, observed: &ObservedState) -> Result<()> {
        let json = serde_json::to_vec_pretty(observed).map_err(|e| Error::InvalidRequest {
            provider: "run-plan".into(),
            operation: "save observed state".into(),
            message: e.to_string(),
        })?;
        std::fs::write(&self.observed, json)
            .map_err(|e| Error::io(format!("writing {}", self.observed.display()), e))
    }

    /// Reads what a resume needs: the observed state and the simulated cloud.
    ///
    /// # Errors
    /// A missing or damaged file, named.
    pub fn load(&self, config: SimConfig) -> Result<(ObservedState, SimCloud)> {
        for f in [&self.journal, &self.sim, &self.observed] {
            if !f.exists() {
                return Err(Error::not_found(
                    "run-plan",
                    format!(
                        "{} (run {} has no such file: check --journal and the run id)",
                        f.display(),
                        self.run_id
                    ),
                ));
            }
        }
        let text = std::fs::read(&self.observed)
            .map_err(|e| Error::io(format!("reading {}", self.observed.display()), e))?;
        let observed = serde_json::from_slice(&text).map_err(|e| Error::InvalidResponse {
            provider: "run-plan".into(),
            operation: "resume".into(),
            message: format!("{}: {e}", self.observed.display()),
        })?;
        Ok((observed, SimCloud::load(&self.sim, config)?))
    }

    /// The journal, wrapped in the crash hook when [`CRASH_AFTER_RECORDS`] is set.
    ///
    /// # Errors
    /// The journal cannot be opened; the variable is not a whole number.
    pub async fn open_journal(&self) -> Result<Arc<dyn Journal>> {
        let file = FileJournal::open(&self.journal).await?;
        match std::env::var(CRASH_AFTER_RECORDS) {
            Ok(v) => {
                let n: u64 = v.trim().parse().map_err(|_| Error::InvalidRequest {
                    provider: "run-plan".into(),
                    operation: CRASH_AFTER_RECORDS.into(),
                    message: "write a whole number of records".into(),
                })?;
                Ok(Arc::new(CrashAfter {
                    inner: file,
                    after: n,
                    count: AtomicU64::new(0),
                }))
            }
            Err(_) => Ok(Arc::new(file)),
        }
    }
}

/// A journal that aborts the process right after its N-th record is durable.
#[derive(Debug)]
struct CrashAfter {
    inner: FileJournal,
    after: u64,
    count: AtomicU64,
}

#[async_trait]
impl Journal for CrashAfter {
    async fn append(&self, record: &Record) -> Result<()> {
        self.inner.append(record).await?;
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            eprintln!(
                "{CRASH_AFTER_RECORDS}={}: aborting after record {}",
                self.after, self.after
            );
            std::process::abort();
        }
        Ok(())
    }

    async fn load(&self) -> Result<Loaded> {
        self.inner.load().await
    }
}

/// Lets simulated time pass at `speed`× real time on a paused tokio clock: every 10 ms of
/// real time, the clock moves on by `speed` × 10 ms (while it waits, time does not jump
/// ahead on its own). Stops when the returned handle is aborted.
pub fn pace(speed: f64) -> tokio::task::JoinHandle<()> {
    let tick = Duration::from_millis(10);
    let step = tick.mul_f64(speed.clamp(0.001, 1e6));
    tokio::spawn(async move {
        loop {
            // A blocking task in flight keeps the paused clock from advancing by itself.
            if tokio::task::spawn_blocking(move || std::thread::sleep(tick))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::advance(step).await;
        }
    })
}
