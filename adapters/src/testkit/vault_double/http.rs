//! The double's HTTP side: one handler that decodes a request once and routes it by API
//! area, and the envelope every answer uses.
//!
//! Answers use Vault's envelope (`request_id`, `lease_id`, `renewable`, `lease_duration`,
//! `data`, `wrap_info`, `warnings`, `auth`) or its error shape (`{"errors": [...]}`).
//! References are to <https://developer.hashicorp.com/vault/api-docs>.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::{request_id, State};
use super::{kv, sys, tokens};

/// The state behind the listener, shared with the handle's controls.
pub(crate) struct Shared {
    state: Mutex<State>,
    delay: Mutex<Duration>,
}

impl Shared {
    pub fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            delay: Mutex::new(Duration::ZERO),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn delay(&self) -> MutexGuard<'_, Duration> {
        self.delay
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// A request, decoded once.
pub(crate) struct Call {
    pub method: Method,
    /// The path after `/v1/`, with empty segments removed, as Vault cleans it.
    pub path: String,
    /// `LIST`, or `GET` with `list=true`.
    pub list: bool,
    pub token: Option<String>,
    pub body: Value,
}

async fn handle(
    Extract(shared): Extract<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = *shared.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return errors(StatusCode::NOT_FOUND, &["unsupported path"]);
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(_) => return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]),
        }
    };
    let call = Call {
        list: method.as_str() == "LIST"
            || uri
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|pair| pair == "list=true"),
        method,
        path: path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect::<Vec<_>>()
            .join("/"),
        token: headers
            .get("x-vault-token")
            .and_then(|value| value.to_str().ok())
            .filter(|token| !token.is_empty())
            .map(str::to_owned),
        body,
    };
    let mut state = shared.state();
    route(&mut state, &call)
}

fn route(state: &mut State, call: &Call) -> Response {
    // Unauthenticated endpoints.
    match call.path.as_str() {
        "sys/health" => return sys::health(),
        "auth/kubernetes/login" => return tokens::kubernetes_login(state, call, "kubernetes"),
        _ => {}
    }
    let alive = call
        .token
        .as_deref()
        .and_then(|token| state.tokens.get(token))
        .is_some_and(|token| token.alive(Instant::now()));
    if !alive {
        // Vault answers a missing, unknown or expired token with 403.
        return denied();
    }
    match call.path.as_str() {
        "auth/token/lookup-self" => tokens::lookup_self(state, call),
        "auth/token/renew-self" => tokens::renew_self(state, call),
        "sys/capabilities-self" => sys::capabilities_self(call),
        path => match path.strip_prefix("secret/") {
            Some(rest) => kv::secret(state, call, rest),
            None => errors(
                StatusCode::NOT_FOUND,
                &[&format!(
                    "no handler for route \"{path}\". route entry not found."
                )],
            ),
        },
    }
}

pub(crate) fn envelope(data: Value) -> Value {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "",
    })
}

pub(crate) fn ok(data: Value) -> Response {
    (StatusCode::OK, Json(envelope(data))).into_response()
}

pub(crate) fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, Json(json!({ "errors": messages }))).into_response()
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Vault answers a read of a missing secret with an empty error list.
pub(crate) fn not_found() -> Response {
    errors(StatusCode::NOT_FOUND, &[])
}

pub(crate) fn denied() -> Response {
    errors(StatusCode::FORBIDDEN, &["permission denied"])
}

pub(crate) fn unsupported() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"])
}
