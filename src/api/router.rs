//! The router: every route, the layers around them, and the state they share.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{BoxError, Router};
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::request_id::{drop_unusable_request_id, SequentialRequestId, REQUEST_ID};
use super::{credentials, health, metrics, observe, openapi, ApiError, AppState};

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
    let base_path = state.base_path.clone();
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
                .layer(SetRequestIdLayer::new(REQUEST_ID, SequentialRequestId))
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

async fn unknown_route() -> ApiError {
    ApiError::UnknownRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
