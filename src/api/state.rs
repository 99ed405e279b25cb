//! The state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use credbridge_adapters::Backend;

use super::readiness::SharedCheck;
use super::{ClientAddresses, Routes};
use crate::audit::AuditLog;
use crate::auth::{Authenticator, TokenStore};
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::references::References;

/// What every handler shares: one pointer, so that the clones axum makes for every
/// request (the router's, the middleware's, each extractor's) cost one reference count.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl From<AppStateInner> for AppState {
    fn from(shared: AppStateInner) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields of [`AppState`]: fixed at start-up, no lock.
pub struct AppStateInner {
    /// The backend, wrapped so every call is counted and timed.
    pub backend: Arc<dyn Backend>,
    pub tokens: TokenStore,
    /// `None` when rate limiting is off.
    pub limits: Option<Arc<RateLimits>>,
    pub audit: AuditLog,
    /// `None` when metrics are off; then `/metrics` is not routed.
    pub metrics: Option<Arc<Metrics>>,
    /// The token `/metrics` requires, when one is configured.
    pub metrics_auth: Option<Authenticator>,
    /// How a request's client address is found (the peer, or a trusted proxy's header).
    pub clients: ClientAddresses,
    /// The backend check that `/readyz` and the connection test share.
    pub readiness: SharedCheck,
    /// The route table under the configured base path.
    pub routes: Routes,
    pub max_body_bytes: usize,
    /// How long a request may take, backend included; then 503 `timeout`.
    pub request_timeout: Duration,
    /// Finds, checks and resolves references in credential fields.
    pub references: References,
}
