//! Raw `azure_storage_blob` calls, each returning core errors and core types.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZero;
use std::sync::Arc;

use azure_core::http::Url;
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders,
    BlobClientStartCopyFromUrlResultHeaders, BlobContainerClientListBlobsOptions, BlobItem,
    BlockBlobClientCommitBlockListOptions, BlockBlobClientCommitBlockListResultHeaders,
    BlockBlobClientStageBlockOptions, BlockBlobClientUploadOptions, BlockLookupList, CopyStatus,
    ListBlobsIncludeItem,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dr_core::provider::{ByteStream, ObjectMeta, Precondition, Version};
use dr_core::{Error, Result};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error;

/// Blob metadata entry holding the hex SHA-256 of the content, as computed by `put`.
pub(crate) const SHA256_KEY: &str = "sha256";

/// A partition no blob reaches (1 PiB on 64-bit targets; a block blob holds at most about
/// 190 TiB): a download of one partition is one Get Blob.
const WHOLE_BLOB: usize = if usize::BITS >= 64 {
    usize::MAX >> 14
} else {
    usize::MAX
};

/// The SDK's container client with the crate's error mapping.
#[derive(Clone)]
pub(crate) struct BlobApi {
    container: Arc<BlobContainerClient>,
    download_concurrency: usize,
    download_partition: usize,
    page_size: Option<u32>,
}

impl std::fmt::Debug for BlobApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut url = self.container.url().clone();
        url.set_query(None);
        f.debug_struct("BlobApi")
            .field("container", &url.as_str())
            .finish_non_exhaustive()
    }
}

fn object(key: &str) -> String {
    format!("object {key}")
}

/// `time::OffsetDateTime` (the SDK's type) to chrono, without naming the `time` crate.
macro_rules! to_chrono {
    ($t:expr) => {
        $t.and_then(|t| DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond()))
    };
}

/// Builds the core metadata from the blob's size, times, etag and user metadata (whose
/// `sha256` entry becomes [`ObjectMeta::sha256`]).
pub(crate) fn meta(
    key: &str,
    size: u64,
    created: Option<DateTime<Utc>>,
    etag: Option<String>,
    user: HashMap<String, String>,
) -> ObjectMeta {
    let mut metadata: BTreeMap<String, String> = user.into_iter().collect();
    let sha256 = metadata.remove(SHA256_KEY);
    ObjectMeta {
        key: key.to_string(),
        size,
        sha256,
        created: created.unwrap_or_else(Utc::now),
        etag,
        metadata,
    }
}

impl BlobApi {
    pub(crate) fn new(
        container: BlobContainerClient,
        download_concurrency: usize,
        download_partition: usize,
        page_size: Option<u32>,
    ) -> Self {
        BlobApi {
            container: Arc::new(container),
            download_concurrency,
            download_partition,
            page_size,
        }
    }

    pub(crate) fn url(&self) -> &Url {
        self.container.url()
    }

    fn blob(&self, key: &str) -> BlobClient {
        self.container.blob_client(key)
    }

    /// The blob's URL (with the SAS query, if any).
    pub(crate) fn blob_url(&self, key: &str) -> Url {
        self.blob(key).url().clone()
    }

    fn err(&self, e: azure_core::Error, op: &str, key: &str) -> Error {
        error::map(e, op, &object(key))
    }

    /// Creates the container; an existing one is fine.
    pub(crate) async fn create_container(&self) -> Result<()> {
        match self.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) => match error::map(e, "create container", "container") {
                Error::AlreadyExists { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Get Blob Properties.
    pub(crate) async fn properties(&self, key: &str) -> Result<ObjectMeta> {
        let rsp = self
            .blob(key)
            .get_properties(None)
            .await
            .map_err(|e| self.err(e, "head", key))?;
        let bad = |e: azure_core::Error| error::map(e, "head", &object(key));
        let size = rsp.content_length().map_err(bad)?.unwrap_or(0);
        let created = to_chrono!(rsp.creation_time().map_err(bad)?);
        let etag = rsp.etag().map_err(bad)?.map(|e| e.to_string());
        let user = rsp.metadata().map_err(bad)?;
        Ok(meta(key, size, created, etag, user))
    }

    /// Put Blob of a whole (small) object, with its metadata. Atomic.
    pub(crate) async fn put_single(
        &self,
        key: &str,
        data: Bytes,
        metadata: HashMap<String, String>,
        partition: usize,
    ) -> Result<Option<String>> {
        let options = BlockBlobClientUploadOptions {
            metadata: Some(metadata),
            partition_size: NonZero::new((partition as u64).max(data.len() as u64 + 1)),
            ..BlockBlobClientUploadOptions::default()
        };
        let rsp = self
            .blob(key)
            .block_blob_client()
            .upload(data.into(), Some(options))
            .await
            .map_err(|e| self.err(e, "put", key))?;
        Ok(rsp.etag.map(|e| e.to_string()))
    }

    /// Put Blob of a small object with `If-None-Match: *` or `If-Match: <etag>`: the new
    /// etag, or `PreconditionFailed` when the condition does not hold (409
    /// `BlobAlreadyExists`, 412, or 404 for a replace).
    pub(crate) async fn put_conditional(
        &self,
        key: &str,
        data: Bytes,
        metadata: HashMap<String, String>,
        condition: &Precondition,
    ) -> Result<Version> {
        let (if_none_match, if_match) = match condition {
            Precondition::Absent => (Some(azure_core::http::Etag::from("*")), None),
            Precondition::Matches(v) => (None, Some(azure_core::http::Etag::from(v.as_str()))),
        };
        let options = BlockBlobClientUploadOptions {
            metadata: Some(metadata),
            partition_size: NonZero::new(data.len() as u64 + 1),
            if_none_match,
            if_match,
            ..BlockBlobClientUploadOptions::default()
        };
        let rsp = self
            .blob(key)
            .block_blob_client()
            .upload(data.into(), Some(options))
            .await;
        let rsp = match rsp {
            Ok(r) => r,
            Err(e) => {
                let status = match e.kind() {
                    azure_core::error::ErrorKind::HttpResponse { status, .. } => {
                        Some(u16::from(*status))
                    }
                    _ => None,
                };
                let refused = matches!(
                    (status, condition),
                    (Some(412), _)
                        | (Some(409), Precondition::Absent)
                        | (Some(404), Precondition::Matches(_))
                );
                if refused {
                    return Err(Error::precondition_failed(
                        crate::PROVIDER,
                        key,
                        condition.to_string(),
                    ));
                }
                return Err(self.err(e, "put_if", key));
            }
        };
        rsp.etag
            .map(|e| Version::new(e.to_string()))
            .ok_or_else(|| Error::InvalidResponse {
                provider: crate::PROVIDER.into(),
                operation: "put_if".into(),
                message: format!("no etag in the reply to the write of {key}"),
            })
    }

    /// Get Blob of a small object, read whole in one request, with its etag; `None` when
    /// there is none.
    pub(crate) async fn get_whole(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        let options = BlobClientDownloadOptions {
            parallel: NonZero::new(1),
            partition_size: NonZero::new(WHOLE_BLOB),
            ..BlobClientDownloadOptions::default()
        };
        let rsp = match self.blob(key).download(Some(options)).await {
            Ok(r) => r,
            Err(e) => {
                return match self.err(e, "get_versioned", key) {
                    Error::NotFound { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        let etag = rsp.properties.etag.map(|e| Version::new(e.to_string()));
        let etag = etag.ok_or_else(|| Error::InvalidResponse {
            provider: crate::PROVIDER.into(),
            operation: "get_versioned".into(),
            message: format!("no etag in the reply to the read of {key}"),
        })?;
        let chunks: Vec<Bytes> = rsp
            .body
            .map_err(|e| error::map(e, "get_versioned (body)", &object(key)))
            .try_collect()
            .await?;
        Ok(Some((chunks.concat().into(), etag)))
    }

    /// Put Block: stages one block, invisible until committed. With `md5` (the block's
    /// MD5) the service checks the block against it (`Content-MD5`) and refuses a
    /// corrupted one.
    pub(crate) async fn stage_block(
        &self,
        key: &str,
        id: &[u8],
        data: Bytes,
        md5: Option<[u8; 16]>,
    ) -> Result<()> {
        let len = data.len() as u64;
        let options = md5.map(|m| BlockBlobClientStageBlockOptions {
            transactional_content_md5: Some(m.to_vec()),
            ..BlockBlobClientStageBlockOptions::default()
        });
        self.blob(key)
            .block_blob_client()
            .stage_block(id, len, data.into(), options)
            .await
            .map_err(|e| self.err(e, "put (stage block)", key))?;
        Ok(())
    }

    /// Put Block List: commits the staged blocks, in order, with the blob's metadata.
    pub(crate) async fn commit(
        &self,
        key: &str,
        ids: Vec<Vec<u8>>,
        metadata: HashMap<String, String>,
    ) -> Result<Option<String>> {
        let list = BlockLookupList {
            latest: Some(ids),
            ..BlockLookupList::default()
        };
        let content = list
            .try_into()
            .map_err(|e| error::map(e, "put (commit)", &object(key)))?;
        let options = BlockBlobClientCommitBlockListOptions {
            metadata: Some(metadata),
            ..BlockBlobClientCommitBlockListOptions::default()
        };
        let rsp = self
            .blob(key)
            .block_blob_client()
            .commit_block_list(content, Some(options))
            .await
            .map_err(|e| self.err(e, "put (commit)", key))?;
        let etag = rsp
            .etag()
            .map_err(|e| error::map(e, "put (commit)", &object(key)))?;
        Ok(etag.map(|e| e.to_string()))
    }

    /// Get Blob, streamed. With a download concurrency of 1, one request for the whole
    /// blob, whose body is passed on as it arrives: one consistent version of the blob by
    /// construction, and no buffer beyond the HTTP client's. With more, ranged requests of
    /// the partition size, that many in flight, the ranges after the first locked to the
    /// first one's etag (`If-Match`), re-sequenced by the SDK (which holds up to twice the
    /// concurrency of partitions).
    pub(crate) async fn download(&self, key: &str) -> Result<(ObjectMeta, ByteStream)> {
        // One range as long as any blob can be: the SDK then makes one request and hands
        // its body over unbuffered. (Without any range it would cut the blob into
        // partitions of its default size.)
        let (parallel, partition) = if self.download_concurrency <= 1 {
            (1, WHOLE_BLOB)
        } else {
            (self.download_concurrency, self.download_partition)
        };
        let options = BlobClientDownloadOptions {
            parallel: NonZero::new(parallel),
            partition_size: NonZero::new(partition),
            ..BlobClientDownloadOptions::default()
        };
        let rsp = self
            .blob(key)
            .download(Some(options))
            .await
            .map_err(|e| self.err(e, "get", key))?;
        let p = rsp.properties;
        // A ranged response's Content-Length is one partition: the object's size is the
        // total of its Content-Range (absent for an empty blob, read without a range).
        let size = rsp
            .headers
            .get_optional_str(&"content-range".into())
            .and_then(total_from_content_range)
            .or(p.content_length)
            .unwrap_or(0);
        let meta = meta(
            key,
            size,
            to_chrono!(p.created_on),
            p.etag.map(|e| e.to_string()),
            p.metadata,
        );
        let owned = key.to_string();
        let stream = rsp
            .body
            .map_err(move |e| error::map(e, "get (body)", &object(&owned)))
            .boxed();
        Ok((meta, stream))
    }

    /// List Blobs with their metadata, following `NextMarker`s.
    pub(crate) fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_string()).filter(|p| !p.is_empty()),
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            maxresults: self.page_size.and_then(|n| i32::try_from(n).ok()),
            ..BlobContainerClientListBlobsOptions::default()
        };
        let pager = match self.container.list_blobs(Some(options)) {
            Ok(p) => p,
            Err(e) => {
                let e = error::map(e, "list", &format!("prefix {prefix}"));
                return futures::stream::once(async move { Err(e) }).boxed();
            }
        };
        pager
            .map(move |item| match item {
                Ok(item) => item_meta(item),
                Err(e) => Err(error::map(e, "list", &format!("prefix {prefix}"))),
            })
            .boxed()
    }

    /// Delete Blob; a missing blob is not an error.
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        match self.blob(key).delete(None).await {
            Ok(_) => Ok(()),
            Err(e) => match self.err(e, "delete", key) {
                Error::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Copy Blob from `source` (a URL this account can read), copying its metadata. Returns
    /// whether the copy already completed.
    pub(crate) async fn start_copy(&self, to: &str, source: &Url) -> Result<bool> {
        let rsp = self
            .blob(to)
            .start_copy_from_url(source.to_string(), None)
            .await
            .map_err(|e| self.err(e, "copy", to))?;
        let status = rsp
            .copy_status()
            .map_err(|e| error::map(e, "copy", &object(to)))?;
        Ok(matches!(status, Some(CopyStatus::Success)))
    }

    /// The copy status of `key`: `Ok(true)` done, `Ok(false)` pending.
    pub(crate) async fn copy_done(&self, key: &str) -> Result<bool> {
        let rsp = self
            .blob(key)
            .get_properties(None)
            .await
            .map_err(|e| self.err(e, "copy (status)", key))?;
        let status = rsp
            .copy_status()
            .map_err(|e| error::map(e, "copy (status)", &object(key)))?;
        match status {
            None | Some(CopyStatus::Success) => Ok(true),
            Some(CopyStatus::Pending) => Ok(false),
            Some(other) => Err(Error::InvalidState {
                provider: crate::PROVIDER.into(),
                resource: object(key),
                state: format!("copy {other:?}"),
                operation: "copy".into(),
            }),
        }
    }
}

/// `22020096` from `bytes 0-4194303/22020096`.
fn total_from_content_range(value: &str) -> Option<u64> {
    value
        .rsplit_once('/')
        .and_then(|(_, total)| total.trim().parse().ok())
}

fn item_meta(item: BlobItem) -> Result<ObjectMeta> {
    let Some(name) = item.name else {
        return Err(Error::InvalidResponse {
            provider: crate::PROVIDER.into(),
            operation: "list".into(),
            message: "a listed blob has no name".into(),
        });
    };
    let props = item.properties.unwrap_or_default();
    let user = item.metadata.and_then(|m| m.values).unwrap_or_default();
    Ok(meta(
        &name,
        props.content_length.unwrap_or(0),
        to_chrono!(props.creation_time),
        props.etag.map(|e| e.to_string()),
        user,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_comes_from_the_content_range_total() {
        assert_eq!(
            total_from_content_range("bytes 0-4194303/22020096"),
            Some(22_020_096)
        );
        assert_eq!(total_from_content_range("bytes */0"), Some(0));
        assert_eq!(total_from_content_range("bytes 0-1/*"), None);
    }

    #[test]
    fn sha256_metadata_is_not_user_metadata() {
        let mut user = HashMap::new();
        user.insert(SHA256_KEY.to_string(), "ab".to_string());
        user.insert("kind".to_string(), "dump".to_string());
        let m = meta("k", 3, None, None, user);
        assert_eq!(m.sha256.as_deref(), Some("ab"));
        assert_eq!(m.metadata.len(), 1);
    }
}
