//! A journal on any [`SnapshotStore`]: one object per record, created with a create-only
//! write.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use super::{frame, Journal, Loaded, Record};
use crate::provider::{DynSnapshotStore, Precondition, SnapshotStoreExt};
use crate::{Error, Result};

/// Digits of a record's sequence number in its key.
const SEQ_DIGITS: usize = 10;
/// Records read at once by [`StoreJournal::load`].
const LOAD_CONCURRENCY: usize = 64;
/// Sequence numbers found taken in a row before an append lists the journal again to
/// catch up with another appender.
const RELIST_AFTER: u32 = 8;

/// A [`Journal`] on a [`SnapshotStore`](crate::provider::SnapshotStore) (S3, Blob Storage,
/// Cloud Storage, a local disk, memory), so a run's journal can live next to its backups.
///
/// Each record is one object `<prefix>/<seq>` (`seq` zero-padded to ten digits, from 0),
/// framed and checksummed as in the file journal, and written with a create-only
/// [`put_if`](crate::provider::SnapshotStore::put_if): `append` returns once the store has
/// acknowledged the object (durable as the store's writes are), and of two appenders racing
/// for one sequence number exactly one gets it — the other takes the next free number. So a
/// record is never lost, overwritten or reordered, even with several appenders: each
/// appender's records keep their order, and the journal's order is the sequence order.
///
/// [`load`](Journal::load) lists the prefix and reads the records concurrently. A gap in the
/// sequence, or a damaged record before the last, is an error; a damaged last record is a
/// torn tail. (A store's writes are atomic, so a torn tail comes only from damage after the
/// write.)
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::sync::Arc;
/// use dr_core::journal::{Journal, Record, StoreJournal};
/// use dr_core::store::InMemoryStore;
///
/// let store = Arc::new(InMemoryStore::new());
/// let journal = StoreJournal::new(store, "journals/run-42");
/// journal.append(&Record::Finished { outcome: "succeeded".into() }).await?;
/// let loaded = journal.load().await?;
/// assert_eq!(loaded.records.len(), 1);
/// assert_eq!(journal.record_key(0), "journals/run-42/0000000000");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StoreJournal {
    store: Arc<DynSnapshotStore>,
    /// `<run>/`.
    prefix: String,
    /// The next sequence number to try; `None` until the journal was listed.
    next: Mutex<Option<u64>>,
}

impl StoreJournal {
    /// The journal whose records live under `prefix/` in `store` (created by the first
    /// append). Use one prefix per run (`journals/<run id>`).
    pub fn new(store: Arc<DynSnapshotStore>, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        while prefix.ends_with('/') {
            prefix.pop();
        }
        prefix.push('/');
        StoreJournal {
            store,
            prefix,
            next: Mutex::new(None),
        }
    }

    /// The key of the record with sequence number `seq`.
    pub fn record_key(&self, seq: u64) -> String {
        format!("{}{seq:0width$}", self.prefix, width = SEQ_DIGITS)
    }

    /// The store the journal lives in.
    pub fn store(&self) -> &Arc<DynSnapshotStore> {
        &self.store
    }

    fn seq_of(&self, key: &str) -> Option<u64> {
        let rest = key.strip_prefix(&self.prefix)?;
        if rest.len() != SEQ_DIGITS || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }

    /// The sequence numbers present, in order.
    async fn list_seqs(&self) -> Result<Vec<u64>> {
        let mut seqs: Vec<u64> = self
            .store
            .list_all(&self.prefix)
            .await?
            .iter()
            .filter_map(|m| self.seq_of(&m.key))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Reads the records `seqs`, [`LOAD_CONCURRENCY`] at a time, in order.
    async fn read_all(&self, seqs: &[u64]) -> Result<Vec<Bytes>> {
        let keys: Vec<String> = seqs.iter().map(|s| self.record_key(*s)).collect();
        let store = self.store.clone();
        futures::stream::iter(keys)
            .map(move |key| {
                let store = store.clone();
                async move {
                    match store.get_versioned(&key).await? {
                        Some((bytes, _)) => Ok(bytes),
                        None => Err(Error::not_found(store.name(), format!("object {key}"))),
                    }
                }
            })
            .buffered(LOAD_CONCURRENCY)
            .try_collect()
            .await
    }

    fn damaged(&self, what: String) -> Error {
        Error::InvalidResponse {
            provider: self.store.name().to_string(),
            operation: "load journal".into(),
            message: format!("journal {}: {what}", self.prefix),
        }
    }
}

#[async_trait]
impl Journal for StoreJournal {
    async fn append(&self, record: &Record) -> Result<()> {
        let bytes = Bytes::from(frame::encode(record)?);
        let mut next = self.next.lock().await;
        let mut seq = match *next {
            Some(n) => n,
            None => self.list_seqs().await?.last().map_or(0, |s| s + 1),
        };
        let mut taken = 0u32;
        loop {
            let key = self.record_key(seq);
            match self
                .store
                .put_if(&key, bytes.clone(), Precondition::Absent)
                .await
            {
                Ok(_) => {
                    *next = Some(seq + 1);
                    return Ok(());
                }
                // Another appender wrote this number first: try the next one.
                Err(e) if e.is_precondition_failed() => {
                    taken += 1;
                    seq = if taken.is_multiple_of(RELIST_AFTER) {
                        let last = self.list_seqs().await?.last().copied();
                        last.map_or(seq + 1, |s| s.max(seq) + 1)
                    } else {
                        seq + 1
                    };
                }
                Err(e) => {
                    // The write may have landed: the next append finds out.
                    *next = Some(seq);
                    return Err(e);
                }
            }
        }
    }

    async fn load(&self) -> Result<Loaded> {
        let seqs = self.list_seqs().await?;
        if let Some((i, s)) = seqs
            .iter()
            .enumerate()
            .find(|(i, s)| **s != *i as u64)
            .map(|(i, s)| (i as u64, *s))
        {
            return Err(self.damaged(format!("record {i} is missing (the next is {s})")));
        }
        let bodies = self.read_all(&seqs).await?;
        let mut loaded = Loaded::default();
        let last = bodies.len().saturating_sub(1);
        for (i, body) in bodies.iter().enumerate() {
            let one = frame::decode(body, &self.record_key(i as u64))
                .ok()
                .filter(|l| l.records.len() == 1 && !l.torn_tail);
            match one {
                Some(mut l) => loaded.records.append(&mut l.records),
                None if i == last => loaded.torn_tail = true,
                None => return Err(self.damaged(format!("record {i} is damaged"))),
            }
        }
        let mut next = self.next.lock().await;
        let after = seqs.last().map_or(0, |s| s + 1);
        *next = Some(next.map_or(after, |n| n.max(after)));
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::SnapshotStore;
    use crate::store::{InMemoryStore, LocalDiskStore};

    fn intent(step: &str, attempt: u32) -> Record {
        Record::Intent {
            step: step.into(),
            key: format!("k/{step}"),
            attempt,
            at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            memory: Default::default(),
        }
    }

    async fn appends_and_loads(store: Arc<DynSnapshotStore>) -> Result<()> {
        let journal = StoreJournal::new(store.clone(), "runs/r1/");
        assert_eq!(journal.load().await?, Loaded::default());
        for i in 0..25 {
            journal.append(&intent("db/promote", i)).await?;
        }
        let loaded = journal.load().await?;
        let expected: Vec<Record> = (0..25).map(|i| intent("db/promote", i)).collect();
        assert_eq!(loaded.records, expected);
        assert!(!loaded.torn_tail);
        // A second handle (a resumed run) appends after the existing records.
        let resumed = StoreJournal::new(store.clone(), "runs/r1");
        resumed.append(&intent("dns/switch", 1)).await?;
        let loaded = journal.load().await?;
        assert_eq!(loaded.records.len(), 26);
        assert_eq!(loaded.records[25], intent("dns/switch", 1));
        // Another run's journal is separate.
        let other = StoreJournal::new(store, "runs/r10");
        assert!(other.load().await?.records.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn appends_load_in_order_on_memory_and_disk() -> Result<()> {
        appends_and_loads(Arc::new(InMemoryStore::new())).await?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        appends_and_loads(Arc::new(LocalDiskStore::new(dir.path())?)).await
    }

    async fn racing_appenders(store: Arc<DynSnapshotStore>) -> Result<()> {
        const WRITERS: u32 = 6;
        const EACH: u32 = 30;
        let handles: Vec<StoreJournal> = (0..WRITERS)
            .map(|_| StoreJournal::new(store.clone(), "runs/race"))
            .collect();
        let writers = handles.iter().enumerate().map(|(w, j)| async move {
            for i in 0..EACH {
                j.append(&intent(&format!("writer-{w}"), i)).await?;
            }
            Ok::<_, Error>(())
        });
        futures::future::try_join_all(writers).await?;
        let loaded = handles[0].load().await?;
        assert_eq!(
            loaded.records.len(),
            (WRITERS * EACH) as usize,
            "a record was lost"
        );
        for w in 0..WRITERS {
            let step = format!("writer-{w}");
            let attempts: Vec<u32> = loaded
                .records
                .iter()
                .filter_map(|r| match r {
                    Record::Intent {
                        step: s, attempt, ..
                    } if *s == step => Some(*attempt),
                    _ => None,
                })
                .collect();
            assert_eq!(attempts, (0..EACH).collect::<Vec<_>>(), "{step} reordered");
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_appenders_lose_and_reorder_nothing() -> Result<()> {
        racing_appenders(Arc::new(InMemoryStore::new())).await?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        racing_appenders(Arc::new(LocalDiskStore::new(dir.path())?)).await?;
        // Handles on two store instances over one directory (as two processes would be).
        let a = Arc::new(LocalDiskStore::new(dir.path().join("two"))?);
        let b = Arc::new(LocalDiskStore::new(dir.path().join("two"))?);
        let (ja, jb) = (
            StoreJournal::new(a, "runs/x"),
            StoreJournal::new(b.clone(), "runs/x"),
        );
        let fa = async {
            for i in 0..40 {
                ja.append(&intent("a", i)).await?;
            }
            Ok::<_, Error>(())
        };
        let fb = async {
            for i in 0..40 {
                jb.append(&intent("b", i)).await?;
            }
            Ok::<_, Error>(())
        };
        futures::future::try_join(fa, fb).await?;
        assert_eq!(
            StoreJournal::new(b, "runs/x").load().await?.records.len(),
            80
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_damaged_last_record_is_a_torn_tail_and_earlier_damage_an_error() -> Result<()> {
        let store = InMemoryStore::new();
        let journal = StoreJournal::new(Arc::new(store.clone()), "runs/t");
        for i in 0..3 {
            journal.append(&intent("s", i)).await?;
        }
        store.corrupt(&journal.record_key(2))?;
        let loaded = journal.load().await?;
        assert_eq!(loaded.records, [intent("s", 0), intent("s", 1)]);
        assert!(loaded.torn_tail);
        // A half-written record (cut short) is a torn tail too.
        let full = frame::encode(&intent("s", 2))?;
        store
            .put_bytes(
                &journal.record_key(2),
                Bytes::from(full[..full.len() / 2].to_vec()),
            )
            .await?;
        assert!(journal.load().await?.torn_tail);
        store.corrupt(&journal.record_key(0))?;
        let err = journal.load().await.unwrap_err().to_string();
        assert!(err.contains("record 0 is damaged"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_record_is_an_error() -> Result<()> {
        let store = InMemoryStore::new();
        let journal = StoreJournal::new(Arc::new(store.clone()), "runs/g");
        for i in 0..3 {
            journal.append(&intent("s", i)).await?;
        }
        store.delete(&journal.record_key(1)).await?;
        let err = journal.load().await.unwrap_err().to_string();
        assert!(err.contains("record 1 is missing"), "{err}");
        // Keys that are not records are ignored.
        store.put_bytes("runs/g/notes.txt", "x".into()).await?;
        store.put_bytes("runs/g/12", "x".into()).await?;
        let fresh = StoreJournal::new(Arc::new(InMemoryStore::new()), "runs/g");
        assert!(fresh.load().await?.records.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_lost_reply_neither_loses_nor_overwrites_a_record() -> Result<()> {
        use crate::layer::{Faults, Layered};
        use crate::provider::Operation;
        use crate::sim::{FaultConfig, FaultRule};
        let memory = Arc::new(InMemoryStore::new());
        // Record 1 lands but its reply is lost; the first write of record 2 is refused.
        let faults = FaultConfig::default()
            .with_fail_after_effect(
                FaultRule::new(Some(Operation::PutIf), "runs/f/0000000001").times(1),
            )
            .with_permanent(FaultRule::new(Some(Operation::PutIf), "runs/f/0000000002").times(1));
        let inner: Arc<DynSnapshotStore> = memory.clone();
        let layered: Arc<DynSnapshotStore> =
            Arc::new(Layered::new(inner, Arc::new(Faults::new(7, faults))));
        let journal = StoreJournal::new(layered, "runs/f");
        journal.append(&intent("s", 1)).await?;
        let lost = journal.append(&intent("s", 2)).await.unwrap_err();
        assert_eq!(lost.effect(), crate::Effect::Unknown);
        // The next append finds number 1 taken (by the lost write) and is refused at 2.
        journal.append(&intent("s", 3)).await.unwrap_err();
        journal.append(&intent("s", 4)).await?;
        let loaded = StoreJournal::new(memory, "runs/f").load().await?;
        // The record whose reply was lost is there (a durable intent whose call was not
        // made is read back on resume); the refused one is not; nothing was overwritten.
        assert_eq!(
            loaded.records,
            [intent("s", 1), intent("s", 2), intent("s", 4)]
        );
        Ok(())
    }
}
