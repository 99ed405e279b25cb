//! Each way credbridge gets its Vault token, through the whole service: it logs in once,
//! renews before the lease runs out, logs in again when renewal can no longer extend the
//! token, replaces a token revoked under it with a single login, and retries a login
//! Vault refuses until it succeeds. Against OpenBao with real AppRole logins, TTLs and
//! revocations (a server of the test's own where it counts logins in the audit log or
//! revokes every login); Kubernetes login, which needs a Kubernetes API, against the Vault
//! protocol double.
#![cfg(feature = "vault")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{password, readyz, spawn_on_vault, TestApp};
use credbridge_adapters::testkit::eventually;
use credbridge_adapters::testkit::vault::{
    connected, documented_policy, unique_prefix, vault_config, Admin, Bao, TestVault,
};
use credbridge_adapters::testkit::vault_double::VaultDouble;
use credbridge_adapters::vault::{
    AppRoleAuth, KubernetesAuth, KvVersion, TokenAuth, VaultAuth, VaultBackend, VaultConfig,
};
use credbridge_adapters::SecretText;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LOGIN: &str = "auth/approle/login";
const RENEW: &str = "auth/token/renew-self";

/// A role of its own under a prefix of its own, holding the documented smallest policy
/// for that prefix; `settings` as `auth/approle/role/:name` takes them. Returns the
/// prefix, the role id and a secret id.
async fn approle_role(admin: &Admin, settings: Value) -> (String, String, String) {
    let prefix = unique_prefix();
    let name = admin
        .new_policy(&documented_policy(2, "secret", &prefix))
        .await;
    let mut settings = settings;
    settings["token_policies"] = json!([name]);
    let role_id = admin.write_approle(&name, settings).await;
    let secret_id = admin.secret_id(&name).await;
    (prefix, role_id, secret_id)
}

fn approle(role_id: &str, secret_id: &str) -> VaultAuth {
    VaultAuth::Approle(AppRoleAuth {
        role_id: role_id.to_owned(),
        secret_id: Some(SecretText::new(secret_id)),
        secret_id_file: None,
        mount: "approle".to_owned(),
    })
}

fn with_auth(address: &str, prefix: &str, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        auth,
        ..vault_config(address, "", "secret", prefix)
    }
}

/// A server of its own, with AppRole enabled.
async fn bao_with_approle() -> Bao {
    let bao = Bao::start().await;
    bao.admin().enable_auth("approle", "approle").await;
    bao
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_once_renews_then_logs_in_again_before_the_max_ttl() {
    let bao = bao_with_approle().await;
    let audit = bao.audit();
    // TTL 6 s, max TTL 15 s: renewed at ~4 s and ~8 s; at ~12 s renewal can grant only the
    // 3 s left, so credbridge logs in again before the token dies at 15 s.
    let settings = json!({"token_ttl": "6s", "token_max_ttl": "15s"});
    let (prefix, role_id, secret_id) = approle_role(&bao.admin(), settings).await;
    let started = Instant::now();
    let app = spawn_on_vault(&with_auth(
        &bao.address(),
        &prefix,
        approle(&role_id, &secret_id),
    ))
    .await;
    let id = app.create_ok(&password()).await;
    assert_eq!(
        audit.successes(LOGIN),
        1,
        "one login shared by every request"
    );

    eventually(Duration::from_secs(30), "a renewal", || async {
        (audit.successes(RENEW) >= 1).then_some(())
    })
    .await;
    assert_eq!(audit.successes(LOGIN), 1, "renewal, not a new login");
    eventually(Duration::from_secs(30), "a second login", || async {
        (audit.successes(LOGIN) == 2).then_some(())
    })
    .await;
    // Past the first token's max TTL, requests go on with the second one.
    let past_max_ttl = Duration::from_secs(16).saturating_sub(started.elapsed());
    tokio::time::sleep(past_max_ttl).await;
    for _ in 0..5 {
        app.read_ok(&id).await;
    }
    assert_eq!(audit.successes(LOGIN), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_tokens_revoked_under_credbridge_are_replaced_by_a_single_login() {
    let bao = bao_with_approle().await;
    let audit = bao.audit();
    let (prefix, role_id, secret_id) =
        approle_role(&bao.admin(), json!({"token_ttl": "10m"})).await;
    let app = Arc::new(
        spawn_on_vault(&with_auth(
            &bao.address(),
            &prefix,
            approle(&role_id, &secret_id),
        ))
        .await,
    );
    let id = app.create_ok(&password()).await;

    // Every token AppRole ever issued on this server, revoked at once.
    bao.admin()
        .ok("PUT", &format!("sys/leases/revoke-prefix/{LOGIN}"), None)
        .await;
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, id) = (Arc::clone(&app), id.clone());
        reads.spawn(async move { app.read_ok(&id).await });
    }
    while let Some(read) = reads.join_next().await {
        assert_eq!(read.unwrap()["username"], "ada@example.com");
    }
    assert_eq!(
        audit.successes(LOGIN),
        2,
        "ten denied requests, one new login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_reads_the_secret_id_file_at_login() {
    let vault = TestVault::prepared().await;
    let (prefix, role_id, secret_id) = approle_role(&vault.admin(), json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, format!("{secret_id}\n")).unwrap();
    let auth = VaultAuth::Approle(AppRoleAuth {
        role_id,
        secret_id: None,
        secret_id_file: Some(file),
        mount: "approle".to_owned(),
    });
    let app = spawn_on_vault(&with_auth(&vault.address, &prefix, auth)).await;
    app.create_ok(&password()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_retried_until_the_secret_id_is_right() {
    let vault = TestVault::prepared().await;
    let (prefix, role_id, secret_id) = approle_role(&vault.admin(), json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, "wrong-secret-id-value").unwrap();
    let auth = VaultAuth::Approle(AppRoleAuth {
        role_id,
        secret_id: None,
        secret_id_file: Some(file.clone()),
        mount: "approle".to_owned(),
    });
    let backend = VaultBackend::connect(&with_auth(&vault.address, &prefix, auth))
        .await
        .expect("a valid configuration starts, whatever Vault says");
    let app = TestApp::spawn(Arc::new(backend)).await;

    let body = eventually(Duration::from_secs(30), "readiness saying why", || async {
        let (status, body) = readyz(&app).await;
        let refused = body["message"]
            .as_str()
            .is_some_and(|message| message.contains("Vault refused the login"));
        (status == StatusCode::SERVICE_UNAVAILABLE && refused).then_some(body)
    })
    .await;
    assert!(
        !body.to_string().contains("wrong-secret-id-value"),
        "{body}"
    );
    let refused = app.create(&password()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!refused
        .text()
        .await
        .unwrap()
        .contains("wrong-secret-id-value"));

    // The operator fixes the file; the next attempt reads it.
    std::fs::write(&file, &secret_id).unwrap();
    eventually(
        Duration::from_secs(60),
        "ready once the secret id is right",
        || async { (readyz(&app).await.0 == StatusCode::OK).then_some(()) },
    )
    .await;
    app.create_ok(&password()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_token_is_renewed_before_it_expires() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let (_, token) = root
        .documented_token(&prefix, json!({"ttl": "6s", "renewable": true}))
        .await;
    let app = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &prefix)).await;
    let id = app.create_ok(&password()).await;
    // Past twice its first TTL, the token works only because it was renewed.
    tokio::time::sleep(Duration::from_secs(13)).await;
    app.read_ok(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_is_read_again_when_the_token_in_it_changes() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let (policy, first) = root.documented_token(&prefix, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vault-token");
    std::fs::write(&file, &first).unwrap();
    let auth = VaultAuth::Token(TokenAuth {
        token: None,
        token_file: Some(file.clone()),
    });
    let app = spawn_on_vault(&with_auth(&vault.address, &prefix, auth)).await;
    let id = app.create_ok(&password()).await;

    // Vault Agent writes a new token and the old one is revoked: the next request succeeds.
    let second = root.create_token(&[&policy], json!({})).await;
    std::fs::write(&file, &second).unwrap();
    root.revoke_token(&first).await;
    app.read_ok(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_expiry_gauge_counts_down_to_the_vault_tokens_expiry() {
    let vault = TestVault::prepared().await;
    let (prefix, role_id, secret_id) = approle_role(
        &vault.admin(),
        json!({"token_ttl": "1h", "token_max_ttl": "2h"}),
    )
    .await;
    let backend = connected(&with_auth(
        &vault.address,
        &prefix,
        approle(&role_id, &secret_id),
    ))
    .await;
    let app = TestApp::spawn_with(Arc::new(backend), |settings| {
        settings.metrics.enabled = true
    })
    .await;
    let text = app.get_public("/metrics").await.text().await.unwrap();
    let seconds: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("credbridge_backend_login_expiry_seconds "))
        .expect("the gauge is exported")
        .parse()
        .unwrap();
    assert!(
        (3500..=3600).contains(&seconds),
        "{seconds} s left of a one-hour token"
    );
}

/// Kubernetes login needs a Kubernetes API to review the service-account token, so it
/// runs against the double, which also ends a token early on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_logs_in_with_the_jwt_renews_and_recovers_from_an_early_expiry() {
    let double = VaultDouble::start().await;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.service-account.signature";
    double.add_kubernetes_role("kubernetes", "credbridge", jwt, Duration::from_secs(6));
    let dir = tempfile::tempdir().unwrap();
    let jwt_path = dir.path().join("token");
    std::fs::write(&jwt_path, jwt).unwrap();
    let auth = VaultAuth::Kubernetes(KubernetesAuth {
        role: "credbridge".to_owned(),
        jwt_path,
        mount: "kubernetes".to_owned(),
    });
    let config = VaultConfig {
        kv_version: KvVersion::V2,
        ..with_auth(&double.address(), &unique_prefix(), auth)
    };
    let app = spawn_on_vault(&config).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(double.logins("kubernetes"), 1);

    eventually(Duration::from_secs(30), "a renewal", || async {
        (double.renewals() >= 1).then_some(())
    })
    .await;
    assert_eq!(double.logins("kubernetes"), 1);

    double.expire_logins("kubernetes");
    app.read_ok(&id).await;
    assert_eq!(double.logins("kubernetes"), 2, "one transparent re-login");
}
