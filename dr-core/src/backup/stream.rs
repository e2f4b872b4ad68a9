//! Stream adapters: digesting what passes, and holding back the last chunk until the digest
//! is known to match.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use hmac::Mac;
use sha2::{Digest, Sha256};

use super::crypto::{hmac, HmacSha256};
use crate::provider::ByteStream;
use crate::{Error, Result};

/// A running SHA-256 or HMAC-SHA256.
pub(crate) enum Digester {
    Sha256(Sha256),
    Hmac(Box<HmacSha256>),
}

impl Digester {
    pub(crate) fn sha256() -> Self {
        Digester::Sha256(Sha256::new())
    }

    pub(crate) fn hmac(key: &[u8; 32]) -> Self {
        Digester::Hmac(Box::new(hmac(key)))
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Hmac(h) => h.update(data),
        }
    }

    fn finalize_hex(self) -> String {
        match self {
            Digester::Sha256(h) => hex::encode(h.finalize()),
            Digester::Hmac(h) => hex::encode(h.finalize().into_bytes()),
        }
    }
}

/// Where a [`Tap`] leaves its digest and size once its stream has ended.
pub(crate) type TapResult = Arc<Mutex<Option<(String, u64)>>>;

pub(crate) fn take(result: &TapResult) -> Option<(String, u64)> {
    result.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Passes a stream through unchanged, digesting it.
pub(crate) struct Tap {
    inner: ByteStream,
    digest: Option<Digester>,
    size: u64,
    out: TapResult,
}

impl Tap {
    pub(crate) fn new(inner: ByteStream, digest: Digester) -> (Self, TapResult) {
        let out = TapResult::default();
        let tap = Tap {
            inner,
            digest: Some(digest),
            size: 0,
            out: out.clone(),
        };
        (tap, out)
    }
}

impl Stream for Tap {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = ready!(this.inner.poll_next_unpin(cx));
        match &item {
            Some(Ok(chunk)) => {
                if let Some(d) = this.digest.as_mut() {
                    d.update(chunk);
                }
                this.size += chunk.len() as u64;
            }
            Some(Err(_)) => this.digest = None,
            None => {
                if let Some(d) = this.digest.take() {
                    *this.out.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((d.finalize_hex(), this.size));
                }
            }
        }
        Poll::Ready(item)
    }
}

/// Digests a stream and releases each chunk only once the next one has arrived; the last
/// chunk is released only if the digest and size match, otherwise the stream ends with
/// `ChecksumMismatch` instead. At most one chunk is held back.
pub(crate) struct VerifyTail {
    inner: ByteStream,
    digest: Option<Digester>,
    size: u64,
    pending: Option<Bytes>,
    expected_digest: String,
    expected_size: u64,
    what: &'static str,
    provider: String,
    resource: String,
    done: bool,
}

impl VerifyTail {
    pub(crate) fn new(
        inner: ByteStream,
        digest: Digester,
        what: &'static str,
        expected_digest: String,
        expected_size: u64,
        provider: String,
        resource: String,
    ) -> Self {
        VerifyTail {
            inner,
            digest: Some(digest),
            size: 0,
            pending: None,
            expected_digest,
            expected_size,
            what,
            provider,
            resource,
            done: false,
        }
    }

    fn mismatch(&mut self, actual_digest: String) -> Poll<Option<Result<Bytes>>> {
        self.done = true;
        self.pending = None;
        Poll::Ready(Some(Err(Error::ChecksumMismatch {
            provider: self.provider.clone(),
            resource: self.resource.clone(),
            expected: format!(
                "{} {}, {} bytes",
                self.what, self.expected_digest, self.expected_size
            ),
            actual: format!("{} {actual_digest}, {} bytes", self.what, self.size),
        })))
    }
}

impl Stream for VerifyTail {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    this.size += chunk.len() as u64;
                    if this.size > this.expected_size {
                        return this.mismatch("(not computed: content too long)".into());
                    }
                    if let Some(d) = this.digest.as_mut() {
                        d.update(&chunk);
                    }
                    if let Some(prev) = this.pending.replace(chunk) {
                        return Poll::Ready(Some(Ok(prev)));
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    this.pending = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    let actual = this.digest.take().map(Digester::finalize_hex);
                    let matches = actual.as_deref().is_some_and(|a| {
                        a.eq_ignore_ascii_case(&this.expected_digest)
                            && this.size == this.expected_size
                    });
                    if !matches {
                        return this.mismatch(actual.unwrap_or_default());
                    }
                    this.done = true;
                    return Poll::Ready(this.pending.take().map(Ok));
                }
            }
        }
    }
}
