//! The one middleware every request passes: it gives the request its id and its time limit,
//! and once the response is ready, sets the headers every answer carries, writes the
//! request's line in the diagnostic log, records the HTTP metrics and writes the audit line
//! for credential operations.

use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use credbridge_adapters::CredentialId;
use tracing::field::display;
use tracing::Instrument;

use super::client::ClientAddr;
use super::error::{ErrorCode, Failure};
use super::request_id::{self, REQUEST_ID};
use super::ApiError;
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
    let request_id = request_id::assign(request.headers_mut());
    let method = request.method().clone();
    // This clone shares the request's bytes: nothing is copied.
    let uri = request.uri().clone();
    // What the matched path does, from the route table the router was built from; only
    // metrics and the audit line ask, so without them nothing is looked up.
    let path = if state.metrics.is_some() || state.audit.enabled() {
        request
            .extensions()
            .get::<MatchedPath>()
            .and_then(|matched| state.routes.find(matched.as_str()))
    } else {
        None
    };
    // Debug lines logged while the request is handled carry its id; at the default level
    // the span is disabled and costs nothing.
    let span = tracing::debug_span!("request", request_id = request_id_str(&request_id));

    let handled = next.run(request).instrument(span);
    let mut response = match tokio::time::timeout(state.request_timeout, handled).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(state.request_timeout).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, request_id.clone());
    // Credentials must not linger in caches between credbridge and Skyvern.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );

    let status = response.status().as_u16();
    log_request(
        &method,
        &uri,
        status,
        started.elapsed(),
        request_id_str(&request_id),
        &response,
    );
    if let Some(metrics) = &state.metrics {
        metrics.observe_http(path.map(|path| &path.template), &method, status, started);
    }
    if state.audit.enabled() {
        let route = path.and_then(|path| path.route(&method));
        if let Some(operation) = route.and_then(|route| route.audit_name) {
            let fields = record.snapshot();
            let event = AuditEvent {
                time: now_rfc3339(),
                request_id: request_id_str(&request_id),
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

/// The request's one line in the diagnostic log: method, path (never the query), status,
/// latency and request id, with the id a create made, or the error's code. A 5xx is an
/// ERROR with its detail; a refusal (4xx) names its code at INFO and its detail at DEBUG.
fn log_request(
    method: &Method,
    uri: &Uri,
    status: u16,
    elapsed: Duration,
    request_id: &str,
    response: &Response,
) {
    // Shown as they are, without the quoting and escaping of debug formatting: a path, a
    // request id and a credential id hold only characters that need neither.
    let path = display(uri.path());
    let request_id = display(request_id);
    let latency_ms = millis(elapsed);
    match response.extensions().get::<Failure>() {
        // A probe that finds the backend not ready has done its job: the backend's failure
        // is the news, and it is a warning.
        Some(failure) if failure.code == ErrorCode::NotReady => tracing::warn!(
            %method, path, status, latency_ms, request_id,
            code = failure.code.as_str(), error = %failure.error, "readiness check failed"
        ),
        Some(failure) if status >= 500 => tracing::error!(
            %method, path, status, latency_ms, request_id,
            code = failure.code.as_str(), error = %failure.error, "request failed"
        ),
        Some(failure) => {
            tracing::info!(
                %method, path, status, latency_ms, request_id,
                code = failure.code.as_str(), "request refused"
            );
            tracing::debug!(request_id, error = %failure.error, "why the request was refused");
        }
        None => tracing::info!(
            %method, path, status, latency_ms, request_id,
            id = response.extensions().get::<CredentialId>().map(|id| display(id.as_str())),
            "request served"
        ),
    }
}

fn request_id_str(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or_default()
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
