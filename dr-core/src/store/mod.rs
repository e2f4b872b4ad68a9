//! Snapshot stores that need no cloud: [`InMemoryStore`] and [`LocalDiskStore`].
//!
//! Both implement [`SnapshotStore`](crate::provider::SnapshotStore) fully, stream content
//! both ways and record the SHA-256 of what they write, so they pass the same conformance
//! suite as the cloud stores (`dr_core::testkit`, feature `testkit`).

mod local;
mod memory;

pub use local::LocalDiskStore;
pub use memory::InMemoryStore;

use crate::provider::Capabilities;
use crate::{Error, Result};

/// The operations both stores support.
fn full_capabilities() -> Capabilities {
    Capabilities::full_store()
}

/// Compares a computed digest with the one the caller expected.
fn check_expected(provider: &str, key: &str, expected: Option<&str>, actual: &str) -> Result<()> {
    match expected {
        Some(exp) if !exp.eq_ignore_ascii_case(actual) => Err(Error::ChecksumMismatch {
            provider: provider.to_string(),
            resource: format!("object {key}"),
            expected: format!("sha256 {exp}"),
            actual: format!("sha256 {actual}"),
        }),
        _ => Ok(()),
    }
}

#[cfg(all(test, feature = "testkit"))]
mod conformance {
    use super::*;
    use crate::testkit::store as suite;

    #[tokio::test]
    async fn in_memory_store_conforms() -> Result<()> {
        let store = InMemoryStore::new();
        let target = store.clone();
        let corrupt = move |key: String| {
            let target = target.clone();
            async move { target.corrupt(&key) }
        };
        suite::run_all(&store, "conformance/", &corrupt).await?;
        suite::backups_round_trip(std::sync::Arc::new(store), "backups/").await
    }

    #[tokio::test]
    async fn local_disk_store_conforms() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let store = LocalDiskStore::new(dir.path().join("root"))?;
        let target = store.clone();
        let corrupt = move |key: String| {
            let target = target.clone();
            async move {
                let path = target.object_path(&key)?;
                let mut bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| Error::io("reading for corruption", e))?;
                match bytes.first_mut() {
                    Some(b) => *b ^= 0xff,
                    None => bytes.push(b'x'),
                }
                tokio::fs::write(&path, bytes)
                    .await
                    .map_err(|e| Error::io("corrupting", e))
            }
        };
        suite::run_all(&store, "conformance/", &corrupt).await?;
        suite::backups_round_trip(std::sync::Arc::new(store.clone()), "backups/").await?;
        // The same suite again under a second prefix, against leftovers of the first.
        suite::list_prefixes(&store, "again/").await
    }

    #[tokio::test]
    async fn local_disk_refuses_bad_keys() -> Result<()> {
        use crate::provider::SnapshotStoreExt;
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let store = LocalDiskStore::new(dir.path())?;
        for bad in ["../escape", "/etc/passwd", "a//b", "a/./b"] {
            let err = store.put_bytes(bad, "x".into()).await.err();
            assert!(
                matches!(&err, Some(Error::InvalidRequest { message, .. }) if message.contains(bad)),
                "{bad}: {err:?}"
            );
        }
        Ok(())
    }
}
