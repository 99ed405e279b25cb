//! `sys/`: health and capabilities.

use std::time::SystemTime;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::http::{errors, ok, Call};

/// `GET /sys/health`: 200 when initialized, unsealed and active (the double always is).
pub(crate) fn health() -> Response {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let body = json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now,
        "version": "1.17.0",
        "cluster_name": "vault-double",
        "cluster_id": "00000000-0000-0000-0000-000000000000",
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /sys/capabilities-self` with `paths`: the token's capabilities on them, per path
/// and (for the first) as `capabilities`. Every token of the double may do everything:
/// `root`.
pub(crate) fn capabilities_self(call: &Call) -> Response {
    let paths: Vec<&str> = call
        .body
        .get("paths")
        .and_then(Value::as_array)
        .map(|paths| paths.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if paths.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &["missing paths"]);
    }
    let mut data = Map::new();
    for path in paths {
        data.insert(path.to_owned(), json!(["root"]));
    }
    data.insert("capabilities".to_owned(), json!(["root"]));
    ok(Value::Object(data))
}
