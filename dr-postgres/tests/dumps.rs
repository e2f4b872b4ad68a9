//! Dumps as snapshots against a real server: `pg_dump` streamed into a store (manifest,
//! checksum, encryption), verified and restored into a new database, then data checks; a
//! corrupted dump is refused before the target database is created.

mod common;

use common::{count, exec, fixture, primary_ref, REGION, STANDBY_REGION};
use dr_core::backup::{EncryptionKey, VerifyStatus};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole};
use dr_core::Error;
use dr_postgres::{DataCheck, PostgresDatabase};

const SEED: &str = "CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(10,2));
INSERT INTO shop.orders SELECT g, 'customer ' || (g % 97), g * 1.25 FROM generate_series(1, 5000) g;
CREATE TABLE shop.\"Odd Name\" (v text);
INSERT INTO shop.\"Odd Name\" VALUES ('quote '' and backslash \\ and newline
inside');";

fn checks() -> Vec<DataCheck> {
    vec![
        DataCheck::row_count("shop.orders"),
        DataCheck::checksum("shop.orders"),
        DataCheck::checksum("shop.Odd Name"),
        DataCheck::query("total", "SELECT sum(total) FROM shop.orders"),
    ]
}

async fn values(pg: &PostgresDatabase, db: &DbRef) -> Vec<Option<String>> {
    pg.check(db, &checks())
        .await
        .unwrap_or_else(|e| panic!("checks on {db}: {e}"))
        .into_iter()
        .map(|c| c.value)
        .collect()
}

async fn database_exists(pg: &PostgresDatabase, name: &str) -> bool {
    count(
        pg,
        &primary_ref(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_dump_to_disk_restores_into_a_new_database_with_equal_data() {
    let Some(fx) = fixture().await else { return };
    let (dc1, _) = fx.disk_backups("dc1");
    let (dc2, _) = fx.disk_backups("dc2");
    let key = EncryptionKey::from_bytes("k1", [9; 32]);
    let restored = DbRef::new(REGION, "restored");
    let restored_dr = DbRef::new(STANDBY_REGION, "restored-dr");
    let pg = fx
        .builder()
        .with_dumps(REGION, dc1.with_encryption(key.clone()))
        .with_dumps(STANDBY_REGION, dc2.with_decryption_key(key))
        .with_instance(restored.clone(), fx.on_primary("restored"))
        .with_instance(restored_dr.clone(), fx.on_primary("restored_dr"))
        .build()
        .expect("provider");
    exec(&pg, &primary_ref(), SEED).await;
    let source = values(&pg, &primary_ref()).await;
    assert_eq!(source[0].as_deref(), Some("5000"));

    let snap = pg
        .create_snapshot(&primary_ref(), "nightly-1")
        .await
        .expect("dump");
    assert_eq!(snap.source, primary_ref());
    assert!(snap.available);
    let listed = pg
        .list_snapshots(&primary_ref(), REGION)
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["nightly-1"]
    );
    // What is stored is encrypted: the data's text is not in it.
    let store = pg.dump_key(REGION, "nightly-1");
    let manifest = dr_core::backup::Backups::new(fx_store(&fx, "dc1"))
        .manifest(&store)
        .await
        .expect("manifest");
    assert_eq!(
        manifest.encrypted.as_ref().map(|e| e.key_id.as_str()),
        Some("k1")
    );
    assert!(
        manifest.size > 100_000,
        "a dump of 5000 rows: {} bytes",
        manifest.size
    );

    // A write after the dump is not in it.
    exec(
        &pg,
        &primary_ref(),
        "INSERT INTO shop.orders VALUES (9999, 'late', 1)",
    )
    .await;
    let status = pg
        .restore_snapshot(&snap, &restored)
        .await
        .expect("restore");
    assert_eq!(status.role, DbRole::Primary);
    assert_eq!(
        values(&pg, &restored).await,
        source,
        "restored data equals the dumped data"
    );
    let outcome = pg
        .check(
            &restored,
            &[DataCheck::row_count("shop.orders").expect("5000")],
        )
        .await
        .expect("check");
    assert!(outcome[0].passed(), "{outcome:?}");
    let outcome = pg
        .check(
            &restored,
            &[DataCheck::row_count("shop.orders").expect("5001")],
        )
        .await
        .expect("check");
    assert!(
        !outcome[0].passed(),
        "an unmet expectation fails: {outcome:?}"
    );

    // Copied to the other region's store (verified on the way), and restored from there.
    let copy = pg
        .copy_snapshot(&snap, STANDBY_REGION, "nightly-1-dr")
        .await
        .expect("copy");
    assert_eq!(copy.source, primary_ref());
    assert_eq!(copy.created, snap.created);
    pg.restore_snapshot(&copy, &restored_dr)
        .await
        .expect("restore the copy");
    assert_eq!(values(&pg, &restored_dr).await, source);
    let e = pg
        .restore_snapshot(&copy, &restored_dr)
        .await
        .expect_err("the target exists");
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    assert_eq!(
        values(&pg, &restored_dr).await,
        source,
        "an existing target is left alone"
    );
}

fn fx_store(
    fx: &common::Fixture,
    name: &str,
) -> std::sync::Arc<dr_core::provider::DynSnapshotStore> {
    let store = dr_core::store::LocalDiskStore::new(fx.dir.path().join(name)).expect("store");
    std::sync::Arc::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_dump_is_refused_before_the_database_is_touched() {
    let Some(fx) = fixture().await else { return };
    let (dc1, root) = fx.disk_backups("dc1");
    let target = DbRef::new(REGION, "from_corrupt");
    let pg = fx
        .builder()
        .with_dumps(REGION, dc1)
        .with_instance(target.clone(), fx.on_primary("from_corrupt"))
        .build()
        .expect("provider");
    exec(&pg, &primary_ref(), SEED).await;
    let snap = pg
        .create_snapshot(&primary_ref(), "d1")
        .await
        .expect("dump");
    // One byte changes on disk, in the middle of the rows.
    let store = dr_core::store::LocalDiskStore::new(&root).expect("store");
    let path = store.object_path(&pg.dump_key(REGION, "d1")).expect("path");
    let mut bytes = std::fs::read(&path).expect("read dump");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).expect("corrupt dump");
    let verify = dr_core::backup::Backups::new(fx_store(&fx, "dc1"))
        .verify(&pg.dump_key(REGION, "d1"))
        .await
        .expect("verify");
    assert!(
        matches!(verify.status, VerifyStatus::Corrupt { .. }),
        "{verify:?}"
    );

    let e = pg
        .restore_snapshot(&snap, &target)
        .await
        .expect_err("a corrupt dump must be refused");
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
    assert!(
        !database_exists(&pg, "from_corrupt").await,
        "the target was never created"
    );
    let e = pg.describe(&target).await.expect_err("no database");
    assert!(e.is_not_found(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_a_missing_database_fails_and_stores_nothing() {
    let Some(fx) = fixture().await else { return };
    let (dc1, _) = fx.disk_backups("dc1");
    let gone = DbRef::new(REGION, "gone");
    let pg = fx
        .builder()
        .with_dumps(REGION, dc1)
        .with_instance(gone.clone(), fx.on_primary("gone"))
        .build()
        .expect("provider");
    let e = pg
        .create_snapshot(&gone, "x")
        .await
        .expect_err("no such database");
    assert!(e.is_not_found(), "{e}");
    assert!(pg
        .list_snapshots(&gone, REGION)
        .await
        .expect("list")
        .is_empty());
    let e = pg
        .describe_snapshot(REGION, "x")
        .await
        .expect_err("no snapshot");
    assert!(e.is_not_found(), "{e}");
}
