//! Every error the API answers with, and the only table from error to HTTP status.
//!
//! Bodies are `{"error": "<stable code>", "message": "<one sentence>"}`. A 5xx body says
//! what to do in general terms; the detail, which may name backend paths, goes to the log.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use credbridge_adapters::{Error as BackendError, ErrorKind, InvalidName};
use serde::Serialize;

use crate::credential::ContractViolation;
use crate::references::{ReferenceError, Unresolved};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the credential {0}")]
    InvalidId(InvalidName),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("no route matches this path")]
    UnknownRoute,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{0}")]
    Contract(#[from] ContractViolation),
    #[error("too many requests; retry in {} s", retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
    #[error("the request did not finish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    /// The backend's check failed, for the connection test: whatever the backend said,
    /// this is about the backend, never a missing credential.
    #[error("backend check: {0}")]
    BackendCheck(Arc<BackendError>),
    /// A stored document that breaks the contract: Skyvern's client would reject it.
    #[error("the stored credential is malformed: {0}")]
    MalformedStored(ContractViolation),
    /// A reference in a stored credential did not resolve; nothing of it is returned.
    #[error("{0}")]
    ReferenceUnresolved(Unresolved),
}

impl From<ReferenceError> for ApiError {
    fn from(error: ReferenceError) -> Self {
        match error {
            ReferenceError::Invalid(violation) => ApiError::Contract(violation),
            ReferenceError::Unresolved(unresolved) => ApiError::ReferenceUnresolved(unresolved),
            ReferenceError::Backend(error) => ApiError::Backend(error),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// Status, stable code, and the sentence the caller sees.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        let shown = || self.to_string();
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "invalid_json", shown()),
            ApiError::InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid_id", shown()),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", shown()),
            ApiError::UnknownRoute => (StatusCode::NOT_FOUND, "unknown_route", shown()),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                shown(),
            ),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", shown())
            }
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                shown(),
            ),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", shown()),
            ApiError::Contract(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_credential",
                shown(),
            ),
            ApiError::Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The credential backend did not answer in time; the request may be retried."
                    .to_owned(),
            ),
            ApiError::MalformedStored(_) => (
                StatusCode::BAD_GATEWAY,
                "backend_malformed",
                "The stored credential does not match the contract; see credbridge's log."
                    .to_owned(),
            ),
            // The message names the field and the reference (paths and keys, not secret) and
            // what is wrong; the backend's own error stays in the log.
            ApiError::ReferenceUnresolved(unresolved) => (
                StatusCode::BAD_GATEWAY,
                "reference_unresolved",
                format!("{}.", unresolved.message),
            ),
            ApiError::Backend(error) => backend_parts(error.kind()),
            ApiError::BackendCheck(error) => {
                let (status, code, _) = match error.kind() {
                    ErrorKind::NotFound => backend_parts(ErrorKind::Unexpected),
                    kind => backend_parts(kind),
                };
                // The backend's own sentence (never a secret, a path or a raw answer)
                // tells the operator pressing Skyvern's button what to fix.
                let message = format!("The credential backend is not ready: {}.", error.message());
                (status, code, message)
            }
        }
    }
}

/// Whole seconds to wait, at least one: `Retry-After` takes integers.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn backend_parts(kind: ErrorKind) -> (StatusCode, &'static str, String) {
    let (status, code, message) = match kind {
        ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "not_found",
            "no credential with this id",
        ),
        ErrorKind::PermissionDenied => (
            StatusCode::BAD_GATEWAY,
            "backend_permission_denied",
            "Permission was denied on the credential backend; check the policy of the \
             identity credbridge uses.",
        ),
        ErrorKind::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_unavailable",
            "The credential backend is unavailable; the request may be retried.",
        ),
        // 507 Insufficient Storage: the server cannot store what the request asks it to.
        // Not 503: retrying does not help until something changes, and not the 502 of a
        // failure: the backend works, and the message says what to do.
        ErrorKind::Full => (
            StatusCode::INSUFFICIENT_STORAGE,
            "backend_full",
            "The credential backend is full; delete credentials that are no longer used, \
             or raise its limit (backend.max_credentials on the memory backend).",
        ),
        ErrorKind::AlreadyExists | ErrorKind::InvalidConfig | ErrorKind::Unexpected | _ => (
            StatusCode::BAD_GATEWAY,
            "backend_error",
            "The credential backend failed; see credbridge's log for details.",
        ),
    };
    (status, code, message.to_owned())
}

/// What the request's log line says of an error (see [`observe`](super::observe)): its
/// stable code, and the error itself, whose detail the body leaves out (it may name backend
/// paths, never a secret). Formatted only when a line that shows it is written.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub error: Arc<ApiError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                message: &message,
            }),
        )
            .into_response();
        match self {
            ApiError::RateLimited(wait) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(wait)),
                );
            }
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"credbridge\""),
                );
            }
            ApiError::Timeout(_) | ApiError::Backend(_) | ApiError::BackendCheck(_)
                if status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response.extensions_mut().insert(Failure {
            code,
            error: Arc::new(self),
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_kinds_map_to_the_contract_statuses() {
        let cases = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 502),
            (ErrorKind::PermissionDenied, 502),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::InvalidConfig, 502),
            (ErrorKind::Full, 507),
            (ErrorKind::Unexpected, 502),
        ];
        for (kind, status) in cases {
            let error = ApiError::Backend(BackendError::new(kind, "detail /secret/path"));
            let (actual, _, message) = error.parts();
            assert_eq!(actual.as_u16(), status, "{kind}");
            assert!(!message.contains("/secret/path"), "{message}");
        }
    }

    #[test]
    fn a_failed_backend_check_is_never_404() {
        for (kind, status) in [
            (ErrorKind::NotFound, 502),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::PermissionDenied, 502),
            (ErrorKind::Unexpected, 502),
        ] {
            let error = BackendError::new(kind, "Vault is sealed").with_context("path", "/x/y");
            let (actual, code, message) = ApiError::BackendCheck(error.into()).parts();
            assert_eq!(actual.as_u16(), status, "{kind}");
            assert_ne!(code, "not_found");
            assert!(message.contains("Vault is sealed"), "{message}");
            assert!(!message.contains("/x/y"), "{message}");
        }
    }

    #[test]
    fn an_unresolved_reference_is_502_naming_it_without_the_backend_detail() {
        let error = ApiError::ReferenceUnresolved(Unresolved {
            message: "field `password`: ref+vault://secret/x#pw did not resolve: no such entry"
                .to_owned(),
            source: Some(BackendError::new(ErrorKind::NotFound, "404").with_context("status", 404)),
        });
        let (status, code, message) = error.parts();
        assert_eq!(status.as_u16(), 502);
        assert_eq!(code, "reference_unresolved");
        assert!(message.contains("ref+vault://secret/x#pw"), "{message}");
        assert!(!message.contains("status"), "{message}");
    }

    #[test]
    fn permission_denied_says_so() {
        let (_, code, message) =
            ApiError::Backend(BackendError::new(ErrorKind::PermissionDenied, "403")).parts();
        assert_eq!(code, "backend_permission_denied");
        assert!(message.contains("Permission was denied"));
    }
}
