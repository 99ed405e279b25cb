//! Prometheus metrics: requests, latencies, backend calls, auth failures, rate limiting,
//! connections, token reloads, the audit queue and reference resolutions.
//!
//! Labels are route templates, methods, statuses, backend kinds, operation names and
//! outcomes: never a credential id, a scope, a reference or anything a caller sent. Each
//! app owns its registry, so two apps in one process (tests) never mix their numbers.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use axum::http::Method;
use credbridge_adapters::{
    Backend, BackendInfo, CredentialId, Document, Key, ReferenceTarget, ReferencedEntry, Scope,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::auth::ReloadOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendCallLabels {
    backend: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendOperationLabels {
    backend: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResolutionLabels {
    backend: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric credbridge exports.
pub struct Metrics {
    registry: Registry,
    /// The `route` label of a request no route matched.
    unmatched: Arc<str>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    backend_calls: Family<BackendCallLabels, Counter>,
    backend_duration: Family<BackendOperationLabels, Histogram>,
    auth_failures: Family<ReasonLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    login_expiry: Gauge,
    connections: Gauge,
    connections_closed: Family<ReasonLabels, Counter>,
    token_reloads: Family<OutcomeLabels, Counter>,
    token_reload_failing: Gauge,
    audit_queue_full: Counter,
    reference_resolutions: Family<ResolutionLabels, Counter>,
}

/// A request method as a label: the standard ones by name, anything else as `other`, so a
/// client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("credbridge");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let backend_calls = Family::<BackendCallLabels, Counter>::default();
        let backend_duration = Family::<BackendOperationLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let login_expiry = Gauge::default();
        let connections = Gauge::default();
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        let token_reloads = Family::<OutcomeLabels, Counter>::default();
        // Every outcome is exported from the start, at 0, so rates over it are defined.
        for outcome in ReloadOutcome::ALL {
            drop(token_reloads.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            }));
        }
        let token_reload_failing = Gauge::default();
        let audit_queue_full = Counter::default();
        let reference_resolutions = Family::<ResolutionLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            http_duration.clone(),
        );
        registry.register(
            "backend_calls",
            "Backend calls by backend, operation and outcome",
            backend_calls.clone(),
        );
        registry.register(
            "backend_call_duration_seconds",
            "Backend call latency by backend and operation",
            backend_duration.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for their token, by reason",
            auth_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by budget",
            rate_limited.clone(),
        );
        registry.register(
            "backend_login_expiry_seconds",
            "Seconds until the backend login (a Vault token) expires; 0 when it does not expire",
            login_expiry.clone(),
        );
        registry.register(
            "http_connections",
            "Open client connections, TLS handshakes included",
            connections.clone(),
        );
        registry.register(
            "http_connections_closed",
            "Client connections closed by credbridge, by reason: header_read_timeout, \
             idle_timeout, tls_handshake_timeout, or reclaimed (idle or still sending its \
             request head, closed to make room under http.max_connections)",
            connections_closed.clone(),
        );
        registry.register(
            "token_reloads",
            "Reloads of the token list, by outcome: applied, partial (some entries left \
             out), failed (the configuration did not load)",
            token_reloads.clone(),
        );
        registry.register(
            "token_reload_failing",
            "1 when the last token reload did not apply in full, else 0",
            token_reload_failing.clone(),
        );
        registry.register(
            "audit_queue_full",
            "Audit lines that found the audit queue full and made their request wait",
            audit_queue_full.clone(),
        );
        registry.register(
            "reference_resolutions",
            "References in credential fields resolved, by backend and outcome (ok, refused, \
             not_found, unusable, denied, unavailable, error)",
            reference_resolutions.clone(),
        );
        Self {
            registry,
            unmatched: Arc::from("unmatched"),
            http_requests,
            http_duration,
            backend_calls,
            backend_duration,
            auth_failures,
            rate_limited,
            login_expiry,
            connections,
            connections_closed,
            token_reloads,
            token_reload_failing,
            audit_queue_full,
            reference_resolutions,
        }
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections.inc();
        OpenConnection(Arc::clone(self))
    }

    /// `reason` is one of those listed in the metric's help.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn token_reloaded(&self, outcome: ReloadOutcome) {
        self.token_reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.token_reload_failing
            .set(i64::from(outcome != ReloadOutcome::Applied));
    }

    pub fn audit_queue_full(&self) {
        self.audit_queue_full.inc();
    }

    /// Counts and times a request; `route` is its matched template (from the route table,
    /// so that labelling it clones an `Arc`), if any.
    pub fn observe_http(
        &self,
        route: Option<&Arc<str>>,
        method: &Method,
        status: u16,
        started: Instant,
    ) {
        let route = route.unwrap_or(&self.unmatched);
        let method = method_label(method);
        self.http_requests
            .get_or_create(&HttpLabels {
                route: Arc::clone(route),
                method,
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: Arc::clone(route),
                method,
            })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn auth_failed(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Counts one reference of a credential field, resolved or not.
    pub fn reference_resolved(&self, backend: &'static str, outcome: &'static str) {
        self.reference_resolutions
            .get_or_create(&ResolutionLabels { backend, outcome })
            .inc();
    }

    fn observe_backend(
        &self,
        backend: &'static str,
        operation: &'static str,
        outcome: &'static str,
        started: Instant,
    ) {
        self.backend_calls
            .get_or_create(&BackendCallLabels {
                backend,
                operation,
                outcome,
            })
            .inc();
        self.backend_duration
            .get_or_create(&BackendOperationLabels { backend, operation })
            .observe(started.elapsed().as_secs_f64());
    }

    /// The exposition text, with the login-expiry gauge read from `backend` now.
    pub fn render(&self, backend: &dyn Backend) -> String {
        let seconds = backend
            .login_expires_at()
            .map(|at| {
                at.duration_since(SystemTime::now())
                    .map_or(0, |left| left.as_secs())
            })
            .unwrap_or(0);
        self.login_expiry
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.text()
    }

    /// The exposition text as the metrics stand.
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// An open connection, counted in `credbridge_http_connections` while it lives.
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// A backend wrapper that counts and times every call.
pub struct MeteredBackend {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    kind: &'static str,
}

impl MeteredBackend {
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>) -> Self {
        let kind = inner.info().kind;
        Self {
            inner,
            metrics,
            kind,
        }
    }

    fn finish<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: credbridge_adapters::Result<T>,
    ) -> credbridge_adapters::Result<T> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind().as_str(),
        };
        self.metrics
            .observe_backend(self.kind, operation, outcome, started);
        result
    }
}

#[async_trait]
impl Backend for MeteredBackend {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn login_expires_at(&self) -> Option<SystemTime> {
        self.inner.login_expires_at()
    }

    async fn put(&self, key: &Key, document: &Document) -> credbridge_adapters::Result<()> {
        let started = Instant::now();
        let result = self.inner.put(key, document).await;
        self.finish("put", started, result)
    }

    async fn get(&self, key: &Key) -> credbridge_adapters::Result<Document> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        self.finish("get", started, result)
    }

    async fn delete(&self, key: &Key) -> credbridge_adapters::Result<()> {
        let started = Instant::now();
        let result = self.inner.delete(key).await;
        self.finish("delete", started, result)
    }

    async fn list(&self, scope: &Scope) -> credbridge_adapters::Result<Vec<CredentialId>> {
        let started = Instant::now();
        let result = self.inner.list(scope).await;
        self.finish("list", started, result)
    }

    async fn check(&self) -> credbridge_adapters::Result<()> {
        let started = Instant::now();
        let result = self.inner.check().await;
        self.finish("check", started, result)
    }

    fn owns(&self, target: &ReferenceTarget) -> bool {
        self.inner.owns(target)
    }

    async fn read_reference(
        &self,
        target: &ReferenceTarget,
    ) -> credbridge_adapters::Result<ReferencedEntry> {
        let started = Instant::now();
        let result = self.inner.read_reference(target).await;
        self.finish("read_reference", started, result)
    }
}
