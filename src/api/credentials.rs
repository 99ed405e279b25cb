//! The contract's routes: create, read, delete, and the connection test.
//!
//! Success is always exactly 200: Skyvern's HTTP helpers accept no other 2xx.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use credbridge_adapters::{CredentialId, Key};
use serde::Serialize;

use super::extract::{Caller, JsonBody, PathId};
use super::{ApiError, AppState};
use crate::credential::{self, CredentialView};

#[derive(Serialize)]
pub struct Created {
    id: CredentialId,
}

#[derive(Serialize)]
pub struct Status {
    status: &'static str,
    scope: String,
    backend: &'static str,
}

#[derive(Serialize)]
pub struct Deleted {
    id: CredentialId,
    deleted: bool,
}

/// `GET {base}`: Skyvern's "Test Connection". 200 when the token is valid and the
/// backend answers, so the button tells the operator both things. The backend check is
/// the one `/readyz` shares.
pub async fn connection_test(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Status>, ApiError> {
    state
        .readiness
        .check()
        .await
        .map_err(ApiError::BackendCheck)?;
    Ok(Json(Status {
        status: "ok",
        scope: caller.scope.to_string(),
        backend: state.backend.info().kind,
    }))
}

/// `POST {base}`: checks the body and the references it holds, mints a fresh id, stores.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (kind, document) = credential::new_document(body)?;
    state
        .references
        .check_new(&caller.scope, &caller.record, &document)
        .await?;
    let id = CredentialId::generate();
    caller.record.set_credential(&id, Some(kind.as_str()));
    let key = Key::new(caller.scope, id.clone());
    state.backend.put(&key, &document).await?;
    tracing::debug!(id = %id, r#type = %kind, "credential created");
    let mut response = Json(Created { id: id.clone() }).into_response();
    // For the request's line in the log (`observe`), which names the new id.
    response.extensions_mut().insert(id);
    Ok(response)
}

/// `GET {base}/{id}`: the stored credential with its references resolved, or 404 (also
/// for another scope's id).
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let key = Key::new(caller.scope.clone(), id);
    // The backend's error names the key already.
    let document = state.backend.get(&key).await?;
    let document = state
        .references
        .resolve(&key.scope, &caller.record, document)
        .await?;
    let kind = credential::stored_type(&document).map_err(ApiError::MalformedStored)?;
    caller.record.set_credential(&key.id, Some(kind.as_str()));
    let view = CredentialView {
        id: &key.id,
        kind,
        document: &document,
    };
    // Serialized here rather than through `Json` to build the body in one buffer.
    let body = serde_json::to_vec(&view).map_err(|error| {
        ApiError::MalformedStored(credential::ContractViolation {
            field: String::new(),
            message: error.to_string(),
        })
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `DELETE {base}/{id}`: idempotent; an unknown id is a success.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Deleted>, ApiError> {
    let key = Key::new(caller.scope, id);
    state.backend.delete(&key).await?;
    tracing::debug!(id = %key.id, "credential deleted");
    Ok(Json(Deleted {
        id: key.id,
        deleted: true,
    }))
}
