//! KV v2 at `secret/` (secret/kv/kv-v2): what credbridge's create, read and delete use.

use std::time::SystemTime;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::http::{errors, no_content, not_found, ok, unsupported, Call};
use super::state::{rfc3339, State, Versioned};

/// Requests under `secret/`: `data/:path` and `metadata/:path`.
pub(crate) fn secret(state: &mut State, call: &Call, rest: &str) -> Response {
    let (section, path) = rest.split_once('/').unwrap_or((rest, ""));
    match (section, &call.method) {
        // GET /secret/data/:path — the latest version's data and metadata; 404 when
        // missing.
        ("data", &Method::GET) if !call.list => match state.secrets.get(path) {
            Some(secret) => ok(json!({
                "data": secret.data,
                "metadata": {
                    "created_time": secret.created_time,
                    "custom_metadata": null,
                    "deletion_time": "",
                    "destroyed": false,
                    "version": secret.version,
                },
            })),
            None => not_found(),
        },
        // POST /secret/data/:path {data, options.cas} — a new version; with `cas`, only
        // when it equals the current version (0: the key must not exist), else 400.
        ("data", &Method::POST | &Method::PUT) => {
            let Some(data) = call.body.get("data").and_then(Value::as_object) else {
                return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
            };
            let current = state.secrets.get(path).map_or(0, |secret| secret.version);
            if let Some(cas) = call.body.pointer("/options/cas").and_then(Value::as_u64) {
                if cas != current {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["check-and-set parameter did not match the current version"],
                    );
                }
            }
            let created_time = rfc3339(SystemTime::now());
            let secret = Versioned {
                version: current + 1,
                data: data.clone(),
                created_time: created_time.clone(),
            };
            let answer = json!({
                "created_time": created_time,
                "custom_metadata": null,
                "deletion_time": "",
                "destroyed": false,
                "version": secret.version,
            });
            state.secrets.insert(path.to_owned(), secret);
            ok(answer)
        }
        // DELETE /secret/metadata/:path — every version and the key itself (204, also
        // when absent).
        ("metadata", &Method::DELETE) => {
            state.secrets.remove(path);
            no_content()
        }
        _ => unsupported(),
    }
}
