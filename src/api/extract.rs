//! Extractors that turn a request into checked values or an [`ApiError`].
//!
//! Handlers take them in this order — caller, id, body — so a request without a valid
//! token is refused before its path or body is looked at.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use credbridge_adapters::{CredentialId, Scope};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::audit::RequestRecord;
use crate::auth::{AuthFailure, Identity};
use crate::limits::Limit;

/// An authenticated caller: the scope its token grants, and the request's record, where
/// handlers note what the audit line should say.
pub struct Caller {
    pub scope: Scope,
    pub record: RequestRecord,
}

/// The token is checked first, so that a valid token is never refused for what other
/// requests did: it is limited by its own budget only. A request without a valid token is
/// counted against its client address, and an address over its failure budget gets 429.
impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let record = parts
            .extensions
            .get::<RequestRecord>()
            .cloned()
            .unwrap_or_default();
        let limits = state.limits.as_deref();
        let refuse = |limit: Limit, wait| {
            if let Some(metrics) = &state.metrics {
                metrics.rate_limited(limit.as_str());
            }
            ApiError::RateLimited(wait)
        };
        match authenticate(parts, &state) {
            Ok(identity) => {
                record.set_identity(&identity);
                if let Some(limits) = limits {
                    limits
                        .check_token(identity.fingerprint)
                        .map_err(|wait| refuse(Limit::Token, wait))?;
                }
                Ok(Caller {
                    scope: identity.scope,
                    record,
                })
            }
            Err(failure) => {
                if let Some(metrics) = &state.metrics {
                    metrics.auth_failed(failure.as_str());
                }
                if let (Some(limits), Some(client)) = (limits, record.client()) {
                    limits
                        .record_failure(client)
                        .map_err(|wait| refuse(Limit::Address, wait))?;
                }
                Err(ApiError::Unauthorized)
            }
        }
    }
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Identity, AuthFailure> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthFailure::Missing)?;
    let token = value
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(AuthFailure::Malformed)?;
    state.tokens.current().authenticate(token)
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
pub(super) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `{id}` of a credential path, checked before any backend sees it.
pub struct PathId(pub CredentialId);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::InvalidId(credbridge_adapters::InvalidName {
                    what: "id",
                    reason: "is not valid UTF-8 once decoded",
                })
            })?;
        let id = CredentialId::parse(&raw).map_err(ApiError::InvalidId)?;
        if let Some(record) = parts.extensions.get::<RequestRecord>() {
            record.set_credential(&id, None);
        }
        Ok(PathId(id))
    }
}

/// A JSON request body, with the contract's statuses for each way it can be wrong.
pub struct JsonBody(pub Value);

impl<S> FromRequest<S> for JsonBody
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = AppState::from_ref(state).max_body_bytes;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_rejection(rejection, limit))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::MalformedJson(error.to_string()))
    }
}

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::MalformedJson("the body could not be read".to_owned())
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn json_content_types() {
        let yes = [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ];
        for value in yes {
            assert!(is_json(Some(&HeaderValue::from_static(value))), "{value}");
        }
        for value in ["text/plain", "application/jsonx", "json", ""] {
            assert!(!is_json(Some(&HeaderValue::from_static(value))), "{value}");
        }
        assert!(!is_json(None));
    }
}
