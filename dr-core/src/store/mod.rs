//! Snapshot stores that need no cloud: [`InMemoryStore`] and [`LocalDiskStore`].
//!
//! Both implement [`SnapshotStore`](crate::provider::SnapshotStore) fully, stream content
//! both ways and record the SHA-256 of what they write, so they pass the same conformance
//! suite as the cloud stores (`dr_core::testkit`, feature `testkit`).

mod local;
mod memory;

pub use local::LocalDiskStore;
pub use memory::InMemoryStore;

/// An object with its content, as a saved simulated cloud holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExportedObject {
    pub(crate) meta: crate::provider::ObjectMeta,
    #[serde(with = "serde_bytes_vec")]
    pub(crate) content: Vec<u8>,
}

/// Bytes as one byte string (not a list of numbers).
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Writes `bytes` to `path` through a temporary file beside it (synced, readable by its
/// owner only), renamed over `path`: a crash leaves the old content or the new.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    use std::io::Write;
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(|e| crate::Error::io(ctx("creating"), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| crate::Error::io(ctx("writing"), e))?;
    std::fs::rename(&tmp, path).map_err(|e| crate::Error::io(ctx("replacing"), e))?;
    Ok(())
}

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
    use crate::provider::{Precondition, SnapshotStore};
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
    async fn local_disk_handles_on_one_root_race_through_the_lock_file() -> Result<()> {
        // Two handles share no in-process lock: only the root's lock file orders them.
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let a = LocalDiskStore::new(dir.path())?;
        let b = LocalDiskStore::new(dir.path())?;
        let handles: Vec<&crate::provider::DynSnapshotStore> = vec![&a, &b, &a, &b];
        for round in 0..8 {
            let key = format!("race/{round}");
            let tries = handles.iter().enumerate().map(|(i, s)| {
                let key = key.clone();
                async move {
                    s.put_if(&key, format!("{i}").into(), Precondition::Absent)
                        .await
                }
            });
            let results = futures::future::join_all(tries).await;
            let won: Vec<usize> = (0..results.len()).filter(|i| results[*i].is_ok()).collect();
            assert_eq!(won.len(), 1, "{key}: {results:?}");
            assert!(results.iter().all(|r| r.as_ref().is_ok_and(|_| true)
                || r.as_ref().is_err_and(Error::is_precondition_failed)));
            let (bytes, _) = b.get_versioned(&key).await?.expect("written");
            assert_eq!(bytes, format!("{}", won[0]));
        }
        Ok(())
    }

    /// Set in the child processes of the test below: the shared root.
    const RACE_ROOT: &str = "DR_LOCAL_STORE_RACE_ROOT";

    #[tokio::test]
    async fn local_disk_conditional_writes_hold_across_processes() -> Result<()> {
        const KEYS: usize = 40;
        if let Some(root) = std::env::var_os(RACE_ROOT) {
            // A racer: try to create every key, and to replace each from the version read.
            let store = LocalDiskStore::new(std::path::PathBuf::from(root))?;
            let me = std::process::id();
            for k in 0..KEYS {
                let key = format!("race/{k}");
                if store
                    .put_if(&key, format!("{me}").into(), Precondition::Absent)
                    .await
                    .is_ok()
                {
                    // On its own line: the test harness may have started one.
                    println!("\nRACE created {key} {me}");
                }
                let key = format!("replace/{k}");
                if let Some((_, v)) = store.get_versioned(&key).await? {
                    let from = v.to_string();
                    if store
                        .put_if(&key, format!("{me}").into(), Precondition::Matches(v))
                        .await
                        .is_ok()
                    {
                        println!("\nRACE replaced {key} {me} {from}");
                    }
                }
            }
            return Ok(());
        }
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let store = LocalDiskStore::new(dir.path())?;
        for k in 0..KEYS {
            store
                .put_if(&format!("replace/{k}"), "base".into(), Precondition::Absent)
                .await?;
        }
        let exe = std::env::current_exe().map_err(|e| Error::io("current exe", e))?;
        let children: Vec<_> = (0..4)
            .map(|_| {
                tokio::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "store::conformance::local_disk_conditional_writes_hold_across_processes",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(RACE_ROOT, dir.path())
                    .output()
            })
            .collect();
        let mut created: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut replaced: std::collections::BTreeMap<String, Vec<(String, String)>> =
            Default::default();
        for out in futures::future::join_all(children).await {
            let out = out.map_err(|e| Error::io("running a racer", e))?;
            assert!(out.status.success(), "racer failed: {out:?}");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                match line.split(' ').collect::<Vec<_>>()[..] {
                    ["RACE", "created", key, pid] => {
                        created.entry(key.into()).or_default().push(pid.into())
                    }
                    ["RACE", "replaced", key, pid, from] => replaced
                        .entry(key.into())
                        .or_default()
                        .push((pid.into(), from.into())),
                    _ => {}
                }
            }
        }
        for k in 0..KEYS {
            // Every key was created by exactly one racer, whose content it holds.
            let key = format!("race/{k}");
            let winners = created.get(&key).cloned().unwrap_or_default();
            assert_eq!(winners.len(), 1, "{key}: {winners:?}");
            let (bytes, _) = store.get_versioned(&key).await?.expect("written");
            assert_eq!(bytes, winners[0], "{key}");
            // Replaces: at least one landed, and never two from the same version.
            let key = format!("replace/{k}");
            let wins = replaced.get(&key).cloned().unwrap_or_default();
            let froms: std::collections::BTreeSet<&String> = wins.iter().map(|(_, f)| f).collect();
            assert!(!wins.is_empty(), "{key}: no replace landed");
            assert_eq!(
                froms.len(),
                wins.len(),
                "{key}: two replaces from one version: {wins:?}"
            );
            let (bytes, _) = store.get_versioned(&key).await?.expect("written");
            assert!(
                wins.iter().any(|(pid, _)| bytes == pid.as_str()),
                "{key}: {bytes:?}"
            );
        }
        Ok(())
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
