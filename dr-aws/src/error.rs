//! The one place where AWS SDK errors become [`dr_core::Error`]s.
//!
//! Classification, first match wins:
//!
//! | AWS says | `dr_core::Error` | retry |
//! |---|---|---|
//! | credentials could not be loaded, `AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`, `ExpiredToken`, 401/403 | `Unauthorized` | permanent |
//! | `Throttling`, `ThrottlingException`, `RequestLimitExceeded`, `SlowDown`, `PriorRequestNotComplete`, 429 | `Throttled` | temporary |
//! | `…NotFound…` (`CacheClusterNotFound`, `SnapshotNotFoundFault`), `NoSuch…`, 404 | `NotFound` | permanent |
//! | `…AlreadyExists…` (`CacheClusterAlreadyExists`) | `AlreadyExists` | permanent |
//! | `InvalidDBInstanceState`, `InvalidDBSnapshotState`, `IncorrectState`, `InvalidSnapshotState`, `InvalidCacheClusterState`, `InvalidReplicationGroupState` | `InvalidState` | permanent |
//! | 5xx, `InternalError`, `ServiceUnavailable` | `Unavailable` | temporary |
//! | other 4xx (`InvalidParameterValue`, `InvalidChangeBatch`, …) | `InvalidRequest` | permanent |
//! | the SDK's own timeout | `Timeout` | temporary |
//! | connection refused, a name that does not resolve, a 503 with `Retry-After` | `Refused` | temporary, certainly not applied |
//! | connection reset, unreadable response | `Unavailable` | temporary |
//!
//! The SDK has already retried temporary errors (see the crate documentation) before they
//! arrive here.

use std::error::Error as StdError;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use dr_core::Error;

/// What an error is about: the provider, the operation and the resource, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) provider: &'a str,
    pub(crate) operation: &'a str,
    pub(crate) resource: &'a str,
    /// The operation timeout configured on the client, reported by `Timeout`.
    pub(crate) timeout: Option<Duration>,
}

/// The class of a service error, decided from its code and HTTP status alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Unauthorized,
    Throttled,
    NotFound,
    AlreadyExists,
    InvalidState,
    Unavailable,
    InvalidRequest,
}

const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];

const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "SnapshotCreationPerVolumeRateExceeded",
];

const INVALID_STATE_CODES: &[&str] = &[
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSnapshotState",
    "InvalidDBSnapshotStateFault",
    "InvalidDBClusterStateFault",
    "InvalidObjectState",
    "IncorrectState",
    "InvalidSnapshotState",
    "InvalidSnapshotStateFault",
    "InvalidCacheClusterState",
    "InvalidCacheClusterStateFault",
    "InvalidReplicationGroupState",
    "InvalidReplicationGroupStateFault",
];

const UNAVAILABLE_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Classifies a service error by its AWS error code and HTTP status.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>) -> Class {
    let code = code.unwrap_or("");
    let has = |codes: &[&str]| codes.contains(&code);
    if has(AUTH_CODES) || matches!(status, Some(401 | 403)) {
        Class::Unauthorized
    } else if has(THROTTLE_CODES) || status == Some(429) {
        Class::Throttled
    } else if code.contains("NotFound") || code.starts_with("NoSuch") || status == Some(404) {
        Class::NotFound
    } else if code.contains("AlreadyExists") || code == "BucketAlreadyOwnedByYou" {
        Class::AlreadyExists
    } else if has(INVALID_STATE_CODES) {
        Class::InvalidState
    } else if has(UNAVAILABLE_CODES) || status.is_some_and(|s| s >= 500) {
        Class::Unavailable
    } else {
        Class::InvalidRequest
    }
}

/// Whether a credentials error is somewhere in `err`'s source chain.
fn credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        cur = e.source();
    }
    None
}

/// A description of a credentials error that names what is missing, never a secret.
pub(crate) fn describe_credentials_error(err: &CredentialsError) -> String {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            "no AWS credentials found (checked AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
             profile files, web identity, container and instance metadata)"
                .to_string()
        }
        other => format!("AWS credentials could not be loaded: {other}"),
    }
}

/// Maps an SDK error to a [`dr_core::Error`].
pub(crate) fn map_sdk<E>(ctx: Ctx<'_>, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let provider = ctx.provider.to_string();
    let operation = ctx.operation.to_string();
    if let Some(c) = credentials_error(&err) {
        return Error::Unauthorized {
            provider,
            message: describe_credentials_error(c),
        };
    }
    match err {
        SdkError::ServiceError(ref se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_string);
            let message = se.err().message().unwrap_or("").to_string();
            let class = classify(code.as_deref(), Some(status));
            // A 503 that says when to come back was turned away before any work.
            if class == Class::Unavailable
                && status == 503
                && se.raw().headers().get("retry-after").is_some()
            {
                return Error::Refused {
                    provider,
                    operation: format!("{operation} {}", ctx.resource),
                    source: Some(Box::new(err)),
                };
            }
            map_class(ctx, class, code, message)
        }
        SdkError::TimeoutError(_) => Error::Timeout {
            operation: format!("{} {} {}", ctx.provider, ctx.operation, ctx.resource),
            after: ctx.timeout.unwrap_or_default(),
        },
        SdkError::DispatchFailure(df) if df.is_timeout() => Error::Timeout {
            operation: format!("{} {} {}", ctx.provider, ctx.operation, ctx.resource),
            after: ctx.timeout.unwrap_or_default(),
        },
        SdkError::DispatchFailure(_) if refused_before_sending(&err) => Error::Refused {
            provider,
            operation: format!("{operation} {}", ctx.resource),
            source: Some(Box::new(err)),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Unavailable {
            provider,
            operation,
            source: Some(Box::new(err)),
        },
        SdkError::ConstructionFailure(_) => Error::InvalidRequest {
            provider,
            operation,
            message: display_chain(&err),
        },
        _ => Error::Other {
            provider,
            operation,
            retry: dr_core::Retry::Permanent,
            source: Box::new(err),
        },
    }
}

/// The error code and HTTP status of a service error (`None` for transport and other
/// failures), for the few codes a provider maps its own way before [`map_sdk`].
pub(crate) fn service_code<E>(err: &SdkError<E, HttpResponse>) -> Option<(Option<&str>, u16)>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => Some((se.err().code(), se.raw().status().as_u16())),
        _ => None,
    }
}

/// Whether `err`'s source chain says the request was refused before it was sent: a refused
/// connection or a name that did not resolve.
fn refused_before_sending(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        let text = e.to_string();
        if text.starts_with("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Builds the error for a classified service error.
pub(crate) fn map_class(
    ctx: Ctx<'_>,
    class: Class,
    code: Option<String>,
    message: String,
) -> Error {
    let provider = ctx.provider.to_string();
    let operation = ctx.operation.to_string();
    let resource = ctx.resource.to_string();
    let detail = match (&code, message.is_empty()) {
        (Some(c), false) => format!("{c}: {message}"),
        (Some(c), true) => c.clone(),
        (None, false) => message,
        (None, true) => "no error code".to_string(),
    };
    match class {
        Class::Unauthorized => Error::Unauthorized {
            provider,
            message: format!("{operation} {resource} refused ({detail})"),
        },
        Class::Throttled => Error::Throttled {
            provider,
            operation: format!("{operation} {resource}"),
        },
        Class::NotFound => Error::NotFound { provider, resource },
        Class::AlreadyExists => Error::AlreadyExists { provider, resource },
        Class::InvalidState => Error::InvalidState {
            provider,
            resource,
            state: format!("in a state that refuses it ({detail})"),
            operation,
        },
        Class::Unavailable => Error::Unavailable {
            provider,
            operation: format!("{operation} {resource}"),
            source: Some(detail.into()),
        },
        Class::InvalidRequest => Error::InvalidRequest {
            provider,
            operation,
            message: format!("{resource}: {detail}"),
        },
    }
}

/// An error's message followed by those of its sources.
fn display_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// An `InvalidResponse` for a reply that lacks something it must have.
pub(crate) fn missing(provider: &str, operation: &str, what: &str) -> Error {
    Error::InvalidResponse {
        provider: provider.to_string(),
        operation: operation.to_string(),
        message: format!("the response has no {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;
    use dr_core::Retry;

    type DescribeErr = aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;

    fn ctx() -> Ctx<'static> {
        Ctx {
            provider: "rds",
            operation: "describe",
            resource: "database us-east-1/orders",
            timeout: Some(Duration::from_secs(30)),
        }
    }

    fn service(code: Option<&str>, status: u16) -> Error {
        let mut meta = ErrorMetadata::builder().message("details");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let status = StatusCode::try_from(status).expect("valid status");
        let raw = Response::new(status, SdkBody::empty());
        map_sdk(
            ctx(),
            SdkError::service_error(DescribeErr::generic(meta.build()), raw),
        )
    }

    #[test]
    fn throttling_is_temporary() {
        for code in ["Throttling", "SlowDown", "PriorRequestNotComplete"] {
            let err = service(Some(code), 400);
            assert!(matches!(err, Error::Throttled { .. }), "{code}: {err}");
            assert_eq!(err.retry(), Retry::Temporary);
        }
        assert!(matches!(service(None, 429), Error::Throttled { .. }));
    }

    #[test]
    fn not_found_codes_and_404() {
        for code in [
            "DBInstanceNotFound",
            "DBSnapshotNotFound",
            "NoSuchKey",
            "NoSuchHostedZone",
        ] {
            assert!(service(Some(code), 400).is_not_found(), "{code}");
        }
        let err = service(None, 404);
        assert!(err.is_not_found());
        assert_eq!(err.retry(), Retry::Permanent);
        assert_eq!(err.to_string(), "rds: database us-east-1/orders not found");
    }

    #[test]
    fn already_exists_and_invalid_state_are_permanent() {
        for code in ["DBInstanceAlreadyExists", "DBSnapshotAlreadyExists"] {
            let err = service(Some(code), 400);
            assert!(matches!(err, Error::AlreadyExists { .. }), "{code}");
            assert_eq!(err.retry(), Retry::Permanent);
        }
        let err = service(Some("InvalidDBInstanceState"), 400);
        assert!(matches!(err, Error::InvalidState { .. }), "{err}");
        assert_eq!(err.retry(), Retry::Permanent);
    }

    #[test]
    fn auth_errors_are_unauthorized() {
        for (code, status) in [
            (Some("InvalidClientTokenId"), 403),
            (Some("SignatureDoesNotMatch"), 403),
            (None, 401),
        ] {
            let err = service(code, status);
            assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
        }
    }

    #[test]
    fn server_errors_are_unavailable() {
        for (code, status) in [(Some("InternalFailure"), 500), (None, 503)] {
            let err = service(code, status);
            assert!(matches!(err, Error::Unavailable { .. }), "{err}");
            assert!(err.is_retryable());
        }
    }

    #[test]
    fn a_503_with_retry_after_was_refused_before_processing() {
        let mut raw = Response::new(StatusCode::try_from(503).expect("status"), SdkBody::empty());
        raw.headers_mut().insert("retry-after", "2");
        let meta = ErrorMetadata::builder().code("ServiceUnavailable").build();
        let err = map_sdk(
            ctx(),
            SdkError::service_error(DescribeErr::generic(meta), raw),
        );
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        assert_eq!(err.effect(), dr_core::Effect::NotApplied);
        // Throttling stays throttling, Retry-After or not.
        assert!(matches!(
            service(Some("SlowDown"), 503),
            Error::Throttled { .. }
        ));
    }

    #[test]
    fn other_client_errors_are_invalid_requests() {
        let err = service(Some("InvalidParameterCombination"), 400);
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
        assert!(err.to_string().contains("InvalidParameterCombination"));
    }

    #[test]
    fn transport_failures() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = map_sdk::<DescribeErr>(
            ctx(),
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused))),
        );
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.effect(), dr_core::Effect::NotApplied);

        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err = map_sdk::<DescribeErr>(
            ctx(),
            SdkError::dispatch_failure(ConnectorError::io(Box::new(reset))),
        );
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.effect(), dr_core::Effect::Unknown);

        let err = map_sdk::<DescribeErr>(ctx(), SdkError::timeout_error("slow"));
        assert!(matches!(err, Error::Timeout { after, .. } if after == Duration::from_secs(30)));
        assert!(err.is_retryable());
    }

    #[test]
    fn missing_credentials_are_unauthorized_and_name_what_is_missing() {
        let cred = CredentialsError::not_loaded("no providers in chain provided credentials");
        let err = map_sdk::<DescribeErr>(
            ctx(),
            SdkError::dispatch_failure(ConnectorError::other(cred.into(), None)),
        );
        let Error::Unauthorized { message, .. } = &err else {
            panic!("expected Unauthorized, got {err}");
        };
        assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
        assert_eq!(err.retry(), Retry::Permanent);
    }
}
