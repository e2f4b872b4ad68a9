//! Maps Cloud Storage client errors to [`dr_core::Error`], once, at the crate boundary.

use std::error::Error as _;

use dr_core::{Error, Retry};
use google_cloud_gax::error::rpc::Code;
use google_cloud_storage::error::{ReadError, WriteError};

use crate::PROVIDER;

/// Maps an error from a `google-cloud-storage` call on `resource` during `operation`.
///
/// Service errors are classified by their gRPC code (control calls) or HTTP status (reads
/// and writes over JSON): not found, already exists, failed precondition (412) →
/// `InvalidState`, permission denied / unauthenticated (401/403) → `Unauthorized`,
/// resource exhausted (429) → `Throttled`, unavailable / internal (5xx) → `Unavailable`,
/// deadline exceeded (408) → `Timeout`; a 503 with `Retry-After` → `Refused`. Client
/// checksum failures → `ChecksumMismatch`; a connection that could not be made (before the
/// request was sent) → `Refused`; other I/O failures → `Unavailable`; credential failures →
/// `Unauthorized`.
///
/// Whether or not the client's retry loop already retried it (a read stream broken mid-way
/// was not), a temporary failure stays temporary: the executor's retry layer decides (see
/// "Retries" in the crate documentation).
pub(crate) fn map(err: google_cloud_storage::Error, operation: &str, resource: &str) -> Error {
    classify(err, operation, resource)
}

fn classify(err: google_cloud_storage::Error, operation: &str, resource: &str) -> Error {
    let provider = PROVIDER.to_string();
    let op = operation.to_string();
    let res = resource.to_string();
    if let Some(mismatch) = checksum_mismatch(&err) {
        return Error::ChecksumMismatch {
            provider,
            resource: res,
            expected: "the service's checksums".into(),
            actual: mismatch,
        };
    }
    if let Some((code, message)) = err.status().map(|s| (s.code, s.message.clone())) {
        // Over JSON, a status without a gRPC code (fake-gcs-server's 412) is classified by
        // its HTTP status below.
        if code != Code::Unknown || err.http_status_code().is_none() {
            return from_code(code, &message, err, provider, op, res);
        }
    }
    if let Some(code) = err.http_status_code() {
        let retry_after = err
            .http_headers()
            .is_some_and(|h| h.contains_key("retry-after"));
        if code == 503 && retry_after {
            // Turned away before any work, with a time to come back.
            return Error::Refused {
                provider,
                operation: format!("{op} {res}"),
                source: Some(Box::new(err)),
            };
        }
        return from_http(code, err, provider, op, res);
    }
    if err.is_timeout() {
        return Error::Timeout {
            operation: format!("{provider}: {op} {res}"),
            after: std::time::Duration::ZERO,
        };
    }
    if err.is_authentication() {
        return Error::Unauthorized {
            provider,
            message: format!("{op} on {res}: credentials: {err}"),
        };
    }
    // "It always occurs before a request is made" (the client's documentation).
    if err.is_connect() {
        return Error::Refused {
            provider,
            operation: format!("{op} {res}"),
            source: Some(Box::new(err)),
        };
    }
    if err.is_io() || err.is_transport() {
        return Error::Unavailable {
            provider,
            operation: format!("{op} {res}"),
            source: Some(Box::new(err)),
        };
    }
    if err.is_deserialization() {
        return Error::InvalidResponse {
            provider,
            operation: op,
            message: format!("{res}: {err}"),
        };
    }
    Error::Other {
        provider,
        operation: op,
        retry: Retry::Permanent,
        source: Box::new(err),
    }
}

fn checksum_mismatch(err: &google_cloud_storage::Error) -> Option<String> {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(WriteError::ChecksumMismatch { mismatch, .. }) = s.downcast_ref::<WriteError>()
        {
            return Some(format!("{mismatch}"));
        }
        if let Some(ReadError::ChecksumMismatch(mismatch)) = s.downcast_ref::<ReadError>() {
            return Some(format!("{mismatch}"));
        }
        source = s.source();
    }
    None
}

fn from_code(
    code: Code,
    message: &str,
    err: google_cloud_storage::Error,
    provider: String,
    operation: String,
    resource: String,
) -> Error {
    match code {
        Code::NotFound => Error::NotFound { provider, resource },
        Code::AlreadyExists => Error::AlreadyExists { provider, resource },
        Code::FailedPrecondition => Error::InvalidState {
            provider,
            resource,
            state: format!("changed (a precondition failed: {message})"),
            operation,
        },
        Code::PermissionDenied | Code::Unauthenticated => Error::Unauthorized {
            provider,
            message: format!("{operation} on {resource} refused: {message}"),
        },
        Code::ResourceExhausted => Error::Throttled {
            provider,
            operation,
        },
        Code::DeadlineExceeded => Error::Timeout {
            operation: format!("{provider}: {operation} {resource}"),
            after: std::time::Duration::ZERO,
        },
        Code::Unavailable | Code::Internal | Code::Unknown => Error::Unavailable {
            provider,
            operation: format!("{operation} {resource}"),
            source: Some(Box::new(err)),
        },
        Code::Aborted => Error::Other {
            provider,
            operation,
            retry: Retry::Temporary,
            source: Box::new(err),
        },
        Code::InvalidArgument | Code::OutOfRange => Error::InvalidRequest {
            provider,
            operation,
            message: format!("{resource}: {message}"),
        },
        Code::Unimplemented => Error::NotSupported {
            operation,
            provider,
        },
        _ => Error::Other {
            provider,
            operation,
            retry: Retry::Permanent,
            source: Box::new(err),
        },
    }
}

fn from_http(
    code: u16,
    err: google_cloud_storage::Error,
    provider: String,
    operation: String,
    resource: String,
) -> Error {
    match code {
        404 => Error::NotFound { provider, resource },
        409 => Error::AlreadyExists { provider, resource },
        412 => Error::InvalidState {
            provider,
            resource,
            state: "changed (a precondition failed)".into(),
            operation,
        },
        401 | 403 => Error::Unauthorized {
            provider,
            message: format!("{operation} on {resource} refused (HTTP {code})"),
        },
        429 => Error::Throttled {
            provider,
            operation,
        },
        408 => Error::Timeout {
            operation: format!("{provider}: {operation} {resource}"),
            after: std::time::Duration::ZERO,
        },
        400 | 411 | 413 | 416 => Error::InvalidRequest {
            provider,
            operation,
            message: format!("{resource}: HTTP {code}: {err}"),
        },
        500..=599 => Error::Unavailable {
            provider,
            operation: format!("{operation} {resource}"),
            source: Some(Box::new(err)),
        },
        _ => Error::Other {
            provider,
            operation,
            retry: Retry::Permanent,
            source: Box::new(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::error::rpc::Status;

    fn grpc(code: Code) -> google_cloud_storage::Error {
        google_cloud_storage::Error::service(Status::default().set_code(code).set_message("m"))
    }

    fn http(code: u16) -> google_cloud_storage::Error {
        google_cloud_storage::Error::http(code, Default::default(), bytes::Bytes::new())
    }

    #[test]
    fn grpc_codes_map_to_core_classes() {
        let c = |code| map(grpc(code), "head", "object a");
        assert!(c(Code::NotFound).is_not_found());
        assert!(matches!(
            c(Code::AlreadyExists),
            Error::AlreadyExists { .. }
        ));
        assert!(matches!(
            c(Code::FailedPrecondition),
            Error::InvalidState { .. }
        ));
        assert!(matches!(
            c(Code::PermissionDenied),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            c(Code::Unauthenticated),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            c(Code::InvalidArgument),
            Error::InvalidRequest { .. }
        ));
        for code in [
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::Internal,
            Code::DeadlineExceeded,
        ] {
            assert_eq!(c(code).retry(), Retry::Temporary, "{code:?}");
        }
        let raw = map(grpc(Code::ResourceExhausted), "list", "bucket b");
        assert!(matches!(raw, Error::Throttled { .. }));
        let raw = map(grpc(Code::DeadlineExceeded), "list", "bucket b");
        assert!(matches!(raw, Error::Timeout { .. }));
    }

    #[test]
    fn http_statuses_map_to_core_classes() {
        let h = |code| map(http(code), "get", "object a");
        assert!(h(404).is_not_found());
        assert!(matches!(h(409), Error::AlreadyExists { .. }));
        assert!(matches!(h(412), Error::InvalidState { .. }));
        assert!(matches!(h(401), Error::Unauthorized { .. }));
        assert!(matches!(h(403), Error::Unauthorized { .. }));
        assert!(matches!(h(429), Error::Throttled { .. }));
        assert!(matches!(h(408), Error::Timeout { .. }));
        assert!(matches!(h(503), Error::Unavailable { .. }));
        assert!(h(500).is_retryable());
        assert_eq!(map(http(502), "get", "object a").retry(), Retry::Temporary);
    }

    #[test]
    fn io_failures_are_retryable() {
        let err = map(
            google_cloud_storage::Error::io("connection reset"),
            "get",
            "object a",
        );
        assert!(err.is_retryable(), "{err:?}");
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert_eq!(err.effect(), dr_core::Effect::Unknown);
    }

    #[test]
    fn connect_failures_were_refused_before_sending() {
        let err = map(
            google_cloud_storage::Error::connect("connection refused"),
            "get",
            "object a",
        );
        assert!(matches!(err, Error::Refused { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(err.effect(), dr_core::Effect::NotApplied);
    }

    #[test]
    fn a_503_with_retry_after_was_refused() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", http::HeaderValue::from_static("1"));
        let err = google_cloud_storage::Error::http(503, headers, bytes::Bytes::new());
        let err = map(err, "get", "object a");
        assert!(matches!(err, Error::Refused { .. }), "{err:?}");
        assert!(matches!(
            map(http(503), "get", "object a"),
            Error::Unavailable { .. }
        ));
    }
}
