//! `SnapshotStore`: where backups and exported resources live.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::Capabilities;
use crate::{Error, Result};

/// A stream of byte chunks, as read from or written to a store.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    /// The object's key (`backups/orders-db/2026-11-21.dump`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the content, as recorded when it was written (by the store or by the
    /// core). `None` when the store has no record of it.
    pub sha256: Option<String>,
    /// When the object was written.
    pub created: DateTime<Utc>,
    /// The store's own version tag (ETag, generation), if any.
    pub etag: Option<String>,
    /// User metadata stored with the object.
    pub metadata: BTreeMap<String, String>,
}

/// Options for [`SnapshotStore::put`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// User metadata to store with the object.
    pub metadata: BTreeMap<String, String>,
    /// Hex SHA-256 the caller expects the content to have. The store computes the digest
    /// while writing and refuses (`ChecksumMismatch`, nothing stored) when it differs.
    pub expected_sha256: Option<String>,
}

impl PutOptions {
    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the expected SHA-256.
    pub fn with_expected_sha256(mut self, sha256: impl Into<String>) -> Self {
        self.expected_sha256 = Some(sha256.into());
        self
    }
}

/// The version of an object as its store tracks it: an opaque token that changes with every
/// write of the key (an S3 or Azure ETag, a GCS generation, a counter in memory, a random tag
/// on a local disk). Returned by [`SnapshotStore::put_if`] and
/// [`SnapshotStore::get_versioned`]; given back in [`Precondition::Matches`].
///
/// # Examples
///
/// ```
/// use dr_core::provider::Version;
///
/// let v = Version::new("\"3\"");
/// assert_eq!(v.as_str(), "\"3\"");
/// assert_eq!(v.to_string(), "\"3\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Version(String);

impl Version {
    /// A version from the store's own token.
    pub fn new(token: impl Into<String>) -> Self {
        Version(token.into())
    }

    /// The store's token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The condition a [`SnapshotStore::put_if`] requires of the object it writes.
///
/// # Examples
///
/// ```
/// use dr_core::provider::{Precondition, Version};
///
/// assert_eq!(Precondition::Absent.to_string(), "no object");
/// assert_eq!(Precondition::Matches(Version::new("7")).to_string(), "version 7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Precondition {
    /// Create-only: no object exists under the key.
    Absent,
    /// Replace-if-version-matches: the object under the key exists and has this version.
    Matches(Version),
}

impl std::fmt::Display for Precondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Precondition::Absent => f.write_str("no object"),
            Precondition::Matches(v) => write!(f, "version {v}"),
        }
    }
}

/// The result of [`SnapshotStore::get`]: the object's metadata and a stream of its content.
pub struct GetResult {
    /// Metadata of the object being read.
    pub meta: ObjectMeta,
    /// The content, streamed.
    pub stream: ByteStream,
}

impl std::fmt::Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A store of snapshots and backups (S3, Blob Storage, Cloud Storage, a local disk, memory).
///
/// Content is streamed both ways: no implementation may buffer a whole object in memory.
/// `put` computes and records the SHA-256 of what it wrote; `get` returns what was recorded
/// so readers can verify ([`SnapshotStoreExt::verify`]).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{SnapshotStore, SnapshotStoreExt};
/// use dr_core::store::InMemoryStore;
///
/// let store = InMemoryStore::new();
/// store.put_bytes("backups/a", "hello".into()).await?;
/// assert_eq!(store.get_bytes("backups/a").await?, "hello");
/// store.verify("backups/a").await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SnapshotStore: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name, used in errors and reports (`memory`, `local-disk`, `s3`).
    fn name(&self) -> &str;

    /// The operations this store supports.
    fn capabilities(&self) -> Capabilities;

    /// Writes `data` under `key`, replacing any object there. Atomic: a failed or
    /// refused write leaves the previous object (or none) in place.
    ///
    /// # Errors
    /// `ChecksumMismatch` when `opts.expected_sha256` differs from the written content;
    /// a stream error is returned as is.
    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta>;

    /// Reads the object under `key`.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    async fn get(&self, key: &str) -> Result<GetResult>;

    /// Reads the metadata of the object under `key`.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// Lists the objects whose key starts with `prefix`, in key order, paginating internally.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>>;

    /// Deletes the object under `key`. Deleting a missing object succeeds (idempotent).
    async fn delete(&self, key: &str) -> Result<()>;

    /// Copies an object inside this store (server-side where the service allows).
    ///
    /// # Errors
    /// `NotFound` when `from` does not exist.
    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta>;

    /// Writes the small object `data` under `key` only if `condition` holds, atomically with
    /// the check: of several writers racing on one key with the same condition, exactly one
    /// succeeds. Returns the version written. The object's SHA-256 is recorded as by
    /// [`put`](Self::put). Meant for small records (journal entries, lease records): the
    /// whole object is in memory.
    ///
    /// # Errors
    /// [`Error::PreconditionFailed`] (permanent, nothing written) when the key exists and
    /// `condition` is [`Precondition::Absent`], or when it is [`Precondition::Matches`] and
    /// the key is missing or has another version.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// use dr_core::provider::{Precondition, SnapshotStore};
    /// use dr_core::store::InMemoryStore;
    ///
    /// let store = InMemoryStore::new();
    /// let v1 = store.put_if("lease", "a".into(), Precondition::Absent).await?;
    /// assert!(store.put_if("lease", "b".into(), Precondition::Absent).await.is_err());
    /// let v2 = store.put_if("lease", "c".into(), Precondition::Matches(v1.clone())).await?;
    /// let stale = store.put_if("lease", "d".into(), Precondition::Matches(v1)).await;
    /// assert!(stale.unwrap_err().is_precondition_failed());
    /// assert_eq!(store.get_versioned("lease").await?, Some(("c".into(), v2)));
    /// # Ok(()) }
    /// ```
    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version>;

    /// Reads the small object under `key` with its version, as one consistent read (the
    /// version is the one of the bytes returned). `None` when there is no object.
    ///
    /// # Errors
    /// The store's errors; `ChecksumMismatch` where the store checks content on read.
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>>;

    /// Reads the object under `key` back and checks it against the SHA-256 and size its
    /// `put` recorded; what [`SnapshotStoreExt::verify`] calls.
    ///
    /// The provided implementation hashes the stream of [`get`](Self::get). A store that
    /// can hash where it reads overrides it (the local disk hashes in the thread that
    /// reads the file, from a buffer that stays in the CPU's cache); the result must be the
    /// same.
    ///
    /// # Errors
    /// `ChecksumMismatch` when the content does not match what was recorded;
    /// `InvalidResponse` when the store recorded no checksum; `NotFound`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// use dr_core::provider::{SnapshotStore, SnapshotStoreExt};
    /// use dr_core::store::InMemoryStore;
    ///
    /// let store = InMemoryStore::new();
    /// store.put_bytes("backups/a", "hello".into()).await?;
    /// let meta = store.verify_content("backups/a").await?;
    /// assert_eq!(meta.size, 5);
    /// # Ok(()) }
    /// ```
    async fn verify_content(&self, key: &str) -> Result<ObjectMeta> {
        verify_by_get(self, key).await
    }
}

/// [`SnapshotStore::verify_content`] by hashing the stream of [`SnapshotStore::get`].
async fn verify_by_get<S: SnapshotStore + ?Sized>(store: &S, key: &str) -> Result<ObjectMeta> {
    let got = store.get(key).await?;
    let meta = got.meta;
    let Some(expected) = meta.sha256.clone() else {
        return Err(Error::InvalidResponse {
            provider: store.name().to_string(),
            operation: "verify".into(),
            message: format!("object {key} has no recorded sha256"),
        });
    };
    let (actual, size) = sha256_stream(got.stream).await?;
    check_content(store.name(), key, &expected, meta.size, &actual, size)?;
    Ok(meta)
}

/// The error of a verify whose content (`actual` digest, `size`) differs from what was
/// recorded (`expected`, `recorded_size`).
pub(crate) fn check_content(
    provider: &str,
    key: &str,
    expected: &str,
    recorded_size: u64,
    actual: &str,
    size: u64,
) -> Result<()> {
    if actual != expected || size != recorded_size {
        return Err(Error::ChecksumMismatch {
            provider: provider.to_string(),
            resource: format!("object {key}"),
            expected: format!("sha256 {expected}, {recorded_size} bytes"),
            actual: format!("sha256 {actual}, {size} bytes"),
        });
    }
    Ok(())
}

/// A `SnapshotStore` trait object.
pub type DynSnapshotStore = dyn SnapshotStore;

#[async_trait]
impl<T: SnapshotStore + ?Sized> SnapshotStore for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        (**self).put(key, data, opts).await
    }
    async fn get(&self, key: &str) -> Result<GetResult> {
        (**self).get(key).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        (**self).head(key).await
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        (**self).list(prefix)
    }
    async fn delete(&self, key: &str) -> Result<()> {
        (**self).delete(key).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        (**self).copy(from, to).await
    }
    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        (**self).put_if(key, data, condition).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        (**self).get_versioned(key).await
    }
    async fn verify_content(&self, key: &str) -> Result<ObjectMeta> {
        (**self).verify_content(key).await
    }
}

/// Conveniences over any [`SnapshotStore`].
#[async_trait]
pub trait SnapshotStoreExt: SnapshotStore {
    /// Writes a byte buffer.
    ///
    /// # Errors
    /// As [`SnapshotStore::put`].
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<ObjectMeta> {
        let stream = futures::stream::once(async move { Ok(data) }).boxed();
        self.put(key, stream, PutOptions::default()).await
    }

    /// Reads a whole object into memory. For small objects only.
    ///
    /// # Errors
    /// As [`SnapshotStore::get`], or a stream error.
    async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        let got = self.get(key).await?;
        let chunks: Vec<Bytes> = got.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Collects a listing.
    ///
    /// # Errors
    /// The first listing error.
    async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list(prefix).try_collect().await
    }

    /// Reads the object and checks its content against the recorded SHA-256 and size, by
    /// [`SnapshotStore::verify_content`].
    ///
    /// # Errors
    /// `ChecksumMismatch` when the content does not match what was recorded;
    /// `InvalidResponse` when the store recorded no checksum; `NotFound`.
    async fn verify(&self, key: &str) -> Result<ObjectMeta> {
        self.verify_content(key).await
    }
}

impl<T: SnapshotStore + ?Sized> SnapshotStoreExt for T {}

/// Hex SHA-256 and length of a stream's content, read chunk by chunk.
///
/// # Errors
/// The first stream error.
pub async fn sha256_stream(mut stream: ByteStream) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Streams an object from one store to another (across regions, accounts or clouds),
/// verifying on the way that the content matches the source's recorded SHA-256. A mismatch
/// leaves nothing at the destination.
///
/// # Errors
/// `NotFound` for a missing source; `ChecksumMismatch` for a corrupt source.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::{copy_between, SnapshotStoreExt};
/// use dr_core::store::InMemoryStore;
///
/// let (east, west) = (InMemoryStore::new(), InMemoryStore::new());
/// east.put_bytes("db/1", "dump".into()).await?;
/// copy_between(&east, "db/1", &west, "db/1").await?;
/// assert_eq!(west.get_bytes("db/1").await?, "dump");
/// # Ok(()) }
/// ```
pub async fn copy_between(
    src: &DynSnapshotStore,
    from: &str,
    dst: &DynSnapshotStore,
    to: &str,
) -> Result<ObjectMeta> {
    let got = src.get(from).await?;
    let mut opts = PutOptions {
        metadata: got.meta.metadata.clone(),
        ..PutOptions::default()
    };
    opts.expected_sha256 = got.meta.sha256.clone();
    dst.put(to, got.stream, opts).await
}
