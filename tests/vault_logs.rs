//! What a Vault answer leaves in the log, through the subscriber credbridge installs: a
//! 404 or 403 from Vault is logged once, by credbridge, at the level its meaning
//! deserves, and the Vault client libraries add no error of their own (their WARN lines,
//! which carry Vault's `warnings`, pass; these answers have none). Against the test Vault
//! (OpenBao, from `tests/run`).
//!
//! Its own test binary: it installs the process-wide subscriber.
#![cfg(feature = "vault")]

#[path = "logs/captured.rs"]
mod captured;
// The helpers of the `api` suite, of which this binary needs a few.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use captured::Captured;

use credbridge::config::LogFormat;
use credbridge_adapters::testkit::vault::{unique_prefix, vault_config, TestVault};
use helpers::{password, spawn_on_vault};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The JSON lines written since the last call.
fn take(captured: &Captured) -> Vec<Value> {
    let bytes = std::mem::take(&mut *captured.bytes());
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn at_level<'a>(lines: &'a [Value], level: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["level"] == level).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_404_and_403_are_logged_once_by_credbridge_at_their_level() {
    let captured = Captured::default();
    // Debug, as an operator chasing a problem would set it: the libraries' debug lines
    // may show, their errors must not.
    credbridge::telemetry::install("debug", LogFormat::Json, captured.clone(), false).unwrap();

    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let app = spawn_on_vault(&vault_config(
        &vault.address,
        &vault.root_token,
        "secret",
        &prefix,
    ))
    .await;
    let id = app.create_ok(&password()).await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    take(&captured);

    // A read of a deleted credential: Vault answers 404; not an error anywhere.
    assert_eq!(app.read(&id).await.status(), StatusCode::NOT_FOUND);
    let lines = take(&captured);
    assert!(
        at_level(&lines, "ERROR").is_empty() && at_level(&lines, "WARN").is_empty(),
        "{lines:#?}"
    );
    let refused: Vec<_> = lines
        .iter()
        .filter(|line| line["code"] == "not_found")
        .collect();
    // The request's own line, which every request has, says it: not an error.
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert_eq!(refused[0]["level"], "INFO");
    assert!(
        lines.iter().any(|line| line["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("rustify") || target.starts_with("vaultrs"))),
        "the libraries' debug lines were not captured at all: {lines:#?}"
    );

    // A read the policy denies: Vault answers 403; one ERROR, credbridge's.
    let (_, token) = root.documented_token("elsewhere", json!({})).await;
    let denied = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &prefix)).await;
    take(&captured);
    assert_eq!(denied.read(&id).await.status(), StatusCode::BAD_GATEWAY);
    let lines = take(&captured);
    let errors = at_level(&lines, "ERROR");
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(errors[0]["code"], "backend_permission_denied");
    assert!(
        errors[0]["target"]
            .as_str()
            .unwrap()
            .starts_with("credbridge"),
        "{:#?}",
        errors[0]
    );
}
