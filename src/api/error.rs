//! Every error the API answers with, and the only table from error to HTTP status.
//!
//! Bodies are `{"error": "<stable code>", "message": "<one sentence>"}`. A 5xx body says
//! what to do in general terms; the detail, which may name backend paths, goes to the log.
//! The OpenAPI document's error responses, and the README's table of them, come from
//! [`ErrorCode`].

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use credbridge_adapters::{Error as BackendError, ErrorKind, InvalidName};
use serde::Serialize;

use super::readiness::TokenStatus;
use crate::credential::ContractViolation;
use crate::references::{ReferenceError, Unresolved};

/// Every stable code an error body carries: its status, and when it is answered.
/// `ErrorCode::VARIANTS` lists them all, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::VariantArray)]
pub enum ErrorCode {
    InvalidJson,
    InvalidId,
    Unauthorized,
    NotFound,
    UnknownRoute,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidCredential,
    RateLimited,
    BackendPermissionDenied,
    BackendError,
    BackendMalformed,
    ReferenceUnresolved,
    BackendUnavailable,
    Timeout,
    NotReady,
    BackendFull,
}

impl ErrorCode {
    /// The table: status, code, and when it is answered (for the API's documentation).
    const fn row(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ErrorCode::InvalidJson => (
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body is not JSON",
            ),
            ErrorCode::InvalidId => (StatusCode::BAD_REQUEST, "invalid_id", "the id is malformed"),
            ErrorCode::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no token, a malformed Authorization header, or an unknown or expired token",
            ),
            ErrorCode::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no credential with this id in the token's scope",
            ),
            ErrorCode::UnknownRoute => (
                StatusCode::NOT_FOUND,
                "unknown_route",
                "no route matches the path",
            ),
            ErrorCode::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the path does not take this method (a credential path refuses HEAD)",
            ),
            ErrorCode::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is over the size limit",
            ),
            ErrorCode::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the Content-Type is not JSON",
            ),
            ErrorCode::InvalidCredential => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_credential",
                "the JSON does not match the contract, or a field's reference is malformed, not \
                 allowed for the token's scope, or does not resolve; the message names the field",
            ),
            ErrorCode::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "a rate limit was exceeded; see Retry-After",
            ),
            ErrorCode::BackendPermissionDenied => (
                StatusCode::BAD_GATEWAY,
                "backend_permission_denied",
                "the backend denied credbridge permission; check the policy of its identity",
            ),
            ErrorCode::BackendError => (
                StatusCode::BAD_GATEWAY,
                "backend_error",
                "the backend failed",
            ),
            ErrorCode::BackendMalformed => (
                StatusCode::BAD_GATEWAY,
                "backend_malformed",
                "the stored credential does not match the contract",
            ),
            ErrorCode::ReferenceUnresolved => (
                StatusCode::BAD_GATEWAY,
                "reference_unresolved",
                "a field's reference did not resolve; the message names the field and the \
                 reference, and nothing of the credential is returned",
            ),
            // 503s carry `Retry-After: 1`, but for a failed readiness check.
            ErrorCode::BackendUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                "the backend is unreachable, sealed or throttling; the request may be retried",
            ),
            ErrorCode::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request did not finish within its time limit (a slow backend); it may be \
                 retried",
            ),
            ErrorCode::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the backend's check fails; the message says why",
            ),
            // 507 Insufficient Storage: the server cannot store what the request asks it to.
            // Not 503: retrying does not help until something changes, and not the 502 of a
            // failure: the backend works, and the message says what to do.
            ErrorCode::BackendFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "backend_full",
                "the backend holds as many credentials as it may; delete some or raise its limit",
            ),
        }
    }

    pub const fn status(self) -> StatusCode {
        self.row().0
    }

    pub const fn as_str(self) -> &'static str {
        self.row().1
    }

    /// When the code is answered, in a few words.
    pub const fn meaning(self) -> &'static str {
        self.row().2
    }

    /// The code a backend's error answers with.
    fn of_backend(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::PermissionDenied => ErrorCode::BackendPermissionDenied,
            ErrorKind::Unavailable => ErrorCode::BackendUnavailable,
            ErrorKind::Full => ErrorCode::BackendFull,
            ErrorKind::AlreadyExists | ErrorKind::InvalidConfig | ErrorKind::Unexpected | _ => {
                ErrorCode::BackendError
            }
        }
    }

    /// The fixed sentence a body of this code carries instead of the error's own text: a
    /// backend's detail may name paths, and says nothing Skyvern's user can act on.
    fn generic_message(self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::NotFound => "no credential with this id",
            ErrorCode::BackendPermissionDenied => {
                "Permission was denied on the credential backend; check the policy of the \
                 identity credbridge uses."
            }
            ErrorCode::BackendError => {
                "The credential backend failed; see credbridge's log for details."
            }
            ErrorCode::BackendMalformed => {
                "The stored credential does not match the contract; see credbridge's log."
            }
            ErrorCode::BackendUnavailable => {
                "The credential backend is unavailable; the request may be retried."
            }
            ErrorCode::Timeout => {
                "The credential backend did not answer in time; the request may be retried."
            }
            ErrorCode::BackendFull => {
                "The credential backend is full; delete credentials that are no longer used, \
                 or raise its limit (backend.max_credentials on the memory backend)."
            }
            _ => return None,
        })
    }
}

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
    /// The backend's check failed, for `/readyz`, whose body also says what it says when
    /// ready.
    #[error("readiness check: {}", .0.error)]
    NotReady(Box<NotReady>),
    /// A stored document that breaks the contract: Skyvern's client would reject it.
    #[error("the stored credential is malformed: {0}")]
    MalformedStored(ContractViolation),
    /// A reference in a stored credential did not resolve; nothing of it is returned.
    #[error("{0}")]
    ReferenceUnresolved(Unresolved),
}

/// What `/readyz` says when the backend's check fails.
#[derive(Debug)]
pub struct NotReady {
    pub backend: &'static str,
    pub error: Arc<BackendError>,
    pub tokens: TokenStatus,
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
    error: &'static str,
    message: &'a str,
}

/// `/readyz`'s error body: the usual two fields, then what it reports either way.
#[derive(Serialize)]
struct NotReadyBody<'a> {
    error: &'static str,
    message: &'a str,
    backend: &'static str,
    tokens: &'a TokenStatus,
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::MalformedJson(_) => ErrorCode::InvalidJson,
            ApiError::InvalidId(_) => ErrorCode::InvalidId,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::UnknownRoute => ErrorCode::UnknownRoute,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::Contract(_) => ErrorCode::InvalidCredential,
            ApiError::RateLimited(_) => ErrorCode::RateLimited,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Backend(error) => ErrorCode::of_backend(error.kind()),
            // A backend's 404 during its check means an endpoint or namespace is missing,
            // not a credential.
            ApiError::BackendCheck(error) => match error.kind() {
                ErrorKind::NotFound => ErrorCode::BackendError,
                kind => ErrorCode::of_backend(kind),
            },
            ApiError::NotReady(_) => ErrorCode::NotReady,
            ApiError::MalformedStored(_) => ErrorCode::BackendMalformed,
            ApiError::ReferenceUnresolved(_) => ErrorCode::ReferenceUnresolved,
        }
    }

    /// The sentence the caller sees.
    fn message(&self, code: ErrorCode) -> String {
        match self {
            // The message names the field and the reference (paths and keys, not secret) and
            // what is wrong; the backend's own error stays in the log.
            ApiError::ReferenceUnresolved(unresolved) => format!("{}.", unresolved.message),
            // The backend's own sentence (never a secret, a path or a raw answer) tells the
            // operator pressing Skyvern's button, or reading the probe, what to fix.
            ApiError::BackendCheck(error) => {
                format!("The credential backend is not ready: {}.", error.message())
            }
            ApiError::NotReady(not_ready) => format!(
                "The {} backend is not ready: {}.",
                not_ready.backend,
                not_ready.error.message()
            ),
            _ => code
                .generic_message()
                .map_or_else(|| self.to_string(), str::to_owned),
        }
    }
}

/// Whole seconds to wait, at least one: `Retry-After` takes integers.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// What the request's log line says of an error (see [`observe`](super::observe)): its
/// stable code, and the error itself, whose detail the body leaves out (it may name backend
/// paths, never a secret). Formatted only when a line that shows it is written.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: ErrorCode,
    pub error: Arc<ApiError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        let message = self.message(code);
        let mut response = match &self {
            ApiError::NotReady(not_ready) => (
                status,
                Json(NotReadyBody {
                    error: code.as_str(),
                    message: &message,
                    backend: not_ready.backend,
                    tokens: &not_ready.tokens,
                }),
            )
                .into_response(),
            _ => (
                status,
                Json(ErrorBody {
                    error: code.as_str(),
                    message: &message,
                }),
            )
                .into_response(),
        };
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
    use strum::VariantArray;

    /// Status, code and the sentence the caller sees.
    fn parts(error: &ApiError) -> (StatusCode, &'static str, String) {
        let code = error.code();
        (code.status(), code.as_str(), error.message(code))
    }

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
            let (actual, _, message) = parts(&error);
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
            let (actual, code, message) = parts(&ApiError::BackendCheck(error.into()));
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
        let (status, code, message) = parts(&error);
        assert_eq!(status.as_u16(), 502);
        assert_eq!(code, "reference_unresolved");
        assert!(message.contains("ref+vault://secret/x#pw"), "{message}");
        assert!(!message.contains("status"), "{message}");
    }

    #[test]
    fn permission_denied_says_so() {
        let (_, code, message) = parts(&ApiError::Backend(BackendError::new(
            ErrorKind::PermissionDenied,
            "403",
        )));
        assert_eq!(code, "backend_permission_denied");
        assert!(message.contains("Permission was denied"));
    }

    #[test]
    fn every_code_is_distinct() {
        for (index, code) in ErrorCode::VARIANTS.iter().enumerate() {
            assert!(
                ErrorCode::VARIANTS[..index]
                    .iter()
                    .all(|other| other.as_str() != code.as_str()),
                "{code:?}"
            );
        }
    }

    /// The README's table of errors is for people; this keeps it in step with the one the
    /// server answers from.
    #[test]
    fn the_readme_lists_every_code_under_its_status() {
        let readme = include_str!("../../README.md");
        let mut listed = Vec::new();
        for line in readme.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, status, codes, ..] = cells.as_slice() else {
                continue;
            };
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            for code in codes.split(',').map(|code| code.trim().trim_matches('`')) {
                if !code.starts_with('(') {
                    listed.push((status, code.to_owned()));
                }
            }
        }
        for code in ErrorCode::VARIANTS {
            assert!(
                listed.contains(&(code.status().as_u16(), code.as_str().to_owned())),
                "README's table of errors lacks {} under {}",
                code.as_str(),
                code.status()
            );
        }
        for (status, code) in &listed {
            assert!(
                ErrorCode::VARIANTS
                    .iter()
                    .any(|known| known.as_str() == code),
                "README's table lists {code} ({status}), which the server never answers"
            );
        }
    }
}
