//! A snapshot store in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{check_expected, full_capabilities};
use crate::provider::{
    ByteStream, Capabilities, GetResult, ObjectMeta, Precondition, PutOptions, SnapshotStore,
    Version,
};
use crate::{Clock, Error, Result};

const NAME: &str = "memory";

#[derive(Debug, Clone)]
struct Object {
    /// Content as written, chunk by chunk (shared, never concatenated).
    chunks: Arc<Vec<Bytes>>,
    meta: ObjectMeta,
}

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, Object>,
    generation: u64,
}

/// A [`SnapshotStore`] holding objects in memory, for tests, examples and the simulated
/// cloud.
///
/// Objects are kept as the chunks they were written in and streamed back chunk by chunk;
/// the SHA-256 is computed while writing. Clones share the same objects.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{SnapshotStore, SnapshotStoreExt};
/// use dr_core::store::InMemoryStore;
///
/// let store = InMemoryStore::new();
/// store.put_bytes("db/1", "dump".into()).await?;
/// let meta = store.head("db/1").await?;
/// assert_eq!(meta.size, 4);
/// assert_eq!(store.list_all("db/").await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    inner: Arc<Mutex<Inner>>,
    clock: Option<Clock>,
}

impl InMemoryStore {
    /// An empty store whose timestamps are the wall clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose timestamps come from `clock` (simulated time).
    pub fn with_clock(clock: Clock) -> Self {
        InMemoryStore {
            inner: Arc::default(),
            clock: Some(clock),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.clock {
            Some(c) => c.now(),
            None => chrono::Utc::now(),
        }
    }

    /// Every object with its content, for a saved simulated cloud.
    pub(crate) fn export(&self) -> Vec<super::ExportedObject> {
        self.lock()
            .objects
            .values()
            .map(|o| super::ExportedObject {
                meta: o.meta.clone(),
                content: o.chunks.iter().flat_map(|c| c.iter().copied()).collect(),
            })
            .collect()
    }

    /// Puts back objects of [`export`](Self::export), as they were.
    pub(crate) fn import(&self, objects: Vec<super::ExportedObject>) {
        let mut inner = self.lock();
        for o in objects {
            inner.generation += 1;
            inner.objects.insert(
                o.meta.key.clone(),
                Object {
                    chunks: Arc::new(vec![Bytes::from(o.content)]),
                    meta: o.meta,
                },
            );
        }
    }

    fn object(&self, key: &str) -> Result<Object> {
        self.lock()
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| Error::not_found(NAME, format!("object {key}")))
    }

    /// Flips one byte of the stored object (keeping its recorded checksum), so tests can
    /// check that corruption is detected. Empty objects get one byte appended instead.
    ///
    /// # Errors
    /// `NotFound`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn corrupt(&self, key: &str) -> Result<()> {
        let mut inner = self.lock();
        let obj = inner
            .objects
            .get_mut(key)
            .ok_or_else(|| Error::not_found(NAME, format!("object {key}")))?;
        let mut chunks: Vec<Bytes> = obj.chunks.as_ref().clone();
        match chunks.iter_mut().find(|c| !c.is_empty()) {
            Some(chunk) => {
                let mut bytes = chunk.to_vec();
                bytes[0] ^= 0xff;
                *chunk = bytes.into();
            }
            None => chunks.push(Bytes::from_static(b"x")),
        }
        obj.chunks = Arc::new(chunks);
        Ok(())
    }
}

#[async_trait]
impl SnapshotStore for InMemoryStore {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        full_capabilities()
    }

    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        let sha = hex::encode(Sha256::digest(&data));
        let created = self.now();
        let mut inner = self.lock();
        let current = inner.objects.get(key).and_then(|o| o.meta.etag.as_deref());
        let holds = match &condition {
            Precondition::Absent => !inner.objects.contains_key(key),
            Precondition::Matches(v) => current == Some(v.as_str()),
        };
        if !holds {
            return Err(Error::precondition_failed(NAME, key, condition.to_string()));
        }
        inner.generation += 1;
        let etag = format!("\"{}\"", inner.generation);
        let meta = ObjectMeta {
            key: key.to_string(),
            size: data.len() as u64,
            sha256: Some(sha),
            created,
            etag: Some(etag.clone()),
            metadata: BTreeMap::new(),
        };
        let chunks = if data.is_empty() { vec![] } else { vec![data] };
        inner.objects.insert(
            key.to_string(),
            Object {
                chunks: Arc::new(chunks),
                meta,
            },
        );
        Ok(Version::new(etag))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        let Some(obj) = self.lock().objects.get(key).cloned() else {
            return Ok(None);
        };
        let version = Version::new(obj.meta.etag.unwrap_or_default());
        let bytes = match obj.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => many.concat().into(),
        };
        Ok(Some((bytes, version)))
    }

    async fn put(&self, key: &str, mut data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        let mut hasher = Sha256::new();
        let mut chunks = Vec::new();
        let mut size = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                continue;
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
            chunks.push(chunk);
        }
        let sha = hex::encode(hasher.finalize());
        check_expected(NAME, key, opts.expected_sha256.as_deref(), &sha)?;
        let created = self.now();
        let mut inner = self.lock();
        inner.generation += 1;
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            sha256: Some(sha),
            created,
            etag: Some(format!("\"{}\"", inner.generation)),
            metadata: opts.metadata,
        };
        inner.objects.insert(
            key.to_string(),
            Object {
                chunks: Arc::new(chunks),
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let obj = self.object(key)?;
        let chunks = obj.chunks;
        let stream = futures::stream::iter(0..chunks.len())
            .map(move |i| Ok(chunks[i].clone()))
            .boxed();
        Ok(GetResult {
            meta: obj.meta,
            stream,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        Ok(self.object(key)?.meta)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        let metas: Vec<ObjectMeta> = self
            .lock()
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.meta.clone())
            .collect();
        futures::stream::iter(metas.into_iter().map(Ok)).boxed()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().objects.remove(key);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let created = self.now();
        let mut inner = self.lock();
        let src = inner
            .objects
            .get(from)
            .cloned()
            .ok_or_else(|| Error::not_found(NAME, format!("object {from}")))?;
        inner.generation += 1;
        let meta = ObjectMeta {
            key: to.to_string(),
            created,
            etag: Some(format!("\"{}\"", inner.generation)),
            ..src.meta
        };
        inner.objects.insert(
            to.to_string(),
            Object {
                chunks: src.chunks,
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }
}
