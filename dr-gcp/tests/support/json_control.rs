//! A `StorageControl` stub replaying the control calls a GCS store makes on
//! fake-gcs-server's JSON API (the emulator does not speak gRPC), answering as the gRPC
//! service would (status codes, not HTTP statuses). Shared by the dr-gcp emulator tests and
//! the providers proof test of the examples.
use std::collections::HashMap;

use google_cloud_gax::error::rpc::{Code, Status};
use google_cloud_gax::options::RequestOptions;
use google_cloud_gax::response::Response;
use google_cloud_storage::model::{
    DeleteObjectRequest, GetObjectRequest, ListObjectsRequest, ListObjectsResponse, Object,
    ObjectChecksums, RewriteObjectRequest, RewriteResponse, UpdateObjectRequest,
};
use google_cloud_storage::Error;
use serde_json::Value;

type Result<T> = std::result::Result<T, Error>;

#[derive(Debug)]
pub(crate) struct JsonControl {
    base: String,
    http: reqwest::Client,
    updates: tokio::sync::Mutex<()>,
}

impl JsonControl {
    pub(crate) fn new(base: &str) -> Self {
        JsonControl {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            updates: tokio::sync::Mutex::new(()),
        }
    }

    fn object_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            strip(bucket),
            enc(name)
        )
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let rsp = req.send().await.map_err(Error::io)?;
        let status = rsp.status().as_u16();
        let body = rsp.bytes().await.map_err(Error::io)?;
        if !(200..300).contains(&status) {
            let code = match status {
                404 => Code::NotFound,
                409 => Code::AlreadyExists,
                412 => Code::FailedPrecondition,
                401 => Code::Unauthenticated,
                403 => Code::PermissionDenied,
                429 => Code::ResourceExhausted,
                400 => Code::InvalidArgument,
                _ => Code::Unavailable,
            };
            let message = String::from_utf8_lossy(&body).into_owned();
            return Err(Error::service(
                Status::default().set_code(code).set_message(message),
            ));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(Error::deser)
    }
}

fn strip(bucket: &str) -> &str {
    bucket.strip_prefix("projects/_/buckets/").unwrap_or(bucket)
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn num(v: &Value, field: &str) -> i64 {
    match &v[field] {
        Value::String(s) => s.parse().unwrap_or_default(),
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        _ => 0,
    }
}

fn to_object(v: &Value) -> Object {
    let text = |f: &str| v[f].as_str().unwrap_or_default().to_string();
    let metadata: HashMap<String, String> = v["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let crc = base64(&text("crc32c"));
    let crc32c = <[u8; 4]>::try_from(crc.as_slice())
        .ok()
        .map(u32::from_be_bytes);
    let mut checksums = ObjectChecksums::new().set_md5_hash(base64(&text("md5Hash")));
    if let Some(c) = crc32c {
        checksums = checksums.set_crc32c(c);
    }
    let mut o = Object::new()
        .set_name(text("name"))
        .set_bucket(format!("projects/_/buckets/{}", text("bucket")))
        .set_etag(text("etag"))
        .set_generation(num(v, "generation"))
        .set_metageneration(num(v, "metageneration"))
        .set_size(num(v, "size"))
        .set_metadata(metadata)
        .set_checksums(checksums);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text("timeCreated")) {
        if let Ok(ts) =
            google_cloud_wkt::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        {
            o = o.set_create_time(ts);
        }
    }
    o
}

impl google_cloud_storage::stub::StorageControl for JsonControl {
    async fn get_object(
        &self,
        req: GetObjectRequest,
        _options: RequestOptions,
    ) -> Result<Response<Object>> {
        let mut url = self.object_url(&req.bucket, &req.object);
        if req.generation != 0 {
            url.push_str(&format!("?generation={}", req.generation));
        }
        let v = self.call(self.http.get(url)).await?;
        Ok(Response::from(to_object(&v)))
    }

    async fn list_objects(
        &self,
        req: ListObjectsRequest,
        _options: RequestOptions,
    ) -> Result<Response<ListObjectsResponse>> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}",
            self.base,
            strip(&req.parent),
            enc(&req.prefix)
        );
        if !req.page_token.is_empty() {
            url.push_str(&format!("&pageToken={}", enc(&req.page_token)));
        }
        if req.page_size > 0 {
            url.push_str(&format!("&maxResults={}", req.page_size));
        }
        let v = self.call(self.http.get(url)).await?;
        let objects: Vec<Object> = v["items"]
            .as_array()
            .map(|items| items.iter().map(to_object).collect())
            .unwrap_or_default();
        let mut page = ListObjectsResponse::new().set_objects(objects);
        if let Some(t) = v["nextPageToken"].as_str() {
            page = page.set_next_page_token(t);
        }
        Ok(Response::from(page))
    }

    async fn delete_object(
        &self,
        req: DeleteObjectRequest,
        _options: RequestOptions,
    ) -> Result<Response<()>> {
        self.call(self.http.delete(self.object_url(&req.bucket, &req.object)))
            .await?;
        Ok(Response::from(()))
    }

    async fn update_object(
        &self,
        req: UpdateObjectRequest,
        _options: RequestOptions,
    ) -> Result<Response<Object>> {
        let object = req.object.unwrap_or_default();
        let url = self.object_url(&object.bucket, &object.name);
        // fake-gcs-server ignores `ifGenerationMatch` on PATCH; the service honours it,
        // so the stub checks it, one update at a time.
        let _one_at_a_time = self.updates.lock().await;
        if let Some(g) = req.if_generation_match {
            let current = self.call(self.http.get(&url)).await?;
            if num(&current, "generation") != g {
                return Err(Error::service(
                    Status::default()
                        .set_code(Code::FailedPrecondition)
                        .set_message("generation does not match"),
                ));
            }
        }
        let body = serde_json::json!({ "metadata": object.metadata });
        let v = self.call(self.http.patch(url).json(&body)).await?;
        Ok(Response::from(to_object(&v)))
    }

    async fn rewrite_object(
        &self,
        req: RewriteObjectRequest,
        _options: RequestOptions,
    ) -> Result<Response<RewriteResponse>> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}/rewriteTo/b/{}/o/{}",
            self.base,
            strip(&req.source_bucket),
            enc(&req.source_object),
            strip(&req.destination_bucket),
            enc(&req.destination_name)
        );
        let v = self
            .call(self.http.post(url).json(&serde_json::json!({})))
            .await?;
        let mut rsp = RewriteResponse::new()
            .set_done(v["done"].as_bool().unwrap_or(false))
            .set_rewrite_token(v["rewriteToken"].as_str().unwrap_or_default())
            .set_total_bytes_rewritten(num(&v, "totalBytesRewritten"))
            .set_object_size(num(&v, "objectSize"));
        if v["resource"].is_object() {
            rsp = rsp.set_resource(to_object(&v["resource"]));
        }
        Ok(Response::from(rsp))
    }
}
