//! `GET /metrics`: Prometheus exposition, when `metrics.enabled`; behind its own bearer
//! token when `metrics.token` is set.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::extract::bearer_token;
use super::{ApiError, AppState};

pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(allowed) = &state.metrics_auth {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        if token.is_none_or(|token| allowed.authenticate(token).is_err()) {
            return Err(ApiError::Unauthorized);
        }
    }
    let Some(metrics) = &state.metrics else {
        return Err(ApiError::UnknownRoute);
    };
    let body = metrics.render(state.backend.as_ref());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
