//! Backups above any [`SnapshotStore`](crate::provider::SnapshotStore): manifests, verified restores, integrity checks,
//! client-side encryption and grandfather-father-son retention.
//!
//! * [`Backups::write`] streams a backup into the store, digesting (and optionally
//!   encrypting) it on the way, then stores its [`BackupManifest`] next to it as JSON.
//! * [`Backups::restore`] streams it back, verifying as it goes: a corrupt backup ends the
//!   stream with [`Error::ChecksumMismatch`] before its last chunk is released.
//! * [`Backups::verify`] and [`Backups::verify_all`] check backups without restoring them,
//!   and report corrupt backups, manifests without objects and objects without manifests.
//! * [`retain`] decides, purely, which backups a [`RetentionPolicy`] keeps; [`prune`]
//!   applies it to a store.
//!
//! # Write and delete order
//!
//! A backup's object is written first and its manifest last, so a manifest always describes
//! a complete object: a write that fails half way leaves at most an object without a
//! manifest, which [`Backups::verify_all`] reports and nothing else treats as a backup.
//! [`prune`] deletes the object first and the manifest last, so an interrupted prune leaves
//! a manifest without an object, which `verify_all` reports ([`VerifyStatus::MissingObject`])
//! and `prune` lists in [`PruneReport::dangling_manifests`]: the record of a backup never
//! disappears before its data, and no object is ever left that `prune` cannot see.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
//! use std::sync::Arc;
//! use dr_core::backup::{Backups, EncryptionKey, RetentionClass, WriteOptions};
//! use dr_core::store::InMemoryStore;
//! use futures::{StreamExt, TryStreamExt};
//!
//! let key = EncryptionKey::from_bytes("2026-q4", [7; 32]);
//! let backups = Backups::new(Arc::new(InMemoryStore::new())).with_encryption(key);
//! let data = futures::stream::iter([Ok(bytes::Bytes::from("pg_dump output"))]).boxed();
//! let manifest = backups
//!     .write("db/orders/2026-11-21.dump", data, "database orders-db",
//!            RetentionClass::Daily, WriteOptions::default())
//!     .await?;
//! assert_eq!(manifest.encrypted.as_ref().map(|e| e.key_id.as_str()), Some("2026-q4"));
//!
//! let restored: Vec<bytes::Bytes> =
//!     backups.restore("db/orders/2026-11-21.dump").await?.try_collect().await?;
//! assert_eq!(restored.concat(), b"pg_dump output");
//! assert!(backups.verify_all("db/").await?.iter().all(|r| r.is_ok()));
//! # Ok(()) }
//! ```

mod crypto;
mod manifest;
mod prune;
mod retention;
mod stream;

pub use crypto::{EncryptionKey, ALGORITHM, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
pub use manifest::{
    manifest_key, BackupManifest, EncryptionInfo, RetentionClass, VerifyDepth, VerifyReport,
    VerifyStatus, MANIFEST_SUFFIX,
};
pub use prune::{prune, PruneReport};
pub use retention::{retain, BackupInfo, RetainReason, RetentionDecision, RetentionPolicy};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::provider::{sha256_stream, ByteStream, DynSnapshotStore, PutOptions, SnapshotStoreExt};
use crate::{Clock, Error, Result};
use crypto::{Decryptor, DerivedKeys, Encryptor, Keyring};
use stream::{take, Digester, Tap, VerifyTail};

/// Options for [`Backups::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Caller metadata, recorded in the manifest.
    pub metadata: BTreeMap<String, String>,
    /// When the backup was taken, if not now (importing older backups).
    pub created: Option<DateTime<Utc>>,
}

impl WriteOptions {
    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Records `created` as the time the backup was taken.
    pub fn with_created(mut self, created: DateTime<Utc>) -> Self {
        self.created = Some(created);
        self
    }
}

/// Backups in one [`SnapshotStore`](crate::provider::SnapshotStore): write, restore, verify,
/// prune. See the [module documentation](self).
///
/// With [`with_encryption`](Self::with_encryption), new backups are encrypted under that key;
/// [`with_decryption_key`](Self::with_decryption_key) adds older keys for restores after a
/// rotation. `Debug` shows key ids only.
#[derive(Debug, Clone)]
pub struct Backups {
    store: Arc<DynSnapshotStore>,
    keys: Keyring,
    write_key: Option<String>,
    chunk_size: u32,
    clock: Option<Clock>,
}

impl Backups {
    /// Backups in `store`, not encrypted.
    pub fn new(store: Arc<DynSnapshotStore>) -> Self {
        Backups {
            store,
            keys: Keyring::new(),
            write_key: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            clock: None,
        }
    }

    /// Encrypts new backups with `key` (also usable to restore).
    pub fn with_encryption(mut self, key: EncryptionKey) -> Self {
        self.write_key = Some(key.id().to_string());
        self.keys.insert(key.id().to_string(), key);
        self
    }

    /// Adds a key to restore and verify backups encrypted under its id.
    pub fn with_decryption_key(mut self, key: EncryptionKey) -> Self {
        self.keys.insert(key.id().to_string(), key);
        self
    }

    /// Plaintext bytes per encrypted chunk, clamped to `1..=MAX_CHUNK_SIZE`
    /// (default [`DEFAULT_CHUNK_SIZE`]).
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size.clamp(1, MAX_CHUNK_SIZE);
        self
    }

    /// Takes `created` times from `clock` (simulated time) instead of the wall clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<DynSnapshotStore> {
        &self.store
    }

    fn provider(&self) -> String {
        self.store.name().to_string()
    }

    /// Streams `data` into the store as backup `key` of `source`, then writes its manifest.
    /// The content is digested (and encrypted, if configured) on the way; it is never held
    /// in memory whole.
    ///
    /// # Errors
    /// `InvalidRequest` for a key ending in [`MANIFEST_SUFFIX`]; a stream or store error;
    /// `ChecksumMismatch` when the store recorded something other than what was sent.
    pub async fn write(
        &self,
        key: &str,
        data: ByteStream,
        source: &str,
        class: RetentionClass,
        opts: WriteOptions,
    ) -> Result<BackupManifest> {
        if key.is_empty() || key.ends_with(MANIFEST_SUFFIX) {
            return Err(Error::InvalidRequest {
                provider: self.provider(),
                operation: "write backup".into(),
                message: format!("invalid backup key {key:?}: empty or ends in {MANIFEST_SUFFIX}"),
            });
        }
        let created = opts.created.unwrap_or_else(|| match &self.clock {
            Some(c) => c.now(),
            None => Utc::now(),
        });
        // Metadata names must be identifiers on Azure Blob Storage (no dashes).
        let put_opts = PutOptions::default().with_metadata("dr_backup", "1");
        let write_key = match &self.write_key {
            Some(id) => self.keys.get(id),
            None => None,
        };
        let (sha256, size, encrypted) = match write_key {
            None => {
                let (tap, plain) = Tap::new(data, Digester::sha256());
                let meta = self.store.put(key, tap.boxed(), put_opts).await?;
                let (sha, size) = self.tapped(key, &plain)?;
                self.check_stored(key, &meta, &sha, size)?;
                (Some(sha), size, None)
            }
            Some(k) => {
                let dk = k.derive();
                let (tap, plain) = Tap::new(data, Digester::hmac(&dk.mac_key));
                let enc = Encryptor::new(tap.boxed(), dk.cipher.clone(), self.chunk_size)?;
                let (ctap, cipher) = Tap::new(enc.boxed(), Digester::sha256());
                let meta = self.store.put(key, ctap.boxed(), put_opts).await?;
                let (mac, size) = self.tapped(key, &plain)?;
                let (csha, csize) = self.tapped(key, &cipher)?;
                self.check_stored(key, &meta, &csha, csize)?;
                let info = EncryptionInfo {
                    algorithm: ALGORITHM.into(),
                    key_id: k.id().to_string(),
                    chunk_size: self.chunk_size,
                    ciphertext_sha256: csha,
                    ciphertext_size: csize,
                    plaintext_hmac_sha256: mac,
                    key_check: dk.key_check,
                };
                (None, size, Some(info))
            }
        };
        let manifest = BackupManifest {
            format: 1,
            key: key.to_string(),
            sha256,
            size,
            source: source.to_string(),
            created,
            retention_class: class,
            encrypted,
            metadata: opts.metadata,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::InvalidRequest {
            provider: self.provider(),
            operation: "write backup".into(),
            message: format!("manifest of {key} cannot be encoded: {e}"),
        })?;
        self.store
            .put_bytes(&manifest_key(key), Bytes::from(json))
            .await?;
        Ok(manifest)
    }

    fn tapped(&self, key: &str, result: &stream::TapResult) -> Result<(String, u64)> {
        take(result).ok_or_else(|| Error::InvalidResponse {
            provider: self.provider(),
            operation: "put".into(),
            message: format!("the store did not read backup {key} to its end"),
        })
    }

    fn check_stored(
        &self,
        key: &str,
        meta: &crate::provider::ObjectMeta,
        sha: &str,
        size: u64,
    ) -> Result<()> {
        let sha_differs = meta
            .sha256
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case(sha));
        if sha_differs || meta.size != size {
            return Err(Error::ChecksumMismatch {
                provider: self.provider(),
                resource: format!("backup {key}"),
                expected: format!("sha256 {sha}, {size} bytes (as sent)"),
                actual: format!(
                    "sha256 {}, {} bytes (as stored)",
                    meta.sha256.as_deref().unwrap_or("unknown"),
                    meta.size
                ),
            });
        }
        Ok(())
    }

    /// Reads the manifest of backup `key`.
    ///
    /// # Errors
    /// `NotFound` when there is none; `InvalidResponse` when it cannot be parsed or names
    /// another key.
    pub async fn manifest(&self, key: &str) -> Result<BackupManifest> {
        let mkey = manifest_key(key);
        let bytes = self.store.get_bytes(&mkey).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found(self.provider(), format!("manifest of backup {key}"))
            } else {
                e
            }
        })?;
        let bad = |message: String| Error::InvalidResponse {
            provider: self.provider(),
            operation: "read backup manifest".into(),
            message,
        };
        let m: BackupManifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("manifest {mkey} is unreadable: {e}")))?;
        if m.key != key {
            return Err(bad(format!("manifest {mkey} names backup {:?}", m.key)));
        }
        if m.sha256.is_none() == m.encrypted.is_none() {
            return Err(bad(format!(
                "manifest {mkey} must hold either a sha256 or encryption info"
            )));
        }
        Ok(m)
    }

    /// Lists the manifests of the backups under `prefix`, in key order.
    ///
    /// # Errors
    /// A listing or manifest error.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BackupManifest>> {
        let mut out = Vec::new();
        for meta in self.store.list_all(prefix).await? {
            if let Some(key) = meta.key.strip_suffix(MANIFEST_SUFFIX) {
                out.push(self.manifest(key).await?);
            }
        }
        Ok(out)
    }

    fn keys_for(&self, key: &str, info: &EncryptionInfo) -> Result<DerivedKeys> {
        let unauthorized = |message: String| Error::Unauthorized {
            provider: "backup".into(),
            message,
        };
        if info.algorithm != ALGORITHM {
            return Err(Error::NotSupported {
                operation: format!("decrypting {} (backup {key})", info.algorithm),
                provider: "backup".into(),
            });
        }
        let k = self.keys.get(&info.key_id).ok_or_else(|| {
            unauthorized(format!(
                "backup {key} is encrypted with key id {:?}, and no key with that id was given",
                info.key_id
            ))
        })?;
        let dk = k.derive();
        if dk.key_check != info.key_check {
            return Err(unauthorized(format!(
                "the key given as {:?} is not the key backup {key} was encrypted with",
                info.key_id
            )));
        }
        Ok(dk)
    }

    /// Streams backup `key` back, verifying while streaming: each chunk is released only
    /// once the next has arrived, and the last only if the whole content matches its
    /// manifest (for encrypted backups, every chunk is also authenticated before release).
    /// A corrupt or truncated backup therefore ends with an error instead of its last chunk:
    /// a consumer must treat a stream that ends in an error as a failed restore and
    /// discard what it received.
    ///
    /// # Errors
    /// Before streaming: `NotFound` (no manifest or no object); `Unauthorized` naming the key
    /// id when the key is missing or wrong; `ChecksumMismatch` when the stored size already
    /// differs. While streaming: `ChecksumMismatch`, or a store error.
    pub async fn restore(&self, key: &str) -> Result<ByteStream> {
        let manifest = self.manifest(key).await?;
        let derived = match &manifest.encrypted {
            Some(info) => {
                if info.chunk_size == 0 || info.chunk_size > MAX_CHUNK_SIZE {
                    return Err(Error::InvalidResponse {
                        provider: self.provider(),
                        operation: "restore".into(),
                        message: format!("manifest of {key}: invalid chunk size"),
                    });
                }
                Some((info, self.keys_for(key, info)?))
            }
            None => None,
        };
        let got = self.store.get(key).await?;
        let resource = format!("backup {key}");
        if got.meta.size != manifest.stored_size() {
            return Err(Error::ChecksumMismatch {
                provider: self.provider(),
                resource,
                expected: format!("{} stored bytes", manifest.stored_size()),
                actual: format!("{} stored bytes", got.meta.size),
            });
        }
        let stream = match derived {
            None => VerifyTail::new(
                got.stream,
                Digester::sha256(),
                "sha256",
                manifest.sha256.unwrap_or_default(),
                manifest.size,
                self.provider(),
                resource,
            ),
            Some((info, dk)) => {
                let plain = Decryptor::new(
                    got.stream,
                    dk.cipher.clone(),
                    info.chunk_size,
                    self.provider(),
                    resource.clone(),
                );
                VerifyTail::new(
                    plain.boxed(),
                    Digester::hmac(&dk.mac_key),
                    "hmac-sha256",
                    info.plaintext_hmac_sha256.clone(),
                    manifest.size,
                    self.provider(),
                    resource,
                )
            }
        };
        Ok(stream.boxed())
    }

    /// Checks backup `key` without restoring it: reads it through [`restore`](Self::restore)
    /// and discards the content. An encrypted backup whose key id was not given is checked
    /// against the SHA-256 of its stored bytes instead ([`VerifyDepth::StoredBytes`]).
    ///
    /// # Errors
    /// `NotFound` when neither the backup nor its manifest exists; store errors other than
    /// not-found (integrity findings are in the report, not errors).
    pub async fn verify(&self, key: &str) -> Result<VerifyReport> {
        let report = |status| VerifyReport {
            key: key.to_string(),
            status,
        };
        let manifest = match self.manifest(key).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => {
                self.store.head(key).await?;
                return Ok(report(VerifyStatus::MissingManifest));
            }
            Err(Error::InvalidResponse { message, .. }) => {
                return Ok(report(VerifyStatus::BadManifest { detail: message }))
            }
            Err(e) => return Err(e),
        };
        if let Some(info) = &manifest.encrypted {
            if !self.keys.contains_key(&info.key_id) {
                return self
                    .verify_stored(key, info, manifest.size)
                    .await
                    .map(report);
            }
        }
        let stream = match self.restore(key).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(report(VerifyStatus::MissingObject)),
            Err(Error::Unauthorized { .. }) => {
                let key_id = manifest.encrypted.map(|i| i.key_id).unwrap_or_default();
                return Ok(report(VerifyStatus::WrongKey { key_id }));
            }
            Err(e) => return Self::finding(e).map(report),
        };
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            if let Err(e) = chunk {
                return Self::finding(e).map(report);
            }
        }
        Ok(report(VerifyStatus::Ok {
            depth: VerifyDepth::Content,
            size: manifest.size,
        }))
    }

    fn finding(e: Error) -> Result<VerifyStatus> {
        match e {
            Error::ChecksumMismatch { .. } => Ok(VerifyStatus::Corrupt {
                detail: e.to_string(),
            }),
            Error::InvalidResponse { message, .. } => {
                Ok(VerifyStatus::BadManifest { detail: message })
            }
            e => Err(e),
        }
    }

    async fn verify_stored(
        &self,
        key: &str,
        info: &EncryptionInfo,
        plain_size: u64,
    ) -> Result<VerifyStatus> {
        let got = match self.store.get(key).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => return Ok(VerifyStatus::MissingObject),
            Err(e) => return Err(e),
        };
        let (sha, size) = sha256_stream(got.stream).await?;
        if !sha.eq_ignore_ascii_case(&info.ciphertext_sha256) || size != info.ciphertext_size {
            return Ok(VerifyStatus::Corrupt {
                detail: format!(
                    "stored bytes: expected sha256 {}, {} bytes; found sha256 {sha}, {size} bytes",
                    info.ciphertext_sha256, info.ciphertext_size
                ),
            });
        }
        Ok(VerifyStatus::Ok {
            depth: VerifyDepth::StoredBytes,
            size: plain_size,
        })
    }

    /// Verifies every backup under `prefix`, in key order: each backup with a manifest and an
    /// object as [`verify`](Self::verify) does, each manifest without an object as
    /// [`VerifyStatus::MissingObject`], each object without a manifest as
    /// [`VerifyStatus::MissingManifest`]. The `gzip -t` of a backup directory.
    ///
    /// # Errors
    /// Listing and store errors (not integrity findings).
    pub async fn verify_all(&self, prefix: &str) -> Result<Vec<VerifyReport>> {
        let mut objects = BTreeSet::new();
        let mut manifests = BTreeSet::new();
        for meta in self.store.list_all(prefix).await? {
            match meta.key.strip_suffix(MANIFEST_SUFFIX) {
                Some(k) => manifests.insert(k.to_string()),
                None => objects.insert(meta.key),
            };
        }
        let mut out = Vec::new();
        for key in objects.union(&manifests) {
            let status = match (objects.contains(key), manifests.contains(key)) {
                (true, true) => {
                    out.push(self.verify(key).await?);
                    continue;
                }
                (false, _) => VerifyStatus::MissingObject,
                (true, false) => VerifyStatus::MissingManifest,
            };
            out.push(VerifyReport {
                key: key.clone(),
                status,
            });
        }
        Ok(out)
    }

    /// [`prune`] on this store.
    ///
    /// # Errors
    /// As [`prune`].
    pub async fn prune(
        &self,
        prefix: &str,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PruneReport> {
        prune(self.store.as_ref(), prefix, policy, now, dry_run).await
    }
}
