//! Probes for orchestrators: no token, outside the credential base path.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::error::NotReady;
use super::readiness::TokenStatus;
use super::{ApiError, AppState};

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    backend: &'static str,
}

#[derive(Serialize)]
pub struct Ready {
    status: &'static str,
    backend: &'static str,
    tokens: TokenStatus,
}

/// `/healthz`: the process is up and serving. Touches nothing else.
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        backend: state.backend.info().kind,
    })
}

/// `/readyz`: the backend's check passes, so credential calls can succeed now. Either way
/// the body says how the token list's last reload went.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let backend = state.backend.info().kind;
    let tokens = TokenStatus::of(&state.tokens);
    match state.readiness.check().await {
        Ok(()) => Ok(Json(Ready {
            status: "ready",
            backend,
            tokens,
        })),
        Err(error) => Err(ApiError::NotReady(Box::new(NotReady {
            backend,
            error,
            tokens,
        }))),
    }
}
