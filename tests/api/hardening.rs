//! Production hardening, through the whole service: token reload and expiry, rate limits,
//! client addresses behind proxies, the audit log, metrics, the OpenAPI document.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credbridge::config::{AuditOutput, ConfigError, RateLimitSettings, TokenEntry};
use credbridge::{App, Settings};
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::{Backend, SecretText};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use credbridge_adapters::testkit::eventually;

use crate::helpers::{assert_error, audit_lines, metric, password, secret, token_entry, TestApp};

fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::default())
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

fn file_token(path: &Path) -> TokenEntry {
    token_entry(&format!("file = '{}'\nscope = \"files\"", path.display()))
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
    eventually(Duration::from_secs(30), "the new token works", || async {
        (status_with(&app, "second-file-token-0123456789").await == StatusCode::OK).then_some(())
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
async fn a_token_file_that_becomes_invalid_drops_that_entry_visibly_and_the_rest_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "valid-file-token-0123456789").unwrap();
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.auth.tokens.push(file_token(&path));
        settings.auth.reload_interval = Duration::from_millis(50);
        settings.metrics.enabled = true;
    })
    .await;
    let (_, ready) = app.readyz().await;
    assert_eq!(ready["tokens"]["last_reload"], Value::Null);

    std::fs::write(&path, "short").unwrap();
    eventually(
        Duration::from_secs(30),
        "the invalid file's entry is dropped",
        || async {
            (status_with(&app, "valid-file-token-0123456789").await == StatusCode::UNAUTHORIZED)
                .then_some(())
        },
    )
    .await;
    assert_eq!(status_with(&app, "short").await, StatusCode::UNAUTHORIZED);
    // The other entries still apply.
    assert_eq!(status_with(&app, &app.token).await, StatusCode::OK);
    // Visible without reading the log, and the service stays ready.
    let (status, ready) = app.readyz().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["tokens"]["last_reload"], "partial");
    assert_eq!(ready["tokens"]["reload_failing"], true);
    assert!(ready["tokens"]["last_reload_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let text = app.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"credbridge_token_reloads_total{outcome="partial"}"#
        ),
        Some(1.0)
    );
    assert_eq!(metric(&text, "credbridge_token_reload_failing"), Some(1.0));

    std::fs::write(&path, "fixed-file-token-0123456789").unwrap();
    eventually(
        Duration::from_secs(30),
        "the fixed file applies",
        || async {
            (status_with(&app, "fixed-file-token-0123456789").await == StatusCode::OK).then_some(())
        },
    )
    .await;
    let text = app.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"credbridge_token_reloads_total{outcome="applied"}"#
        ),
        Some(1.0)
    );
    assert_eq!(metric(&text, "credbridge_token_reload_failing"), Some(0.0));
    assert_eq!(app.readyz().await.1["tokens"]["reload_failing"], false);
}

/// An app whose reloads read the settings the test holds, or fail when they are `None`;
/// a token file (its content irrelevant) triggers each reload when rewritten.
struct Reloadable {
    app: TestApp,
    settings: Arc<Mutex<Option<Settings>>>,
    trigger: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Reloadable {
    async fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trigger = dir.path().join("trigger-token");
        std::fs::write(&trigger, "trigger-token-0123456789").unwrap();
        let held: Arc<Mutex<Option<Settings>>> = Arc::default();
        let source = Arc::clone(&held);
        let app = TestApp::spawn_built(
            memory(),
            |settings| {
                settings.auth.tokens.push(file_token(&trigger));
                settings.auth.reload_interval = Duration::from_millis(50);
                settings.metrics.enabled = true;
                *held.lock().unwrap() = Some(settings.clone());
            },
            |settings, backend| {
                App::with_backend(settings, backend)
                    .unwrap()
                    .reload_from(Arc::new(move || {
                        source.lock().unwrap().clone().ok_or_else(|| {
                            ConfigError::invalid("base_path", "must look like /api/v1/credentials")
                        })
                    }))
            },
        )
        .await;
        Self {
            app,
            settings: held,
            trigger,
            _dir: dir,
        }
    }

    /// Applies `change` to what the next reload reads, and triggers it.
    fn reload(&self, change: impl FnOnce(&mut Option<Settings>)) {
        change(&mut self.settings.lock().unwrap());
        std::fs::write(&self.trigger, format!("trigger-token-{}", rand_suffix())).unwrap();
    }
}

fn rand_suffix() -> String {
    credbridge_adapters::testkit::unique_scope().to_string()
}

#[tokio::test]
async fn a_reload_that_removes_every_token_revokes_them_all() {
    let reloadable = Reloadable::spawn().await;
    let app = &reloadable.app;
    assert_eq!(status_with(app, &app.token).await, StatusCode::OK);
    reloadable.reload(|settings| {
        settings.as_mut().unwrap().auth.tokens.clear();
    });
    eventually(
        Duration::from_secs(30),
        "every token is revoked",
        || async { (status_with(app, &app.token).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert_eq!(
        status_with(app, &app.other_token).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, ready) = app.readyz().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["tokens"]["last_reload"], "applied");
}

#[tokio::test]
async fn a_configuration_that_no_longer_loads_is_visible_and_keeps_the_tokens_in_force() {
    let reloadable = Reloadable::spawn().await;
    let app = &reloadable.app;
    reloadable.reload(|settings| *settings = None);
    eventually(
        Duration::from_secs(30),
        "the failed reload shows",
        || async { (app.readyz().await.1["tokens"]["last_reload"] == "failed").then_some(()) },
    )
    .await;
    let (status, ready) = app.readyz().await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a failed reload does not make the service unready"
    );
    assert_eq!(ready["tokens"]["reload_failing"], true);
    let text = app.metrics().await;
    assert_eq!(
        metric(&text, r#"credbridge_token_reloads_total{outcome="failed"}"#),
        Some(1.0)
    );
    assert_eq!(metric(&text, "credbridge_token_reload_failing"), Some(1.0));
    // Nothing says what the operator meant: the tokens in force stay, the file one re-read.
    assert_eq!(status_with(app, &app.token).await, StatusCode::OK);
    let rewritten = std::fs::read_to_string(&reloadable.trigger).unwrap();
    assert_eq!(status_with(app, &rewritten).await, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_token_is_refused_and_others_still_work() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.auth.tokens.push(token_entry(
            "token = \"expired-token-0123456789\"\nscope = \"old\"\n\
             expires_at = \"2020-01-01T00:00:00Z\"",
        ));
        settings.auth.tokens.push(token_entry(
            "token = \"future-token-0123456789\"\nscope = \"new\"\n\
             expires_at = \"2999-01-01T00:00:00Z\"",
        ));
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
async fn a_valid_token_is_served_right_after_a_burst_of_failures_from_its_address() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.rate_limit = RateLimitSettings::default();
    })
    .await;
    let burst = RateLimitSettings::default().auth_failures_burst;
    for _ in 0..burst {
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
    assert_eq!(
        status_with(&app, "").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a request without any token counts as a failure too"
    );
    // Skyvern's valid token, from the same address (a sidecar shares it with every
    // process on the host), is judged by its own budget only.
    assert_eq!(status_with(&app, &app.token).await, StatusCode::OK);
    let id = app.create_ok(&secret()).await;
    app.read_ok(&id).await;
    // The failing client is still refused.
    assert_eq!(
        status_with(&app, "a-wrong-guess-0123456789").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Probes are not credential routes and stay reachable.
    let health = app.get_public("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
}

async fn status_from(app: &TestApp, token: &str, forwarded_for: &str) -> StatusCode {
    app.client
        .get(&app.base)
        .bearer_auth(token)
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_against_the_forwarded_client() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_path = audit.clone();
    let app = TestApp::spawn_with(memory(), move |settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.auth_failures_burst = 2;
        settings.rate_limit.auth_failures_per_minute = 1;
        settings.http.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
        settings.audit.output = AuditOutput::File(audit_path);
    })
    .await;
    // The client forged the first address; the proxy (this test, on loopback) appended
    // the one it saw.
    let noisy = "198.51.100.99, 203.0.113.1";
    for expected in [401, 401, 429] {
        assert_eq!(
            status_from(&app, "wrong-token-0123456789", noisy).await,
            expected
        );
    }
    // Another client behind the same proxy has a budget of its own.
    assert_eq!(
        status_from(&app, "wrong-token-0123456789", "203.0.113.2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_from(&app, &app.token, noisy).await, StatusCode::OK);
    let lines = audit_lines(&audit, 5).await;
    let clients: Vec<&str> = lines
        .iter()
        .map(|line| line["client"].as_str().unwrap())
        .collect();
    assert_eq!(
        clients,
        [
            "203.0.113.1",
            "203.0.113.1",
            "203.0.113.1",
            "203.0.113.2",
            "203.0.113.1"
        ]
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_addresses_are_ignored() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.auth_failures_burst = 2;
        settings.rate_limit.auth_failures_per_minute = 1;
    })
    .await;
    // Each request claims another address; all of them come from this test's address.
    for (forwarded, expected) in [
        ("203.0.113.1", 401),
        ("203.0.113.2", 401),
        ("203.0.113.3", 429),
    ] {
        assert_eq!(
            status_from(&app, "wrong-token-0123456789", forwarded).await,
            expected
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skyverns_bursts_stay_within_the_default_token_budget() {
    const BURST: usize = 200;
    let app = Arc::new(
        TestApp::spawn_with(memory(), |settings| {
            settings.rate_limit = RateLimitSettings::default();
        })
        .await,
    );
    let creates: Vec<_> = (0..BURST)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.create(&password()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for create in creates {
        let response = create.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let created: Value = response.json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let reads: Vec<_> = ids
        .iter()
        .map(|id| {
            let (app, id) = (Arc::clone(&app), id.clone());
            tokio::spawn(async move { app.read(&id).await.status() })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap(), StatusCode::OK);
    }
    let deletes: Vec<_> = ids
        .iter()
        .map(|id| {
            let (app, id) = (Arc::clone(&app), id.clone());
            tokio::spawn(async move { app.delete(&id).await.status() })
        })
        .collect();
    for delete in deletes {
        assert_eq!(delete.await.unwrap(), StatusCode::OK);
    }
    assert!(app.stored_ids().await.is_empty());
}

#[tokio::test]
async fn the_audit_log_has_a_line_per_operation_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit_path = path.clone();
    let app = TestApp::spawn_with(memory(), move |settings| {
        settings.audit.output = AuditOutput::File(audit_path);
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
    app.get_public("/healthz").await;

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

    let text = app.metrics().await;
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
    let response = off.get_public("/metrics").await;
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
    let response = app.get_public("/openapi.json").await;
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
