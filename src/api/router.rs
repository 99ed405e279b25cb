//! The router: the route table's routes, and the middleware around them.

use axum::extract::DefaultBodyLimit;
use axum::routing::{head, MethodRouter};
use axum::Router;

use super::routes::Operation;
use super::{observe, ApiError, AppState};

/// The whole HTTP surface: the route table (the contract under the base path; `/healthz`,
/// `/readyz`, `/openapi.json` and `/metrics` outside it, without the contract's token), and
/// JSON errors for everything else.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for path in state.routes.paths() {
        let mut endpoint: Option<MethodRouter<AppState>> = None;
        for route in path.routes() {
            if route.operation == Operation::Metrics && state.metrics.is_none() {
                continue;
            }
            let method = route.endpoint();
            endpoint = Some(match endpoint {
                Some(endpoint) => endpoint.merge(method),
                None => method,
            });
        }
        let Some(mut endpoint) = endpoint else {
            continue;
        };
        // HEAD of a credential route would run the read (or the connection test) for a body
        // that is then thrown away, and unaudited: refused. The probes keep HEAD.
        if path.routes().any(|route| route.audit_name.is_some()) {
            endpoint = endpoint.merge(head(method_not_allowed));
        }
        router = router.route(&path.template, endpoint);
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
