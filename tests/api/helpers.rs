//! Shared test helpers: spawn the app, one call per endpoint, error-body assertions.

use std::net::SocketAddr;
use std::sync::Arc;

use credbridge::config::{ScopeReferences, TokenEntry};
use credbridge::{App, Settings};
use credbridge_adapters::testkit::unique_scope;
use credbridge_adapters::{Backend, Scope};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// A running app with two tokens, each in a scope of its own.
pub struct TestApp {
    pub address: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub scope: Scope,
    pub other_token: String,
    pub backend: Arc<dyn Backend>,
}

impl TestApp {
    pub async fn spawn(backend: Arc<dyn Backend>) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with the test settings, changed by `configure` first.
    pub async fn spawn_with(
        backend: Arc<dyn Backend>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_built(backend, configure, |settings, backend| {
            App::with_backend(settings, backend).expect("the app builds")
        })
        .await
    }

    /// Like [`TestApp::spawn_with`], with the app made by `build` from the settings.
    pub async fn spawn_built(
        backend: Arc<dyn Backend>,
        configure: impl FnOnce(&mut Settings),
        build: impl FnOnce(&Settings, Arc<dyn Backend>) -> App,
    ) -> Self {
        let (scope, other_scope) = (unique_scope(), unique_scope());
        // Both scopes are fresh, so tests can share one backend server.
        let token = format!("token-{}", scope.as_str());
        let other_token = format!("token-{}", other_scope.as_str());
        let mut settings = settings_from(&format!(
            "[[auth.tokens]]\ntoken = \"{token}\"\nscope = \"{scope}\"\n\
             [[auth.tokens]]\ntoken = \"{other_token}\"\nscope = \"{other_scope}\"\n\
             # The contract cases make many failed attempts from one address; the limits\n\
             # have tests of their own.\n\
             [rate_limit]\nenabled = false\n"
        ));
        configure(&mut settings);
        settings.validate().expect("test settings are valid");
        let app = build(&settings, Arc::clone(&backend));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(app.serve(listener, std::future::pending()));
        Self {
            address,
            base: format!("http://{address}{}", settings.base_path),
            client: reqwest::Client::new(),
            token,
            scope,
            other_token,
            backend,
        }
    }

    /// A request with this app's token.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }

    /// A request with the other scope's token.
    pub fn request_as_other(&self, method: Method, url: &str) -> RequestBuilder {
        self.client
            .request(method, url)
            .bearer_auth(&self.other_token)
    }

    pub fn item_url(&self, id: &str) -> String {
        format!("{}/{id}", self.base)
    }

    pub async fn create(&self, body: &Value) -> Response {
        self.request(Method::POST, &self.base)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates and returns the new id, asserting success.
    pub async fn create_ok(&self, body: &Value) -> String {
        let response = self.create(body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().expect("an id").to_owned()
    }

    pub async fn read(&self, id: &str) -> Response {
        self.request(Method::GET, &self.item_url(id))
            .send()
            .await
            .unwrap()
    }

    /// Reads and returns the body, asserting success.
    pub async fn read_ok(&self, id: &str) -> Value {
        let response = self.read(id).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_json(&response);
        response.json().await.unwrap()
    }

    pub async fn delete(&self, id: &str) -> Response {
        self.request(Method::DELETE, &self.item_url(id))
            .send()
            .await
            .unwrap()
    }

    pub async fn connection_test(&self) -> Response {
        self.request(Method::GET, &self.base).send().await.unwrap()
    }

    /// `GET path` without a token, as probes and scrapers call `/healthz`, `/readyz`,
    /// `/metrics` and `/openapi.json`.
    pub async fn get_public(&self, path: &str) -> Response {
        self.client
            .get(format!("http://{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// `GET /readyz`: its status and JSON body.
    pub async fn readyz(&self) -> (StatusCode, Value) {
        let response = self.get_public("/readyz").await;
        (response.status(), response.json().await.unwrap())
    }

    /// The `/metrics` text (metrics must be enabled, without a scrape token).
    pub async fn metrics(&self) -> String {
        let response = self.get_public("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// The ids stored in this app's scope, straight from the backend.
    pub async fn stored_ids(&self) -> Vec<String> {
        let ids = self.backend.list(&self.scope).await.unwrap();
        ids.into_iter().map(|id| id.to_string()).collect()
    }
}

pub fn assert_json(response: &Response) {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}"
    );
}

/// The app on a Vault backend for `config`, once it has connected.
#[cfg(feature = "vault")]
pub async fn spawn_on_vault(config: &credbridge_adapters::vault::VaultConfig) -> TestApp {
    let backend = credbridge_adapters::testkit::vault::connected(config).await;
    TestApp::spawn(Arc::new(backend)).await
}

/// Asserts the status and the `{"error", "message"}` body; returns the message.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status, "status");
    assert_json(&response);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}

pub fn password() -> Value {
    json!({
        "name": "shop login",
        "type": "password",
        "username": "ada@example.com",
        "password": "correct horse battery staple",
        "totp": "JBSWY3DPEHPK3PXP",
        "totp_type": "authenticator",
    })
}

pub fn credit_card() -> Value {
    json!({
        "name": "company card",
        "type": "credit_card",
        "card_holder_name": "Ada Lovelace",
        "card_number": "4111111111111111",
        "card_exp_month": "07",
        "card_exp_year": "2031",
        "card_cvv": "737",
        "card_brand": "visa",
        "billing_address": {
            "line1": "12 Analytical Row", "line2": null, "city": "London", "state": "Greater London",
            "state_code": "LND", "postal_code": "N1 9GU", "country": "United Kingdom", "country_code": "GB"
        },
        "billing_email": "billing@example.com",
        "billing_phone": "+44 20 7946 0000",
        "metadata": {"cost_center": "R&D", "owner": "ada"},
    })
}

pub fn secret() -> Value {
    json!({
        "name": "api key",
        "type": "secret",
        "secret_value": "sk_live_0123456789abcdef",
        "secret_label": "Stripe",
    })
}

/// Settings with `token` as their one token, in the default scope, as `CREDBRIDGE_TOKEN`
/// gives it.
pub fn one_token_settings(token: &str) -> Settings {
    settings_from(&format!("token = \"{token}\"\n"))
}

/// Serves `app` on a free loopback port, in the background, for the rest of the test;
/// returns the address.
pub async fn serve(app: App) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, std::future::pending()));
    address
}

/// An answer to [`send_raw`], as received.
pub struct RawResponse {
    /// 0 when the answer does not start with a status line.
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// Sends one HTTP/1.1 request byte for byte over a fresh connection, closed after it (an
/// HTTP client would normalize `..` and `.` away, and refuse to send what is malformed),
/// and reads the answer to its end.
pub async fn send_raw(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let status = String::from_utf8_lossy(&response)
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = match response.windows(4).position(|window| window == b"\r\n\r\n") {
        Some(at) => (&response[..at], response[at + 4..].to_vec()),
        None => (&response[..], Vec::new()),
    };
    RawResponse {
        status,
        head: String::from_utf8_lossy(head).into_owned(),
        body,
    }
}

/// Sends `method path` with this app's token as [`send_raw`] does, and returns the status
/// and the JSON body, asserting the answer is JSON.
pub async fn raw_request(app: &TestApp, method: &str, path: &str) -> (u16, Value) {
    let authorization = format!("Bearer {}", app.token);
    let response = send_raw(
        app.address,
        method,
        path,
        &[("authorization", &authorization)],
        b"",
    )
    .await;
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        response.head
    );
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

/// The settings a configuration file holding `toml` gives (with the environment left out).
pub fn settings_from(toml: &str) -> Settings {
    Settings::from_toml(toml).expect("the test configuration is valid")
}

/// One `[[auth.tokens]]` entry, read from its keys as a configuration file holds them.
pub fn token_entry(keys: &str) -> TokenEntry {
    settings_from(&format!("[[auth.tokens]]\n{keys}"))
        .auth
        .tokens
        .remove(0)
}

/// Lets the scope of the `index`th test token (0: `token`, 1: `other_token`) reference
/// entries matching `patterns`.
pub fn allow_references(settings: &mut Settings, index: usize, patterns: &[String]) {
    let scope = settings.auth.tokens[index].scope().expect("a scope");
    settings.references.scopes.insert(
        scope.to_string(),
        ScopeReferences {
            allow: patterns.to_vec(),
        },
    );
}

/// Reads the audit file until it has `lines` lines (the writer is asynchronous; the
/// machine may be loaded).
pub async fn audit_lines(path: &std::path::Path, lines: usize) -> Vec<Value> {
    credbridge_adapters::testkit::eventually(
        std::time::Duration::from_secs(30),
        "the audit lines are written",
        || async {
            let parsed: Vec<Value> = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(|line| serde_json::from_str(line).expect("each audit line is JSON"))
                .collect();
            (parsed.len() >= lines).then_some(parsed)
        },
    )
    .await
}

/// `GET /readyz` as the backend stands now: the status and the JSON body. The check result
/// is shared for an interval, so this waits one interval first, for a fresh check.
pub async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    tokio::time::sleep(credbridge::api::SharedCheck::INTERVAL).await;
    let response = app.get_public("/readyz").await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The value of the metric line that starts with `series` (name and labels), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}
