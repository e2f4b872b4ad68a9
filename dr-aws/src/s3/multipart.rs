//! Multipart uploads and copies: each one is completed or aborted, never left behind.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use dr_core::Result;
use sha2::{Digest, Sha256};

use super::S3Store;
use crate::error::missing;

/// An open multipart upload.
#[derive(Debug)]
pub(super) struct Multipart {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    next_part: i32,
}

impl Multipart {
    /// Starts a multipart upload of `key` in `store`'s bucket, or another client's `bucket`.
    pub(super) async fn start(
        store: &S3Store,
        key: &str,
        metadata: HashMap<String, String>,
        checksums: bool,
    ) -> Result<Self> {
        let ctx = store.ctx("put", key);
        let out = store
            .client
            .create_multipart_upload()
            .bucket(&store.bucket)
            .key(key)
            .set_metadata(Some(metadata))
            .set_checksum_algorithm(checksums.then_some(ChecksumAlgorithm::Sha256))
            .send()
            .await
            .map_err(|e| crate::error::map_sdk(ctx, e))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| missing(super::NAME, "put", "UploadId"))?
            .to_string();
        Ok(Multipart {
            client: store.client.clone(),
            bucket: store.bucket.clone(),
            key: key.to_string(),
            upload_id,
            parts: Vec::new(),
            next_part: 1,
        })
    }

    /// Takes the next part number.
    pub(super) fn next_number(&mut self) -> i32 {
        let n = self.next_part;
        self.next_part = self.next_part.saturating_add(1);
        n
    }

    /// Records a part uploaded by [`Multipart::upload`]; parts may arrive in any order.
    pub(super) fn add(&mut self, part: CompletedPart) {
        self.parts.push(part);
    }

    /// A request uploading part `number` (from [`Multipart::next_number`]) with its SHA-256
    /// for S3 to check, owning what it needs so that it can run as its own task (the part's
    /// digest is then computed off the task reading the stream). [`Multipart::add`] records
    /// the result; the part's bytes come back with it, for their buffer to be reused.
    pub(super) fn upload(
        &self,
        store: &S3Store,
        number: i32,
        part: Bytes,
    ) -> impl std::future::Future<Output = Result<(CompletedPart, Bytes)>> + Send + 'static {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        let upload_id = self.upload_id.clone();
        let timeout = store.timeout;
        async move {
            let digest = aws_smithy_types::base64::encode(Sha256::digest(&part));
            let out = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .checksum_sha256(&digest)
                .body(SdkByteStream::from(part.clone()))
                .send()
                .await
                .map_err(|e| {
                    let ctx = crate::error::Ctx {
                        provider: super::NAME,
                        operation: "put",
                        resource: &key,
                        timeout,
                    };
                    crate::error::map_sdk(ctx, e)
                })?;
            let done = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .checksum_sha256(out.checksum_sha256().unwrap_or(&digest))
                .build();
            Ok((done, part))
        }
    }

    /// Copies bytes `first..=last` of `source` (`bucket/key`, URL-encoded) as the next part.
    pub(super) async fn copy_part(
        &mut self,
        store: &S3Store,
        source: &str,
        first: u64,
        last: u64,
    ) -> Result<()> {
        let number = self.next_number();
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .copy_source(source)
            .copy_source_range(format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(|e| crate::error::map_sdk(store.ctx("copy", &self.key), e))?;
        let result = out.copy_part_result();
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(result.and_then(|r| r.e_tag()).map(str::to_string))
                .build(),
        );
        Ok(())
    }

    /// Completes the upload; returns the ETag.
    pub(super) async fn complete(mut self, store: &S3Store) -> Result<Option<String>> {
        self.parts.sort_by_key(|p| p.part_number());
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| crate::error::map_sdk(store.ctx("put", &self.key), e))?;
        Ok(out.e_tag().map(str::to_string))
    }

    /// Aborts the upload, so no parts are kept (or billed). Failures are logged: the caller
    /// is already returning the error that made it abort.
    pub(super) async fn abort(self) {
        let res = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                upload_id = %self.upload_id,
                error = %e,
                "could not abort multipart upload; a lifecycle rule will have to remove it"
            );
        }
    }
}
