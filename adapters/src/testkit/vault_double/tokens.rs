//! `auth/`: the token's own endpoints (auth/token) and Kubernetes login
//! (auth/kubernetes).

use std::time::{Duration, Instant, SystemTime};

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::http::{denied, envelope, errors, ok, unsupported, Call};
use super::state::{rfc3339, State, Token};

fn auth_block(token: &str, record: &Token, now: Instant) -> Value {
    json!({
        "client_token": token,
        "accessor": record.accessor,
        "policies": ["default"],
        "token_policies": ["default"],
        "metadata": null,
        "lease_duration": record.ttl_seconds(now),
        "renewable": record.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
        "mfa_requirement": null,
        "num_uses": 0,
    })
}

fn auth_response(token: &str, record: &Token, warnings: Option<Vec<String>>) -> Response {
    let mut body = envelope(Value::Null);
    body["auth"] = auth_block(token, record, Instant::now());
    body["warnings"] = json!(warnings);
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /auth/:mount/login` of the Kubernetes method (`role`, `jwt`): a token for a known
/// role and its JWT; 400 for an unknown role, 403 for a JWT the role does not accept.
pub(crate) fn kubernetes_login(state: &mut State, call: &Call, mount: &str) -> Response {
    if call.method != Method::POST && call.method != Method::PUT {
        return unsupported();
    }
    let field = |name: &str| call.body.get(name).and_then(Value::as_str).unwrap_or("");
    let Some(role) = state
        .kubernetes
        .get(&(mount.to_owned(), field("role").to_owned()))
        .cloned()
    else {
        return errors(StatusCode::BAD_REQUEST, &["invalid role name"]);
    };
    if role.jwt != field("jwt") {
        return denied();
    }
    let token = state.issue(Some(role.ttl), true, mount);
    *state.logins.entry(mount.to_owned()).or_default() += 1;
    let record = state.tokens[&token].clone();
    auth_response(&token, &record, None)
}

/// `GET /auth/token/lookup-self`: the token's properties; `ttl` counts down.
pub(crate) fn lookup_self(state: &State, call: &Call) -> Response {
    let token = call.token.as_deref().unwrap_or_default();
    let Some(record) = state.tokens.get(token) else {
        return denied();
    };
    let now = Instant::now();
    let expire_time = record
        .expires_at
        .map(|at| rfc3339(SystemTime::now() + at.saturating_duration_since(now)));
    ok(json!({
        "accessor": record.accessor,
        "creation_time": record.issued.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
        "creation_ttl": record.ttl.map_or(0, |ttl| ttl.as_secs()),
        "display_name": record.issuer,
        "entity_id": "",
        "expire_time": expire_time,
        "explicit_max_ttl": 0,
        "id": token,
        "identity_policies": null,
        "issue_time": rfc3339(record.issued),
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": format!("auth/{}/login", record.issuer),
        "policies": ["default"],
        "renewable": record.renewable,
        "ttl": record.ttl_seconds(now),
        "type": "service",
    }))
}

/// `POST /auth/token/renew-self` (`increment` optional): extends the TTL up to the max
/// TTL, with a warning when capped; 400 for a token that is not renewable.
pub(crate) fn renew_self(state: &mut State, call: &Call) -> Response {
    if call.method != Method::POST && call.method != Method::PUT {
        return unsupported();
    }
    let token = call.token.clone().unwrap_or_default();
    let Some(record) = state.tokens.get_mut(&token) else {
        return denied();
    };
    let (Some(ttl), true) = (record.ttl, record.renewable) else {
        return errors(StatusCode::BAD_REQUEST, &["lease is not renewable"]);
    };
    let increment = call
        .body
        .get("increment")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str()?.trim_end_matches('s').parse().ok())
        })
        .map_or(ttl, Duration::from_secs);
    let now = Instant::now();
    let mut expires = now + increment;
    let mut warnings = None;
    if let Some(max) = record.max_ttl {
        let cap = record.issued_at + max;
        if expires > cap {
            expires = cap;
            warnings = Some(vec![
                "TTL of requested duration exceeded the effective max_ttl; TTL value is capped accordingly".to_owned(),
            ]);
        }
    }
    record.expires_at = Some(expires);
    let record = record.clone();
    state.renewals += 1;
    auth_response(&token, &record, warnings)
}
