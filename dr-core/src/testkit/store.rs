//! The [`SnapshotStore`](crate::provider::SnapshotStore) conformance suite.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
//! use dr_core::store::InMemoryStore;
//! use dr_core::testkit::store;
//!
//! let mem = InMemoryStore::new();
//! store::round_trip(&mem, "suite/").await?;
//! store::list_prefixes(&mem, "suite/").await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::provider::{
    sha256_stream, ByteStream, DynSnapshotStore, ObjectMeta, Precondition, PutOptions,
    SnapshotStoreExt, Version,
};
use crate::{Error, Result};

const MIB: usize = 1024 * 1024;

/// Damages a stored object behind the store's back (flipping bytes on disk, in memory or in
/// the bucket) while leaving its recorded checksum, so the suite can check that
/// [`SnapshotStoreExt::verify`] detects it.
///
/// Any `Fn(String) -> impl Future<Output = Result<()>>` is a `Corruptor`.
#[async_trait]
pub trait Corruptor: Send + Sync {
    /// Corrupts the object under `key`.
    ///
    /// # Errors
    /// When the object cannot be reached.
    async fn corrupt(&self, key: &str) -> Result<()>;
}

#[async_trait]
impl<F, Fut> Corruptor for F
where
    F: Fn(String) -> Fut + Send + Sync,
    Fut: Future<Output = Result<()>> + Send,
{
    async fn corrupt(&self, key: &str) -> Result<()> {
        self(key.to_string()).await
    }
}

/// A backend that cannot corrupt its objects: [`checksum_mismatch`] skips the corruption
/// part, with a printed reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCorruptor;

#[async_trait]
impl Corruptor for NoCorruptor {
    async fn corrupt(&self, _key: &str) -> Result<()> {
        Err(Error::not_supported("testkit", "corrupt"))
    }
}

/// `len` bytes of deterministic content seeded by `seed`, as a stream of `chunk`-sized
/// chunks (generated lazily: the whole object never exists in memory).
pub fn pattern_stream(seed: u8, len: usize, chunk: usize) -> ByteStream {
    let chunk = chunk.max(1);
    futures::stream::iter((0..len).step_by(chunk))
        .map(move |start| {
            let n = chunk.min(len - start);
            Ok(pattern_chunk(seed, start, n))
        })
        .boxed()
}

pub(crate) fn pattern_chunk(seed: u8, start: usize, n: usize) -> Bytes {
    (start..start + n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 12) as u8))
        .collect::<Vec<u8>>()
        .into()
}

/// SHA-256 of [`pattern_stream`]`(seed, len, _)`, computed chunk by chunk.
pub fn pattern_sha256(seed: u8, len: usize) -> String {
    let mut hasher = Sha256::new();
    for start in (0..len).step_by(MIB) {
        hasher.update(pattern_chunk(seed, start, MIB.min(len - start)));
    }
    hex::encode(hasher.finalize())
}

fn bytes_stream(data: &'static [u8]) -> ByteStream {
    futures::stream::once(async move { Ok(Bytes::from_static(data)) }).boxed()
}

async fn keys(store: &DynSnapshotStore, prefix: &str) -> Result<Vec<String>> {
    Ok(store
        .list_all(prefix)
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect())
}

fn check_meta(store: &DynSnapshotStore, meta: &ObjectMeta, key: &str, size: u64, sha: &str) {
    let name = store.name();
    assert_eq!(meta.key, key, "{name}: metadata names the wrong key");
    assert_eq!(meta.size, size, "{name}: wrong size recorded for {key}");
    assert_eq!(
        meta.sha256.as_deref(),
        Some(sha),
        "{name}: wrong or missing sha256 recorded for {key}"
    );
}

/// Writes, heads, reads and verifies an empty, a small and a 21 MiB object (written as a
/// stream of 1 MiB chunks), then deletes them.
///
/// # Errors
/// Store errors.
pub async fn round_trip(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let cases: [(&str, usize); 3] = [("empty", 0), ("small", 1000), ("large", 21 * MIB)];
    for (label, len) in cases {
        let key = format!("{prefix}round-trip/{label}");
        let sha = pattern_sha256(7, len);
        let opts = PutOptions::default().with_metadata("kind", label);
        let put = store.put(&key, pattern_stream(7, len, MIB), opts).await?;
        check_meta(store, &put, &key, len as u64, &sha);
        let head = store.head(&key).await?;
        check_meta(store, &head, &key, len as u64, &sha);
        assert_eq!(
            head.metadata.get("kind").map(String::as_str),
            Some(label),
            "{name}: user metadata lost for {key}"
        );
        let got = store.get(&key).await?;
        check_meta(store, &got.meta, &key, len as u64, &sha);
        let (actual, size) = sha256_stream(got.stream).await?;
        assert_eq!(
            (actual.as_str(), size),
            (sha.as_str(), len as u64),
            "{name}: content of {key} read back differs from what was written"
        );
        store.verify(&key).await?;
        store.delete(&key).await?;
    }
    Ok(())
}

/// `put` consumes its stream as it goes (a stream that only yields its next chunk once the
/// previous one was taken still completes), and `get` of a 4 MiB object yields more than one
/// chunk: neither side buffers the whole object.
///
/// # Errors
/// Store errors.
pub async fn streaming(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}streaming/object");
    let len = 4 * MIB;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(1);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let producer = tokio::spawn(async move {
        let mut sent = 0;
        let mut chunks = pattern_stream(3, len, MIB / 4);
        while let Some(chunk) = chunks.next().await {
            // With a channel of one, the producer can only be one chunk ahead of `put`.
            if tx.send(chunk).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let counter = counter.clone();
        async move {
            let item = rx.recv().await?;
            counter.fetch_add(1, Ordering::SeqCst);
            Some((item, rx))
        }
    })
    .boxed();
    let meta = store.put(&key, stream, PutOptions::default()).await?;
    let sent = producer.await.map_err(|e| Error::Other {
        provider: "testkit".into(),
        operation: "streaming".into(),
        retry: crate::Retry::Permanent,
        source: Box::new(e),
    })?;
    assert_eq!(sent, 16, "testkit: producer did not finish");
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        16,
        "{name}: put did not consume the whole stream"
    );
    assert_eq!(meta.size, len as u64, "{name}: put recorded the wrong size");
    let got = store.get(&key).await?;
    let mut chunks = 0usize;
    let mut size = 0usize;
    let mut largest = 0usize;
    let mut s = got.stream;
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        chunks += 1;
        size += chunk.len();
        largest = largest.max(chunk.len());
    }
    assert_eq!(size, len, "{name}: get returned the wrong size");
    assert!(
        chunks > 1 && largest < len,
        "{name}: get returned a {len}-byte object as {chunks} chunk(s): it is not streamed"
    );
    store.delete(&key).await?;
    Ok(())
}

/// Lists with prefixes: key order, prefix filtering (a prefix that is not a directory
/// boundary, a nested prefix, an unknown prefix), sizes in the listing.
///
/// # Errors
/// Store errors.
pub async fn list_prefixes(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let base = format!("{prefix}list/");
    let names = ["b/2", "a/1", "a/2", "a/sub/3", "ab", "c"];
    for n in names {
        store.put_bytes(&format!("{base}{n}"), "x".into()).await?;
    }
    let all = keys(store, &base).await?;
    let mut expected: Vec<String> = names.iter().map(|n| format!("{base}{n}")).collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "{name}: full listing wrong or not in key order"
    );
    let a_dir = keys(store, &format!("{base}a/")).await?;
    assert_eq!(
        a_dir,
        ["a/1", "a/2", "a/sub/3"].map(|n| format!("{base}{n}")),
        "{name}: listing of a directory prefix"
    );
    let a = keys(store, &format!("{base}a")).await?;
    assert_eq!(
        a,
        ["a/1", "a/2", "a/sub/3", "ab"].map(|n| format!("{base}{n}")),
        "{name}: listing of a prefix that is not a directory boundary"
    );
    assert!(
        keys(store, &format!("{base}zzz")).await?.is_empty(),
        "{name}: listing of an unknown prefix is not empty"
    );
    let metas = store.list_all(&base).await?;
    assert!(
        metas.iter().all(|m| m.size == 1),
        "{name}: listing reports wrong sizes"
    );
    for n in names {
        store.delete(&format!("{base}{n}")).await?;
    }
    assert!(
        keys(store, &base).await?.is_empty(),
        "{name}: deleted objects still listed"
    );
    Ok(())
}

/// Writes 1100 small objects, so backends that page listings (1000 per page on S3) must
/// follow continuation tokens, and lists them back in order.
///
/// # Errors
/// Store errors.
pub async fn list_pagination(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let base = format!("{prefix}paged/");
    let expected: Vec<String> = (0..1100).map(|i| format!("{base}{i:05}")).collect();
    futures::stream::iter(expected.iter())
        .map(|k| store.put_bytes(k, Bytes::from_static(b"p")))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let listed = keys(store, &base).await?;
    assert_eq!(listed.len(), 1100, "{name}: paginated listing lost objects");
    assert_eq!(listed, expected, "{name}: paginated listing out of order");
    futures::stream::iter(expected.iter())
        .map(|k| store.delete(k))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Overwriting replaces content, size, checksum and metadata.
///
/// # Errors
/// Store errors.
pub async fn overwrite(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}overwrite/object");
    let opts = PutOptions::default().with_metadata("v", "1");
    store
        .put(&key, bytes_stream(b"first version"), opts)
        .await?;
    let opts = PutOptions::default().with_metadata("v", "2");
    let meta = store.put(&key, bytes_stream(b"second"), opts).await?;
    assert_eq!(meta.size, 6, "{name}: overwrite reports the old size");
    assert_eq!(
        store.get_bytes(&key).await?,
        "second",
        "{name}: overwrite kept the old content"
    );
    let head = store.head(&key).await?;
    assert_eq!(
        head.metadata.get("v").map(String::as_str),
        Some("2"),
        "{name}: overwrite kept the old metadata"
    );
    store.verify(&key).await?;
    assert_eq!(
        keys(store, &key).await?,
        [key.as_str()],
        "{name}: overwrite left two objects"
    );
    store.delete(&key).await?;
    Ok(())
}

/// Deleting twice, and deleting what never existed, both succeed.
///
/// # Errors
/// Store errors.
pub async fn delete_idempotent(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}delete/object");
    store.put_bytes(&key, "x".into()).await?;
    store.delete(&key).await?;
    store.delete(&key).await?;
    store
        .delete(&format!("{prefix}delete/never-written"))
        .await?;
    let err = store.head(&key).await.err();
    assert!(
        err.as_ref().is_some_and(Error::is_not_found),
        "{name}: head after delete should be NotFound, got {err:?}"
    );
    Ok(())
}

/// `get`, `head` and `copy` of a missing object return `NotFound`.
///
/// # Errors
/// Never: failures panic.
pub async fn not_found(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}missing/object");
    let get = store.get(&key).await.err();
    assert!(
        get.as_ref().is_some_and(Error::is_not_found),
        "{name}: get of a missing object: {get:?}"
    );
    let head = store.head(&key).await.err();
    assert!(
        head.as_ref().is_some_and(Error::is_not_found),
        "{name}: head of a missing object: {head:?}"
    );
    let copy = store
        .copy(&key, &format!("{prefix}missing/copy"))
        .await
        .err();
    assert!(
        copy.as_ref().is_some_and(Error::is_not_found),
        "{name}: copy of a missing object: {copy:?}"
    );
    Ok(())
}

/// `copy` duplicates content, checksum and metadata; the source stays.
///
/// # Errors
/// Store errors.
pub async fn copy(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let from = format!("{prefix}copy/source");
    let to = format!("{prefix}copy/target");
    let opts = PutOptions::default().with_metadata("origin", "east");
    let src = store.put(&from, bytes_stream(b"snapshot"), opts).await?;
    let dst = store.copy(&from, &to).await?;
    assert_eq!(dst.key, to, "{name}: copy reports the wrong key");
    assert_eq!(dst.sha256, src.sha256, "{name}: copy changed the checksum");
    assert_eq!(
        store.get_bytes(&to).await?,
        "snapshot",
        "{name}: copy content"
    );
    assert_eq!(
        store
            .head(&to)
            .await?
            .metadata
            .get("origin")
            .map(String::as_str),
        Some("east"),
        "{name}: copy lost the metadata"
    );
    assert_eq!(
        store.get_bytes(&from).await?,
        "snapshot",
        "{name}: source lost"
    );
    store.delete(&from).await?;
    store.delete(&to).await?;
    Ok(())
}

/// A put with a wrong `expected_sha256` is refused with `ChecksumMismatch` and leaves
/// nothing (or the previous object); a failing stream leaves the previous object; and,
/// when `corruptor` can, corrupted content is reported by `verify`.
///
/// # Errors
/// Store errors.
pub async fn checksum_mismatch(
    store: &DynSnapshotStore,
    prefix: &str,
    corruptor: &dyn Corruptor,
) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}checksum/object");
    let wrong = "0".repeat(64);
    let refused = store
        .put(
            &key,
            bytes_stream(b"data"),
            PutOptions::default().with_expected_sha256(wrong.clone()),
        )
        .await
        .err();
    assert!(
        matches!(refused, Some(Error::ChecksumMismatch { .. })),
        "{name}: put with a wrong expected sha256 should fail with ChecksumMismatch, got {refused:?}"
    );
    assert!(
        store
            .head(&key)
            .await
            .err()
            .is_some_and(|e| e.is_not_found()),
        "{name}: a refused put left an object behind"
    );
    let right = hex::encode(Sha256::digest(b"previous"));
    store
        .put(
            &key,
            bytes_stream(b"previous"),
            PutOptions::default().with_expected_sha256(right),
        )
        .await?;
    let refused = store
        .put(
            &key,
            bytes_stream(b"replacement"),
            PutOptions::default().with_expected_sha256(wrong),
        )
        .await;
    assert!(refused.is_err(), "{name}: mismatching overwrite accepted");
    assert_eq!(
        store.get_bytes(&key).await?,
        "previous",
        "{name}: a refused overwrite replaced the previous object"
    );
    let failing: ByteStream = futures::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(Error::Cancelled {
            reason: "stream broke".into(),
        }),
    ])
    .boxed();
    let broken = store.put(&key, failing, PutOptions::default()).await.err();
    assert!(
        matches!(broken, Some(Error::Cancelled { .. })),
        "{name}: the stream's error should be returned as is, got {broken:?}"
    );
    assert_eq!(
        store.get_bytes(&key).await?,
        "previous",
        "{name}: a failed stream replaced the previous object"
    );
    match corruptor.corrupt(&key).await {
        Err(Error::NotSupported { .. }) => {
            println!("{name}: corruption check skipped: the backend cannot corrupt objects");
        }
        Err(e) => return Err(e),
        Ok(()) => {
            let verdict = store.verify(&key).await.err();
            assert!(
                matches!(verdict, Some(Error::ChecksumMismatch { .. })),
                "{name}: verify did not detect a corrupted object: {verdict:?}"
            );
        }
    }
    store.delete(&key).await?;
    Ok(())
}

/// Eight concurrent writers to different keys all land intact; eight concurrent writers to
/// one key leave exactly one of the writes, intact.
///
/// # Errors
/// Store errors.
pub async fn concurrent_writers(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let len = 3 * MIB / 2;
    let writes = (0..8u8).map(|i| {
        let key = format!("{prefix}concurrent/key-{i}");
        async move {
            store
                .put(
                    &key,
                    pattern_stream(i, len, 256 * 1024),
                    PutOptions::default(),
                )
                .await
        }
    });
    futures::future::try_join_all(writes).await?;
    for i in 0..8u8 {
        let key = format!("{prefix}concurrent/key-{i}");
        let meta = store.verify(&key).await?;
        assert_eq!(
            meta.sha256.as_deref(),
            Some(pattern_sha256(i, len).as_str()),
            "{name}: concurrent write to {key} mixed up content"
        );
        store.delete(&key).await?;
    }
    let key = format!("{prefix}concurrent/shared");
    let writes = (0..8u8).map(|i| {
        let key = key.clone();
        async move {
            store
                .put(
                    &key,
                    pattern_stream(i, len, 256 * 1024),
                    PutOptions::default(),
                )
                .await
        }
    });
    futures::future::try_join_all(writes).await?;
    let meta = store.verify(&key).await?;
    let candidates: Vec<String> = (0..8u8).map(|i| pattern_sha256(i, len)).collect();
    assert!(
        meta.sha256.as_ref().is_some_and(|s| candidates.contains(s)),
        "{name}: concurrent writes to one key left content that none of them wrote"
    );
    let (sha, size) = sha256_stream(store.get(&key).await?.stream).await?;
    assert!(
        candidates.contains(&sha) && size == len as u64,
        "{name}: concurrent writes to one key left mixed content"
    );
    store.delete(&key).await?;
    Ok(())
}

/// Keys with spaces, unicode, `=`, `+`, `%` and dots round-trip and list under their own
/// names.
///
/// # Errors
/// Store errors.
pub async fn unusual_names(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let base = format!("{prefix}names/");
    let names = [
        "with space",
        "ünïcødé/日本",
        "k=v+w",
        "100%",
        "dots.in.name.tar.gz",
        "a%2Fb",
    ];
    for (i, n) in names.iter().enumerate() {
        let key = format!("{base}{n}");
        store.put_bytes(&key, Bytes::from(format!("v{i}"))).await?;
    }
    for (i, n) in names.iter().enumerate() {
        let key = format!("{base}{n}");
        assert_eq!(
            store.get_bytes(&key).await?,
            format!("v{i}"),
            "{name}: content of {key:?}"
        );
    }
    let mut expected: Vec<String> = names.iter().map(|n| format!("{base}{n}")).collect();
    expected.sort();
    assert_eq!(
        keys(store, &base).await?,
        expected,
        "{name}: listing of unusual names"
    );
    for n in names {
        store.delete(&format!("{base}{n}")).await?;
    }
    Ok(())
}

fn assert_precondition_failed(
    store: &DynSnapshotStore,
    key: &str,
    what: &str,
    result: Result<Version>,
) {
    let name = store.name();
    match result {
        Err(e @ Error::PreconditionFailed { .. }) => {
            assert_eq!(
                e.retry(),
                crate::Retry::Permanent,
                "{name}: a failed precondition must be permanent"
            );
            let text = e.to_string();
            assert!(
                text.contains(name) && text.contains(key),
                "{name}: the precondition error must name the store and the key: {text}"
            );
        }
        other => panic!("{name}: {what} on {key} must fail its precondition, got {other:?}"),
    }
}

/// Conditional writes: create-only succeeds on a missing key and fails on an existing one;
/// replace succeeds with the current version and fails with a stale one (after a
/// conditional or a plain write), or on a missing key; refused writes change nothing;
/// `get_versioned` returns the bytes with the version that wrote them, `None` when missing;
/// objects written by `put_if` record their size and SHA-256 like `put`.
///
/// # Errors
/// Store errors.
///
/// # Panics
/// When the store misbehaves.
pub async fn conditional_writes(store: &DynSnapshotStore, prefix: &str) -> Result<()> {
    let name = store.name().to_string();
    let key = format!("{prefix}conditional/record");
    store.delete(&key).await?;
    assert_eq!(
        store.get_versioned(&key).await?,
        None,
        "{name}: get_versioned of a missing key"
    );
    let missing = store
        .put_if(
            &key,
            "x".into(),
            Precondition::Matches(Version::new("\"1\"")),
        )
        .await;
    assert_precondition_failed(store, &key, "a replace of a missing key", missing);

    let v1 = store
        .put_if(&key, "one".into(), Precondition::Absent)
        .await?;
    assert_eq!(
        store.get_versioned(&key).await?,
        Some((Bytes::from("one"), v1.clone())),
        "{name}: get_versioned after a create-only write"
    );
    let head = store.head(&key).await?;
    let sha = hex::encode(Sha256::digest(b"one"));
    check_meta(store, &head, &key, 3, &sha);
    store.verify(&key).await?;

    let again = store.put_if(&key, "two".into(), Precondition::Absent).await;
    assert_precondition_failed(store, &key, "a create-only write of an existing key", again);
    assert_eq!(
        store.get_bytes(&key).await?,
        "one",
        "{name}: a refused create-only write changed the object"
    );

    let v2 = store
        .put_if(&key, "three".into(), Precondition::Matches(v1.clone()))
        .await?;
    assert_ne!(v1, v2, "{name}: a replace must change the version");
    assert_eq!(
        store.get_versioned(&key).await?,
        Some((Bytes::from("three"), v2.clone())),
        "{name}: get_versioned after a replace"
    );
    let stale = store
        .put_if(&key, "four".into(), Precondition::Matches(v1.clone()))
        .await;
    assert_precondition_failed(store, &key, "a replace from a stale version", stale);
    assert_eq!(
        store.get_bytes(&key).await?,
        "three",
        "{name}: a refused replace changed the object"
    );

    // A plain write changes the version too.
    store.put_bytes(&key, "five".into()).await?;
    let stale = store
        .put_if(&key, "six".into(), Precondition::Matches(v2))
        .await;
    assert_precondition_failed(store, &key, "a replace after a plain put", stale);
    let (bytes, v5) = store
        .get_versioned(&key)
        .await?
        .unwrap_or_else(|| panic!("{name}: {key} vanished"));
    assert_eq!(bytes, "five", "{name}: get_versioned after a plain put");
    store
        .put_if(&key, "seven".into(), Precondition::Matches(v5))
        .await?;

    // Once deleted, the key can be created again.
    store.delete(&key).await?;
    store.put_if(&key, "".into(), Precondition::Absent).await?;
    assert_eq!(
        store.get_versioned(&key).await?.map(|(b, _)| b),
        Some(Bytes::new()),
        "{name}: an empty conditional object"
    );
    store.delete(&key).await?;
    Ok(())
}

/// The outcome of one racer in [`conditional_races`].
fn race_winners(
    store: &DynSnapshotStore,
    key: &str,
    what: &str,
    results: Vec<(usize, Result<Version>)>,
) -> Vec<(usize, Version)> {
    let name = store.name();
    let mut winners = Vec::new();
    for (i, r) in results {
        match r {
            Ok(v) => winners.push((i, v)),
            Err(Error::PreconditionFailed { .. }) => {}
            // A service may refuse a conditional write that collides with another one in
            // flight (S3's 409 ConditionalRequestConflict): temporary, nothing written.
            Err(e) if e.is_retryable() && e.effect() == crate::Effect::NotApplied => {}
            Err(e) => panic!("{name}: racer {i} of {what} on {key} failed: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{name}: {what} on {key}: exactly one racer must win, winners: {winners:?}"
    );
    winners
}

/// Racers on one key, each writing its own content at the same time: `racers` create-only
/// writes, then `racers` replaces from the same version, over `rounds` rounds. Exactly one
/// racer wins each race, and the object holds the winner's content and version.
///
/// # Errors
/// Store errors.
///
/// # Panics
/// When no racer or more than one wins, or the object is not the winner's.
pub async fn conditional_races(
    store: &DynSnapshotStore,
    prefix: &str,
    racers: usize,
    rounds: usize,
) -> Result<()> {
    let name = store.name().to_string();
    for round in 0..rounds {
        let key = format!("{prefix}conditional/race-{round}");
        store.delete(&key).await?;
        let content = |stage: &str, i: usize| Bytes::from(format!("{stage} by racer {i}"));
        let creates = (0..racers).map(|i| {
            let key = key.clone();
            async move {
                let r = store
                    .put_if(&key, content("created", i), Precondition::Absent)
                    .await;
                (i, r)
            }
        });
        let results = futures::future::join_all(creates).await;
        let winners = race_winners(store, &key, "create-only writes", results);
        let (w, v) = &winners[0];
        assert_eq!(
            store.get_versioned(&key).await?,
            Some((content("created", *w), v.clone())),
            "{name}: the object is not the create-only winner's"
        );

        let base = v.clone();
        let replaces = (0..racers).map(|i| {
            let (key, base) = (key.clone(), base.clone());
            async move {
                let r = store
                    .put_if(&key, content("replaced", i), Precondition::Matches(base))
                    .await;
                (i, r)
            }
        });
        let results = futures::future::join_all(replaces).await;
        let winners = race_winners(store, &key, "replaces from one version", results);
        let (w, v) = &winners[0];
        assert_eq!(
            store.get_versioned(&key).await?,
            Some((content("replaced", *w), v.clone())),
            "{name}: the object is not the replace winner's"
        );
        store.delete(&key).await?;
    }
    Ok(())
}

/// A [`StoreJournal`](crate::journal::StoreJournal) under `prefix` on `store`: `writers`
/// handles (as separate runners would hold) append `each` records at the same time; the
/// journal then holds every record once, each writer's in its order.
///
/// # Errors
/// Store errors.
///
/// # Panics
/// When a record is lost, duplicated or reordered.
pub async fn journal_races(
    store: Arc<DynSnapshotStore>,
    prefix: &str,
    writers: usize,
    each: u32,
) -> Result<()> {
    use crate::journal::{Journal, Record, StoreJournal};
    let name = store.name().to_string();
    let journal_prefix = format!("{prefix}journal");
    let handles: Vec<StoreJournal> = (0..writers)
        .map(|_| StoreJournal::new(store.clone(), journal_prefix.clone()))
        .collect();
    let record = |w: usize, i: u32| Record::Intent {
        step: format!("writer-{w}"),
        key: format!("race/writer-{w}"),
        attempt: i,
        at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        memory: Default::default(),
    };
    let appends = handles.iter().enumerate().map(|(w, j)| async move {
        for i in 0..each {
            j.append(&record(w, i)).await?;
        }
        Ok::<_, Error>(())
    });
    futures::future::try_join_all(appends).await?;
    let loaded = StoreJournal::new(store.clone(), journal_prefix.clone())
        .load()
        .await?;
    assert!(
        !loaded.torn_tail,
        "{name}: a racing journal has a torn tail"
    );
    assert_eq!(
        loaded.records.len(),
        writers * each as usize,
        "{name}: racing appenders lost or duplicated records"
    );
    for w in 0..writers {
        let mine: Vec<&Record> = loaded
            .records
            .iter()
            .filter(|r| r.step() == Some(format!("writer-{w}").as_str()))
            .collect();
        let expected: Vec<Record> = (0..each).map(|i| record(w, i)).collect();
        assert!(
            mine.iter().copied().eq(expected.iter()),
            "{name}: writer {w}'s records are not all there in order"
        );
    }
    for m in store.list_all(&format!("{journal_prefix}/")).await? {
        store.delete(&m.key).await?;
    }
    Ok(())
}

/// Runs every check in turn under `prefix`: [`run_sequential`], then
/// [`conditional_races`] (16 racers, 4 rounds).
///
/// # Errors
/// The first store error.
pub async fn run_all(
    store: &DynSnapshotStore,
    prefix: &str,
    corruptor: &dyn Corruptor,
) -> Result<()> {
    run_sequential(store, prefix, corruptor).await?;
    conditional_races(store, prefix, 16, 4).await
}

/// Every check but the races of conditional writes (for a stand-in whose preconditions hold
/// one request at a time but are not atomic under concurrency; see the crate's README).
///
/// # Errors
/// The first store error.
pub async fn run_sequential(
    store: &DynSnapshotStore,
    prefix: &str,
    corruptor: &dyn Corruptor,
) -> Result<()> {
    round_trip(store, prefix).await?;
    streaming(store, prefix).await?;
    list_prefixes(store, prefix).await?;
    list_pagination(store, prefix).await?;
    overwrite(store, prefix).await?;
    delete_idempotent(store, prefix).await?;
    not_found(store, prefix).await?;
    copy(store, prefix).await?;
    checksum_mismatch(store, prefix, corruptor).await?;
    concurrent_writers(store, prefix).await?;
    unusual_names(store, prefix).await?;
    conditional_writes(store, prefix).await
}

/// A backup written through [`Backups`](crate::backup::Backups) — plain and encrypted, with
/// its manifest and the metadata the backup module sets on objects — verifies and restores
/// byte for byte on the store.
///
/// # Panics
/// On a mismatch, naming the store and the backup.
///
/// # Errors
/// Store errors.
pub async fn backups_round_trip(store: Arc<DynSnapshotStore>, prefix: &str) -> Result<()> {
    use crate::backup::{Backups, EncryptionKey, RetentionClass, WriteOptions};
    let data: Vec<u8> = (0..(3 << 20) + 17).map(|i: u32| (i % 251) as u8).collect();
    for (label, backups) in [
        ("plain", Backups::new(store.clone())),
        (
            "encrypted",
            Backups::new(store.clone())
                .with_encryption(EncryptionKey::from_bytes("suite", [7; 32])),
        ),
    ] {
        let key = format!("{prefix}backup-{label}");
        let bytes = Bytes::from(data.clone());
        let stream = futures::stream::once(async move { Ok(bytes) }).boxed();
        let manifest = backups
            .write(
                &key,
                stream,
                "suite",
                RetentionClass::Daily,
                WriteOptions::default(),
            )
            .await?;
        let name = store.name();
        let report = backups.verify(&key).await?;
        assert!(
            report.is_ok(),
            "{name}: {label} backup {key} does not verify: {report:?}"
        );
        let restored: Vec<Bytes> = backups.restore(&key).await?.try_collect().await?;
        assert!(
            restored.concat() == data,
            "{name}: {label} backup {key} ({} bytes) does not restore byte for byte",
            manifest.size
        );
    }
    Ok(())
}
