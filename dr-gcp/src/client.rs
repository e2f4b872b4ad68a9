//! Raw `google-cloud-storage` calls, each returning core errors and core types.
//!
//! Reads and writes go through [`Storage`] (JSON/HTTP, resumable uploads); metadata, listing,
//! deletion and rewrites through [`StorageControl`] (gRPC `google.storage.v2`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dr_core::provider::{ByteStream, ObjectMeta, Precondition, Version};
use dr_core::{Error, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use google_cloud_storage::client::{Storage, StorageControl};
use google_cloud_storage::model::Object;
use google_cloud_storage::streaming_source::StreamingSource;
use sha2::{Digest, Sha256};

use crate::error;

/// Custom metadata entry holding the hex SHA-256 of the content, as computed by `put`.
pub(crate) const SHA256_KEY: &str = "sha256";

fn object(key: &str) -> String {
    format!("object {key}")
}

/// `projects/_/buckets/{bucket}`, the resource name both clients expect.
pub(crate) fn bucket_path(bucket: &str) -> String {
    format!("projects/_/buckets/{bucket}")
}

/// The two clients and the bucket they work on.
#[derive(Debug, Clone)]
pub(crate) struct GcsApi {
    pub(crate) storage: Storage,
    pub(crate) control: StorageControl,
    pub(crate) bucket: String,
    pub(crate) upload_buffer: usize,
    pub(crate) list_page_size: i32,
}

/// What `put` learned from the stream it uploaded.
#[derive(Debug, Default)]
struct Outcome {
    error: Option<Error>,
    sha256: Option<String>,
    size: u64,
}

/// The marker error a [`HashingSource`] gives the client when the input stream failed or
/// the checksum was refused; the real error waits in the shared [`Outcome`].
#[derive(Debug)]
pub(crate) struct SourceFailed(String);

impl std::fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upload source failed: {}", self.0)
    }
}

impl std::error::Error for SourceFailed {}

/// Feeds a [`ByteStream`] to a resumable upload while computing its SHA-256. At the end of
/// the stream, a digest that differs from the expected one is reported as an error
/// *instead of* the end of the stream, so the client never finalizes the upload.
struct HashingSource {
    stream: Mutex<ByteStream>,
    hasher: Sha256,
    size: u64,
    expected: Option<String>,
    key: String,
    outcome: Arc<Mutex<Outcome>>,
    finished: bool,
}

impl HashingSource {
    fn fail(&mut self, err: Error) -> Option<std::result::Result<Bytes, SourceFailed>> {
        let message = err.to_string();
        self.finished = true;
        lock(&self.outcome).error = Some(err);
        Some(Err(SourceFailed(message)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamingSource for HashingSource {
    type Error = SourceFailed;

    async fn next(&mut self) -> Option<std::result::Result<Bytes, SourceFailed>> {
        if self.finished {
            return None;
        }
        let item = {
            let stream = self.stream.get_mut().unwrap_or_else(|e| e.into_inner());
            stream.next().await
        };
        match item {
            Some(Ok(chunk)) => {
                self.hasher.update(&chunk);
                self.size += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Some(Err(e)) => self.fail(e),
            None => {
                let sha = hex::encode(self.hasher.clone().finalize());
                if let Some(expected) = self.expected.clone() {
                    if !expected.eq_ignore_ascii_case(&sha) {
                        return self.fail(Error::ChecksumMismatch {
                            provider: crate::PROVIDER.into(),
                            resource: object(&self.key),
                            expected: format!("sha256 {expected}"),
                            actual: format!("sha256 {sha}"),
                        });
                    }
                }
                self.finished = true;
                let mut outcome = lock(&self.outcome);
                outcome.sha256 = Some(sha);
                outcome.size = self.size;
                None
            }
        }
    }
}

/// Core metadata of a service object; its `sha256` custom metadata becomes
/// [`ObjectMeta::sha256`], its generation the etag.
pub(crate) fn meta(o: &Object) -> ObjectMeta {
    let mut metadata: BTreeMap<String, String> = o
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let sha256 = metadata.remove(SHA256_KEY);
    let created = o
        .create_time
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds(), t.nanos().max(0) as u32))
        .unwrap_or_else(Utc::now);
    ObjectMeta {
        key: o.name.clone(),
        size: o.size.max(0) as u64,
        sha256,
        created,
        etag: Some(o.generation.to_string()),
        metadata,
    }
}

impl GcsApi {
    fn err(&self, e: google_cloud_storage::Error, op: &str, key: &str) -> Error {
        error::map(e, op, &object(key))
    }

    /// Resumable upload of `data`; returns the written object, the content's SHA-256 and
    /// its size.
    /// When `expected_sha256` is set it is stored with the object from the start.
    pub(crate) async fn upload(
        &self,
        key: &str,
        data: ByteStream,
        metadata: BTreeMap<String, String>,
        expected_sha256: Option<String>,
    ) -> Result<(Object, String, u64)> {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let source = HashingSource {
            stream: Mutex::new(data),
            hasher: Sha256::new(),
            size: 0,
            expected: expected_sha256.clone(),
            key: key.to_string(),
            outcome: outcome.clone(),
            finished: false,
        };
        let mut metadata = metadata;
        if let Some(sha) = &expected_sha256 {
            metadata.insert(SHA256_KEY.into(), sha.to_lowercase());
        }
        let written = self
            .storage
            .write_object(bucket_path(&self.bucket), key, source)
            .set_metadata(metadata)
            .with_resumable_upload_threshold(0usize)
            .with_resumable_upload_buffer_size(self.upload_buffer)
            .send_buffered()
            .await;
        let mut outcome = std::mem::take(&mut *lock(&outcome));
        if let Some(e) = outcome.error.take() {
            return Err(e);
        }
        let object = written.map_err(|e| self.err(e, "put", key))?;
        let sha = outcome.sha256.ok_or_else(|| Error::InvalidResponse {
            provider: crate::PROVIDER.into(),
            operation: "put".into(),
            message: format!("{key}: the upload finished before its stream ended"),
        })?;
        Ok((object, sha, outcome.size))
    }

    /// Records `sha256` in the custom metadata of generation `generation` of `key`.
    /// Returns `None` when a newer generation replaced it meanwhile.
    pub(crate) async fn record_sha256(
        &self,
        written: &Object,
        sha256: &str,
    ) -> Result<Option<Object>> {
        let mut metadata = written.metadata.clone();
        metadata.insert(SHA256_KEY.into(), sha256.to_string());
        let update = Object::new()
            .set_bucket(bucket_path(&self.bucket))
            .set_name(written.name.clone())
            .set_metadata(metadata);
        let result = self
            .control
            .update_object()
            .set_object(update)
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["metadata"]))
            .set_if_generation_match(written.generation)
            .send()
            .await;
        match result {
            Ok(o) => Ok(Some(o)),
            Err(e) => match self.err(e, "put (record sha256)", &written.name) {
                // Another writer replaced (or deleted) the object: it records its own.
                Error::InvalidState { .. } | Error::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    /// A single-request upload of a small object with `ifGenerationMatch` (0 for create-only):
    /// the generation written, or `PreconditionFailed`.
    pub(crate) async fn put_conditional(
        &self,
        key: &str,
        data: Bytes,
        condition: &Precondition,
    ) -> Result<Version> {
        let refused = || Error::precondition_failed(crate::PROVIDER, key, condition.to_string());
        let generation = match condition {
            Precondition::Absent => 0,
            Precondition::Matches(v) => match v.as_str().parse::<i64>() {
                Ok(g) if g > 0 => g,
                // No generation of this store looks like that: it cannot match.
                _ => return Err(refused()),
            },
        };
        let sha = hex::encode(Sha256::digest(&data));
        let written = self
            .storage
            .write_object(bucket_path(&self.bucket), key, data)
            .set_metadata([(SHA256_KEY.to_string(), sha)])
            .set_if_generation_match(generation)
            .send_buffered()
            .await;
        match written {
            Ok(o) => Ok(Version::new(o.generation.to_string())),
            Err(e) if e.http_status_code() == Some(412) => Err(refused()),
            Err(e) => match self.err(e, "put_if", key) {
                Error::InvalidState { .. } => Err(refused()),
                Error::NotFound { .. } if generation != 0 => Err(refused()),
                e => Err(e),
            },
        }
    }

    /// Reads a small object whole, with its generation; `None` when there is none.
    pub(crate) async fn get_whole(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        let rsp = self
            .storage
            .read_object(bucket_path(&self.bucket), key)
            .send()
            .await;
        let mut rsp = match rsp {
            Ok(r) => r,
            Err(e) => {
                return match self.err(e, "get_versioned", key) {
                    Error::NotFound { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        let generation = rsp.object().generation;
        let mut body = Vec::new();
        while let Some(chunk) = rsp.next().await {
            let chunk = chunk.map_err(|e| error::map(e, "get_versioned (body)", &object(key)))?;
            body.extend_from_slice(&chunk);
        }
        Ok(Some((
            Bytes::from(body),
            Version::new(generation.to_string()),
        )))
    }

    /// Streams the object's content; metadata from the read's response.
    pub(crate) async fn read(&self, key: &str) -> Result<(ObjectMeta, i64, ByteStream)> {
        let rsp = self
            .storage
            .read_object(bucket_path(&self.bucket), key)
            .send()
            .await
            .map_err(|e| self.err(e, "get", key))?;
        let h = rsp.object();
        let mut metadata: BTreeMap<String, String> = h.metadata.into_iter().collect();
        let sha256 = metadata.remove(SHA256_KEY);
        let meta = ObjectMeta {
            key: key.to_string(),
            size: h.size.max(0) as u64,
            sha256,
            created: Utc::now(),
            etag: Some(h.generation.to_string()),
            metadata,
        };
        let owned = key.to_string();
        let stream = futures::stream::unfold(Some(rsp), move |state| {
            let key = owned.clone();
            async move {
                let mut rsp = state?;
                match rsp.next().await {
                    Some(Ok(b)) => Some((Ok(b), Some(rsp))),
                    Some(Err(e)) => Some((Err(error::map(e, "get (body)", &object(&key))), None)),
                    None => None,
                }
            }
        })
        .boxed();
        Ok((meta, h.generation, stream))
    }

    /// Object metadata (control plane).
    pub(crate) async fn get_object(&self, key: &str, generation: Option<i64>) -> Result<Object> {
        let mut req = self
            .control
            .get_object()
            .set_bucket(bucket_path(&self.bucket))
            .set_object(key);
        if let Some(g) = generation {
            req = req.set_generation(g);
        }
        req.send().await.map_err(|e| self.err(e, "head", key))
    }

    /// Lists objects under `prefix`, page by page.
    pub(crate) fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        let pages = futures::stream::try_unfold(Some(String::new()), move |token| async move {
            let Some(token) = token else {
                return Ok(None);
            };
            let page = self
                .control
                .list_objects()
                .set_parent(bucket_path(&self.bucket))
                .set_prefix(prefix)
                .set_page_size(self.list_page_size)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| error::map(e, "list", &format!("prefix {prefix}")))?;
            let next = Some(page.next_page_token).filter(|t| !t.is_empty());
            let items: Vec<Result<ObjectMeta>> = page.objects.iter().map(|o| Ok(meta(o))).collect();
            Ok::<_, Error>(Some((futures::stream::iter(items), next)))
        });
        pages
            .map(|page| match page {
                Ok(items) => items.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .boxed()
    }

    /// Deletes the live object; a missing one is fine.
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        let result = self
            .control
            .delete_object()
            .set_bucket(bucket_path(&self.bucket))
            .set_object(key)
            .send()
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => match self.err(e, "delete", key) {
                Error::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Rewrites `from` (in `source_bucket`) to `to` in this bucket, server-side, following
    /// rewrite tokens until done. Metadata (with `sha256`) is copied.
    pub(crate) async fn rewrite(
        &self,
        source_bucket: &str,
        from: &str,
        to: &str,
    ) -> Result<Object> {
        let mut token = String::new();
        loop {
            let rsp = self
                .control
                .rewrite_object()
                .set_source_bucket(bucket_path(source_bucket))
                .set_source_object(from)
                .set_destination_bucket(bucket_path(&self.bucket))
                .set_destination_name(to)
                .set_rewrite_token(token)
                .send()
                .await
                .map_err(|e| match self.err(e, "copy", to) {
                    Error::NotFound { provider, .. } => Error::NotFound {
                        provider,
                        resource: format!("object {from} (bucket {source_bucket})"),
                    },
                    e => e,
                })?;
            if rsp.done {
                return rsp.resource.ok_or_else(|| Error::InvalidResponse {
                    provider: crate::PROVIDER.into(),
                    operation: "copy".into(),
                    message: format!("rewrite of {from} to {to} done without an object"),
                });
            }
            token = rsp.rewrite_token;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(chunks: Vec<Result<Bytes>>, expected: Option<&str>) -> HashingSource {
        HashingSource {
            stream: Mutex::new(futures::stream::iter(chunks).boxed()),
            hasher: Sha256::new(),
            size: 0,
            expected: expected.map(str::to_string),
            key: "k".into(),
            outcome: Arc::new(Mutex::new(Outcome::default())),
            finished: false,
        }
    }

    async fn drain(s: &mut HashingSource) -> (usize, bool) {
        let (mut ok, mut failed) = (0, false);
        while let Some(item) = s.next().await {
            match item {
                Ok(_) => ok += 1,
                Err(_) => failed = true,
            }
        }
        (ok, failed)
    }

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[tokio::test]
    async fn the_end_of_the_stream_records_sha256_and_size() {
        let mut s = source(
            vec![
                Ok(Bytes::from_static(b"hel")),
                Ok(Bytes::from_static(b"lo")),
            ],
            Some(&HELLO_SHA.to_uppercase()),
        );
        assert_eq!(drain(&mut s).await, (2, false));
        let outcome = lock(&s.outcome);
        assert_eq!(outcome.sha256.as_deref(), Some(HELLO_SHA));
        assert_eq!(outcome.size, 5);
        assert!(outcome.error.is_none());
    }

    #[tokio::test]
    async fn a_wrong_checksum_replaces_the_end_of_the_stream() {
        let mut s = source(
            vec![Ok(Bytes::from_static(b"hello"))],
            Some(&"0".repeat(64)),
        );
        // The client sees an error where the stream would end: it never finalizes.
        assert_eq!(drain(&mut s).await, (1, true));
        let outcome = lock(&s.outcome);
        assert!(matches!(
            outcome.error,
            Some(Error::ChecksumMismatch { .. })
        ));
        assert!(outcome.sha256.is_none());
    }

    #[tokio::test]
    async fn a_stream_error_is_kept_as_is() {
        let mut s = source(
            vec![
                Ok(Bytes::from_static(b"part")),
                Err(Error::Cancelled {
                    reason: "broken".into(),
                }),
                Ok(Bytes::from_static(b"never read")),
            ],
            None,
        );
        assert_eq!(drain(&mut s).await, (1, true));
        assert!(matches!(
            lock(&s.outcome).error,
            Some(Error::Cancelled { .. })
        ));
    }
}
