//! Behaviour of the service itself, whatever the backend: start-up rules, timeouts, the
//! mapping of backend failures to statuses, headers. Uses a scripted backend double.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use credbridge::app::StartupError;
use credbridge::config::AuditOutput;
use credbridge::{App, Settings};
use credbridge_adapters::memory::{MemoryBackend, MemoryConfig};
use credbridge_adapters::testkit::{document, eventually};
use credbridge_adapters::{
    Backend, BackendInfo, Capabilities, CredentialId, Document, Error, ErrorKind, Key,
    ReferenceTarget, ReferencedEntry, Scope,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::helpers::{
    allow_references, assert_error, audit_lines, password, readyz, secret, TestApp,
};

/// A memory backend that can be told to fail, to stall, or to claim persistence.
#[derive(Default)]
struct ScriptedBackend {
    inner: MemoryBackend,
    fail_with: Option<ErrorKind>,
    delay: Duration,
    persistent: bool,
}

impl ScriptedBackend {
    async fn script(&self) -> credbridge_adapters::Result<()> {
        tokio::time::sleep(self.delay).await;
        match self.fail_with {
            Some(kind) => Err(Error::new(
                kind,
                "scripted failure at vault path secret/data/x",
            )),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Backend for ScriptedBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "memory",
            capabilities: Capabilities {
                persistent: self.persistent,
                shared: false,
            },
        }
    }
    async fn put(&self, key: &Key, document: &Document) -> credbridge_adapters::Result<()> {
        self.script().await?;
        self.inner.put(key, document).await
    }
    async fn get(&self, key: &Key) -> credbridge_adapters::Result<Document> {
        self.script().await?;
        self.inner.get(key).await
    }
    async fn delete(&self, key: &Key) -> credbridge_adapters::Result<()> {
        self.script().await?;
        self.inner.delete(key).await
    }
    async fn list(&self, scope: &Scope) -> credbridge_adapters::Result<Vec<CredentialId>> {
        self.inner.list(scope).await
    }
    async fn check(&self) -> credbridge_adapters::Result<()> {
        self.script().await
    }
    fn owns(&self, target: &ReferenceTarget) -> bool {
        self.inner.owns(target)
    }
    async fn read_reference(
        &self,
        target: &ReferenceTarget,
    ) -> credbridge_adapters::Result<ReferencedEntry> {
        self.script().await?;
        self.inner.read_reference(target).await
    }
}

fn failing(kind: ErrorKind) -> Arc<dyn Backend> {
    Arc::new(ScriptedBackend {
        fail_with: Some(kind),
        ..ScriptedBackend::default()
    })
}

#[tokio::test]
async fn backend_failures_map_to_502_or_503_with_a_generic_message() {
    let cases = [
        (
            ErrorKind::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_unavailable",
        ),
        (
            ErrorKind::PermissionDenied,
            StatusCode::BAD_GATEWAY,
            "backend_permission_denied",
        ),
        (
            ErrorKind::Unexpected,
            StatusCode::BAD_GATEWAY,
            "backend_error",
        ),
        (
            ErrorKind::AlreadyExists,
            StatusCode::BAD_GATEWAY,
            "backend_error",
        ),
    ];
    for (kind, status, code) in cases {
        let app = TestApp::spawn(failing(kind)).await;
        let id = "cred_00000000000000000000000000000000";
        for response in [
            app.create(&secret()).await,
            app.read(id).await,
            app.delete(id).await,
        ] {
            let message = assert_error(response, status, code).await;
            assert!(
                !message.contains("secret/data"),
                "backend detail leaked: {message}"
            );
        }
    }
}

#[tokio::test]
async fn permission_denied_says_so_to_the_user() {
    let app = TestApp::spawn(failing(ErrorKind::PermissionDenied)).await;
    let message = assert_error(
        app.create(&password()).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert!(
        message.contains("Permission was denied on the credential backend"),
        "{message}"
    );
}

#[tokio::test]
async fn unavailable_answers_carry_retry_after() {
    let app = TestApp::spawn(failing(ErrorKind::Unavailable)).await;
    let response = app.read("cred_1").await;
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn a_stalled_backend_gets_503_within_the_request_timeout() {
    let backend = Arc::new(ScriptedBackend {
        delay: Duration::from_secs(30),
        ..ScriptedBackend::default()
    });
    let app = TestApp::spawn_with(backend, |settings| {
        settings.http.request_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    assert_error(
        app.read("cred_1").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
    )
    .await;
    // Far below the backend's 30 s stall: the timeout, not the backend, ended the request.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn readiness_and_connection_test_fail_when_the_backend_check_fails() {
    let app = TestApp::spawn(failing(ErrorKind::Unavailable)).await;
    let response = app.get_public("/readyz").await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_error(
        app.connection_test().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    let response = app.get_public("/healthz").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "liveness does not depend on the backend"
    );
}

#[tokio::test]
async fn a_failed_readiness_check_names_the_backend_and_reports_the_tokens_without_retry_after() {
    let app = TestApp::spawn(failing(ErrorKind::Unavailable)).await;
    let response = app.get_public("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{response:?}"
    );
    // A probe is not a client to slow down: no Retry-After, unlike a credential call's 503.
    assert!(
        response.headers().get("retry-after").is_none(),
        "{response:?}"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(
            r#"{"error":"not_ready","message":"The memory backend is not ready: scripted failure at vault path secret/data/x.","backend":"memory","tokens":{"last_reload":"#
        ),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["tokens"]["reload_failing"], false, "{body}");
}

#[tokio::test]
async fn a_backend_check_failing_with_not_found_is_never_a_404() {
    // A backend's 404 during its check means an endpoint or namespace is missing, not a
    // credential: the connection test must not read as "no credential with this id".
    let app = TestApp::spawn(failing(ErrorKind::NotFound)).await;
    let message = assert_error(
        app.connection_test().await,
        StatusCode::BAD_GATEWAY,
        "backend_error",
    )
    .await;
    assert!(message.contains("not ready"), "{message}");
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "not_ready");
}

#[tokio::test]
async fn a_persistent_backend_without_a_token_refuses_to_start() {
    let backend = Arc::new(ScriptedBackend {
        persistent: true,
        ..ScriptedBackend::default()
    });
    match App::with_backend(&Settings::default(), backend) {
        Err(StartupError::NoToken(kind)) => assert_eq!(kind, "memory"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started without a token"),
    }
}

#[tokio::test]
async fn the_memory_backend_without_a_token_generates_one_that_works() {
    let app = App::with_backend(&Settings::default(), Arc::new(MemoryBackend::default())).unwrap();
    let token = app
        .generated_token()
        .expect("a generated token")
        .expose()
        .to_owned();
    assert!(token.len() >= 64);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}/api/v1/credentials",
        listener.local_addr().unwrap()
    );
    tokio::spawn(app.serve(listener, std::future::pending()));
    let client = reqwest::Client::new();
    let ok = client.get(&base).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = client
        .get(&base)
        .bearer_auth("some-other-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stored_document_that_breaks_the_contract_is_502() {
    let backend = Arc::new(MemoryBackend::default());
    let app = TestApp::spawn(backend.clone()).await;
    let id = CredentialId::parse("cred_hand_edited").unwrap();
    let broken = document(json!({"name": "n", "type": "password", "username": 5, "password": "p"}));
    backend
        .put(&Key::new(app.scope.clone(), id.clone()), &broken)
        .await
        .unwrap();
    assert_error(
        app.read(id.as_str()).await,
        StatusCode::BAD_GATEWAY,
        "backend_malformed",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn(Arc::new(MemoryBackend::default())).await;
    let response = app
        .request(Method::GET, &format!("http://{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "unknown_route").await;
    let response = app
        .request(Method::PUT, &app.base)
        .json(&secret())
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let response = app
        .request(Method::POST, &app.item_url("cred_1"))
        .json(&secret())
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn responses_are_never_cached_and_carry_a_request_id() {
    let app = TestApp::spawn(Arc::new(MemoryBackend::default())).await;
    let id = app.create_ok(&secret()).await;
    for response in [
        app.read(&id).await,
        app.read("cred_missing").await,
        app.connection_test().await,
    ] {
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(!response.headers()["x-request-id"].is_empty());
    }
    let response = app
        .request(Method::GET, &app.item_url(&id))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn a_long_or_unusual_client_request_id_is_replaced_by_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_path = audit.clone();
    let app = TestApp::spawn_with(Arc::new(MemoryBackend::default()), move |settings| {
        settings.audit.output = AuditOutput::File(audit_path);
    })
    .await;
    let (longest, too_long) = ("r".repeat(64), "r".repeat(65));
    let cases = [
        (longest.as_str(), true),
        ("svc:req-1.2_3", true),
        (too_long.as_str(), false),
        ("has space", false),
        ("quote\"", false),
        ("<script>", false),
    ];
    let mut echoed = Vec::new();
    for (sent, kept) in cases {
        let response = app
            .request(Method::GET, &app.base)
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id == sent, kept, "{sent:?} answered as {id:?}");
        assert!(!id.is_empty() && id.len() <= 64, "{id:?}");
        echoed.push(id);
    }
    // The audit line carries the id the response did, never the refused one.
    let logged: Vec<String> = audit_lines(&audit, cases.len())
        .await
        .iter()
        .map(|line| line["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, echoed);
}

#[tokio::test]
async fn head_on_credential_routes_is_refused_unaudited_and_probes_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_path = audit.clone();
    let backend = Arc::new(CheckCounting::default());
    let app = TestApp::spawn_with(backend.clone(), move |settings| {
        settings.audit.output = AuditOutput::File(audit_path);
    })
    .await;
    let id = app.create_ok(&secret()).await;
    for url in [app.base.clone(), app.item_url(&id)] {
        let response = app.request(Method::HEAD, &url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{url}");
    }
    assert_eq!(
        backend.reads.load(Ordering::SeqCst),
        0,
        "HEAD read a credential"
    );
    assert_eq!(
        backend.checks.load(Ordering::SeqCst),
        0,
        "HEAD ran the connection test"
    );
    backend.open.add_permits(1000);
    for probe in ["/healthz", "/readyz"] {
        let response = app
            .client
            .head(format!("http://{}{probe}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
    // The create is the only credential operation the audit log saw.
    app.read_ok(&id).await;
    let lines: Vec<Value> = audit_lines(&audit, 2)
        .await
        .iter()
        .map(|line| line["operation"].clone())
        .collect();
    assert_eq!(lines, [json!("create"), json!("read")]);
}

/// A memory backend that counts reads and checks; checks wait until `open` has permits.
struct CheckCounting {
    inner: MemoryBackend,
    reads: AtomicUsize,
    checks: AtomicUsize,
    open: Semaphore,
}

impl Default for CheckCounting {
    fn default() -> Self {
        Self {
            inner: MemoryBackend::default(),
            reads: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            open: Semaphore::new(0),
        }
    }
}

#[async_trait]
impl Backend for CheckCounting {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
    async fn put(&self, key: &Key, document: &Document) -> credbridge_adapters::Result<()> {
        self.inner.put(key, document).await
    }
    async fn get(&self, key: &Key) -> credbridge_adapters::Result<Document> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &Key) -> credbridge_adapters::Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, scope: &Scope) -> credbridge_adapters::Result<Vec<CredentialId>> {
        self.inner.list(scope).await
    }
    async fn check(&self) -> credbridge_adapters::Result<()> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        drop(self.open.acquire().await);
        Ok(())
    }
    fn owns(&self, target: &ReferenceTarget) -> bool {
        self.inner.owns(target)
    }
    async fn read_reference(
        &self,
        target: &ReferenceTarget,
    ) -> credbridge_adapters::Result<ReferencedEntry> {
        self.inner.read_reference(target).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_connection_tests_share_one_backend_check() {
    const CALLERS: usize = 100;
    let backend = Arc::new(CheckCounting::default());
    let app = Arc::new(
        TestApp::spawn_with(backend.clone(), |settings| {
            settings.metrics.enabled = true;
        })
        .await,
    );
    let callers: Vec<_> = (0..CALLERS)
        .map(|n| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                if n % 2 == 0 {
                    app.readyz().await.0
                } else {
                    app.connection_test().await.status()
                }
            })
        })
        .collect();
    // The check is held until every caller's connection is open (the scrape adds one),
    // so that all of them arrive while it runs.
    let scraper = reqwest::Client::new();
    let metrics_url = format!("http://{}/metrics", app.address);
    eventually(Duration::from_secs(30), "every caller is connected", || {
        let (scraper, url) = (scraper.clone(), metrics_url.clone());
        async move {
            let text = scraper
                .get(&url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            crate::helpers::metric(&text, "credbridge_http_connections")
                .is_some_and(|open| open >= (CALLERS + 1) as f64)
                .then_some(())
        }
    })
    .await;
    backend.open.add_permits(CALLERS);
    for caller in callers {
        assert_eq!(caller.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(backend.checks.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_full_memory_backend_answers_507_and_stores_nothing() {
    let backend = Arc::new(MemoryBackend::new(MemoryConfig { max_credentials: 2 }));
    let app = TestApp::spawn(backend).await;
    app.create_ok(&secret()).await;
    let kept = app.create_ok(&password()).await;
    let message = assert_error(
        app.create(&secret()).await,
        StatusCode::INSUFFICIENT_STORAGE,
        "backend_full",
    )
    .await;
    assert!(message.contains("delete credentials"), "{message}");
    assert_eq!(app.stored_ids().await.len(), 2);
    assert_eq!(app.delete(&kept).await.status(), StatusCode::OK);
    app.create_ok(&secret()).await;
}

#[tokio::test]
async fn a_configured_base_path_moves_the_routes() {
    let app = TestApp::spawn_with(Arc::new(MemoryBackend::default()), |settings| {
        settings.base_path = "/skyvern/creds".to_owned();
    })
    .await;
    assert!(app.base.ends_with("/skyvern/creds"));
    let id = app.create_ok(&secret()).await;
    let read: Value = app.read_ok(&id).await;
    assert_eq!(read["secret_value"], "sk_live_0123456789abcdef");
    let old = app
        .request(
            Method::GET,
            &format!("http://{}/api/v1/credentials", app.address),
        )
        .send()
        .await
        .unwrap();
    assert_error(old, StatusCode::NOT_FOUND, "unknown_route").await;
}

/// A backend that stores in memory, says it is Vault, and answers reference reads as
/// scripted: failures a real Vault cannot be made to give for one path while it serves
/// another.
#[derive(Default)]
struct ReferenceDouble {
    inner: MemoryBackend,
    answer: std::sync::Mutex<Option<ErrorKind>>,
}

impl ReferenceDouble {
    fn answer_with(&self, failure: Option<ErrorKind>) {
        *self.answer.lock().unwrap() = failure;
    }
}

#[async_trait]
impl Backend for ReferenceDouble {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "vault",
            capabilities: Capabilities {
                persistent: false,
                shared: false,
            },
        }
    }
    async fn put(&self, key: &Key, document: &Document) -> credbridge_adapters::Result<()> {
        self.inner.put(key, document).await
    }
    async fn get(&self, key: &Key) -> credbridge_adapters::Result<Document> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &Key) -> credbridge_adapters::Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, scope: &Scope) -> credbridge_adapters::Result<Vec<CredentialId>> {
        self.inner.list(scope).await
    }
    async fn check(&self) -> credbridge_adapters::Result<()> {
        Ok(())
    }
    fn owns(&self, _target: &ReferenceTarget) -> bool {
        false
    }
    async fn read_reference(
        &self,
        _target: &ReferenceTarget,
    ) -> credbridge_adapters::Result<ReferencedEntry> {
        match *self.answer.lock().unwrap() {
            Some(kind) => Err(Error::new(kind, "scripted failure at secret/data/apps/x")),
            None => Ok(ReferencedEntry::from_fields(
                json!({"password": "Scripted-Pw"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )),
        }
    }
}

async fn spawn_allowing_apps(backend: Arc<dyn Backend>) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        allow_references(settings, 0, &["secret/apps/*".to_owned()]);
    })
    .await
}

fn referencing(path: &str) -> Value {
    json!({"name": "n", "type": "password", "username": "ada",
           "password": format!("ref+vault://secret/apps/{path}#password")})
}

#[tokio::test]
async fn a_failing_reference_read_is_503_when_retryable_else_502_at_create_and_read() {
    let double = Arc::new(ReferenceDouble::default());
    let app = spawn_allowing_apps(Arc::clone(&double) as Arc<dyn Backend>).await;

    double.answer_with(Some(ErrorKind::Unavailable));
    let response = app.create(&referencing("x")).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    double.answer_with(Some(ErrorKind::Unexpected));
    let message = assert_error(
        app.create(&referencing("x")).await,
        StatusCode::BAD_GATEWAY,
        "backend_error",
    )
    .await;
    assert!(!message.contains("secret/data"), "{message}");
    assert!(app.stored_ids().await.is_empty());

    double.answer_with(None);
    let id = app.create_ok(&referencing("x")).await;
    assert_eq!(app.read_ok(&id).await["password"], "Scripted-Pw");
    double.answer_with(Some(ErrorKind::Unavailable));
    assert_error(
        app.read(&id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    for (kind, says) in [
        (
            ErrorKind::Unexpected,
            "the backend failed; see credbridge's log",
        ),
        (ErrorKind::PermissionDenied, "credbridge may not read it"),
        (ErrorKind::NotFound, "scripted failure"),
    ] {
        double.answer_with(Some(kind));
        let message = assert_error(
            app.read(&id).await,
            StatusCode::BAD_GATEWAY,
            "reference_unresolved",
        )
        .await;
        assert!(message.contains(says), "{kind}: {message}");
        assert!(
            message.contains("ref+vault://secret/apps/x#password"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_credential_may_reference_at_most_16_entries() {
    let app = spawn_allowing_apps(Arc::new(ReferenceDouble::default())).await;
    let mut body = json!({"name": "n", "type": "secret", "secret_value": "v"});
    for entry in 0..16 {
        body[format!("extra_{entry:02}")] =
            json!(format!("ref+vault://secret/apps/e{entry}#password"));
    }
    app.create_ok(&body).await;
    body["extra_16"] = json!("ref+vault://secret/apps/e16#password");
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.starts_with("field `extra_16`: "), "{message}");
    assert!(message.contains("at most 16 distinct entries"), "{message}");
}

#[tokio::test]
async fn the_memory_backend_cannot_read_references() {
    let app = spawn_allowing_apps(Arc::new(MemoryBackend::default())).await;
    let message = assert_error(
        app.create(&referencing("x")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(
        message.contains("stores credentials in the 'memory' backend, which cannot read"),
        "{message}"
    );
}
