//! Production hardening, through the whole service: token reload and expiry, rate limits,
//! the audit log, metrics, the OpenAPI document.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credbridge::config::TokenSettings;
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::{Backend, SecretText};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_error, audit_lines, metrics_text, password, secret, TestApp};

fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::default())
}

/// Polls `check` for up to 10 s; the reload intervals in these tests are 50 ms.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(&app.base)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

fn file_token(path: &Path) -> TokenSettings {
    TokenSettings {
        file: Some(path.to_owned()),
        scope: "files".to_owned(),
        ..TokenSettings::default()
    }
}

#[tokio::test]
async fn a_changed_token_file_is_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "first-file-token-0123456789\n").unwrap();
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.auth.tokens.push(file_token(&path));
        settings.auth.reload_interval = Duration::from_millis(50);
    })
    .await;
    assert_eq!(
        status_with(&app, "first-file-token-0123456789").await,
        StatusCode::OK
    );

    std::fs::write(&path, "second-file-token-0123456789\n").unwrap();
    eventually("the new token works", || async {
        status_with(&app, "second-file-token-0123456789").await == StatusCode::OK
    })
    .await;
    assert_eq!(
        status_with(&app, "first-file-token-0123456789").await,
        StatusCode::UNAUTHORIZED
    );
    // The other configured tokens were reloaded too, not dropped.
    assert_eq!(status_with(&app, &app.token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_token_file_that_fails_validation_keeps_the_previous_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "valid-file-token-0123456789").unwrap();
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.auth.tokens.push(file_token(&path));
        settings.auth.reload_interval = Duration::from_millis(50);
    })
    .await;
    std::fs::write(&path, "short").unwrap();
    // Several reload periods pass; the refused reload must not have locked anyone out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_with(&app, "valid-file-token-0123456789").await,
        StatusCode::OK
    );
    assert_eq!(status_with(&app, "short").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_token_is_refused_and_others_still_work() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.auth.tokens.push(TokenSettings {
            token: Some(SecretText::new("expired-token-0123456789")),
            expires_at: Some("2020-01-01T00:00:00Z".to_owned()),
            ..TokenSettings {
                scope: "old".into(),
                ..TokenSettings::default()
            }
        });
        settings.auth.tokens.push(TokenSettings {
            token: Some(SecretText::new("future-token-0123456789")),
            expires_at: Some("2999-01-01T00:00:00Z".to_owned()),
            ..TokenSettings {
                scope: "new".into(),
                ..TokenSettings::default()
            }
        });
    })
    .await;
    assert_eq!(
        status_with(&app, "expired-token-0123456789").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, "future-token-0123456789").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_over_its_budget_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.per_token_per_second = 1;
        settings.rate_limit.per_token_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.connection_test().await.status(), StatusCode::OK);
    }
    let response = app.connection_test().await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Budgets are per token: the other scope's token is unaffected.
    assert_eq!(status_with(&app, &app.other_token).await, StatusCode::OK);
}

#[tokio::test]
async fn repeated_auth_failures_block_the_address_even_for_a_right_token() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.auth_failures_burst = 3;
        settings.rate_limit.auth_failures_per_minute = 1;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            status_with(&app, "a-wrong-guess-0123456789").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app
        .client
        .get(&app.base)
        .bearer_auth("a-wrong-guess-0123456789")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // While blocked, a right guess is indistinguishable from a wrong one.
    assert_eq!(
        status_with(&app, &app.token).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Probes are not credential routes and stay reachable.
    let health = app
        .client
        .get(format!("http://{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_audit_log_has_a_line_per_operation_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit_path = path.clone();
    let app = TestApp::spawn_with(memory(), move |settings| {
        settings.audit.output = audit_path.display().to_string();
    })
    .await;
    let id = app.create_ok(&password()).await;
    app.read_ok(&id).await;
    app.delete(&id).await;
    app.read(&id).await;
    app.client
        .get(app.item_url(&id))
        .bearer_auth("not-a-real-token-0123456789")
        .send()
        .await
        .unwrap();
    let mut invalid = secret();
    invalid.as_object_mut().unwrap().remove("secret_value");
    app.create(&invalid).await;
    // Probes are not audited.
    app.client
        .get(format!("http://{}/healthz", app.address))
        .send()
        .await
        .unwrap();

    let lines = audit_lines(&path, 6).await;
    let summary: Vec<(String, String, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["operation"].as_str().unwrap().to_owned(),
                line["outcome"].as_str().unwrap().to_owned(),
                line["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("create", "ok", 200),
        ("read", "ok", 200),
        ("delete", "ok", 200),
        ("read", "not_found", 404),
        ("read", "denied", 401),
        ("create", "rejected", 422),
    ];
    let expected: Vec<(String, String, u64)> = expected
        .iter()
        .map(|(o, r, s)| (o.to_string(), r.to_string(), *s))
        .collect();
    assert_eq!(summary, expected);

    let created = &lines[0];
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["type"], "password");
    assert_eq!(created["scope"], app.scope.as_str());
    assert_eq!(
        created["token"].as_str().unwrap().len(),
        16,
        "a 16-hex fingerprint"
    );
    assert!(created["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(created["client"], "127.0.0.1");
    assert!(created["latency_ms"].as_f64().is_some());
    assert!(created["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        lines[4]["scope"],
        Value::Null,
        "a denied request has no scope"
    );

    let text = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "correct horse",
        "JBSWY3DPEHPK3PXP",
        "ada@example.com",
        app.token.as_str(),
        "not-a-real-token",
    ] {
        assert!(!text.contains(needle), "{needle} is in the audit log");
    }
}

#[tokio::test]
async fn metrics_count_requests_and_backend_calls_without_ids_or_secrets() {
    let app = TestApp::spawn_with(memory(), |settings| settings.metrics.enabled = true).await;
    let id = app.create_ok(&password()).await;
    app.read_ok(&id).await;
    app.read("cred_missing").await;
    app.client
        .get(&app.base)
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();

    let text = metrics_text(&app).await;
    for expected in [
        r#"credbridge_http_requests_total{route="/api/v1/credentials/{*id}",method="GET",status="200"} 1"#,
        r#"credbridge_http_requests_total{route="/api/v1/credentials/{*id}",method="GET",status="404"} 1"#,
        r#"credbridge_http_requests_total{route="/api/v1/credentials",method="POST",status="200"} 1"#,
        r#"credbridge_backend_calls_total{backend="memory",operation="put",outcome="ok"} 1"#,
        r#"credbridge_backend_calls_total{backend="memory",operation="get",outcome="not_found"} 1"#,
        r#"credbridge_auth_failures_total{reason="unknown"} 1"#,
        "credbridge_http_request_duration_seconds_bucket",
        "credbridge_backend_call_duration_seconds_bucket",
        "credbridge_backend_login_expiry_seconds 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    for needle in [
        id.as_str(),
        app.scope.as_str(),
        app.token.as_str(),
        "correct horse",
        "wrong-token",
    ] {
        assert!(!text.contains(needle), "{needle} is in the metrics");
    }
}

#[tokio::test]
async fn metrics_are_off_by_default_and_can_require_a_token() {
    let off = TestApp::spawn(memory()).await;
    let response = off
        .client
        .get(format!("http://{}/metrics", off.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let guarded = TestApp::spawn_with(memory(), |settings| {
        settings.metrics.enabled = true;
        settings.metrics.token = Some(SecretText::new("scrape-token-0123456789"));
    })
    .await;
    let url = format!("http://{}/metrics", guarded.address);
    let refused = guarded.client.get(&url).send().await.unwrap();
    assert_error(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let api_token = guarded
        .client
        .get(&url)
        .bearer_auth(&guarded.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_token.status(),
        StatusCode::UNAUTHORIZED,
        "an API token is not a scrape token"
    );
    let allowed = guarded
        .client
        .get(&url)
        .bearer_auth("scrape-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_checked_in_openapi_document_is_the_generated_one() {
    let generated = credbridge::api::openapi::document("/api/v1/credentials")
        .to_pretty_json()
        .unwrap();
    let checked_in = include_str!("../../src/api/openapi.json");
    assert_eq!(
        checked_in.trim_end(),
        generated.trim_end(),
        "src/api/openapi.json is stale: run `cargo run -- openapi > src/api/openapi.json`"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_and_the_document_is_too() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.base_path = "/custom/base".into()
    })
    .await;
    let response = app
        .client
        .get(format!("http://{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 2);
    for (path, operations) in paths {
        assert!(path.starts_with("/custom/base"), "{path}");
        for method in operations.as_object().unwrap().keys() {
            let url = format!("http://{}{}", app.address, path.replace("{id}", "cred_1"));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app.request(method.clone(), &url);
            if method == Method::POST {
                request = request.json(&secret());
            }
            let status = request.send().await.unwrap().status();
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::NOT_FOUND
                        && method == Method::GET
                        && path.contains("{id}"),
                "{method} {path} answered {status}"
            );
        }
    }
    // Every credential schema lists the fields the validator requires.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["PasswordCredential"]["required"],
        serde_json::json!(["name", "type", "username", "password"])
    );
    assert_eq!(
        schemas["SecretCredential"]["required"],
        serde_json::json!(["name", "type", "secret_value"])
    );
}
