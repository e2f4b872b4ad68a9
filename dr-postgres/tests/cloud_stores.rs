//! Dumps through the cloud stores' stand-ins (moto for S3, Azurite for Azure Blob Storage,
//! fake-gcs-server for Cloud Storage), started by `scripts/test.sh`:
//! `pg_dump` → encrypted backup in the bucket → verified restore into a new database →
//! data checks equal to the source.

mod common;

use std::sync::Arc;

use common::{exec, fixture, primary_ref, REGION};
use dr_core::backup::{Backups, EncryptionKey};
use dr_core::provider::{DatabaseReplica, DbRef, DynSnapshotStore};
use dr_postgres::DataCheck;

const SEED: &str = "CREATE TABLE orders (id int PRIMARY KEY, note text);
INSERT INTO orders SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g;";

/// Dumps the fixture's primary into `store`, restores it into a new database on the same
/// server and compares row counts and checksums.
async fn round_trip(store: Arc<DynSnapshotStore>) {
    let Some(fx) = fixture().await else { return };
    let restored = DbRef::new(REGION, "restored");
    let backups = Backups::new(store).with_encryption(EncryptionKey::from_bytes("k", [5; 32]));
    let pg = fx
        .builder()
        .with_dump_prefix(format!("{}/", dr_core::testkit::unique("pg")))
        .with_dumps(REGION, backups)
        .with_instance(restored.clone(), fx.on_primary("restored"))
        .build()
        .expect("provider");
    exec(&pg, &primary_ref(), SEED).await;
    let checks = [
        DataCheck::row_count("orders"),
        DataCheck::checksum("orders"),
    ];
    let want: Vec<_> = pg
        .check(&primary_ref(), &checks)
        .await
        .expect("checks")
        .into_iter()
        .map(|c| c.value)
        .collect();
    let snap = pg
        .create_snapshot(&primary_ref(), "nightly")
        .await
        .expect("dump into the store");
    let listed = pg
        .list_snapshots(&primary_ref(), REGION)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    pg.restore_snapshot(&snap, &restored)
        .await
        .expect("restore from the store");
    let got: Vec<_> = pg
        .check(&restored, &checks)
        .await
        .expect("checks")
        .into_iter()
        .map(|c| c.value)
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[0].as_deref(), Some("20000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_through_s3() {
    if dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto").is_none() {
        return;
    }
    let aws = dr_aws::AwsConfig::from_env().await.expect("AWS config");
    let name = dr_core::testkit::unique("dr-pg");
    let store = aws.build_s3_for(&name);
    store
        .client()
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    round_trip(Arc::new(store.with_part_size(dr_aws::MIN_PART_SIZE))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_through_azure_blob_storage() {
    let Some(url) = dr_core::testkit::standin("AZURITE_BLOB_URL", "Azurite") else {
        return;
    };
    let var = |n: &str| {
        std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set beside AZURITE_BLOB_URL"))
    };
    let store = dr_azure::AzureBlobBuilder::new()
        .with_account(var("AZURITE_ACCOUNT"))
        .with_endpoint(&url)
        .with_container("dr-pg-dumps")
        .with_access_key(var("AZURITE_KEY"))
        .build()
        .expect("Azure store");
    store.create_container().await.expect("create container");
    round_trip(Arc::new(store)).await;
}

#[path = "../../dr-gcp/tests/support/json_control.rs"]
mod gcs_json_control;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_through_cloud_storage() {
    let Some(url) = dr_core::testkit::standin("GCS_EMULATOR_URL", "fake-gcs-server") else {
        return;
    };
    let bucket = std::env::var("GCS_BUCKET")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "dr-test".into());
    // The emulator does not speak gRPC: the store's control calls go through the JSON
    // stub dr-gcp's own tests use; reads and resumable uploads are the client's.
    let control = google_cloud_storage::client::StorageControl::from_stub(
        gcs_json_control::JsonControl::new(&url),
    );
    let store = dr_gcp::GcsBuilder::new()
        .with_bucket(&bucket)
        .with_endpoint(&url)
        .with_credentials(dr_gcp::GcsCredentials::Anonymous)
        .with_control_client(control)
        .build()
        .await
        .expect("GCS store");
    round_trip(Arc::new(store)).await;
}
