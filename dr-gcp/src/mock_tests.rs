//! Control calls through the client's own mocking support: a `stub::StorageControl` with
//! recorded responses, given to `StorageControl::from_stub`. The emulator does not speak the
//! gRPC API these calls use.

use std::collections::HashMap;
use std::sync::Mutex;

use dr_core::provider::{SnapshotStore, SnapshotStoreExt};
use dr_core::{Error, Retry};
use google_cloud_gax::error::rpc::{Code, Status};
use google_cloud_gax::options::RequestOptions;
use google_cloud_gax::response::Response;
use google_cloud_storage::client::StorageControl;
use google_cloud_storage::model::{
    DeleteObjectRequest, GetObjectRequest, ListObjectsRequest, ListObjectsResponse, Object,
    ObjectChecksums, RewriteObjectRequest, RewriteResponse, UpdateObjectRequest,
};

use crate::client::GcsApi;
use crate::{GcsBuilder, GcsCredentials, GcsStore};

type GResult<T> = google_cloud_storage::Result<T>;

fn status(code: Code) -> google_cloud_storage::Error {
    google_cloud_storage::Error::service(Status::default().set_code(code).set_message("recorded"))
}

/// An object as the service returned it in a recorded `GetObject`.
fn recorded_object(name: &str, generation: i64) -> Object {
    let mut metadata = HashMap::new();
    metadata.insert("sha256".to_string(), "ab".repeat(32));
    metadata.insert("origin".to_string(), "east".to_string());
    Object::new()
        .set_bucket("projects/_/buckets/backups")
        .set_name(name)
        .set_generation(generation)
        .set_metageneration(2)
        .set_size(1234)
        .set_metadata(metadata)
        .set_create_time(google_cloud_wkt::Timestamp::clamp(1_700_000_000, 5))
        .set_checksums(
            ObjectChecksums::new()
                .set_crc32c(0xdead_beef_u32)
                .set_md5_hash(bytes::Bytes::from_static(&[0xab, 0xcd])),
        )
}

/// Recorded answers, and the requests the store made.
#[derive(Debug, Default)]
struct Recorded {
    requests: Mutex<Vec<String>>,
    update_fails: Option<Code>,
}

impl Recorded {
    fn log(&self, line: String) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl google_cloud_storage::stub::StorageControl for Recorded {
    async fn get_object(
        &self,
        req: GetObjectRequest,
        _o: RequestOptions,
    ) -> GResult<Response<Object>> {
        self.log(format!(
            "get {} {} gen={}",
            req.bucket, req.object, req.generation
        ));
        match req.object.as_str() {
            "db/missing" => Err(status(Code::NotFound)),
            "db/forbidden" => Err(status(Code::PermissionDenied)),
            "db/busy" => Err(status(Code::Unavailable)),
            name => Ok(Response::from(recorded_object(name, 7))),
        }
    }

    async fn list_objects(
        &self,
        req: ListObjectsRequest,
        _o: RequestOptions,
    ) -> GResult<Response<ListObjectsResponse>> {
        self.log(format!(
            "list {} prefix={} token={}",
            req.parent, req.prefix, req.page_token
        ));
        let page = match req.page_token.as_str() {
            "" => ListObjectsResponse::new()
                .set_objects([recorded_object("db/1", 1), recorded_object("db/2", 2)])
                .set_next_page_token("page-2"),
            "page-2" => ListObjectsResponse::new().set_objects([recorded_object("db/3", 3)]),
            _ => return Err(status(Code::InvalidArgument)),
        };
        Ok(Response::from(page))
    }

    async fn delete_object(
        &self,
        req: DeleteObjectRequest,
        _o: RequestOptions,
    ) -> GResult<Response<()>> {
        self.log(format!("delete {} {}", req.bucket, req.object));
        match req.object.as_str() {
            "db/missing" => Err(status(Code::NotFound)),
            "db/forbidden" => Err(status(Code::PermissionDenied)),
            _ => Ok(Response::from(())),
        }
    }

    async fn update_object(
        &self,
        req: UpdateObjectRequest,
        _o: RequestOptions,
    ) -> GResult<Response<Object>> {
        let object = req.object.unwrap_or_default();
        let mask = req
            .update_mask
            .map(|m| m.paths.join(","))
            .unwrap_or_default();
        self.log(format!(
            "update {} {} mask={mask} if_generation_match={:?} sha256={:?}",
            object.bucket,
            object.name,
            req.if_generation_match,
            object.metadata.get("sha256")
        ));
        if let Some(code) = self.update_fails {
            return Err(status(code));
        }
        Ok(Response::from(
            object.set_generation(req.if_generation_match.unwrap_or(0)),
        ))
    }

    async fn rewrite_object(
        &self,
        req: RewriteObjectRequest,
        _o: RequestOptions,
    ) -> GResult<Response<RewriteResponse>> {
        self.log(format!(
            "rewrite {}/{} -> {}/{} token={}",
            req.source_bucket,
            req.source_object,
            req.destination_bucket,
            req.destination_name,
            req.rewrite_token
        ));
        if req.source_object == "db/missing" {
            return Err(status(Code::NotFound));
        }
        // A large rewrite: the service asks to call again with a token.
        let rsp = if req.rewrite_token.is_empty() {
            RewriteResponse::new()
                .set_done(false)
                .set_rewrite_token("continue-1")
        } else {
            RewriteResponse::new()
                .set_done(true)
                .set_resource(recorded_object(&req.destination_name, 9))
        };
        Ok(Response::from(rsp))
    }
}

async fn store(recorded: std::sync::Arc<Recorded>) -> dr_core::Result<GcsStore> {
    GcsBuilder::new()
        .with_bucket("backups")
        // Never reached: only control calls are made here.
        .with_endpoint("http://127.0.0.1:9")
        .with_credentials(GcsCredentials::Anonymous)
        .with_control_client(StorageControl::from_stub::<Recorded>(recorded))
        .build()
        .await
}

#[tokio::test]
async fn head_reads_sha256_created_and_checksums() -> dr_core::Result<()> {
    let recorded = std::sync::Arc::new(Recorded::default());
    let store = store(recorded.clone()).await?;
    let meta = store.head("db/orders").await?;
    assert_eq!(meta.key, "db/orders");
    assert_eq!(meta.size, 1234);
    assert_eq!(meta.sha256, Some("ab".repeat(32)));
    assert_eq!(meta.etag.as_deref(), Some("7"));
    assert_eq!(meta.created.timestamp(), 1_700_000_000);
    assert_eq!(
        meta.metadata.get("origin").map(String::as_str),
        Some("east")
    );
    assert!(
        !meta.metadata.contains_key("sha256"),
        "sha256 is not user metadata"
    );
    let full = store.head_full("db/orders").await?;
    assert_eq!(full.crc32c, Some(0xdead_beef));
    assert_eq!(full.md5.as_deref(), Some("abcd"));
    assert_eq!((full.generation, full.metageneration), (7, 2));
    assert_eq!(
        recorded.requests()[0],
        "get projects/_/buckets/backups db/orders gen=0"
    );
    Ok(())
}

#[tokio::test]
async fn control_errors_map_to_core_classes() -> dr_core::Result<()> {
    let store = store(std::sync::Arc::new(Recorded::default())).await?;
    assert!(store
        .head("db/missing")
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));
    assert!(matches!(
        store.head("db/forbidden").await.err(),
        Some(Error::Unauthorized { .. })
    ));
    let busy = store.head("db/busy").await.err();
    assert!(
        busy.as_ref().is_some_and(
            |e| matches!(e, Error::Unavailable { .. }) && e.retry() == Retry::Temporary
        ),
        "an Unavailable the client already retried stays temporary: {busy:?}"
    );
    Ok(())
}

#[tokio::test]
async fn list_follows_page_tokens() -> dr_core::Result<()> {
    let recorded = std::sync::Arc::new(Recorded::default());
    let store = store(recorded.clone()).await?;
    let keys: Vec<String> = store
        .list_all("db/")
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["db/1", "db/2", "db/3"]);
    assert_eq!(
        recorded.requests(),
        [
            "list projects/_/buckets/backups prefix=db/ token=",
            "list projects/_/buckets/backups prefix=db/ token=page-2",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn delete_is_idempotent_but_not_blind() -> dr_core::Result<()> {
    let store = store(std::sync::Arc::new(Recorded::default())).await?;
    store.delete("db/orders").await?;
    store.delete("db/missing").await?;
    assert!(matches!(
        store.delete("db/forbidden").await.err(),
        Some(Error::Unauthorized { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn copy_follows_rewrite_tokens_across_buckets() -> dr_core::Result<()> {
    let recorded = std::sync::Arc::new(Recorded::default());
    let east = store(recorded.clone()).await?;
    let west = GcsBuilder::new()
        .with_bucket("backups-west")
        .with_endpoint("http://127.0.0.1:9")
        .with_credentials(GcsCredentials::Anonymous)
        .with_control_client(StorageControl::from_stub::<Recorded>(recorded.clone()))
        .build()
        .await?;
    let meta = east.copy_to("db/1", &west, "db/1-copy").await?;
    assert_eq!(meta.key, "db/1-copy");
    assert_eq!(meta.sha256, Some("ab".repeat(32)));
    assert_eq!(
        recorded.requests(),
        [
            "rewrite projects/_/buckets/backups/db/1 -> projects/_/buckets/backups-west/db/1-copy token=",
            "rewrite projects/_/buckets/backups/db/1 -> projects/_/buckets/backups-west/db/1-copy token=continue-1",
        ]
    );
    let missing = east.copy("db/missing", "db/x").await.err();
    assert!(
        missing.as_ref().is_some_and(Error::is_not_found),
        "{missing:?}"
    );
    Ok(())
}

async fn api(recorded: std::sync::Arc<Recorded>) -> dr_core::Result<GcsApi> {
    let store = store(recorded).await?;
    Ok(store.api().clone())
}

#[tokio::test]
async fn sha256_is_recorded_on_the_written_generation_only() -> dr_core::Result<()> {
    let recorded = std::sync::Arc::new(Recorded::default());
    let api = api(recorded.clone()).await?;
    let written = Object::new()
        .set_bucket("projects/_/buckets/backups")
        .set_name("db/new")
        .set_generation(42);
    let updated = api.record_sha256(&written, "cd").await?;
    assert!(updated.is_some());
    assert_eq!(
        recorded.requests(),
        ["update projects/_/buckets/backups db/new mask=metadata if_generation_match=Some(42) sha256=Some(\"cd\")"]
    );

    // Another writer replaced the object meanwhile: the precondition fails, and that is
    // not an error (the newer object records its own checksum).
    let raced = std::sync::Arc::new(Recorded {
        update_fails: Some(Code::FailedPrecondition),
        ..Recorded::default()
    });
    let api = self::api(raced).await?;
    assert!(api.record_sha256(&written, "cd").await?.is_none());
    let denied = std::sync::Arc::new(Recorded {
        update_fails: Some(Code::PermissionDenied),
        ..Recorded::default()
    });
    let api = self::api(denied).await?;
    assert!(matches!(
        api.record_sha256(&written, "cd").await.err(),
        Some(Error::Unauthorized { .. })
    ));
    Ok(())
}
