//! The router: every route, and the middleware around them.

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use super::{credentials, health, metrics, observe, openapi, ApiError, AppState};

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

/// The whole HTTP surface: `{base_path}` routes for the contract, `/healthz` and
/// `/readyz` outside it (no token), JSON errors for everything else.
pub fn router(state: AppState) -> Router {
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
        // Request ids, the timeout, the response headers every answer carries, the log
        // line, metrics and audit: one middleware, so each request pays for one layer.
        .layer(axum::middleware::from_fn_with_state(
            state,
            observe::observe,
        ))
}

async fn unknown_route() -> ApiError {
    ApiError::UnknownRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
