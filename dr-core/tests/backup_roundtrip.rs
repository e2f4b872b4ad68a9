//! Backups over the in-memory and local-disk stores: round trips, corruption, keys, prune.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, TimeZone, Utc};
use dr_core::backup::{
    manifest_key, prune, Backups, EncryptionKey, RetainReason, RetentionClass, RetentionPolicy,
    VerifyDepth, VerifyStatus, WriteOptions,
};
use dr_core::provider::{ByteStream, DynSnapshotStore, SnapshotStore, SnapshotStoreExt};
use dr_core::store::{InMemoryStore, LocalDiskStore};
use dr_core::Error;
use futures::{StreamExt, TryStreamExt};

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 9) as u8))
        .collect()
}

/// `data` as a stream of `chunk`-sized pieces.
fn stream_of(data: &[u8], chunk: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes, Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

fn key() -> EncryptionKey {
    EncryptionKey::from_bytes("k1", [42; 32])
}

async fn restore_all(b: &Backups, key: &str) -> Result<Vec<u8>, Error> {
    let chunks: Vec<Bytes> = b.restore(key).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// Chunks released before the stream failed, and the error.
async fn restore_until_error(b: &Backups, key: &str) -> (usize, Error) {
    let mut s = b.restore(key).await.unwrap();
    let mut released = 0;
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => released += c.len(),
            Err(e) => return (released, e),
        }
    }
    panic!("restore of {key} did not fail");
}

fn stores() -> Vec<(Arc<DynSnapshotStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let disk = LocalDiskStore::new(dir.path().join("root")).unwrap();
    vec![
        (Arc::new(InMemoryStore::new()), None),
        (Arc::new(disk), Some(dir)),
    ]
}

#[tokio::test]
async fn round_trips_with_and_without_encryption() {
    for (store, _dir) in stores() {
        for encrypted in [false, true] {
            let mut b = Backups::new(store.clone()).with_chunk_size(4096);
            if encrypted {
                b = b.with_encryption(key());
            }
            for (label, len) in [
                ("empty", 0),
                ("small", 100),
                ("multi", 4096 * 5 + 17),
                ("exact", 4096 * 3),
            ] {
                let k = format!("rt/{encrypted}/{label}");
                let data = content(3, len);
                let m = b
                    .write(
                        &k,
                        stream_of(&data, 1000),
                        "db orders",
                        RetentionClass::Daily,
                        WriteOptions::default().with_metadata("tool", "pg_dump"),
                    )
                    .await
                    .unwrap();
                assert_eq!(m.size, len as u64);
                assert_eq!(m.source, "db orders");
                assert_eq!(m.metadata.get("tool").map(String::as_str), Some("pg_dump"));
                assert_eq!(m.sha256.is_some(), !encrypted, "{k}");
                assert_eq!(m.encrypted.is_some(), encrypted, "{k}");
                assert_eq!(b.manifest(&k).await.unwrap(), m);
                assert_eq!(
                    restore_all(&b, &k).await.unwrap(),
                    data,
                    "{} {k}",
                    store.name()
                );
                let r = b.verify(&k).await.unwrap();
                assert_eq!(
                    r.status,
                    VerifyStatus::Ok {
                        depth: VerifyDepth::Content,
                        size: len as u64
                    }
                );
                if encrypted && len > 0 {
                    // The stored object is not the plaintext.
                    let stored = store.get_bytes(&k).await.unwrap();
                    assert!(!stored
                        .windows(len.min(32))
                        .any(|w| w == &data[..len.min(32)]));
                    // The manifest names no plaintext digest.
                    let json = store.get_bytes(&manifest_key(&k)).await.unwrap();
                    let plain_sha = dr_core::provider::sha256_stream(stream_of(&data, 1 << 20))
                        .await
                        .unwrap()
                        .0;
                    assert!(!String::from_utf8_lossy(&json).contains(&plain_sha));
                }
            }
            let all = b.verify_all(&format!("rt/{encrypted}/")).await.unwrap();
            assert_eq!(all.len(), 4);
            assert!(all.iter().all(|r| r.is_ok()), "{all:?}");
        }
    }
}

#[tokio::test]
async fn corruption_is_reported_on_restore_before_the_last_chunk_and_by_verify_all() {
    for (store, _dir) in stores() {
        for encrypted in [false, true] {
            let mut b = Backups::new(store.clone()).with_chunk_size(1024);
            if encrypted {
                b = b.with_encryption(key());
            }
            let prefix = format!("c/{encrypted}/");
            let data = content(9, 10_000);
            for name in ["good", "bad-first", "bad-last"] {
                b.write(
                    &format!("{prefix}{name}"),
                    stream_of(&data, 1000),
                    "db",
                    RetentionClass::Daily,
                    WriteOptions::default(),
                )
                .await
                .unwrap();
            }
            // Damage a byte behind the manifest's back (same size: the store accepts it).
            for (name, at) in [("bad-first", 20usize), ("bad-last", 0)] {
                let k = format!("{prefix}{name}");
                let mut stored = store.get_bytes(&k).await.unwrap().to_vec();
                let i = if at == 0 { stored.len() - 1 } else { at };
                stored[i] ^= 0x01;
                store.put_bytes(&k, stored.into()).await.unwrap();
            }
            let (released, err) = restore_until_error(&b, &format!("{prefix}bad-last")).await;
            assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
            assert!(
                released < data.len(),
                "the whole corrupt content was released"
            );
            let (_, err) = restore_until_error(&b, &format!("{prefix}bad-first")).await;
            assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");

            let reports = b.verify_all(&prefix).await.unwrap();
            let status: Vec<(&str, bool)> = reports
                .iter()
                .map(|r| (r.key.as_str(), r.is_ok()))
                .collect();
            assert_eq!(
                status,
                [
                    (format!("{prefix}bad-first").as_str(), false),
                    (format!("{prefix}bad-last").as_str(), false),
                    (format!("{prefix}good").as_str(), true)
                ],
            );
            for r in &reports[..2] {
                assert!(matches!(r.status, VerifyStatus::Corrupt { .. }), "{r:?}");
            }
            // Without the key, the stored bytes are still checked.
            if encrypted {
                let keyless = Backups::new(store.clone());
                let reports = keyless.verify_all(&prefix).await.unwrap();
                assert!(matches!(reports[0].status, VerifyStatus::Corrupt { .. }));
                assert_eq!(
                    reports[2].status,
                    VerifyStatus::Ok {
                        depth: VerifyDepth::StoredBytes,
                        size: 10_000
                    }
                );
                let err = keyless
                    .restore(&format!("{prefix}good"))
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(&err, Error::Unauthorized { message, .. } if message.contains("\"k1\"")),
                    "{err}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_corrupt_file_on_disk_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let disk = LocalDiskStore::new(dir.path()).unwrap();
    let b = Backups::new(Arc::new(disk.clone()));
    let data = content(1, 300_000);
    b.write(
        "d/x",
        stream_of(&data, 65536),
        "db",
        RetentionClass::Daily,
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let path = disk.object_path("d/x").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[299_999] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let (released, err) = restore_until_error(&b, "d/x").await;
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(released < data.len());
    assert!(matches!(
        b.verify("d/x").await.unwrap().status,
        VerifyStatus::Corrupt { .. }
    ));
}

#[tokio::test]
async fn wrong_key_is_a_clear_permanent_error() {
    let store: Arc<DynSnapshotStore> = Arc::new(InMemoryStore::new());
    let b = Backups::new(store.clone()).with_encryption(key());
    b.write(
        "w/1",
        stream_of(b"secret rows", 4),
        "db",
        RetentionClass::Daily,
        WriteOptions::default(),
    )
    .await
    .unwrap();

    let wrong =
        Backups::new(store.clone()).with_decryption_key(EncryptionKey::from_bytes("k1", [7; 32]));
    let err = wrong.restore("w/1").await.err().unwrap();
    assert!(
        matches!(&err, Error::Unauthorized { message, .. } if message.contains("\"k1\"") && message.contains("not the key")),
        "{err}"
    );
    assert_eq!(err.retry(), dr_core::Retry::Permanent);
    assert!(!format!("{err:?}").contains("42"));
    assert_eq!(
        wrong.verify("w/1").await.unwrap().status,
        VerifyStatus::WrongKey {
            key_id: "k1".into()
        }
    );

    // After a rotation, old backups restore with the old key kept for decryption.
    let rotated = Backups::new(store.clone())
        .with_encryption(EncryptionKey::from_bytes("k2", [9; 32]))
        .with_decryption_key(key());
    assert_eq!(restore_all(&rotated, "w/1").await.unwrap(), b"secret rows");
    rotated
        .write(
            "w/2",
            stream_of(b"new", 4),
            "db",
            RetentionClass::Daily,
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        rotated
            .manifest("w/2")
            .await
            .unwrap()
            .encrypted
            .unwrap()
            .key_id,
        "k2"
    );
    let err = b.restore("w/2").await.err().unwrap();
    assert!(err.to_string().contains("\"k2\""), "{err}");
}

#[tokio::test]
async fn truncated_or_extended_ciphertext_is_detected() {
    let store: Arc<DynSnapshotStore> = Arc::new(InMemoryStore::new());
    let b = Backups::new(store.clone())
        .with_encryption(key())
        .with_chunk_size(1000);
    let data = content(5, 5000); // 5 full chunks: the last record is a full one
    b.write(
        "t/1",
        stream_of(&data, 777),
        "db",
        RetentionClass::Daily,
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let stored = store.get_bytes("t/1").await.unwrap();
    let record = 1000 + 16;
    let cases: Vec<(&str, Bytes)> = vec![
        ("dropped last record", stored.slice(..stored.len() - record)),
        ("cut inside a record", stored.slice(..stored.len() - 100)),
        ("header only", stored.slice(..17)),
        (
            "trailing garbage",
            [stored.to_vec(), vec![0; 16]].concat().into(),
        ),
    ];
    for (label, bytes) in cases {
        // Fix the manifest's size so only the stream format can tell.
        store.put_bytes("t/1", bytes.clone()).await.unwrap();
        let mut m: serde_json::Value =
            serde_json::from_slice(&store.get_bytes(&manifest_key("t/1")).await.unwrap()).unwrap();
        m["encrypted"]["ciphertext_size"] = bytes.len().into();
        store
            .put_bytes(&manifest_key("t/1"), serde_json::to_vec(&m).unwrap().into())
            .await
            .unwrap();
        let (released, err) = restore_until_error(&b, "t/1").await;
        assert!(
            matches!(err, Error::ChecksumMismatch { .. }),
            "{label}: {err}"
        );
        assert!(released < data.len(), "{label}");
    }
    // Swapping two records is detected too.
    let mut swapped = stored.to_vec();
    let (a, c) = (17, 17 + record);
    let first: Vec<u8> = swapped[a..a + record].to_vec();
    swapped.copy_within(c..c + record, a);
    swapped[c..c + record].copy_from_slice(&first);
    store.put_bytes("t/1", swapped.into()).await.unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&store.get_bytes(&manifest_key("t/1")).await.unwrap()).unwrap();
    m["encrypted"]["ciphertext_size"] = stored.len().into();
    store
        .put_bytes(&manifest_key("t/1"), serde_json::to_vec(&m).unwrap().into())
        .await
        .unwrap();
    let (released, err) = restore_until_error(&b, "t/1").await;
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert_eq!(released, 0, "nothing before the swapped record");
}

#[tokio::test]
async fn missing_manifest_and_missing_object_are_reported() {
    let store: Arc<DynSnapshotStore> = Arc::new(InMemoryStore::new());
    let b = Backups::new(store.clone());
    for k in ["m/a", "m/b", "m/c"] {
        b.write(
            k,
            stream_of(b"x", 1),
            "db",
            RetentionClass::Daily,
            WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    store.delete(&manifest_key("m/a")).await.unwrap();
    store.delete("m/b").await.unwrap();
    store
        .put_bytes(&manifest_key("m/c"), "{not json".into())
        .await
        .unwrap();
    let reports = b.verify_all("m/").await.unwrap();
    let statuses: Vec<_> = reports
        .iter()
        .map(|r| (r.key.as_str(), &r.status))
        .collect();
    assert_eq!(statuses[0], ("m/a", &VerifyStatus::MissingManifest));
    assert_eq!(statuses[1], ("m/b", &VerifyStatus::MissingObject));
    assert!(matches!(
        statuses[2],
        ("m/c", VerifyStatus::BadManifest { .. })
    ));
    assert!(b.restore("m/a").await.err().unwrap().is_not_found());
    assert!(b.restore("m/b").await.err().unwrap().is_not_found());
    assert!(b.verify("m/none").await.err().unwrap().is_not_found());
    // A report serialises with its status inline.
    let json = serde_json::to_value(&reports[1]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"key": "m/b", "status": "missing_object"})
    );
}

#[tokio::test]
async fn refuses_manifest_keys_and_keeps_keys_out_of_debug() {
    let b = Backups::new(Arc::new(InMemoryStore::new())).with_encryption(key());
    let err = b
        .write(
            "x.manifest.json",
            stream_of(b"", 1),
            "db",
            RetentionClass::Manual,
            WriteOptions::default(),
        )
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidRequest { .. }));
    let debug = format!("{b:?}");
    assert!(debug.contains("k1") && !debug.contains("42"), "{debug}");
    let err = EncryptionKey::from_hex("bad", "zz").err().unwrap();
    assert!(!err.to_string().contains("zz"));
    assert_eq!(
        EncryptionKey::from_base64("b", &"AQ==".repeat(0))
            .err()
            .map(|e| e.retry()),
        Some(dr_core::Retry::Permanent)
    );
    let b64 = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="; // 32 × 0x2a
    let k = EncryptionKey::from_base64("b", b64).unwrap();
    let store: Arc<DynSnapshotStore> = Arc::new(InMemoryStore::new());
    Backups::new(store.clone())
        .with_encryption(k)
        .write(
            "y",
            stream_of(b"abc", 1),
            "db",
            RetentionClass::Manual,
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let same = Backups::new(store)
        .with_decryption_key(EncryptionKey::from_hex("b", &"2a".repeat(32)).unwrap());
    assert_eq!(restore_all(&same, "y").await.unwrap(), b"abc");
}

#[tokio::test]
async fn prune_dry_run_deletes_nothing_and_a_real_run_deletes_what_it_reported() {
    let store: Arc<DynSnapshotStore> = Arc::new(InMemoryStore::new());
    let b = Backups::new(store.clone());
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    for d in 0..40 {
        for src in ["orders", "users"] {
            let opts =
                WriteOptions::default().with_created(now - Duration::days(d) - Duration::hours(1));
            b.write(
                &format!("p/{src}/{d:02}"),
                stream_of(b"dump", 2),
                src,
                RetentionClass::Daily,
                opts,
            )
            .await
            .unwrap();
        }
    }
    b.write(
        "p/manual",
        stream_of(b"pre-migration", 4),
        "orders",
        RetentionClass::Manual,
        WriteOptions::default().with_created(now - Duration::days(400)),
    )
    .await
    .unwrap();
    let policy = RetentionPolicy {
        daily: 7,
        weekly: 4,
        monthly: 0,
        yearly: 0,
    };
    let before = store.list_all("p/").await.unwrap();

    let dry = prune(store.as_ref(), "p/", &policy, now, true)
        .await
        .unwrap();
    assert!(dry.dry_run && dry.deleted.is_empty());
    assert_eq!(store.list_all("p/").await.unwrap(), before);
    assert!(!dry.decision.delete.is_empty());
    assert_eq!(
        dry.decision.reasons("p/manual"),
        Some(&[RetainReason::Manual][..])
    );
    // Each source is pruned on its own: both keep their newest.
    assert!(dry
        .decision
        .reasons("p/orders/00")
        .unwrap()
        .contains(&RetainReason::Newest));
    assert!(dry
        .decision
        .reasons("p/users/00")
        .unwrap()
        .contains(&RetainReason::Newest));

    let real = b.prune("p/", &policy, now, false).await.unwrap();
    assert_eq!(real.decision, dry.decision);
    assert_eq!(real.deleted, dry.decision.delete);
    for k in &real.deleted {
        assert!(store.head(k).await.err().unwrap().is_not_found());
        assert!(store
            .head(&manifest_key(k))
            .await
            .err()
            .unwrap()
            .is_not_found());
    }
    let left: Vec<String> = b
        .list("p/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut kept: Vec<String> = real.decision.keep.iter().map(|(k, _)| k.clone()).collect();
    kept.sort();
    assert_eq!(left, kept);
    assert!(b.verify_all("p/").await.unwrap().iter().all(|r| r.is_ok()));
    // Running again deletes nothing more.
    let again = b.prune("p/", &policy, now, false).await.unwrap();
    assert!(again.deleted.is_empty());

    // A manifest without its object is reported, left, and fills no slot.
    store.delete("p/orders/00").await.unwrap();
    let report = b.prune("p/", &policy, now, true).await.unwrap();
    assert_eq!(report.dangling_manifests, ["p/orders/00"]);
    assert!(report
        .decision
        .reasons("p/orders/01")
        .unwrap()
        .contains(&RetainReason::Newest));
}
