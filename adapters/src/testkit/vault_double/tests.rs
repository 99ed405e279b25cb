//! The double against Vault's API documentation, one documented behaviour per test.
//! References are to <https://developer.hashicorp.com/vault/api-docs>.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Policy, TokenSpec, VaultDouble};

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

/// kv-v2 "Delete latest version of secret" (204) makes a read 404, with the version's
/// metadata (its `deletion_time` set) and `data: null` in the body; the key still lists.
#[tokio::test]
async fn kv2_soft_delete_makes_reads_404_with_metadata() {
    let api = Api::start().await;
    api.root("POST", "secret/data/p/x", Some(json!({"data": {"k": "v"}})))
        .await;
    assert_eq!(api.root("DELETE", "secret/data/p/x", None).await.0, 204);
    let (status, body) = api.root("GET", "secret/data/p/x", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["data"], Value::Null);
    assert_ne!(body["data"]["metadata"]["deletion_time"], "");
    assert!(body.get("errors").is_none());
    let (status, listed) = api.root("LIST", "secret/metadata/p", None).await;
    assert_eq!(
        (status, listed["data"]["keys"].clone()),
        (200, json!(["x"]))
    );
}

/// kv-v2 "Delete metadata and all versions" (204, also for a missing key) removes the key:
/// reads 404 with no metadata, and an empty folder LISTs as 404.
#[tokio::test]
async fn kv2_delete_metadata_removes_every_version() {
    let api = Api::start().await;
    api.root("POST", "secret/data/p/x", Some(json!({"data": {"k": "v"}})))
        .await;
    assert_eq!(api.root("DELETE", "secret/metadata/p/x", None).await.0, 204);
    assert_eq!(api.root("DELETE", "secret/metadata/p/x", None).await.0, 204);
    assert_eq!(
        api.root("GET", "secret/data/p/x", None).await,
        (404, json!({"errors": []}))
    );
    assert_eq!(api.root("LIST", "secret/metadata/p", None).await.0, 404);
    assert_eq!(api.root("GET", "secret/metadata/p/x", None).await.0, 404);
}

/// kv-v1: POST writes the body as the secret (204), GET reads it back under `data`,
/// LIST names children with folders ending in `/`, DELETE is 204.
#[tokio::test]
async fn kv1_write_read_list_delete() {
    let api = Api::start().await;
    assert_eq!(
        api.root("POST", "kv/p/a/x", Some(json!({"k": "v"})))
            .await
            .0,
        204
    );
    api.root("POST", "kv/p/y", Some(json!({"k": "w"}))).await;
    let (status, read) = api.root("GET", "kv/p/a/x", None).await;
    assert_eq!((status, read["data"].clone()), (200, json!({"k": "v"})));
    assert_envelope(&read);
    let (_, listed) = api.root("GET", "kv/p?list=true", None).await;
    assert_eq!(listed["data"]["keys"], json!(["a/", "y"]));
    assert_eq!(api.root("DELETE", "kv/p/a/x", None).await.0, 204);
    assert_eq!(api.root("GET", "kv/p/a/x", None).await.0, 404);
}

/// Vault answers a request without a valid token, or outside the token's policy, with 403
/// `{"errors": ["permission denied"]}`.
#[tokio::test]
async fn tokens_and_policies_are_enforced_with_403() {
    let api = Api::start().await;
    let token = api
        .double
        .create_token(TokenSpec::unlimited(Policy::credbridge(
            "secret", 2, "mine",
        )));
    let write = json!({"data": {"k": "v"}});
    let (status, body) = api
        .call("POST", "secret/data/mine/x", None, Some(write.clone()))
        .await;
    assert_eq!(
        (status, body),
        (403, json!({"errors": ["permission denied"]}))
    );
    let (status, _) = api
        .call(
            "POST",
            "secret/data/mine/x",
            Some("hvs.unknown"),
            Some(write.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .call(
            "POST",
            "secret/data/theirs/x",
            Some(&token),
            Some(write.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .call("POST", "secret/data/mine/x", Some(&token), Some(write))
        .await;
    assert_eq!(status, 200);
}

/// sys/health: 200 when unsealed and active; 503 when sealed. Any other endpoint of a
/// sealed Vault: 503 `{"errors": ["Vault is sealed"]}`.
#[tokio::test]
async fn sealing_turns_health_and_every_request_to_503() {
    let api = Api::start().await;
    let (status, health) = api.call("GET", "sys/health", None, None).await;
    assert_eq!((status, health["sealed"].clone()), (200, json!(false)));
    api.double.seal();
    let (status, health) = api.call("GET", "sys/health", None, None).await;
    assert_eq!((status, health["sealed"].clone()), (503, json!(true)));
    let (status, body) = api.root("GET", "secret/data/x", None).await;
    assert_eq!(
        (status, body),
        (503, json!({"errors": ["Vault is sealed"]}))
    );
    api.double.unseal();
    assert_eq!(api.root("GET", "secret/data/x", None).await.0, 404);
}

/// sys/internal/ui/mounts/:path: the mount's `type` and `options.version`.
#[tokio::test]
async fn mount_discovery_reports_the_kv_version() {
    let api = Api::start().await;
    let (_, v2) = api.root("GET", "sys/internal/ui/mounts/secret", None).await;
    assert_eq!(
        (
            v2["data"]["type"].clone(),
            v2["data"]["options"]["version"].clone()
        ),
        (json!("kv"), json!("2"))
    );
    let (_, v1) = api.root("GET", "sys/internal/ui/mounts/kv", None).await;
    assert_eq!(v1["data"]["options"]["version"], "1");
}

/// auth/token lookup-self reports the remaining `ttl`; renew-self extends it up to the
/// max TTL (with a warning when capped); an expired token is refused with 403.
#[tokio::test]
async fn token_lookup_renew_and_expiry() {
    let api = Api::start().await;
    let token = api.double.create_token(
        TokenSpec::new(Policy::none(), Duration::from_secs(30)).max_ttl(Duration::from_secs(40)),
    );
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
            Some(json!({"increment": "60s"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        renewed["auth"]["lease_duration"], 40,
        "capped at the max TTL"
    );
    assert!(renewed["warnings"].is_array());
    api.double.expire_token(&token);
    let (status, _) = api
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(status, 403);
}

/// auth/approle/login issues a token in `auth`; a wrong secret id is 400.
/// auth/kubernetes/login issues a token for the role's JWT; another JWT is 403.
#[tokio::test]
async fn approle_and_kubernetes_logins() {
    let api = Api::start().await;
    let spec = TokenSpec::new(Policy::none(), Duration::from_secs(60));
    api.double
        .add_approle("approle", "role", "secret", spec.clone());
    api.double
        .add_kubernetes_role("kubernetes", "app", "jwt-1", spec);
    let (status, login) = api
        .call(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": "role", "secret_id": "secret"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_envelope(&login);
    assert_eq!(login["auth"]["lease_duration"], 60);
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        200
    );
    let (status, _) = api
        .call(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": "role", "secret_id": "nope"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = api
        .call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({"role": "app", "jwt": "jwt-1"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({"role": "app", "jwt": "jwt-2"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(api.double.logins("approle"), 1);
    assert_eq!(api.double.logins("kubernetes"), 1);
}

/// The double can stop listening (connections refused) and listen again on the same port,
/// keeping its state.
#[tokio::test]
async fn stop_refuses_connections_and_resume_keeps_state() {
    let api = Api::start().await;
    api.root("POST", "kv/x", Some(json!({"k": "v"}))).await;
    api.double.stop().await;
    let url = format!("{}/v1/sys/health", api.double.address());
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    api.double.resume().await;
    assert_eq!(api.root("GET", "kv/x", None).await.0, 200);
}
