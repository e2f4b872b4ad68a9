//! [`S3Store`]: [`SnapshotStore`] over one Amazon S3 bucket.

mod multipart;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, MetadataDirective, Tag, Tagging};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use dr_core::provider::{
    ByteStream, Capabilities, GetResult, ObjectMeta, Precondition, PutOptions, SnapshotStore,
    Version,
};
use dr_core::{Error, Result};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::error::{map_sdk, Ctx};
use crate::rds::to_chrono;
use multipart::Multipart;

const NAME: &str = "s3";

/// The user-metadata key the SHA-256 of an object's content is stored under
/// (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";

/// The object tag the SHA-256 of a multipart object's content is recorded under when it was
/// not known when the upload started (user metadata is fixed then; a tag can be set after
/// completion without copying the object).
pub const SHA256_TAG: &str = "sha256";

/// The smallest part S3 accepts (but for the last one).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Part size used unless [`S3Store::with_part_size`] says otherwise.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploaded at once unless [`S3Store::with_upload_concurrency`] says otherwise: with
/// the default part size, at most 4 part buffers (32 MiB) are held while a large object
/// uploads, reused from part to part. (On the AWS emulator, 6 and 10 parts at once were no
/// faster than 4, and held more memory; see BENCHMARKS.md.)
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;

/// The largest object a single `CopyObject` copies; larger ones are copied part by part.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// Part size of multipart copies.
const COPY_PART_SIZE: u64 = 512 * 1024 * 1024;

/// [`SnapshotStore`] over one S3 bucket (or an S3-compatible service).
///
/// * **Writes stream**: content is read chunk by chunk into parts ([`DEFAULT_PART_SIZE`], at
///   least [`MIN_PART_SIZE`]), and up to [`DEFAULT_UPLOAD_CONCURRENCY`] parts are uploaded
///   at once ([`S3Store::with_upload_concurrency`]), each as its own task; the next part
///   fills as soon as one of them is done, in that part's buffer, so memory stays at one
///   buffer per part at once. Content that fits in one part is written with a single
///   `PutObject`; larger content with a multipart upload,
///   which is aborted on any error (a stream error, a refused part, a checksum mismatch), so
///   nothing is left half-written.
/// * **Checksums**: the SHA-256 of the content is computed while writing and stored as user
///   metadata [`SHA256_METADATA`], which [`SnapshotStoreExt::verify`] checks. S3 itself
///   checks each request body against its SHA-256 (`x-amz-checksum-sha256`), and reads ask
///   the SDK to validate the stored checksum where S3 has a whole-object one.
///   When `expected_sha256` is given and differs, nothing is stored.
/// * Multipart metadata is fixed when the upload starts. When `expected_sha256` is given it
///   is recorded then; otherwise the object is completed and the digest recorded as its
///   object tag [`SHA256_TAG`] (`PutObjectTagging`: no data is copied; if it fails, the new
///   object is deleted). `head` and `get` read the tag when the metadata has no digest
///   (one more request, `GetObjectTagging`), and a server-side copy records it in the
///   copy's metadata.
/// * **Reads stream** the SDK body chunk by chunk.
/// * `list` reports no `sha256` or metadata (S3 listings do not carry user metadata); use
///   `head` for them.
///
/// [`SnapshotStoreExt::verify`]: dr_core::provider::SnapshotStoreExt::verify
/// [`copy_between`]: dr_core::provider::copy_between
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use dr_core::provider::SnapshotStoreExt;
///
/// let store = dr_aws::AwsBuilder::from_env().with_bucket("dr-backups").build_s3().await?;
/// store.put_bytes("orders/2026-01-01.dump", "dump".into()).await?;
/// store.verify("orders/2026-01-01.dump").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    part_size: usize,
    upload_concurrency: usize,
    checksums: bool,
    list_page_size: Option<i32>,
    timeout: Option<Duration>,
}

/// Percent-encodes `bucket/key` for `x-amz-copy-source`.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn object_meta(
    key: &str,
    size: Option<i64>,
    modified: Option<&aws_smithy_types::DateTime>,
    etag: Option<&str>,
    metadata: Option<&HashMap<String, String>>,
) -> ObjectMeta {
    let mut metadata: BTreeMap<String, String> = metadata
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let sha256 = metadata.remove(SHA256_METADATA);
    ObjectMeta {
        key: key.to_string(),
        size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        sha256,
        created: modified.and_then(to_chrono).unwrap_or_else(Utc::now),
        etag: etag.map(str::to_string),
        metadata,
    }
}

impl S3Store {
    /// A store over `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            part_size: DEFAULT_PART_SIZE,
            upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            checksums: true,
            list_page_size: None,
            timeout: None,
        }
    }

    /// Sets the multipart part size (raised to [`MIN_PART_SIZE`] if smaller); content of
    /// less than one part is written with one `PutObject`.
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// Parts of a multipart upload sent at once (default [`DEFAULT_UPLOAD_CONCURRENCY`], at
    /// least 1). Memory held by a large upload is about `concurrency × part size`: that
    /// many part buffers, each reused once its part is sent (the next part is read while
    /// the others are in flight, once one of them is done).
    pub fn with_upload_concurrency(mut self, parts: usize) -> Self {
        self.upload_concurrency = parts.max(1);
        self
    }

    /// Whether to send SHA-256 checksums for S3 to check on every upload request (default
    /// `true`; turn off for S3-compatible services that reject `x-amz-checksum-*`). The
    /// `sha256` metadata is recorded either way.
    pub fn with_request_checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Keys asked for per `ListObjectsV2` page (S3's default and maximum is 1000).
    pub fn with_list_page_size(mut self, keys: u16) -> Self {
        self.list_page_size = Some(i32::from(keys.max(1)));
        self
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The underlying SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn ctx<'a>(&self, operation: &'a str, key: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource: key,
            timeout: self.timeout,
        }
    }

    /// Copies `from` in this store to `to` in `dst` (another bucket, possibly in another
    /// region or account) server-side, keeping metadata and the recorded SHA-256. The request
    /// is made with `dst`'s client, whose credentials must be allowed to read the source.
    ///
    /// # Errors
    /// `NotFound` when `from` does not exist.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// use dr_aws::AwsBuilder;
    ///
    /// let east = AwsBuilder::from_env().with_region("us-east-1").with_bucket("dr-east").build_s3().await?;
    /// let west = AwsBuilder::from_env().with_region("us-west-2").with_bucket("dr-west").build_s3().await?;
    /// east.copy_to("orders/1.dump", &west, "orders/1.dump").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_to(&self, from: &str, dst: &S3Store, to: &str) -> Result<ObjectMeta> {
        let source = self.head(from).await?;
        dst.copy_from(&self.bucket, &source, to, None).await?;
        dst.head(to).await
    }

    /// Server-side copy of `source` (in `src_bucket`) to `to` in this store. With
    /// `metadata`, the copy gets exactly that user metadata; without, it keeps the source's.
    async fn copy_from(
        &self,
        src_bucket: &str,
        source: &ObjectMeta,
        to: &str,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<()> {
        let src = copy_source(src_bucket, &source.key);
        // A digest read from the source's tag goes into the copy's metadata: a copy is not a
        // multipart object, so its tags would not be read for it.
        let metadata =
            metadata.or_else(|| source.sha256.is_some().then(|| stored_metadata(source)));
        if source.size <= MAX_SINGLE_COPY {
            let directive = if metadata.is_some() {
                MetadataDirective::Replace
            } else {
                MetadataDirective::Copy
            };
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(to)
                .copy_source(src)
                .metadata_directive(directive)
                .set_metadata(metadata)
                // Have S3 compute a whole-object checksum of the copy, which reads validate
                // (a multipart source only has a checksum of its parts' checksums).
                .set_checksum_algorithm(self.checksums.then_some(ChecksumAlgorithm::Sha256))
                .send()
                .await
                .map_err(|e| map_sdk(self.ctx("copy", &source.key), e))?;
            return Ok(());
        }
        let metadata = metadata.unwrap_or_else(|| stored_metadata(source));
        let mut upload = Multipart::start(self, to, metadata, false).await?;
        let res = async {
            let mut first = 0;
            while first < source.size {
                let last = (first + COPY_PART_SIZE).min(source.size) - 1;
                upload.copy_part(self, &src, first, last).await?;
                first = last + 1;
            }
            Ok::<_, Error>(())
        }
        .await;
        match res {
            Ok(()) => upload.complete(self).await.map(drop),
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    async fn put_small(
        &self,
        key: &str,
        body: Bytes,
        metadata: HashMap<String, String>,
    ) -> Result<Option<String>> {
        let digest = self
            .checksums
            .then(|| aws_smithy_types::base64::encode(Sha256::digest(&body)));
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(metadata))
            .set_checksum_sha256(digest)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("put", key), e))?;
        Ok(out.e_tag().map(str::to_string))
    }

    /// A `PutObject` conditioned with `If-None-Match: *` or `If-Match: <etag>`.
    async fn put_conditional(
        &self,
        key: &str,
        body: Bytes,
        condition: Precondition,
    ) -> Result<Version> {
        let sha = hex::encode(Sha256::digest(&body));
        let digest = self
            .checksums
            .then(|| aws_smithy_types::base64::encode(Sha256::digest(&body)));
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .metadata(SHA256_METADATA, sha)
            .set_checksum_sha256(digest)
            .body(SdkByteStream::from(body));
        req = match &condition {
            Precondition::Absent => req.if_none_match("*"),
            Precondition::Matches(v) => req.if_match(v.as_str()),
        };
        match req.send().await {
            Ok(out) => out
                .e_tag()
                .map(Version::new)
                .ok_or_else(|| Error::InvalidResponse {
                    provider: NAME.into(),
                    operation: "put_if".into(),
                    message: format!("no ETag in the reply to the write of {key}"),
                }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code().map(str::to_string);
                let missing = status == Some(404) || code.as_deref() == Some("NoSuchKey");
                if status == Some(412)
                    || code.as_deref() == Some("PreconditionFailed")
                    || (missing && matches!(condition, Precondition::Matches(_)))
                {
                    Err(Error::precondition_failed(NAME, key, condition.to_string()))
                } else if status == Some(409)
                    && code.as_deref() == Some("ConditionalRequestConflict")
                {
                    // Another conditional write of the key was in flight: nothing written.
                    Err(Error::Refused {
                        provider: NAME.into(),
                        operation: format!("put_if {key}"),
                        source: Some(Box::new(e)),
                    })
                } else {
                    Err(map_sdk(self.ctx("put_if", key), e))
                }
            }
        }
    }

    /// `GetObject` read whole, with its ETag; `None` when there is no object.
    async fn get_whole(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                return match map_sdk(self.ctx("get_versioned", key), e) {
                    Error::NotFound { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        let etag = out
            .e_tag()
            .map(Version::new)
            .ok_or_else(|| Error::InvalidResponse {
                provider: NAME.into(),
                operation: "get_versioned".into(),
                message: format!("no ETag in the reply to the read of {key}"),
            })?;
        let body = out.body.collect().await.map_err(|e| Error::Unavailable {
            provider: NAME.into(),
            operation: format!("get_versioned {key}"),
            source: Some(Box::new(e)),
        })?;
        Ok(Some((body.into_bytes(), etag)))
    }

    /// The body of `put`; an upload it started is left in `upload` for the caller to abort.
    async fn put_inner(
        &self,
        key: &str,
        mut data: ByteStream,
        opts: &PutOptions,
        upload: &mut Option<Multipart>,
    ) -> Result<ObjectMeta> {
        let mut metadata: HashMap<String, String> = opts.metadata.clone().into_iter().collect();
        if let Some(expected) = &opts.expected_sha256 {
            metadata.insert(SHA256_METADATA.into(), expected.to_ascii_lowercase());
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = BytesMut::with_capacity(self.part_size);
        // Parts in flight, each its own task (aborted if this future is dropped or fails).
        let mut in_flight = tokio::task::JoinSet::new();
        // Buffers of parts already sent, filled again rather than allocated anew. A part is
        // filled only while fewer than `upload_concurrency` are in flight, so at most
        // `upload_concurrency` part buffers are ever allocated, whatever the allocator does
        // with freed ones.
        let mut free: Vec<BytesMut> = Vec::new();
        while let Some(chunk) = data.next().await {
            let mut chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            while !chunk.is_empty() {
                let take = (self.part_size - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk.split_to(take));
                if buf.len() < self.part_size {
                    continue;
                }
                if upload.is_none() {
                    *upload =
                        Some(Multipart::start(self, key, metadata.clone(), self.checksums).await?);
                }
                if let Some(u) = upload.as_mut() {
                    let number = u.next_number();
                    let part = std::mem::take(&mut buf).freeze();
                    in_flight.spawn(u.upload(self, number, part));
                    // The next part is filled once a slot is free, in the buffer of a sent
                    // part when one is back.
                    while in_flight.len() >= self.upload_concurrency {
                        if let Some(done) = in_flight.join_next().await {
                            let (part, sent) = joined(done)??;
                            u.add(part);
                            recycle(&mut free, sent);
                        }
                    }
                    buf = free
                        .pop()
                        .unwrap_or_else(|| BytesMut::with_capacity(self.part_size));
                }
            }
        }
        let actual = hex::encode(hasher.finalize());
        if let Some(expected) = &opts.expected_sha256 {
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(Error::ChecksumMismatch {
                    provider: NAME.into(),
                    resource: format!("object {key}"),
                    expected: format!("sha256 {expected}"),
                    actual: format!("sha256 {actual}, {size} bytes"),
                });
            }
        }
        let etag = match upload.as_mut() {
            None => {
                metadata.insert(SHA256_METADATA.into(), actual.clone());
                self.put_small(key, buf.freeze(), metadata.clone()).await?
            }
            Some(u) => {
                if !buf.is_empty() {
                    let number = u.next_number();
                    in_flight.spawn(u.upload(self, number, buf.freeze()));
                }
                drop(free);
                while let Some(done) = in_flight.join_next().await {
                    u.add(joined(done)??.0);
                }
                let etag = upload.take().map(|u| u.complete(self));
                let etag = match etag {
                    Some(f) => f.await?,
                    None => None,
                };
                if opts.expected_sha256.is_none() {
                    self.record_sha256(key, &actual).await?;
                }
                metadata.insert(SHA256_METADATA.into(), actual.clone());
                etag
            }
        };
        let mut meta = object_meta(key, None, None, etag.as_deref(), Some(&metadata));
        meta.size = size;
        Ok(meta)
    }

    /// Records the digest of a completed multipart object as its [`SHA256_TAG`] tag; deletes
    /// the object when that fails, so no object is left without a digest.
    async fn record_sha256(&self, key: &str, sha256: &str) -> Result<()> {
        let tagging = Tag::builder()
            .key(SHA256_TAG)
            .value(sha256)
            .build()
            .and_then(|tag| Tagging::builder().tag_set(tag).build())
            .map_err(|e| Error::Other {
                provider: NAME.into(),
                operation: format!("put {key} (tagging)"),
                retry: dr_core::Retry::Permanent,
                source: Box::new(e),
            })?;
        let res = self
            .client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await;
        if let Err(e) = res {
            let e = map_sdk(self.ctx("put (record sha256)", key), e);
            tracing::warn!(key, error = %e, "could not record sha256, deleting the object");
            let _ = self.delete(key).await;
            return Err(e);
        }
        Ok(())
    }

    /// The digest recorded as the [`SHA256_TAG`] tag of `key` (at `version`, when given), if
    /// any.
    async fn tagged_sha256(&self, key: &str, version: Option<&str>) -> Result<Option<String>> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("head (tags)", key), e))?;
        Ok(out
            .tag_set()
            .iter()
            .find(|t| t.key() == SHA256_TAG)
            .map(|t| t.value().to_ascii_lowercase()))
    }
}

/// Whether an ETag is that of a multipart object (`"<md5 of the parts' md5s>-<parts>"`): the
/// only objects whose digest may be a tag.
fn is_multipart_etag(etag: Option<&str>) -> bool {
    etag.map(|e| e.trim_matches('"'))
        .and_then(|e| e.rsplit_once('-'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Keeps the buffer of a sent part for the next one, when nothing else holds it.
fn recycle(free: &mut Vec<BytesMut>, sent: Bytes) {
    if let Ok(mut b) = sent.try_into_mut() {
        b.clear();
        free.push(b);
    }
}

/// The outcome of a part's task: a panic or an abort becomes an error.
fn joined<T>(r: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::Other {
        provider: NAME.into(),
        operation: "put (upload part)".into(),
        retry: dr_core::Retry::Permanent,
        source: Box::new(e),
    })
}

/// User metadata as stored, the recorded SHA-256 included.
fn stored_metadata(meta: &ObjectMeta) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = meta.metadata.clone().into_iter().collect();
    if let Some(sha) = &meta.sha256 {
        m.insert(SHA256_METADATA.into(), sha.clone());
    }
    m
}

#[async_trait]
impl SnapshotStore for S3Store {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full_store()
    }

    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        let mut upload = None;
        let res = self.put_inner(key, data, &opts, &mut upload).await;
        if let (Err(_), Some(u)) = (&res, upload) {
            u.abort().await;
        }
        res
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("get", key), e))?;
        let mut meta = object_meta(
            key,
            out.content_length(),
            out.last_modified(),
            out.e_tag(),
            out.metadata(),
        );
        if meta.sha256.is_none() && out.tag_count().is_some_and(|n| n > 0) {
            meta.sha256 = self.tagged_sha256(key, out.version_id()).await?;
        }
        let owned_key = key.to_string();
        let stream = futures::stream::try_unfold(out.body, move |mut body| {
            let key = owned_key.clone();
            async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, body))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(Error::Unavailable {
                        provider: NAME.into(),
                        operation: format!("get {key}"),
                        source: Some(Box::new(e)),
                    }),
                }
            }
        })
        .boxed();
        Ok(GetResult { meta, stream })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("head", key), e))?;
        let mut meta = object_meta(
            key,
            out.content_length(),
            out.last_modified(),
            out.e_tag(),
            out.metadata(),
        );
        // A multipart object whose digest was not known when its upload started has it as
        // a tag (`HeadObject` does not say whether an object has tags).
        if meta.sha256.is_none() && is_multipart_etag(meta.etag.as_deref()) {
            meta.sha256 = self.tagged_sha256(key, out.version_id()).await?;
        }
        Ok(meta)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        let pages = futures::stream::try_unfold(Some(None::<String>), move |state| async move {
            let Some(token) = state else {
                return Ok(None);
            };
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_max_keys(self.list_page_size)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| map_sdk(self.ctx("list", prefix), e))?;
            let items: Vec<Result<ObjectMeta>> = out
                .contents()
                .iter()
                .filter_map(|o| {
                    let key = o.key()?;
                    Some(Ok(object_meta(
                        key,
                        o.size(),
                        o.last_modified(),
                        o.e_tag(),
                        None,
                    )))
                })
                .collect();
            let next = match (out.is_truncated(), out.next_continuation_token()) {
                (Some(true), Some(t)) => Some(Some(t.to_string())),
                _ => None,
            };
            Ok(Some((futures::stream::iter(items), next)))
        });
        pages.try_flatten().boxed()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let res = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // S3 answers 204 for a missing key; some S3-compatible services say NoSuchKey.
            Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(map_sdk(self.ctx("delete", key), e)),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let source = self.head(from).await?;
        self.copy_from(&self.bucket, &source, to, None).await?;
        self.head(to).await
    }

    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        self.put_conditional(key, data, condition).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        self.get_whole(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_is_percent_encoded() {
        assert_eq!(copy_source("b", "a/b c+d.txt"), "b/a/b%20c%2Bd.txt");
        assert_eq!(copy_source("b", "ü"), "b/%C3%BC");
    }

    #[test]
    fn multipart_etags_are_told_from_single_part_ones() {
        assert!(is_multipart_etag(Some(
            "\"9b2cf535f27731c974343645a3985328-3\""
        )));
        assert!(is_multipart_etag(Some(
            "9b2cf535f27731c974343645a3985328-12"
        )));
        assert!(!is_multipart_etag(Some(
            "\"9b2cf535f27731c974343645a3985328\""
        )));
        assert!(!is_multipart_etag(Some("\"abc-\"")));
        assert!(!is_multipart_etag(Some("\"abc-x1\"")));
        assert!(!is_multipart_etag(None));
    }

    #[test]
    fn sha256_is_taken_out_of_user_metadata() {
        let mut m = HashMap::new();
        m.insert("sha256".to_string(), "ab".to_string());
        m.insert("owner".to_string(), "orders".to_string());
        let meta = object_meta("k", Some(3), None, Some("\"e\""), Some(&m));
        assert_eq!(meta.sha256.as_deref(), Some("ab"));
        assert_eq!(meta.metadata.len(), 1);
        assert_eq!(stored_metadata(&meta).len(), 2);
    }
}
