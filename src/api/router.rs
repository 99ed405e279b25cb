//! The router: every route, the layers around them, and the state they share.

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::routing::get;
use axum::{BoxError, Router};
use credbridge_adapters::Backend;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::health::SharedCheck;
use super::{credentials, health, metrics, observe, openapi, ApiError, ClientAddresses};
use crate::audit::AuditLog;
use crate::auth::{Authenticator, TokenStore};
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::references::References;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler shares: cheap to clone, no lock.
#[derive(Clone)]
pub struct AppState {
    /// The backend, wrapped so every call is counted and timed.
    pub backend: Arc<dyn Backend>,
    pub tokens: TokenStore,
    /// `None` when rate limiting is off.
    pub limits: Option<Arc<RateLimits>>,
    pub audit: Arc<AuditLog>,
    /// `None` when metrics are off; then `/metrics` is not routed.
    pub metrics: Option<Arc<Metrics>>,
    /// The token `/metrics` requires, when one is configured.
    pub metrics_auth: Option<Arc<Authenticator>>,
    /// How a request's client address is found (the peer, or a trusted proxy's header).
    pub clients: ClientAddresses,
    /// The backend check that `/readyz` and the connection test share.
    pub readiness: Arc<SharedCheck>,
    pub base_path: Arc<str>,
    pub max_body_bytes: usize,
    /// Finds, checks and resolves references in credential fields.
    pub references: Arc<References>,
}

/// The whole HTTP surface: `{base_path}` routes for the contract, `/healthz` and
/// `/readyz` outside it (no token), JSON errors for everything else.
/// Every path template the router serves, for metric labels.
pub fn route_templates(base_path: &str) -> Vec<String> {
    vec![
        base_path.to_owned(),
        item_path(base_path),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/openapi.json".to_owned(),
        "/metrics".to_owned(),
    ]
}

fn item_path(base_path: &str) -> String {
    format!("{base_path}/{{*id}}")
}

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let base_path = state.base_path.to_string();
    let item_path = item_path(&base_path);
    // HEAD of a credential route would run the read (or the connection test) for a body
    // that is then thrown away, and unaudited: refused. The probes keep HEAD.
    let mut router = Router::new()
        .route(
            &base_path,
            get(credentials::connection_test)
                .post(credentials::create)
                .head(method_not_allowed),
        )
        .route(
            &item_path,
            get(credentials::read)
                .delete(credentials::delete)
                .head(method_not_allowed),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::serve));
    if state.metrics.is_some() {
        router = router.route("/metrics", get(metrics::metrics));
    }
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        // The body extractor enforces the limit and answers 413 in JSON.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .map_request(drop_unusable_request_id)
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        // Every 5xx is an `ApiError`, logged once where it is made, with
                        // its cause; a second ERROR line per failure would say less.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // Credentials must not linger in caches between credbridge and Skyvern.
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state,
                    observe::observe,
                ))
                .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                    ApiError::Timeout(request_timeout)
                }))
                .timeout(request_timeout),
        )
}

/// Longest `X-Request-Id` taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's `X-Request-Id` may be used as this request's id: it is copied into
/// every log and audit line of the request, so only a short, plain one is.
fn is_usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(byte))
}

/// Removes a client's `X-Request-Id` that is not usable (or is given twice), so that a
/// fresh one is made in its place.
fn drop_unusable_request_id(mut request: Request) -> Request {
    let mut values = request.headers().get_all(REQUEST_ID).iter();
    let usable = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => is_usable_request_id(value),
        (Some(_), Some(_)) => false,
    };
    if !usable {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// The span every request's log lines carry: method, path and request id; never headers,
/// where the token is, nor the query.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

async fn unknown_route() -> ApiError {
    ApiError::UnknownRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_usable() {
        let usable =
            |text: &str| is_usable_request_id(&HeaderValue::from_bytes(text.as_bytes()).unwrap());
        for text in [
            "trace-me-42",
            "a",
            "0af7651916cd43dd8448eb211c80319c",
            "svc:req.1_2-3",
        ] {
            assert!(usable(text), "{text}");
        }
        assert!(usable(&"x".repeat(64)));
        for text in ["", "has space", "semi;colon", "quote\"", "slash/", "é"] {
            assert!(!usable(text), "{text}");
        }
        assert!(!usable(&"x".repeat(65)));
    }
}
