//! [`GcsStore`]: [`SnapshotStore`] on Google Cloud Storage.

use async_trait::async_trait;
use bytes::Bytes;
use dr_core::provider::{
    ByteStream, Capabilities, GetResult, ObjectMeta, Precondition, PutOptions, SnapshotStore,
    Version,
};
use dr_core::Result;
use futures::stream::BoxStream;

use crate::client::{meta, GcsApi};
use crate::PROVIDER;

/// A [`SnapshotStore`] on one Cloud Storage bucket, built with
/// [`GcsBuilder`](crate::GcsBuilder), on the official `google-cloud-storage` client.
///
/// * `put` is a resumable upload fed from the stream (one chunk buffered, 8 MiB by
///   default), with the SHA-256 computed on the way. A broken stream or a checksum refusal
///   is reported to the client before the final chunk, so the upload is never finalized
///   and the previous object stays. The client also checks the service's CRC32C.
///   When the caller gives `expected_sha256`, the `sha256` metadata is written with the
///   object; otherwise it is recorded right after the upload by a metadata update
///   conditioned on the written generation (a reader in between sees no `sha256`, and
///   `verify` refuses such an object rather than trusting it).
/// * `get` streams the object over JSON/HTTP, pinned to one generation; `created` comes
///   from a metadata call for that generation.
/// * `head`, `list`, `delete` and `copy` (a rewrite) are control calls over gRPC.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::SnapshotStoreExt;
///
/// let store = dr_gcp::GcsBuilder::new().with_bucket("backups").build().await?;
/// store.put_bytes("db/orders.dump", "dump".into()).await?;
/// store.verify("db/orders.dump").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GcsStore {
    api: GcsApi,
}

/// Cloud Storage's own checksums of an object, next to the core metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcsObjectMeta {
    /// The core metadata (`sha256` from the object's custom metadata).
    pub meta: ObjectMeta,
    /// The service's CRC32C of the content.
    pub crc32c: Option<u32>,
    /// The service's MD5 of the content, hex (absent for composite objects).
    pub md5: Option<String>,
    /// The object's generation.
    pub generation: i64,
    /// The object's metadata generation.
    pub metageneration: i64,
}

impl GcsStore {
    pub(crate) fn new(api: GcsApi) -> Self {
        GcsStore { api }
    }

    #[cfg(test)]
    pub(crate) fn api(&self) -> &GcsApi {
        &self.api
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.api.bucket
    }

    /// The object's metadata with the service's checksums (CRC32C, MD5) and generations.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn head_full(&self, key: &str) -> Result<GcsObjectMeta> {
        let o = self.api.get_object(key, None).await?;
        let checksums = o.checksums.clone().unwrap_or_default();
        Ok(GcsObjectMeta {
            meta: meta(&o),
            crc32c: checksums.crc32c,
            md5: Some(hex::encode(&checksums.md5_hash)).filter(|m| !m.is_empty()),
            generation: o.generation,
            metageneration: o.metageneration,
        })
    }

    /// Copies `from` in this store to `to` in `dest`'s bucket (another bucket, region or
    /// project), server-side with a rewrite issued by `dest`'s client (its credentials
    /// must read this bucket). Metadata, including `sha256`, is kept.
    ///
    /// # Errors
    /// `NotFound` for a missing source.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> dr_core::Result<()> {
    /// use dr_gcp::GcsBuilder;
    ///
    /// let east = GcsBuilder::new().with_bucket("backups-east").build().await?;
    /// let west = GcsBuilder::new().with_bucket("backups-west").build().await?;
    /// east.copy_to("db/1", &west, "db/1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_to(&self, from: &str, dest: &GcsStore, to: &str) -> Result<ObjectMeta> {
        let o = dest.api.rewrite(&self.api.bucket, from, to).await?;
        Ok(meta(&o))
    }
}

#[async_trait]
impl SnapshotStore for GcsStore {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full_store()
    }

    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        let preset = opts.expected_sha256.is_some();
        let (written, sha, size) = self
            .api
            .upload(key, data, opts.metadata.clone(), opts.expected_sha256)
            .await?;
        let object = if preset {
            written
        } else {
            self.api
                .record_sha256(&written, &sha)
                .await?
                .unwrap_or(written)
        };
        let mut m = meta(&object);
        m.size = size;
        m.sha256 = Some(sha);
        m.metadata = opts.metadata;
        Ok(m)
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let (mut meta, generation, stream) = self.api.read(key).await?;
        // The read's headers carry no creation time (and emulators omit the stored size):
        // take both from the metadata of the generation being read.
        if let Ok(o) = self.api.get_object(key, Some(generation)).await {
            let full = crate::client::meta(&o);
            meta.created = full.created;
            meta.size = full.size;
        }
        Ok(GetResult { meta, stream })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        Ok(meta(&self.api.get_object(key, None).await?))
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
        self.api.put_conditional(key, data, &condition).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        self.api.get_whole(key).await
    }
}
