//! The one error type every provider and the executor return.
//!
//! Every [`Error`] says whether trying again may help ([`Error::retry`]):
//!
//! * [`Retry::Permanent`] — the same call will fail the same way (not found, invalid state,
//!   bad credentials, unsupported operation, a checksum mismatch). Never retry.
//! * [`Retry::Temporary`] — throttling, a 5xx, a timeout, a dropped connection. A retry may
//!   succeed, if the operation is idempotent or its effect has been read back first.
//! * [`Retry::Persistent`] — was temporary, but retries were exhausted. No outer layer should
//!   retry it again.
//!
//! And whether the failed request **may have taken effect** ([`Error::effect`]):
//!
//! * [`Effect::NotApplied`] — the request certainly changed nothing: it was refused before
//!   being processed (throttled, connection refused, a fault decided before the call, a
//!   permanent refusal such as not found or invalid state). Retrying it is safe even for a
//!   non-idempotent step.
//! * [`Effect::Unknown`] — the request may have been carried out (a timeout, a 5xx after the
//!   request was sent, a reset connection, a lost reply). A non-idempotent step must read its
//!   effect back before it is tried again.

use std::fmt;
use std::time::Duration;

/// A boxed error source, as carried by [`Error`] variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether an operation that failed may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Trying again will fail the same way.
    Permanent,
    /// Trying again may succeed (throttling, 5xx, timeouts, connection resets).
    Temporary,
    /// The error was temporary, but retries were already exhausted: do not retry again.
    Persistent,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Retry::Permanent => "permanent",
            Retry::Temporary => "temporary",
            Retry::Persistent => "persistent",
        })
    }
}

/// Whether a failed request may have taken effect (see [`Error::effect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request certainly changed nothing: safe to send again.
    NotApplied,
    /// The request may have been carried out: read its effect back before sending it again.
    Unknown,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::NotApplied => "not applied",
            Effect::Unknown => "effect unknown",
        })
    }
}

/// An error from a provider, the executor or a store.
///
/// Variants carry the resource and the provider at fault. Secrets are never part of an error:
/// providers must not put credentials or secret values in any field.
///
/// # Examples
///
/// ```
/// use dr_core::{Error, Retry};
///
/// let err = Error::Throttled { provider: "sim".into(), operation: "promote".into() };
/// assert_eq!(err.retry(), Retry::Temporary);
/// assert!(err.is_retryable());
/// let err = err.exhausted(3);
/// assert_eq!(err.retry(), Retry::Persistent);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resource does not exist.
    #[error("{provider}: {resource} not found")]
    NotFound {
        /// Provider name (e.g. `sim`, `s3`, `rds`).
        provider: String,
        /// The resource at fault (`database orders-db`, `object backups/x.tar`).
        resource: String,
    },
    /// The resource already exists and the operation would create it.
    #[error("{provider}: {resource} already exists")]
    AlreadyExists {
        /// Provider name.
        provider: String,
        /// The resource at fault.
        resource: String,
    },
    /// A conditional write was refused: the object exists although the write was create-only,
    /// or its version is not the one the write was conditioned on (another writer changed
    /// it). Permanent: the same write fails the same way; read the object again and decide.
    #[error("{provider}: precondition failed for {resource}: expected {expected}")]
    PreconditionFailed {
        /// Provider name (`s3`, `local-disk`).
        provider: String,
        /// The object at fault (`object journals/run-1/0000000007`).
        resource: String,
        /// What the write required (`no object`, `version "3"`).
        expected: String,
    },
    /// The resource is in a state where the operation is not allowed.
    #[error("{provider}: {resource} is {state}, cannot {operation}")]
    InvalidState {
        /// Provider name.
        provider: String,
        /// The resource at fault.
        resource: String,
        /// Its current state.
        state: String,
        /// The operation that was refused.
        operation: String,
    },
    /// The provider does not implement the operation.
    #[error("{provider} does not support {operation}")]
    NotSupported {
        /// The operation (`restore_to_point_in_time`).
        operation: String,
        /// Provider name.
        provider: String,
    },
    /// Credentials are missing or were refused. The message never contains the secret itself.
    #[error("{provider}: not authorised: {message}")]
    Unauthorized {
        /// Provider name.
        provider: String,
        /// What is missing or was refused (e.g. `AWS_SECRET_ACCESS_KEY is not set`).
        message: String,
    },
    /// The provider throttled the call.
    #[error("{provider}: {operation} was throttled")]
    Throttled {
        /// Provider name.
        provider: String,
        /// The operation that was throttled.
        operation: String,
    },
    /// The request was refused before it was processed — connection refused, a name that did
    /// not resolve, a 503 with `Retry-After` sent before any work, a fault injected before the
    /// call. Temporary, and certainly without effect ([`Effect::NotApplied`]), so even a
    /// non-idempotent step may send it again.
    #[error("{provider}: {operation} was refused before it was processed")]
    Refused {
        /// Provider name.
        provider: String,
        /// The operation that was refused.
        operation: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A safety gate refused a step before its call: a data-loss window beyond the service's
    /// RPO, or a traffic interlock that the step would break. Permanent and certainly without
    /// effect; an explicit override (an accepted data loss, a waived interlock) lets the step
    /// through.
    #[error("{gate} gate refused step {step}: {reason}")]
    GateRefused {
        /// The gate (`rpo`, or the interlock's name).
        gate: String,
        /// The step it guarded.
        step: String,
        /// Why, and how to override it.
        reason: String,
    },
    /// The provider (or the network to it) is unavailable: a 5xx, a reset connection.
    #[error("{provider}: {operation} failed: service unavailable")]
    Unavailable {
        /// Provider name.
        provider: String,
        /// The operation that failed.
        operation: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation did not finish in time.
    #[error("{operation} timed out after {}", humantime::format_duration(*after))]
    Timeout {
        /// The operation or step that timed out.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The provider answered something that makes no sense (a malformed or contradictory reply).
    #[error("{provider}: invalid response to {operation}: {message}")]
    InvalidResponse {
        /// Provider name.
        provider: String,
        /// The operation.
        operation: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// Stored data does not match its recorded checksum: it must not be restored.
    #[error("{provider}: checksum mismatch for {resource}: expected {expected}, found {actual}")]
    ChecksumMismatch {
        /// Provider name.
        provider: String,
        /// The object at fault.
        resource: String,
        /// The recorded checksum.
        expected: String,
        /// The checksum of the data read.
        actual: String,
    },
    /// The request was refused as invalid by the provider (bad argument, bad name).
    #[error("{provider}: invalid request to {operation}: {message}")]
    InvalidRequest {
        /// Provider name.
        provider: String,
        /// The operation.
        operation: String,
        /// What was wrong.
        message: String,
    },
    /// A manual approval gate refused, or nobody answered it.
    #[error("approval refused for {step}: {reason}")]
    ApprovalDenied {
        /// The step that asked for approval.
        step: String,
        /// Why it was refused.
        reason: String,
    },
    /// The run was cancelled.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// A local I/O error (local-disk store, journal).
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`writing /var/backups/x`).
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error with an explicit retry class, for provider errors that fit no other variant.
    #[error("{provider}: {operation} failed ({retry}): {source}")]
    Other {
        /// Provider name.
        provider: String,
        /// The operation.
        operation: String,
        /// Whether a retry may help.
        retry: Retry,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A temporary error whose retries ran out. Its retry class is [`Retry::Persistent`].
    #[error("{source} (gave up after {attempts} attempts)")]
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether a retry may help. See [`Retry`] for the classes.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Throttled { .. }
            | Error::Refused { .. }
            | Error::Unavailable { .. }
            | Error::Timeout { .. } => Retry::Temporary,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::WouldBlock => Retry::Temporary,
                _ => Retry::Permanent,
            },
            Error::Other { retry, .. } => *retry,
            Error::Exhausted { .. } => Retry::Persistent,
            Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::PreconditionFailed { .. }
            | Error::InvalidState { .. }
            | Error::NotSupported { .. }
            | Error::Unauthorized { .. }
            | Error::InvalidResponse { .. }
            | Error::ChecksumMismatch { .. }
            | Error::InvalidRequest { .. }
            | Error::ApprovalDenied { .. }
            | Error::GateRefused { .. }
            | Error::Cancelled { .. } => Retry::Permanent,
        }
    }

    /// Whether the failed request may have taken effect.
    ///
    /// Throttling, refusals and every permanent error except [`Error::Other`] changed nothing;
    /// timeouts, unavailability after the request was sent, I/O errors and errors of unknown
    /// shape ([`Error::Other`]) may have. [`Error::Exhausted`] answers for its last error.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::{Effect, Error};
    ///
    /// let throttled = Error::Throttled { provider: "rds".into(), operation: "promote".into() };
    /// assert_eq!(throttled.effect(), Effect::NotApplied);
    /// let lost = Error::Unavailable { provider: "rds".into(), operation: "promote".into(), source: None };
    /// assert_eq!(lost.effect(), Effect::Unknown);
    /// ```
    pub fn effect(&self) -> Effect {
        match self {
            Error::Timeout { .. }
            | Error::Unavailable { .. }
            | Error::Io { .. }
            | Error::Other { .. }
            | Error::InvalidResponse { .. } => Effect::Unknown,
            Error::Exhausted { source, .. } => source.effect(),
            Error::Throttled { .. }
            | Error::Refused { .. }
            | Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::PreconditionFailed { .. }
            | Error::InvalidState { .. }
            | Error::NotSupported { .. }
            | Error::Unauthorized { .. }
            | Error::ChecksumMismatch { .. }
            | Error::InvalidRequest { .. }
            | Error::ApprovalDenied { .. }
            | Error::GateRefused { .. }
            | Error::Cancelled { .. } => Effect::NotApplied,
        }
    }

    /// `true` when [`retry`](Self::retry) is [`Retry::Temporary`].
    pub fn is_retryable(&self) -> bool {
        self.retry() == Retry::Temporary
    }

    /// `true` for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Marks a temporary error whose retries ran out, so no outer layer retries it again.
    /// Errors that are not temporary are returned unchanged.
    pub fn exhausted(self, attempts: u32) -> Error {
        if self.is_retryable() {
            Error::Exhausted {
                attempts,
                source: Box::new(self),
            }
        } else {
            self
        }
    }

    /// Shorthand for [`Error::NotSupported`].
    pub fn not_supported(provider: impl Into<String>, operation: impl Into<String>) -> Error {
        Error::NotSupported {
            provider: provider.into(),
            operation: operation.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(provider: impl Into<String>, resource: impl Into<String>) -> Error {
        Error::NotFound {
            provider: provider.into(),
            resource: resource.into(),
        }
    }

    /// `true` for [`Error::PreconditionFailed`]: a conditional write lost to another writer.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, Error::PreconditionFailed { .. })
    }

    /// Shorthand for [`Error::PreconditionFailed`] on the object `key` of store `provider`.
    pub fn precondition_failed(
        provider: impl Into<String>,
        key: &str,
        expected: impl Into<String>,
    ) -> Error {
        Error::PreconditionFailed {
            provider: provider.into(),
            resource: format!("object {key}"),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let nf = Error::not_found("sim", "database x");
        assert_eq!(nf.retry(), Retry::Permanent);
        assert_eq!(nf.to_string(), "sim: database x not found");
        let t = Error::Timeout {
            operation: "promote".into(),
            after: Duration::from_secs(90),
        };
        assert!(t.is_retryable());
        assert_eq!(t.to_string(), "promote timed out after 1m 30s");
        let ex = t.exhausted(4);
        assert_eq!(ex.retry(), Retry::Persistent);
        assert!(ex.to_string().contains("gave up after 4 attempts"));
        // Permanent errors are not wrapped.
        assert!(nf.exhausted(2).is_not_found());
        let refused = Error::Refused {
            provider: "rds".into(),
            operation: "promote".into(),
            source: None,
        };
        assert!(refused.is_retryable());
        assert_eq!(refused.effect(), Effect::NotApplied);
        assert_eq!(refused.exhausted(3).effect(), Effect::NotApplied);
        assert_eq!(ex.effect(), Effect::Unknown);
        let lost = Error::precondition_failed("s3", "runs/1/0000000003", "no object");
        assert_eq!(lost.retry(), Retry::Permanent);
        assert_eq!(lost.effect(), Effect::NotApplied);
        assert!(lost.is_precondition_failed());
        assert_eq!(
            lost.to_string(),
            "s3: precondition failed for object runs/1/0000000003: expected no object"
        );
    }
}
