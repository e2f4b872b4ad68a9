//! The manifest stored next to each backup, and verification reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The suffix of a manifest's key: the manifest of `db/x.dump` is `db/x.dump.manifest.json`.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The key of the manifest of backup `key`.
///
/// # Examples
///
/// ```
/// assert_eq!(dr_core::backup::manifest_key("db/1.dump"), "db/1.dump.manifest.json");
/// ```
pub fn manifest_key(key: &str) -> String {
    format!("{key}{MANIFEST_SUFFIX}")
}

/// The schedule a backup was taken under. A label: retention works from `created` times,
/// except that [`prune`](super::prune) never deletes [`RetentionClass::Manual`] backups.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClass {
    /// A daily scheduled backup.
    Daily,
    /// A weekly scheduled backup.
    Weekly,
    /// A monthly scheduled backup.
    Monthly,
    /// A yearly scheduled backup.
    Yearly,
    /// Taken by hand (before a migration, a failover): kept until deleted by hand.
    Manual,
}

/// What is recorded about an encrypted backup. Nothing here reveals the content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EncryptionInfo {
    /// The format ([`ALGORITHM`](super::ALGORITHM)).
    pub algorithm: String,
    /// The id of the [`EncryptionKey`](super::EncryptionKey) needed to restore.
    pub key_id: String,
    /// Plaintext bytes per sealed chunk.
    pub chunk_size: u32,
    /// Hex SHA-256 of the stored (encrypted) object: verifiable without the key.
    pub ciphertext_sha256: String,
    /// Size of the stored (encrypted) object.
    pub ciphertext_size: u64,
    /// Hex HMAC-SHA256 of the plaintext under a key derived from the encryption key: checks
    /// the restored content end to end, yet tells nothing to whoever lacks the key.
    pub plaintext_hmac_sha256: String,
    /// A short value derived from the key (not from the content), so a wrong key with the
    /// right id is reported as a wrong key rather than as corruption.
    pub key_check: String,
}

/// The record of one backup, stored as JSON at [`manifest_key`]`(key)` in the same store.
///
/// For a backup without encryption, `sha256` is the SHA-256 of the content. For an
/// encrypted one it is `None`: a plain hash of a small or guessable object (a config file,
/// a nearly empty table) lets whoever reads the bucket confirm a guess of its content, so
/// the content is checked instead by [`EncryptionInfo::plaintext_hmac_sha256`], keyed, and
/// by the authentication tag of every chunk. Sizes are not hidden (the ciphertext reveals
/// them anyway).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BackupManifest {
    /// Manifest format version (1).
    pub format: u32,
    /// The backup's object key.
    pub key: String,
    /// Hex SHA-256 of the content, for backups that are not encrypted.
    pub sha256: Option<String>,
    /// Size of the content (before encryption).
    pub size: u64,
    /// What was backed up (`database orders-db`, `namespace shop`).
    pub source: String,
    /// When the backup was taken.
    pub created: DateTime<Utc>,
    /// The schedule it was taken under.
    pub retention_class: RetentionClass,
    /// How it is encrypted, if it is.
    pub encrypted: Option<EncryptionInfo>,
    /// Caller metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl BackupManifest {
    /// Size of the stored object.
    pub fn stored_size(&self) -> u64 {
        match &self.encrypted {
            Some(e) => e.ciphertext_size,
            None => self.size,
        }
    }
}

/// How deep a successful verification went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyDepth {
    /// The content was read (decrypted where encrypted) and matched its recorded digest.
    Content,
    /// Encrypted, and no key with its id was given: the stored bytes matched their
    /// recorded SHA-256, the content itself was not checked.
    StoredBytes,
}

/// The outcome of verifying one backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VerifyStatus {
    /// Intact.
    Ok {
        /// What was checked.
        depth: VerifyDepth,
        /// Content size.
        size: u64,
    },
    /// The content does not match its manifest: never restore it.
    Corrupt {
        /// What did not match.
        detail: String,
    },
    /// A manifest with no object.
    MissingObject,
    /// An object with no manifest (a write that never finished, or a stray object).
    MissingManifest,
    /// The manifest cannot be read.
    BadManifest {
        /// Why.
        detail: String,
    },
    /// The key given under the backup's key id is not the key it was encrypted with.
    WrongKey {
        /// The key id.
        key_id: String,
    },
}

/// The result of verifying one backup ([`Backups::verify`](super::Backups::verify)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// The backup's key.
    pub key: String,
    /// What was found.
    #[serde(flatten)]
    pub status: VerifyStatus,
}

impl VerifyReport {
    /// `true` when the backup is intact.
    pub fn is_ok(&self) -> bool {
        matches!(self.status, VerifyStatus::Ok { .. })
    }
}
