//! An operator's calls to a Vault, with a root token, over its HTTP API: what the tests
//! do to set a Vault up, and to read what credbridge left in it.

use serde_json::{json, Value};

/// A Vault's HTTP API with a root token, optionally in a namespace.
///
/// Holds its own HTTP client: make one per test, since a client's connections belong to
/// the runtime that opened them.
pub struct Admin {
    client: reqwest::Client,
    address: String,
    token: String,
    namespace: Option<String>,
}

impl Admin {
    pub fn new(address: &str, token: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            address: address.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            namespace: None,
        }
    }

    /// The same Vault, every call made in `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Self {
        Self {
            namespace: Some(namespace.to_owned()),
            ..Self::new(&self.address, &self.token)
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// `method /v1/path` with `body`; the status and the JSON answer (`null` when none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self
            .client
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.token);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("Vault at {} does not answer: {error}", self.address));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`Admin::call`], panicking unless Vault answers 2xx.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} on {}: {status} {answer}",
            self.address
        );
        answer
    }

    /// Like [`Admin::ok`], also accepting 400 "path is already in use": enabling what an
    /// earlier run (or test binary) already enabled.
    async fn enable(&self, path: &str, body: Value) {
        let (status, answer) = self.call("POST", path, Some(body)).await;
        let in_use = status == 400 && answer.to_string().contains("already in use");
        assert!(
            (200..300).contains(&status) || in_use,
            "POST {path} on {}: {status} {answer}",
            self.address
        );
    }

    /// Mounts a KV engine of `version` at `mount`, unless something is mounted there.
    pub async fn enable_kv(&self, mount: &str, version: u8) {
        let body = json!({"type": "kv", "options": {"version": version.to_string()}});
        self.enable(&format!("sys/mounts/{mount}"), body).await;
    }

    /// Enables the auth method `kind` at `mount`, unless something is enabled there.
    pub async fn enable_auth(&self, mount: &str, kind: &str) {
        self.enable(&format!("sys/auth/{mount}"), json!({"type": kind}))
            .await;
    }

    /// Creates a namespace (Vault Enterprise or OpenBao); creating it again is a no-op.
    pub async fn create_namespace(&self, name: &str) {
        self.ok("POST", &format!("sys/namespaces/{name}"), Some(json!({})))
            .await;
    }

    pub async fn delete_namespace(&self, name: &str) {
        self.ok("DELETE", &format!("sys/namespaces/{name}"), None)
            .await;
    }

    /// Writes `text` as a policy of a fresh name, and returns the name.
    pub async fn new_policy(&self, text: &str) -> String {
        let name = format!("credbridge-{}", crate::testkit::random_hex(6));
        self.write_policy(&name, text).await;
        name
    }

    /// A token issued with `settings` under a fresh policy that grants what credbridge's
    /// documented policy grants below `prefix` in the KV v2 mount `secret`: the policy's
    /// name (for a test to rewrite the policy under the token) and the token.
    pub async fn documented_token(&self, prefix: &str, settings: Value) -> (String, String) {
        let policy = self
            .new_policy(&super::documented_policy(2, "secret", prefix))
            .await;
        let token = self.create_token(&[&policy], settings).await;
        (policy, token)
    }

    pub async fn write_policy(&self, name: &str, text: &str) {
        self.ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": text })),
        )
        .await;
    }

    /// Writes the AppRole role `role` (at `auth/approle/`) with `settings` (such as
    /// `token_policies`, `token_ttl`, `token_max_ttl`) and returns its role id.
    pub async fn write_approle(&self, role: &str, settings: Value) -> String {
        let path = format!("auth/approle/role/{role}");
        self.ok("POST", &path, Some(settings)).await;
        self.role_id(role).await
    }

    /// The role id of the AppRole role `role`.
    pub async fn role_id(&self, role: &str) -> String {
        let path = format!("auth/approle/role/{role}/role-id");
        let answer = self.ok("GET", &path, None).await;
        answer["data"]["role_id"]
            .as_str()
            .expect("a role id")
            .to_owned()
    }

    /// A fresh secret id for `role`.
    pub async fn secret_id(&self, role: &str) -> String {
        let path = format!("auth/approle/role/{role}/secret-id");
        let answer = self.ok("POST", &path, Some(json!({}))).await;
        answer["data"]["secret_id"]
            .as_str()
            .expect("a secret id")
            .to_owned()
    }

    /// A token with `policies` (and Vault's `default`), as `auth/token/create` issues it
    /// with `settings` such as `ttl` and `renewable`.
    pub async fn create_token(&self, policies: &[&str], settings: Value) -> String {
        let mut body = settings;
        body["policies"] = json!(policies);
        let answer = self.ok("POST", "auth/token/create", Some(body)).await;
        answer["auth"]["client_token"]
            .as_str()
            .expect("a client token")
            .to_owned()
    }

    pub async fn revoke_token(&self, token: &str) {
        self.ok("POST", "auth/token/revoke", Some(json!({ "token": token })))
            .await;
    }

    /// The fields of the latest version of the secret at `mount/path`, as an operator
    /// reads it; `None` when nothing readable is there.
    pub async fn read_secret(&self, mount: &str, kv_version: u8, path: &str) -> Option<Value> {
        let url = secret_url(mount, kv_version, path);
        match self.call("GET", &url, None).await {
            (200, answer) if kv_version == 2 => Some(answer["data"]["data"].clone()),
            (200, answer) => Some(answer["data"].clone()),
            (404, _) => None,
            (status, answer) => panic!("GET {url}: {status} {answer}"),
        }
    }

    /// Writes `fields` as the latest version of the secret at `mount/path`, as an operator
    /// does.
    pub async fn write_secret(&self, mount: &str, kv_version: u8, path: &str, fields: Value) {
        let body = match kv_version {
            2 => json!({ "data": fields }),
            _ => fields,
        };
        self.ok("POST", &secret_url(mount, kv_version, path), Some(body))
            .await;
    }
}

/// Where the HTTP API keeps the secret at `mount/path` of a KV engine of `kv_version`.
fn secret_url(mount: &str, kv_version: u8, path: &str) -> String {
    match kv_version {
        2 => format!("{mount}/data/{path}"),
        _ => format!("{mount}/{path}"),
    }
}
