//! Client-side encryption: keys, and the chunked AES-256-GCM stream format.
//!
//! Stored object layout (format 1):
//!
//! ```text
//! header  = "DRB1" | version u8 (=1) | chunk_size u32 BE | nonce_prefix [u8; 8]   (17 bytes)
//! record* = AES-256-GCM(ciphertext of up to chunk_size bytes | 16-byte tag)
//! ```
//!
//! Every record but the last holds exactly `chunk_size` plaintext bytes; the last holds
//! `0..=chunk_size` (an empty object is one empty final record). Record `i` is sealed with
//! nonce `nonce_prefix | (i as u32, big endian)` and associated data
//! `header | i as u64 BE | final flag u8`, so a changed header, a dropped, swapped, repeated
//! or reordered record, a truncation (even at a record boundary) or trailing data all fail
//! authentication. The prefix is random per object, so two objects never share a nonce
//! sequence (64 random bits: collisions become likely only after about 2^32 objects under
//! one key; rotate keys long before that).
//!
//! The caller's 32-byte key is never used directly: three sub-keys are derived from it with
//! HMAC-SHA256 under fixed labels: the AES key, the key of the plaintext MAC recorded in the
//! manifest, and a short key-check value that lets a wrong key be reported as such.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use hmac::Mac;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::provider::ByteStream;
use crate::{Error, Result};

/// The algorithm name recorded in manifests.
pub const ALGORITHM: &str = "AES-256-GCM-chunked-v1";
/// Default plaintext bytes per sealed record (64 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest accepted chunk size (16 MiB): bounds what a reader buffers.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

const MAGIC: &[u8; 4] = b"DRB1";
const VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 17;
pub(crate) const TAG_LEN: usize = 16;

pub(crate) type HmacSha256 = hmac::Hmac<Sha256>;

/// A 256-bit key for client-side backup encryption, with an id naming it in manifests so
/// keys can be rotated (new backups use the new key, old ones name the key they need).
///
/// `Debug` shows the id only; the key bytes are wiped from memory when dropped (copies the
/// caller made before are the caller's to wipe).
///
/// # Examples
///
/// ```
/// use dr_core::backup::EncryptionKey;
///
/// let key = EncryptionKey::from_hex("2026-q4", &"ab".repeat(32))?;
/// assert_eq!(key.id(), "2026-q4");
/// assert_eq!(format!("{key:?}"), r#"EncryptionKey { id: "2026-q4", key: *** }"#);
/// assert!(EncryptionKey::from_base64("k", "dG9vIHNob3J0").is_err());
/// # Ok::<(), dr_core::Error>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey {{ id: {:?}, key: *** }}", self.id)
    }
}

fn bad_key(id: &str, why: &str) -> Error {
    Error::InvalidRequest {
        provider: "backup".into(),
        operation: "load encryption key".into(),
        message: format!("key {id:?}: {why}"),
    }
}

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(id: impl Into<String>, bytes: [u8; 32]) -> Self {
        EncryptionKey {
            id: id.into(),
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A key from 64 hex digits (surrounding whitespace ignored).
    ///
    /// # Errors
    /// `InvalidRequest` naming the key id (never the input) when it is not 32 bytes of hex.
    pub fn from_hex(id: impl Into<String>, hex_key: &str) -> Result<Self> {
        let id = id.into();
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_key.trim(), bytes.as_mut_slice())
            .map_err(|_| bad_key(&id, "expected 64 hex digits"))?;
        Ok(EncryptionKey { id, bytes })
    }

    /// A key from standard base64 (with padding) of 32 bytes (surrounding whitespace ignored).
    ///
    /// # Errors
    /// `InvalidRequest` naming the key id (never the input) when it is not 32 bytes of base64.
    pub fn from_base64(id: impl Into<String>, b64_key: &str) -> Result<Self> {
        let id = id.into();
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64_key.trim())
                .map_err(|_| bad_key(&id, "expected base64 of 32 bytes"))?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        if decoded.len() != 32 {
            return Err(bad_key(&id, "expected base64 of 32 bytes"));
        }
        bytes.copy_from_slice(&decoded);
        Ok(EncryptionKey { id, bytes })
    }

    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// `Other` (permanent) when the system has no random source.
    pub fn generate(id: impl Into<String>) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random(bytes.as_mut_slice())?;
        Ok(EncryptionKey {
            id: id.into(),
            bytes,
        })
    }

    /// The key's id, as recorded in the manifests of what it encrypted.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn derive(&self) -> DerivedKeys {
        let enc = Zeroizing::new(prf(&self.bytes, b"dr-backup v1 aes-256-gcm key"));
        let mac = Zeroizing::new(prf(&self.bytes, b"dr-backup v1 plaintext hmac key"));
        let check = prf(&self.bytes, b"dr-backup v1 key check");
        DerivedKeys {
            cipher: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(enc.as_slice())),
            mac_key: mac,
            key_check: hex::encode(&check[..8]),
        }
    }
}

/// The keys a [`Backups`](super::Backups) can decrypt with, by id.
pub(crate) type Keyring = BTreeMap<String, EncryptionKey>;

/// Sub-keys derived from one [`EncryptionKey`].
pub(crate) struct DerivedKeys {
    pub(crate) cipher: Aes256Gcm,
    pub(crate) mac_key: Zeroizing<[u8; 32]>,
    pub(crate) key_check: String,
}

pub(crate) fn hmac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC pads keys shorter than the block to 64 bytes with zeros; doing it here keeps
    // construction infallible.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(hmac::digest::generic_array::GenericArray::from_slice(
        block.as_slice(),
    ))
}

fn prf(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Other {
        provider: "backup".into(),
        operation: "random".into(),
        retry: crate::Retry::Permanent,
        source: format!("no system random source: {e}").into(),
    })
}

fn nonce(prefix: &[u8; 8], index: u64) -> Option<[u8; 12]> {
    let counter = u32::try_from(index).ok()?;
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&counter.to_be_bytes());
    Some(n)
}

fn aad(header: &[u8; HEADER_LEN], index: u64, last: bool) -> [u8; HEADER_LEN + 9] {
    let mut a = [0u8; HEADER_LEN + 9];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&index.to_be_bytes());
    a[HEADER_LEN + 8] = u8::from(last);
    a
}

/// Encrypts a plaintext stream into the format above, one record at a time.
pub(crate) struct Encryptor {
    inner: ByteStream,
    buf: BytesMut,
    header: [u8; HEADER_LEN],
    header_sent: bool,
    cipher: Aes256Gcm,
    chunk_size: usize,
    index: u64,
    eof: bool,
    done: bool,
}

impl Encryptor {
    pub(crate) fn new(inner: ByteStream, cipher: Aes256Gcm, chunk_size: u32) -> Result<Self> {
        let mut prefix = [0u8; 8];
        random(&mut prefix)?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4] = VERSION;
        header[5..9].copy_from_slice(&chunk_size.to_be_bytes());
        header[9..].copy_from_slice(&prefix);
        Ok(Encryptor {
            inner,
            buf: BytesMut::new(),
            header,
            header_sent: false,
            cipher,
            chunk_size: chunk_size as usize,
            index: 0,
            eof: false,
            done: false,
        })
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> Result<Bytes> {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.header[9..]);
        let too_large = || Error::InvalidRequest {
            provider: "backup".into(),
            operation: "encrypt".into(),
            message: "object too large for one encrypted backup (2^32 chunks)".into(),
        };
        let n = nonce(&prefix, self.index).ok_or_else(too_large)?;
        let mut out = Vec::with_capacity(plain.len() + TAG_LEN);
        out.extend_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                aes_gcm::Nonce::from_slice(&n),
                &aad(&self.header, self.index, last),
                &mut out,
            )
            .map_err(|_| too_large())?;
        out.extend_from_slice(&tag);
        self.index += 1;
        Ok(out.into())
    }
}

impl Stream for Encryptor {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.header_sent {
            this.header_sent = true;
            return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&this.header))));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.buf.len() > this.chunk_size {
                let plain = this.buf.split_to(this.chunk_size);
                let sealed = this.seal(&plain, false);
                this.done = sealed.is_err();
                return Poll::Ready(Some(sealed));
            }
            if this.eof {
                this.done = true;
                let plain = this.buf.split();
                return Poll::Ready(Some(this.seal(&plain, true)));
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.eof = true,
            }
        }
    }
}

/// Decrypts and authenticates the format above, releasing each record's plaintext only once
/// its tag has been checked.
pub(crate) struct Decryptor {
    inner: ByteStream,
    buf: BytesMut,
    header: Option<[u8; HEADER_LEN]>,
    cipher: Aes256Gcm,
    chunk_size: u32,
    index: u64,
    eof: bool,
    done: bool,
    provider: String,
    resource: String,
}

impl Decryptor {
    pub(crate) fn new(
        inner: ByteStream,
        cipher: Aes256Gcm,
        chunk_size: u32,
        provider: String,
        resource: String,
    ) -> Self {
        Decryptor {
            inner,
            buf: BytesMut::new(),
            header: None,
            cipher,
            chunk_size,
            index: 0,
            eof: false,
            done: false,
            provider,
            resource,
        }
    }

    fn fail(&mut self, expected: String, actual: &str) -> Poll<Option<Result<Bytes>>> {
        self.done = true;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(Error::ChecksumMismatch {
            provider: self.provider.clone(),
            resource: self.resource.clone(),
            expected,
            actual: actual.into(),
        })))
    }

    fn open(
        &mut self,
        header: &[u8; HEADER_LEN],
        mut record: BytesMut,
        last: bool,
    ) -> Poll<Option<Result<Bytes>>> {
        let index = self.index;
        let expected = || format!("authentic chunk {index}");
        if record.len() < TAG_LEN {
            return self.fail(expected(), "truncated ciphertext (no final chunk)");
        }
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&header[9..]);
        let Some(n) = nonce(&prefix, index) else {
            return self.fail(expected(), "too many chunks");
        };
        let split = record.len() - TAG_LEN;
        let tag = aes_gcm::Tag::clone_from_slice(&record[split..]);
        record.truncate(split);
        let opened = self.cipher.decrypt_in_place_detached(
            aes_gcm::Nonce::from_slice(&n),
            &aad(header, index, last),
            &mut record,
            &tag,
        );
        if opened.is_err() {
            return self.fail(
                expected(),
                "authentication failed: ciphertext corrupt, truncated, reordered or tampered",
            );
        }
        self.index += 1;
        if last {
            self.done = true;
        }
        Poll::Ready(Some(Ok(record.freeze())))
    }
}

impl Stream for Decryptor {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.header.is_none() && this.buf.len() >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&this.buf.split_to(HEADER_LEN));
                let mut cs = [0u8; 4];
                cs.copy_from_slice(&h[5..9]);
                if &h[..4] != MAGIC || h[4] != VERSION {
                    return this.fail(format!("{ALGORITHM} header"), "unknown header");
                }
                if u32::from_be_bytes(cs) != this.chunk_size {
                    return this.fail(
                        format!("chunk size {}", this.chunk_size),
                        "a different chunk size in the header",
                    );
                }
                this.header = Some(h);
            }
            if let Some(h) = this.header {
                let record = this.chunk_size as usize + TAG_LEN;
                if this.buf.len() > record {
                    let r = this.buf.split_to(record);
                    return this.open(&h, r, false);
                }
                if this.eof {
                    let r = this.buf.split();
                    return this.open(&h, r, true);
                }
            } else if this.eof {
                return this.fail(format!("{ALGORITHM} header"), "truncated header");
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.eof = true,
            }
        }
    }
}
