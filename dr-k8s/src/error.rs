//! Kubernetes and kube-rs errors mapped onto [`dr_core::Error`], in one place.
//!
//! | kube error | `dr_core::Error` | retry |
//! |---|---|---|
//! | 404 | `NotFound` (the resource the call named) | permanent |
//! | 409 `AlreadyExists` | `AlreadyExists` | permanent |
//! | 409 `Conflict` (stale `resourceVersion`) | `InvalidState` (`modified concurrently`) | permanent |
//! | 400, 422 | `InvalidRequest` with the server's message | permanent |
//! | 401, 403, auth errors | `Unauthorized` | permanent |
//! | 429 | `Throttled` | temporary |
//! | 5xx, connection errors, timeouts | `Unavailable` | temporary |
//! | an undecodable answer | `InvalidResponse` | permanent |
//!
//! Callers that retry resourceVersion conflicts themselves (the [`Lease`](crate::Lease))
//! recognise them with [`is_conflict`] before mapping.

use dr_core::{Error, Retry};

/// The provider name used in every error and in [`ClusterDeployer::name`](dr_core::provider::ClusterDeployer::name).
pub(crate) const PROVIDER: &str = "kubernetes";

/// Whether `err` is a 409 caused by a stale `resourceVersion` (an optimistic-concurrency
/// conflict), as opposed to `AlreadyExists`.
pub(crate) fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason != "AlreadyExists")
}

/// Whether `err` is a 404.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Whether `err` is a 409 `AlreadyExists`.
pub(crate) fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Maps a kube error from `operation` on `resource` (`deployment shop/api on dr-west`).
pub(crate) fn map(err: kube::Error, operation: &str, resource: &str) -> Error {
    let provider = PROVIDER.to_string();
    match err {
        kube::Error::Api(status) => match status.code {
            404 => Error::NotFound {
                provider,
                resource: resource.to_string(),
            },
            409 if status.reason == "AlreadyExists" => Error::AlreadyExists {
                provider,
                resource: resource.to_string(),
            },
            409 => Error::InvalidState {
                provider,
                resource: resource.to_string(),
                state: "modified concurrently (resourceVersion conflict)".to_string(),
                operation: operation.to_string(),
            },
            400 | 422 => Error::InvalidRequest {
                provider,
                operation: operation.to_string(),
                message: format!("{resource}: {}", status.message),
            },
            401 | 403 => Error::Unauthorized {
                provider,
                message: format!("{operation} on {resource}: {}", status.message),
            },
            429 => Error::Throttled {
                provider,
                operation: operation.to_string(),
            },
            500..=599 => Error::Unavailable {
                provider,
                operation: operation.to_string(),
                source: Some(Box::new(kube::Error::Api(status))),
            },
            _ => Error::Other {
                provider,
                operation: operation.to_string(),
                retry: Retry::Permanent,
                source: Box::new(kube::Error::Api(status)),
            },
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Error::Unavailable {
                provider,
                operation: operation.to_string(),
                source: Some(Box::new(err)),
            }
        }
        kube::Error::Auth(_) => Error::Unauthorized {
            provider,
            message: format!("{operation}: {err}"),
        },
        kube::Error::SerdeError(e) => Error::InvalidResponse {
            provider,
            operation: operation.to_string(),
            message: format!("{resource}: {e}"),
        },
        kube::Error::Discovery(e) => Error::NotFound {
            provider,
            resource: format!("{resource} ({e})"),
        },
        kube::Error::BuildRequest(e) => Error::InvalidRequest {
            provider,
            operation: operation.to_string(),
            message: format!("{resource}: {e}"),
        },
        other => Error::Other {
            provider,
            operation: operation.to_string(),
            retry: Retry::Permanent,
            source: Box::new(other),
        },
    }
}

/// An answer the client could decode but that lacks what the call needs.
pub(crate) fn invalid_response(operation: &str, message: impl Into<String>) -> Error {
    Error::InvalidResponse {
        provider: PROVIDER.to_string(),
        operation: operation.to_string(),
        message: message.into(),
    }
}

/// A request refused before it reached the server (a manifest that does not parse).
pub(crate) fn invalid_request(operation: &str, message: impl Into<String>) -> Error {
    Error::InvalidRequest {
        provider: PROVIDER.to_string(),
        operation: operation.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            code,
            reason: reason.to_string(),
            message: format!("status {code}"),
            ..Status::default()
        }))
    }

    #[test]
    fn classification() {
        let m = |code, reason| map(api(code, reason), "scale", "deployment shop/api");
        assert!(m(404, "NotFound").is_not_found());
        assert!(matches!(
            m(409, "AlreadyExists"),
            Error::AlreadyExists { .. }
        ));
        let conflict = m(409, "Conflict");
        assert!(matches!(conflict, Error::InvalidState { .. }));
        assert_eq!(conflict.retry(), Retry::Permanent);
        assert!(matches!(m(422, "Invalid"), Error::InvalidRequest { .. }));
        assert!(matches!(m(400, "BadRequest"), Error::InvalidRequest { .. }));
        assert!(matches!(m(401, "Unauthorized"), Error::Unauthorized { .. }));
        assert!(matches!(m(403, "Forbidden"), Error::Unauthorized { .. }));
        assert!(matches!(m(429, "TooManyRequests"), Error::Throttled { .. }));
        for code in [500, 502, 503, 504] {
            assert_eq!(m(code, "InternalError").retry(), Retry::Temporary, "{code}");
        }
        assert_eq!(m(410, "Gone").retry(), Retry::Permanent);
        assert!(is_conflict(&api(409, "Conflict")));
        assert!(!is_conflict(&api(409, "AlreadyExists")));
        let svc = kube::Error::Service("connection refused".into());
        assert_eq!(map(svc, "get", "x").retry(), Retry::Temporary);
    }
}
