//! Journals for crash tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::journal::{InMemoryJournal, Journal, Loaded, Record};
use crate::Result;

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
#[derive(Debug)]
pub struct Tripwire {
    inner: Arc<InMemoryJournal>,
    after: usize,
    count: AtomicUsize,
    tripped: tokio::sync::Notify,
}

impl Tripwire {
    /// A journal that trips after `after` records.
    pub fn new(after: usize) -> Self {
        Tripwire {
            inner: Arc::new(InMemoryJournal::new()),
            after,
            count: AtomicUsize::new(0),
            tripped: tokio::sync::Notify::new(),
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
        if self.count.load(Ordering::SeqCst) >= self.after {
            return futures::future::pending().await;
        }
        self.inner.append(record).await?;
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.tripped.notify_one();
        }
        Ok(())
    }

    async fn load(&self) -> Result<Loaded> {
        self.inner.load().await
    }
}
