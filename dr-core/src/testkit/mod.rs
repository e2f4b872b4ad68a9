//! Conformance suites every provider runs (feature `testkit`).
//!
//! [`store`] holds the [`SnapshotStore`](crate::provider::SnapshotStore) checks, in the
//! spirit of `object_store`'s `integration.rs`: each check is a `pub async fn` taking the
//! store and a key prefix unique to the run (so cloud backends can share a bucket), and
//! panics with a clear message when the store misbehaves. A backend's test module calls
//! [`store::run_all`] (or single checks) in a `#[tokio::test]`.
//!
//! [`lease`] holds the [`Lease`](crate::provider::Lease) checks, run on several handles on
//! one lease.
//!
//! [`edge`] holds the [`CdnOrigin`](crate::provider::CdnOrigin) and
//! [`LoadBalancer`](crate::provider::LoadBalancer) checks.

pub mod bench;
pub mod database;
pub mod edge;
pub mod journal;
pub mod lease;
pub mod rss;
pub mod store;

pub use store::{Corruptor, NoCorruptor};

/// The value of the environment variable `var` that a local stand-in's start script exports
/// (`AWS_ENDPOINT_URL`, `AZURITE_BLOB_URL`, …), for tests that need the stand-in.
///
/// When it is unset or empty: with `CI` set, panics saying the stand-in is missing (CI must
/// never pass by skipping); otherwise prints that the test is skipped and returns `None`.
///
/// # Panics
/// In CI, when the stand-in is missing.
pub fn standin(var: &str, standin: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(v) => Some(v),
        None if std::env::var_os("CI").is_some() => panic!(
            "the {standin} stand-in is missing: {var} is not set in CI \
             (scripts/test.sh starts it: source scripts/standins/*.sh and call *_start)"
        ),
        None => {
            eprintln!(
                "skipped: {var} is not set, so {standin} is not running (run scripts/test.sh)"
            );
            None
        }
    }
}

/// A name no other test, run or process uses (`{label}-{pid}-{nanos:x}-{n}`): lowercase
/// ASCII, digits and dashes, valid as a bucket, container, key prefix or instance id.
pub fn unique(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{nanos:x}-{n}", std::process::id())
}
