//! The double against Vault's API documentation, one documented behaviour per test.
//! References are to <https://developer.hashicorp.com/vault/api-docs>.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::VaultDouble;

struct Api {
    double: VaultDouble,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Self {
        Self {
            double: VaultDouble::start().await,
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.double.address());
        let mut request = self.client.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn root(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let root = self.double.root_token();
        self.call(method, path, Some(&root), body).await
    }

    async fn kubernetes_login(&self, role: &str, jwt: &str) -> String {
        let body = json!({"role": role, "jwt": jwt});
        let (status, login) = self
            .call("POST", "auth/kubernetes/login", None, Some(body))
            .await;
        assert_eq!(status, 200, "{login}");
        login["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}

fn assert_envelope(body: &Value) {
    for field in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(body.get(field).is_some(), "no `{field}` in {body}");
    }
}

/// secret/kv/kv-v2 "Create/Update secret": `options.cas = 0` writes only when the key does
/// not exist; otherwise 400 "check-and-set parameter did not match the current version".
#[tokio::test]
async fn kv2_cas_zero_creates_once_then_is_400() {
    let api = Api::start().await;
    let body = json!({"options": {"cas": 0}, "data": {"type": "secret"}});
    let (status, created) = api
        .root("POST", "secret/data/a/b", Some(body.clone()))
        .await;
    assert_eq!(status, 200);
    assert_envelope(&created);
    assert_eq!(created["data"]["version"], 1);
    let (status, refused) = api.root("POST", "secret/data/a/b", Some(body)).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["errors"][0],
        "check-and-set parameter did not match the current version"
    );
}

/// kv-v2 "Read secret version": 200 with `data.data` and `data.metadata`; 404 with
/// `{"errors": []}` for a missing path.
#[tokio::test]
async fn kv2_read_returns_data_and_metadata_and_404_when_missing() {
    let api = Api::start().await;
    api.root("POST", "secret/data/x", Some(json!({"data": {"k": "v"}})))
        .await;
    let (status, read) = api.root("GET", "secret/data/x", None).await;
    assert_eq!(status, 200);
    assert_envelope(&read);
    assert_eq!(read["data"]["data"], json!({"k": "v"}));
    assert_eq!(read["data"]["metadata"]["version"], 1);
    assert_eq!(read["data"]["metadata"]["deletion_time"], "");
    let (status, missing) = api.root("GET", "secret/data/nothing", None).await;
    assert_eq!((status, missing), (404, json!({"errors": []})));
}

/// kv-v2 "Delete metadata and all versions" (204, also for a missing key) removes the key:
/// it reads 404 again and can be created anew with `cas = 0`.
#[tokio::test]
async fn kv2_delete_metadata_removes_the_secret() {
    let api = Api::start().await;
    let create = json!({"options": {"cas": 0}, "data": {"k": "v"}});
    api.root("POST", "secret/data/p/x", Some(create.clone()))
        .await;
    assert_eq!(api.root("DELETE", "secret/metadata/p/x", None).await.0, 204);
    assert_eq!(api.root("DELETE", "secret/metadata/p/x", None).await.0, 204);
    assert_eq!(
        api.root("GET", "secret/data/p/x", None).await,
        (404, json!({"errors": []}))
    );
    assert_eq!(
        api.root("POST", "secret/data/p/x", Some(create)).await.0,
        200
    );
}

/// A request without a token, with an unknown one, or with one that has ended, is 403
/// "permission denied".
#[tokio::test]
async fn missing_unknown_and_ended_tokens_are_403() {
    let api = Api::start().await;
    api.double
        .add_kubernetes_role("kubernetes", "app", "jwt-1", Duration::from_secs(60));
    let token = api.kubernetes_login("app", "jwt-1").await;
    let denied = (403, json!({"errors": ["permission denied"]}));
    assert_eq!(api.call("GET", "secret/data/x", None, None).await, denied);
    let unknown = Some("hvs.unknown");
    assert_eq!(
        api.call("GET", "secret/data/x", unknown, None).await,
        denied
    );
    // Alive, the token reads (nothing there: 404); ended, it is refused.
    assert_eq!(
        api.call("GET", "secret/data/x", Some(&token), None).await.0,
        404
    );
    api.double.expire_logins("kubernetes");
    assert_eq!(
        api.call("GET", "secret/data/x", Some(&token), None).await,
        denied
    );
}

/// auth/kubernetes "Login": a token in `auth` for the role's JWT; another JWT is 403, an
/// unknown role 400.
#[tokio::test]
async fn kubernetes_login_issues_a_token_for_the_roles_jwt_only() {
    let api = Api::start().await;
    api.double
        .add_kubernetes_role("kubernetes", "app", "jwt-1", Duration::from_secs(60));
    let (status, login) = api
        .call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({"role": "app", "jwt": "jwt-1"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_envelope(&login);
    assert_eq!(login["auth"]["lease_duration"], 60);
    assert_eq!(login["auth"]["renewable"], true);
    for (role, jwt, status) in [("app", "jwt-2", 403), ("other", "jwt-1", 400)] {
        let body = json!({"role": role, "jwt": jwt});
        let answer = api
            .call("POST", "auth/kubernetes/login", None, Some(body))
            .await;
        assert_eq!(answer.0, status, "{role} {jwt}");
    }
    assert_eq!(api.double.logins("kubernetes"), 1);
}

/// auth/token "Lookup a token (self)" reports the remaining `ttl`; "Renew a token (self)"
/// extends it up to the max TTL, with a warning when capped.
#[tokio::test]
async fn token_lookup_and_renewal_up_to_the_max_ttl() {
    let api = Api::start().await;
    api.double
        .add_kubernetes_role("kubernetes", "app", "jwt-1", Duration::from_secs(30));
    let token = api.kubernetes_login("app", "jwt-1").await;
    let (status, lookup) = api
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(lookup["data"]["ttl"], 30);
    assert_eq!(lookup["data"]["renewable"], true);
    let (status, renewed) = api
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&token),
            Some(json!({"increment": "100000s"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        renewed["auth"]["lease_duration"], 300,
        "capped at the max TTL, ten times the TTL"
    );
    assert!(renewed["warnings"].is_array());
    assert_eq!(api.double.renewals(), 1);
}

/// sys/health answers 200 without a token; sys/capabilities-self reports `root` for every
/// path, since every token of the double may do everything.
#[tokio::test]
async fn health_and_capabilities() {
    let api = Api::start().await;
    assert_eq!(api.call("GET", "sys/health", None, None).await.0, 200);
    let (status, capabilities) = api
        .root(
            "POST",
            "sys/capabilities-self",
            Some(json!({"paths": ["secret/data/a"]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(capabilities["data"]["capabilities"], json!(["root"]));
    assert_eq!(capabilities["data"]["secret/data/a"], json!(["root"]));
}

/// The double can stop listening (connections refused) and listen again on the same port,
/// keeping its state.
#[tokio::test]
async fn stop_refuses_connections_and_resume_keeps_state() {
    let api = Api::start().await;
    api.root("POST", "secret/data/x", Some(json!({"data": {"k": "v"}})))
        .await;
    api.double.stop().await;
    let url = format!("{}/v1/sys/health", api.double.address());
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    api.double.resume().await;
    assert_eq!(api.root("GET", "secret/data/x", None).await.0, 200);
}

/// With a delay set, no answer comes sooner.
#[tokio::test]
async fn a_delay_holds_every_answer() {
    let api = Api::start().await;
    api.double.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(api.call("GET", "sys/health", None, None).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
