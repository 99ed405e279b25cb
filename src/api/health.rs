//! Probes for orchestrators: no token, outside the credential base path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    backend: &'static str,
}

#[derive(Serialize)]
pub struct NotReady {
    error: &'static str,
    message: String,
    backend: &'static str,
}

/// `/healthz`: the process is up and serving. Touches nothing else.
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        backend: state.backend.info().kind,
    })
}

/// `/readyz`: the backend's `check()` passes, so credential calls can succeed now.
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<Health>, (StatusCode, Json<NotReady>)> {
    let backend = state.backend.info().kind;
    match state.backend.check().await {
        Ok(()) => Ok(Json(Health {
            status: "ready",
            backend,
        })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(NotReady {
                    error: "not_ready",
                    // The backend's own sentence: what is wrong, never a secret or a path.
                    message: format!("The {backend} backend is not ready: {}.", error.message()),
                    backend,
                }),
            ))
        }
    }
}
