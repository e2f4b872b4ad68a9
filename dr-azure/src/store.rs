//! [`AzureBlobStore`]: [`SnapshotStore`] on Azure Blob Storage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::Url;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use dr_core::provider::{
    copy_between, ByteStream, Capabilities, GetResult, ObjectMeta, Precondition, PutOptions,
    SnapshotStore, Version,
};
use dr_core::{Error, Result};
use futures::stream::{BoxStream, FuturesUnordered};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::client::{BlobApi, SHA256_KEY};
use crate::PROVIDER;

/// What [`AzureBlobBuilder::build`](crate::AzureBlobBuilder::build) resolved.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) account: String,
    pub(crate) container: String,
    pub(crate) service: Url,
    pub(crate) shared_key: Option<String>,
    pub(crate) sas: Option<String>,
    pub(crate) block_size: usize,
    pub(crate) upload_concurrency: usize,
    pub(crate) block_md5: bool,
    pub(crate) copy_timeout: Duration,
}

/// A [`SnapshotStore`] on one Azure Blob Storage container, built with
/// [`AzureBlobBuilder`](crate::AzureBlobBuilder).
///
/// * `put` streams: chunks are gathered into blocks that are staged (Put Block) as they
///   fill, a few in parallel, each with its MD5 for the service to check (`Content-MD5`,
///   see [`with_block_md5`](crate::AzureBlobBuilder::with_block_md5)), while the SHA-256 of
///   the whole is computed on another thread; Put Block List then commits them with the
///   `sha256` metadata entry. Nothing is visible before the commit, so a broken
///   stream or a checksum refusal leaves the previous blob (staged blocks expire on their
///   own). Objects smaller than one block are written with one Put Blob.
/// * `get` streams one Get Blob (by default; see
///   [`with_download_concurrency`](crate::AzureBlobBuilder::with_download_concurrency) for
///   ranged reads in parallel, locked to the blob's etag).
/// * `copy` is a server-side Copy Blob; [`copy_to`](Self::copy_to) copies to another
///   container or account.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{SnapshotStore, SnapshotStoreExt};
///
/// let store = dr_azure::AzureBlobBuilder::from_env().with_container("backups").build()?;
/// store.put_bytes("db/orders.dump", "dump".into()).await?;
/// store.verify("db/orders.dump").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AzureBlobStore {
    api: BlobApi,
    settings: Settings,
}

impl std::fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("account", &self.settings.account)
            .field("container", &self.settings.container)
            .field("service", &self.settings.service.as_str())
            .field("block_size", &self.settings.block_size)
            .finish_non_exhaustive()
    }
}

/// Unique, equal-length block ids for one upload.
fn block_id(upload: u64, index: usize) -> Vec<u8> {
    format!("{upload:016x}-{index:08}").into_bytes()
}

fn next_upload_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    nanos.rotate_left(17) ^ n ^ u64::from(std::process::id()).rotate_left(48)
}

impl AzureBlobStore {
    pub(crate) fn new(api: BlobApi, settings: Settings) -> Self {
        AzureBlobStore { api, settings }
    }

    /// The container's URL (with the SAS query, if the store uses one).
    pub fn container_url(&self) -> &Url {
        self.api.url()
    }

    /// The storage account name.
    pub fn account(&self) -> &str {
        &self.settings.account
    }

    /// The container name.
    pub fn container(&self) -> &str {
        &self.settings.container
    }

    /// Creates the container if it does not exist yet.
    ///
    /// # Errors
    /// `Unauthorized`, `Unavailable`…
    pub async fn create_container(&self) -> Result<()> {
        self.api.create_container().await
    }

    /// A URL from which another account can read `key`: with this store's SAS, or a
    /// one-hour read-only SAS signed with its account key; `None` when the store
    /// authenticates with tokens only.
    fn readable_url(&self, key: &str) -> Result<Option<Url>> {
        let mut url = self.api.blob_url(key);
        if self.settings.sas.is_some() {
            return Ok(Some(url));
        }
        match &self.settings.shared_key {
            Some(k) => {
                let sas = crate::auth::blob_sas(
                    &self.settings.account,
                    k,
                    &self.settings.container,
                    key,
                    "r",
                    Utc::now() + chrono::Duration::hours(1),
                )?;
                url.set_query(Some(&sas));
                Ok(Some(url))
            }
            None => Ok(None),
        }
    }

    fn same_account(&self, other: &AzureBlobStore) -> bool {
        self.settings.account == other.settings.account
            && self.settings.service.host_str() == other.settings.service.host_str()
            && self.settings.service.port() == other.settings.service.port()
    }

    /// Copies `from` in this store to `to` in `dest` (another container, possibly in another
    /// account), server-side when the destination can read the source: same account, or a
    /// source with a SAS or an account key (a one-hour read-only SAS is signed for the
    /// copy). Otherwise the content is streamed through this process and verified on the
    /// way ([`dr_core::provider::copy_between`]). Metadata, including `sha256`, is kept.
    ///
    /// # Errors
    /// `NotFound` for a missing source; `InvalidState` when the service reports the copy
    /// failed; `Timeout` when it stays pending longer than the copy timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> dr_core::Result<()> {
    /// use dr_azure::AzureBlobBuilder;
    ///
    /// let east = AzureBlobBuilder::from_env().with_container("east").build()?;
    /// let west = AzureBlobBuilder::from_env().with_container("west").build()?;
    /// east.copy_to("db/1", &west, "db/1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_to(&self, from: &str, dest: &AzureBlobStore, to: &str) -> Result<ObjectMeta> {
        let source = if self.same_account(dest) {
            let mut url = self.api.blob_url(from);
            if dest.settings.sas.is_some() && self.settings.sas.is_none() {
                // The destination's SAS does not authorise reading this container's blobs.
                url = match self.readable_url(from)? {
                    Some(u) => u,
                    None => return copy_between(self, from, dest, to).await,
                };
            }
            url
        } else {
            match self.readable_url(from)? {
                Some(u) => u,
                None => return copy_between(self, from, dest, to).await,
            }
        };
        // Copy Blob of a missing source fails on the destination side with a 404 that
        // names the source: check first so the error names the right object.
        self.api.properties(from).await?;
        dest.server_copy(&source, to).await
    }

    async fn server_copy(&self, source: &Url, to: &str) -> Result<ObjectMeta> {
        let mut done = self.api.start_copy(to, source).await?;
        let deadline = tokio::time::Instant::now() + self.settings.copy_timeout;
        let mut wait = Duration::from_millis(50);
        while !done {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    operation: format!("{PROVIDER}: copy to object {to}"),
                    after: self.settings.copy_timeout,
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            done = self.api.copy_done(to).await?;
        }
        self.api.properties(to).await
    }

    async fn put_blocks(
        &self,
        key: &str,
        mut data: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let block_size = self.settings.block_size;
        let upload = next_upload_id();
        let hasher = Sha256Task::spawn();
        let mut size = 0u64;
        let mut buf = BytesMut::new();
        let mut ids: Vec<Vec<u8>> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut pool = BlockPool::new(self.settings.upload_concurrency + 1);
        let api = &self.api;
        let with_md5 = self.settings.block_md5;
        // Staged blocks come back and their buffers are filled again (`BlockPool`).
        let stage = |id: Vec<u8>, block: Bytes| async move {
            let md5 = if with_md5 {
                Some(block_md5(key, block.clone()).await?)
            } else {
                None
            };
            api.stage_block(key, &id, block.clone(), md5).await?;
            Ok::<_, Error>(block)
        };

        while let Some(chunk) = data.next().await {
            let mut chunk: Bytes = chunk?;
            size += chunk.len() as u64;
            // The same bytes, shared: hashed on their own thread while blocks go out.
            hasher.update(key, chunk.clone()).await?;
            while !chunk.is_empty() {
                let block = if buf.is_empty() && chunk.len() >= block_size {
                    // A whole block inside the chunk: sent as it is, not copied.
                    chunk.split_to(block_size)
                } else {
                    if buf.capacity() == 0 {
                        // The first buffer grows with a small object; later ones are
                        // allocated a block at a time, or reused.
                        buf = match pool.take(block_size) {
                            Some(b) => b,
                            None if ids.is_empty() => BytesMut::with_capacity(block_size.min(MIB)),
                            None => BytesMut::with_capacity(block_size),
                        };
                    }
                    let take = (block_size - buf.len()).min(chunk.len());
                    buf.extend_from_slice(&chunk.split_to(take));
                    if buf.len() < block_size {
                        continue;
                    }
                    std::mem::take(&mut buf).freeze()
                };
                let id = block_id(upload, ids.len());
                ids.push(id.clone());
                in_flight.push(stage(id, block));
                while in_flight.len() >= self.settings.upload_concurrency {
                    if let Some(r) = in_flight.next().await {
                        pool.give(r?, block_size);
                    }
                }
            }
        }
        let sha = hasher.finish(key).await?;
        check_expected(key, opts.expected_sha256.as_deref(), &sha)?;
        let mut metadata: HashMap<String, String> = opts.metadata.clone().into_iter().collect();
        metadata.insert(SHA256_KEY.to_string(), sha.clone());
        let etag = if ids.is_empty() {
            // Smaller than a block: one atomic Put Blob.
            let data = buf.freeze();
            self.api.put_single(key, data, metadata, block_size).await?
        } else {
            if !buf.is_empty() {
                let id = block_id(upload, ids.len());
                ids.push(id.clone());
                let block = buf.freeze();
                in_flight.push(stage(id, block));
            }
            while let Some(r) = in_flight.next().await {
                pool.give(r?, block_size);
            }
            self.api.commit(key, ids, metadata).await?
        };
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            sha256: Some(sha),
            created: Utc::now(),
            etag,
            metadata: opts.metadata,
        })
    }
}

const MIB: usize = 1024 * 1024;

/// The buffers of one upload's staged blocks, at most `upload_concurrency + 1` (the most
/// it fills at a time): its blocks reuse the same few buffers instead of allocating (and
/// faulting in) a new one per block. They are freed when the upload ends: an idle store
/// holds no block memory.
#[derive(Debug, Default)]
struct BlockPool {
    spare: Vec<BytesMut>,
    cap: usize,
}

impl BlockPool {
    fn new(cap: usize) -> Self {
        BlockPool {
            spare: Vec::new(),
            cap,
        }
    }

    /// An empty buffer of at least `block_size` bytes, if one is spare.
    fn take(&mut self, block_size: usize) -> Option<BytesMut> {
        while let Some(b) = self.spare.pop() {
            if b.capacity() >= block_size {
                return Some(b);
            }
        }
        None
    }

    /// Keeps a staged block's buffer when nothing else holds it and there is room.
    fn give(&mut self, block: Bytes, block_size: usize) {
        let Ok(mut b) = block.try_into_mut() else {
            return;
        };
        if b.capacity() < block_size
            || b.capacity() > 2 * block_size
            || self.spare.len() >= self.cap
        {
            return;
        }
        b.clear();
        self.spare.push(b);
    }
}

/// Chunks queued for the hasher: bounds the memory a slow hasher can hold to this many
/// chunks (of the size the caller's stream yields).
const HASH_QUEUE: usize = 4;

/// The SHA-256 of an upload, computed on a blocking thread from the chunks it is handed,
/// so hashing overlaps reading the source and sending blocks.
struct Sha256Task {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    handle: tokio::task::JoinHandle<Sha256>,
}

impl Sha256Task {
    fn spawn() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE);
        let handle = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher
        });
        Sha256Task { tx, handle }
    }

    /// Queues a chunk; waits while the queue is full.
    async fn update(&self, key: &str, chunk: Bytes) -> Result<()> {
        if self.tx.send(chunk).await.is_err() {
            // The thread only stops early by panicking: `finish` reports it.
            return Err(hash_failed(key, "the SHA-256 thread stopped"));
        }
        Ok(())
    }

    /// The hex digest of everything queued.
    async fn finish(self, key: &str) -> Result<String> {
        drop(self.tx);
        let hasher = self
            .handle
            .await
            .map_err(|e| hash_failed(key, &e.to_string()))?;
        Ok(hex::encode(hasher.finalize()))
    }
}

/// The MD5 of a block, computed on a blocking thread (blocks in flight are hashed in
/// parallel), for Put Block's `Content-MD5`.
async fn block_md5(key: &str, block: Bytes) -> Result<[u8; 16]> {
    tokio::task::spawn_blocking(move || md5::compute(&block).0)
        .await
        .map_err(|e| hash_failed(key, &e.to_string()))
}

fn hash_failed(key: &str, why: &str) -> Error {
    Error::Other {
        provider: PROVIDER.into(),
        operation: format!("put of object {key} (hashing)"),
        retry: dr_core::Retry::Permanent,
        source: why.to_string().into(),
    }
}

fn check_expected(key: &str, expected: Option<&str>, actual: &str) -> Result<()> {
    match expected {
        Some(exp) if !exp.eq_ignore_ascii_case(actual) => Err(Error::ChecksumMismatch {
            provider: PROVIDER.into(),
            resource: format!("object {key}"),
            expected: format!("sha256 {exp}"),
            actual: format!("sha256 {actual}"),
        }),
        _ => Ok(()),
    }
}

#[async_trait]
impl SnapshotStore for AzureBlobStore {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full_store()
    }

    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        self.put_blocks(key, data, opts).await
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let (meta, stream) = self.api.download(key).await?;
        Ok(GetResult { meta, stream })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.api.properties(key).await
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        self.api.list(prefix)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.api.delete(key).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        self.copy_to(from, self, to).await
    }

    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        let sha = hex::encode(Sha256::digest(&data));
        let metadata = HashMap::from([(SHA256_KEY.to_string(), sha)]);
        self.api
            .put_conditional(key, data, metadata, &condition)
            .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        self.api.get_whole(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_have_equal_length() {
        let a = block_id(next_upload_id(), 0);
        let b = block_id(u64::MAX, 99_999);
        assert_eq!(a.len(), b.len());
        assert_ne!(block_id(1, 0), block_id(2, 0));
    }

    #[test]
    fn expected_checksum_is_case_insensitive() {
        assert!(check_expected("k", Some("AB"), "ab").is_ok());
        assert!(check_expected("k", None, "ab").is_ok());
        assert!(matches!(
            check_expected("k", Some("00"), "ab"),
            Err(Error::ChecksumMismatch { .. })
        ));
    }
}
