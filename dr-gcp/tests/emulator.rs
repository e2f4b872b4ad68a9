//! The conformance suite and Cloud Storage-specific checks, against fake-gcs-server.
//!
//! Run by `scripts/test.sh`, which starts the emulator on port 80
//! (`scripts/standins/fakegcs.sh`) and exports `GCS_EMULATOR_URL`, `GCS_BUCKET` and
//! `GCS_BUCKET_2`.
//!
//! Reads and resumable writes are the client's own, over JSON/HTTP, against the emulator.
//! The client's control calls use gRPC, which the emulator does not speak: here they go
//! through [`json_control::JsonControl`], a `StorageControl` stub that replays each call on
//! the emulator's JSON API.

use bytes::Bytes;
use dr_core::provider::{PutOptions, SnapshotStore, SnapshotStoreExt};
use dr_core::testkit::store::{self as suite, pattern_sha256, pattern_stream};
use dr_core::{Error, Result};
use dr_gcp::{GcsBuilder, GcsCredentials, GcsStore};
use futures::StreamExt;
use google_cloud_storage::client::StorageControl;

const MIB: usize = 1024 * 1024;

struct Emulator {
    url: String,
    bucket: String,
    bucket2: String,
}

fn emulator() -> Option<Emulator> {
    let url = dr_core::testkit::standin("GCS_EMULATOR_URL", "fake-gcs-server")?;
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Some(Emulator {
        url,
        bucket: var("GCS_BUCKET").unwrap_or_else(|| "dr-test".into()),
        bucket2: var("GCS_BUCKET_2").unwrap_or_else(|| "dr-test-2".into()),
    })
}

fn unique(label: &str) -> String {
    format!("{}/", dr_core::testkit::unique(label))
}

impl Emulator {
    async fn store(&self, bucket: &str) -> Result<GcsStore> {
        self.builder(bucket).build().await
    }

    fn builder(&self, bucket: &str) -> GcsBuilder {
        GcsBuilder::new()
            .with_bucket(bucket)
            .with_endpoint(&self.url)
            .with_credentials(GcsCredentials::Anonymous)
            .with_control_client(StorageControl::from_stub(json_control::JsonControl::new(
                &self.url,
            )))
    }

    /// Rewrites the object behind the store's back (a plain upload through the JSON API),
    /// keeping its recorded `sha256`.
    async fn corrupt(&self, key: &str) -> Result<()> {
        let store = self.store(&self.bucket).await?;
        let head = store.head(key).await?;
        let body = serde_json::json!({"name": key, "metadata": {"sha256": head.sha256}});
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.url, self.bucket
        );
        let boundary = "dr-corrupt-boundary";
        let payload = format!(
            "--{boundary}\r\ncontent-type: application/json\r\n\r\n{body}\r\n--{boundary}\r\ncontent-type: application/octet-stream\r\n\r\ncorrupted!\r\n--{boundary}--\r\n"
        );
        let rsp = reqwest::Client::new()
            .post(url)
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(payload)
            .send()
            .await
            .map_err(other)?;
        assert!(
            rsp.status().is_success(),
            "corrupting upload: {}",
            rsp.status()
        );
        Ok(())
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Other {
        provider: "test".into(),
        operation: "setup".into(),
        retry: dr_core::Retry::Permanent,
        source: Box::new(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    // Small pages, so listing 1100 objects follows page tokens.
    let store = emu
        .builder(&emu.bucket)
        .with_upload_buffer_size(2 * MIB)
        .with_list_page_size(300)
        .build()
        .await?;
    let prefix = unique("suite");
    let corruptor = |key: String| {
        let emu = &emu;
        async move { emu.corrupt(&key).await }
    };
    suite::run_all(&store, &prefix, &corruptor).await?;
    suite::backups_round_trip(std::sync::Arc::new(store), &unique("backups")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_journal_and_lease() -> Result<()> {
    use dr_core::provider::{Lease, SnapshotStore, StoreLease};
    use dr_core::testkit::lease;
    use std::sync::Arc;
    let Some(emu) = emulator() else { return Ok(()) };
    let store: Arc<dyn SnapshotStore> = Arc::new(emu.builder(&emu.bucket).build().await?);
    let prefix = unique("conditional");
    suite::conditional_writes(store.as_ref(), &prefix).await?;
    suite::conditional_races(store.as_ref(), &prefix, 16, 4).await?;
    suite::journal_races(store.clone(), &prefix, 4, 10).await?;
    let key = format!("{prefix}/lease");
    let runners: Vec<StoreLease> = (0..3)
        .map(|_| StoreLease::new(store.clone(), &key))
        .collect();
    let dyns: Vec<&dyn Lease> = runners.iter().map(|l| l as &dyn Lease).collect();
    lease::run_all_with_ttl(&dyns, std::time::Duration::from_secs(2)).await?;
    let racers: Vec<StoreLease> = (0..12)
        .map(|_| StoreLease::new(store.clone(), &key))
        .collect();
    let dyns: Vec<&dyn Lease> = racers.iter().map(|l| l as &dyn Lease).collect();
    lease::race(&dyns, 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_is_not_visible_until_finalized() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    let store = emu
        .builder(&emu.bucket)
        .with_upload_buffer_size(MIB)
        .build()
        .await?;
    let key = format!("{}object", unique("resumable"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(1);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed();
    let writer = {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move { store.put(&key, stream, PutOptions::default()).await })
    };
    let mut chunks = pattern_stream(4, 5 * MIB, MIB / 2);
    for _ in 0..6 {
        if let Some(c) = chunks.next().await {
            tx.send(c).await.map_err(other)?;
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let head = store.head(&key).await.err();
    assert!(
        head.as_ref().is_some_and(Error::is_not_found),
        "an object is visible before its resumable upload was finalized: {head:?}"
    );
    while let Some(c) = chunks.next().await {
        tx.send(c).await.map_err(other)?;
    }
    drop(tx);
    let meta = writer.await.map_err(other)??;
    assert_eq!(meta.size, 5 * MIB as u64);
    let full = store.head_full(&key).await?;
    assert_eq!(
        full.meta.sha256.as_deref(),
        Some(pattern_sha256(4, 5 * MIB).as_str())
    );
    assert!(full.crc32c.is_some(), "the service's CRC32C is reported");
    store.verify(&key).await?;
    store.delete(&key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_sha256_is_stored_with_the_object() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    let store = emu.store(&emu.bucket).await?;
    let key = format!("{}object", unique("preset"));
    let sha = pattern_sha256(2, 3 * MIB);
    let opts = PutOptions::default().with_expected_sha256(sha.to_uppercase());
    store
        .put(&key, pattern_stream(2, 3 * MIB, MIB), opts)
        .await?;
    assert_eq!(
        store.head(&key).await?.sha256.as_deref(),
        Some(sha.as_str())
    );
    store.verify(&key).await?;
    store.delete(&key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_across_buckets() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    let east = emu.store(&emu.bucket).await?;
    let west = emu.store(&emu.bucket2).await?;
    let prefix = unique("rewrite");
    let from = format!("{prefix}source");
    let opts = PutOptions::default().with_metadata("origin", "east");
    let put = east
        .put(&from, pattern_stream(6, 3 * MIB, MIB), opts)
        .await?;
    let to = format!("{prefix}copied");
    let copied = east.copy_to(&from, &west, &to).await?;
    assert_eq!(copied.sha256, put.sha256);
    assert_eq!(
        copied.metadata.get("origin").map(String::as_str),
        Some("east")
    );
    west.verify(&to).await?;
    assert!(east.head(&to).await.err().is_some_and(|e| e.is_not_found()));
    let missing = east
        .copy_to(&format!("{prefix}missing"), &west, &to)
        .await
        .err();
    assert!(
        missing.as_ref().is_some_and(Error::is_not_found),
        "{missing:?}"
    );
    east.delete(&from).await?;
    west.delete(&to).await
}

#[path = "support/json_control.rs"]
mod json_control;
