//! Maps Azure SDK errors to [`dr_core::Error`], once, at the crate boundary.

use azure_core::error::ErrorKind;
use dr_core::{Error, Retry};

use crate::PROVIDER;

/// Maps an error returned by an `azure_storage_blob` call on `resource` (`object a/b`,
/// `container backups`) during `operation` to the core error classes.
///
/// * 404 → `NotFound`; 409 `…AlreadyExists` → `AlreadyExists`, other 409 conflicts (leases,
///   pending copies) → `InvalidState`; 412 → `InvalidState` (a precondition failed: the
///   object changed underneath); 400 → `InvalidRequest`; 401/403 → `Unauthorized`.
/// * 429 and 503 `ServerBusy` → `Throttled`; another 503 with `Retry-After` → `Refused`;
///   other 5xx → `Unavailable`; 408, 500 `OperationTimedOut` → `Timeout`; a connection that
///   could not be established → `Refused`; other I/O errors → `Unavailable`.
/// * A credential that cannot produce a token → `Unauthorized`.
///
/// Whether or not the SDK's pipeline already retried it (a body stream broken mid-way was
/// not), a temporary failure stays temporary: the executor's retry layer decides (see
/// "Retries" in the crate documentation).
pub(crate) fn map(err: azure_core::Error, operation: &str, resource: &str) -> Error {
    classify(err, operation, resource)
}

/// Whether the error's response carries a `Retry-After` header.
fn retry_after(err: &azure_core::Error) -> bool {
    match err.kind() {
        ErrorKind::HttpResponse {
            raw_response: Some(raw),
            ..
        } => raw
            .headers()
            .get_optional_str(&"retry-after".into())
            .is_some(),
        _ => false,
    }
}

fn classify(err: azure_core::Error, operation: &str, resource: &str) -> Error {
    let provider = PROVIDER.to_string();
    let operation = operation.to_string();
    match err.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = u16::from(*status);
            let error_code = error_code.clone().unwrap_or_default();
            if code == 503 && error_code != "ServerBusy" && retry_after(&err) {
                // Turned away before any work, with a time to come back.
                return Error::Refused {
                    provider,
                    operation: format!("{operation} {resource}"),
                    source: Some(Box::new(err)),
                };
            }
            from_status(code, &error_code, err, provider, operation, resource)
        }
        ErrorKind::Credential => Error::Unauthorized {
            provider,
            message: format!("{operation} on {resource}: cannot get a token: {err}"),
        },
        // "A connection to the server could not be established. The request was never sent."
        ErrorKind::Connection => Error::Refused {
            provider,
            operation: format!("{operation} {resource}"),
            source: Some(Box::new(err)),
        },
        ErrorKind::Io => Error::Unavailable {
            provider,
            operation: format!("{operation} {resource}"),
            source: Some(Box::new(err)),
        },
        ErrorKind::DataConversion => Error::InvalidResponse {
            provider,
            operation,
            message: format!("{resource}: {err}"),
        },
        _ => Error::Other {
            provider,
            operation,
            retry: Retry::Permanent,
            source: Box::new(err),
        },
    }
}

fn from_status(
    code: u16,
    error_code: &str,
    err: azure_core::Error,
    provider: String,
    operation: String,
    resource: &str,
) -> Error {
    let resource = resource.to_string();
    match code {
        404 => Error::NotFound { provider, resource },
        409 if error_code.ends_with("AlreadyExists") => Error::AlreadyExists { provider, resource },
        // Other conflicts: a lease, a pending copy, a container being deleted…
        409 => Error::InvalidState {
            provider,
            resource,
            state: format!("in conflict ({error_code})"),
            operation,
        },
        412 => Error::InvalidState {
            provider,
            resource,
            state: format!("changed ({error_code}: a precondition failed)"),
            operation,
        },
        400 | 411 | 413 | 416 => Error::InvalidRequest {
            provider,
            operation,
            message: format!("{resource}: {error_code} (HTTP {code})"),
        },
        401 | 403 => Error::Unauthorized {
            provider,
            message: format!("{operation} on {resource} refused: {error_code} (HTTP {code})"),
        },
        429 => Error::Throttled {
            provider,
            operation,
        },
        503 if error_code == "ServerBusy" => Error::Throttled {
            provider,
            operation,
        },
        408 => Error::Timeout {
            operation: format!("{provider}: {operation} {resource}"),
            after: std::time::Duration::ZERO,
        },
        500 if error_code == "OperationTimedOut" => Error::Timeout {
            operation: format!("{provider}: {operation} {resource}"),
            after: std::time::Duration::ZERO,
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
    use azure_core::http::StatusCode;

    fn http(status: StatusCode, code: &str) -> azure_core::Error {
        ErrorKind::HttpResponse {
            status,
            error_code: Some(code.to_string()),
            raw_response: None,
        }
        .into_error()
    }

    fn class(status: StatusCode, code: &str) -> Error {
        map(http(status, code), "get", "object a")
    }

    #[test]
    fn statuses_map_to_core_classes() {
        assert!(class(StatusCode::NotFound, "BlobNotFound").is_not_found());
        assert!(matches!(
            class(StatusCode::Conflict, "BlobAlreadyExists"),
            Error::AlreadyExists { .. }
        ));
        assert!(matches!(
            class(StatusCode::Conflict, "LeaseIdMissing"),
            Error::InvalidState { .. }
        ));
        assert!(matches!(
            class(StatusCode::PreconditionFailed, "ConditionNotMet"),
            Error::InvalidState { .. }
        ));
        assert!(matches!(
            class(StatusCode::Forbidden, "AuthenticationFailed"),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            class(StatusCode::Unauthorized, "NoAuthenticationInformation"),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            class(StatusCode::BadRequest, "InvalidBlockList"),
            Error::InvalidRequest { .. }
        ));
    }

    #[test]
    fn temporary_errors_stay_temporary_after_sdk_retries() {
        for (status, code) in [
            (StatusCode::TooManyRequests, ""),
            (StatusCode::ServiceUnavailable, "ServerBusy"),
            (StatusCode::InternalServerError, "InternalError"),
            (StatusCode::InternalServerError, "OperationTimedOut"),
            (StatusCode::BadGateway, ""),
            (StatusCode::RequestTimeout, ""),
        ] {
            let err = class(status, code);
            assert_eq!(err.retry(), Retry::Temporary, "{status:?} {code}: {err}");
        }
        let raw = map(http(StatusCode::TooManyRequests, ""), "get", "object a");
        assert!(matches!(raw, Error::Throttled { .. }));
        let busy = map(
            http(StatusCode::ServiceUnavailable, "ServerBusy"),
            "put",
            "x",
        );
        assert!(matches!(busy, Error::Throttled { .. }));
        let timeout = map(http(StatusCode::RequestTimeout, ""), "put", "x");
        assert!(matches!(timeout, Error::Timeout { .. }));
        let io = map(ErrorKind::Io.into_error(), "get", "object a");
        assert!(matches!(io, Error::Unavailable { .. }), "{io:?}");
        assert!(io.is_retryable());
        assert_eq!(io.effect(), dr_core::Effect::Unknown);
        let refused = map(ErrorKind::Connection.into_error(), "get", "object a");
        assert!(matches!(refused, Error::Refused { .. }), "{refused:?}");
        assert!(refused.is_retryable());
        assert_eq!(refused.effect(), dr_core::Effect::NotApplied);
    }

    #[test]
    fn credential_failures_are_unauthorized() {
        let err = map(ErrorKind::Credential.into_error(), "put", "object a");
        assert!(matches!(err, Error::Unauthorized { .. }));
        assert_eq!(err.retry(), Retry::Permanent);
    }
}
