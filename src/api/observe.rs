//! The one place that looks at every request once its response is ready: it records the
//! HTTP metrics and writes the audit line for credential operations.

use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::client::ClientAddr;
use super::AppState;
use crate::audit::{millis, now_rfc3339, AuditEvent, RequestRecord};

pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Resolved once, here, so the rate limiter and the audit line see the same client.
    let client = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|ConnectInfo(ClientAddr(peer))| state.clients.resolve(peer.ip(), request.headers()));
    // Extractors and handlers note what the audit line needs; without an audit log there is
    // nothing to note, and the record stays a no-op.
    let record = RequestRecord::new(client, state.audit.enabled());
    request.extensions_mut().insert(record.clone());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    // A header value clone shares its bytes: no copy unless the audit line is written.
    let request_id = request.headers().get("x-request-id").cloned();

    let response = next.run(request).await;

    let status = response.status().as_u16();
    let route = route.as_ref().map(MatchedPath::as_str);
    if let Some(metrics) = &state.metrics {
        metrics.observe_http(route, &method, status, started);
    }
    if state.audit.enabled() {
        if let Some(operation) = route.and_then(|route| operation(&state, &method, route)) {
            let fields = record.snapshot();
            let event = AuditEvent {
                time: now_rfc3339(),
                request_id: request_id
                    .as_ref()
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default(),
                client: record.client().map(|address| address.to_string()),
                operation,
                scope: fields
                    .identity
                    .as_ref()
                    .map(|identity| identity.scope.as_str()),
                token: fields
                    .identity
                    .as_ref()
                    .map(|identity| identity.fingerprint.to_string()),
                id: fields.id.as_ref().map(|id| id.as_str()),
                kind: fields.kind,
                references: &fields.references,
                outcome: outcome(status),
                status,
                latency_ms: millis(started.elapsed()),
            };
            state.audit.record(&event).await;
        }
    }
    response
}

/// The credential operation a route and method perform; `None` for probes and metrics.
fn operation(state: &AppState, method: &Method, route: &str) -> Option<&'static str> {
    let base: &str = &state.base_path;
    let item = route
        .strip_prefix(base)
        .is_some_and(|rest| rest == "/{*id}");
    match (method, route == base, item) {
        (&Method::POST, true, _) => Some("create"),
        (&Method::GET, true, _) => Some("connection_test"),
        (&Method::GET, _, true) => Some("read"),
        (&Method::DELETE, _, true) => Some("delete"),
        _ => None,
    }
}

fn outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        401 => "denied",
        404 => "not_found",
        429 => "rate_limited",
        400..=499 => "rejected",
        _ => "error",
    }
}
