//! Journals for crash tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::journal::{InMemoryJournal, Journal, Loaded, Record};
use crate::Result;

/// What trips a [`Tripwire`] built with [`Tripwire::when`].
type Trigger = dyn Fn(&Record) -> bool + Send + Sync;

/// A journal that, right after its N-th record is durable, never returns from an append
/// again: the run stops there and the test drops it — a crash. What the inner journal
/// holds is all that survives of the run.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use dr_core::journal::{Journal, Record};
/// use dr_core::testkit::journal::Tripwire;
///
/// let wire = Tripwire::new(1);
/// wire.append(&Record::Finished { outcome: "succeeded".into() }).await.unwrap();
/// wire.tripped().await; // returns at once: the first record tripped it
/// assert_eq!(wire.records().await, 1);
/// # }
/// ```
pub struct Tripwire {
    inner: Arc<InMemoryJournal>,
    after: usize,
    count: AtomicUsize,
    tripped: tokio::sync::Notify,
    /// Trips right after the first record this accepts, instead of after a count.
    when: Option<Box<Trigger>>,
}

impl std::fmt::Debug for Tripwire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tripwire")
            .field("after", &self.after)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Tripwire {
    /// A journal that trips after `after` records.
    pub fn new(after: usize) -> Self {
        Tripwire {
            inner: Arc::new(InMemoryJournal::new()),
            after,
            count: AtomicUsize::new(0),
            tripped: tokio::sync::Notify::new(),
            when: None,
        }
    }

    /// A journal that trips right after the first record `when` accepts (the intent of a
    /// given step).
    pub fn when(when: impl Fn(&Record) -> bool + Send + Sync + 'static) -> Self {
        Tripwire {
            when: Some(Box::new(when)),
            ..Tripwire::new(usize::MAX)
        }
    }

    /// Returns once the wire has tripped.
    pub async fn tripped(&self) {
        self.tripped.notified().await;
    }

    /// A copy of what survived, to resume from.
    pub fn survivor(&self) -> Arc<InMemoryJournal> {
        Arc::new(InMemoryJournal::from_bytes(self.inner.bytes()))
    }

    /// Records written so far.
    pub async fn records(&self) -> usize {
        self.inner
            .load()
            .await
            .map(|l| l.records.len())
            .unwrap_or(0)
    }
}

#[async_trait]
impl Journal for Tripwire {
    async fn append(&self, record: &Record) -> Result<()> {
        if self.count.load(Ordering::SeqCst) >= self.after.min(usize::MAX - 1)
            || self.count.load(Ordering::SeqCst) == usize::MAX
        {
            return futures::future::pending().await;
        }
        self.inner.append(record).await?;
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let trip = match &self.when {
            Some(when) => when(record),
            None => n == self.after,
        };
        if trip {
            // Every later append hangs, as after a crash.
            self.count.store(usize::MAX, Ordering::SeqCst);
            self.tripped.notify_one();
        }
        Ok(())
    }

    async fn load(&self) -> Result<Loaded> {
        self.inner.load().await
    }
}

/// Starts `graph` with `executor` (journaling to a [`Tripwire`]) and, once `wire` has
/// tripped, lets the run go on for `grace` — the calls already sent are made, nothing more is
/// journaled — then drops it: a crash right after the tripping record. Returns `false` when
/// the run ended before the wire tripped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use dr_core::executor::{AutoApprove, Executor};
/// use dr_core::journal::Record;
/// use dr_core::testkit::journal::{crash_after_trip, Tripwire};
///
/// let plan = dr_core::plan::Plan::from_yaml_str(r#"
/// name: shop
/// regions: [{ name: east, role: primary }, { name: west, role: secondary }]
/// databases: [{ name: db, engine: postgres, region: east, replicas: [{ id: db-west, region: west }] }]
/// services: [{ name: api, rto: 1h, rpo: 1h, database: db }]
/// scenarios: [{ name: failover, kind: region-failover, from: east, to: west }]
/// "#).unwrap();
/// let sim = dr_core::simulation::Simulation::new(&plan, 1, Default::default());
/// sim.inject(plan.scenario("failover").unwrap()).await;
/// let graph = dr_core::planner::plan(&plan, "failover", &sim.observe().await).unwrap();
/// let wire = Arc::new(Tripwire::when(|r| matches!(r, Record::Intent { step, .. } if step == "db/promote")));
/// let executor = Executor::new(sim.providers())
///     .clock(sim.cloud().clock())
///     .approvals(Arc::new(AutoApprove))
///     .journal(wire.clone());
/// assert!(crash_after_trip(&executor, &graph, &wire, Duration::from_secs(60)).await);
/// # }
/// ```
pub async fn crash_after_trip(
    executor: &crate::executor::Executor,
    graph: &crate::RecoveryGraph,
    wire: &Tripwire,
    grace: std::time::Duration,
) -> bool {
    tokio::select! {
        _ = executor.start(graph) => false,
        () = async {
            wire.tripped().await;
            tokio::time::sleep(grace).await;
        } => true,
    }
}
