//! Vault failing, through the whole service: sealed, down when credbridge starts, a
//! policy that does not cover the path (credbridge's own, or a referenced one), a token
//! revoked, a namespace gone. Against
//! OpenBao: tests that seal it or start it late run a server of their own; the others
//! share the test Vault under prefixes and tokens of their own. Only what a real server
//! cannot be made to do on demand (refuse connections mid-run, answer slowly) uses the
//! Vault protocol double.
#![cfg(feature = "vault")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{allow_references, assert_error, password, readyz, spawn_on_vault, TestApp};
use credbridge_adapters::testkit::eventually;
use credbridge_adapters::testkit::random_hex;
use credbridge_adapters::testkit::vault::{
    connected, documented_policy, documented_reference_policy, unique_prefix, vault_config, Bao,
    TestVault,
};
use credbridge_adapters::testkit::vault_double::VaultDouble;
use credbridge_adapters::vault::{KvVersion, VaultBackend, VaultConfig};
use credbridge_adapters::{Backend, ErrorKind};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The app on a backend that may still be connecting.
async fn spawn_connecting(config: &VaultConfig) -> TestApp {
    let backend = VaultBackend::connect(config)
        .await
        .expect("a valid configuration");
    TestApp::spawn(Arc::new(backend)).await
}

/// A 500 ms connect timeout and a 1 s request timeout.
fn fast(config: VaultConfig) -> VaultConfig {
    VaultConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        ..config
    }
}

/// The double, which has no mount discovery: KV v2 stated.
fn double_config(double: &VaultDouble) -> VaultConfig {
    VaultConfig {
        kv_version: KvVersion::V2,
        ..fast(vault_config(
            &double.address(),
            &double.root_token(),
            "secret",
            &unique_prefix(),
        ))
    }
}

fn bao_config(bao: &Bao) -> VaultConfig {
    fast(vault_config(
        &bao.address(),
        Bao::ROOT_TOKEN,
        "secret",
        &unique_prefix(),
    ))
}

/// Waits until `/readyz` answers `status` with a message containing `says`.
async fn until_readyz(app: &TestApp, status: StatusCode, says: &str) {
    let what = format!("/readyz answering {status} saying {says:?}");
    eventually(Duration::from_secs(60), &what, || async {
        let (actual, body) = readyz(app).await;
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        (actual == status && message.contains(says)).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_down_is_503_within_the_timeout_and_recovers_without_a_restart() {
    let double = VaultDouble::start().await;
    let app = spawn_on_vault(&double_config(&double)).await;
    let id = app.create_ok(&password()).await;

    double.stop().await;
    let started = Instant::now();
    assert_error(
        app.read(&id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach Vault"),
        "{body}"
    );

    double.resume().await;
    assert_eq!(app.read_ok(&id).await["username"], "ada@example.com");
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_slower_than_the_request_timeout_is_503_in_time() {
    let double = VaultDouble::start().await;
    let app = spawn_on_vault(&double_config(&double)).await;
    let id = app.create_ok(&password()).await;

    double.set_delay(Duration::from_secs(5));
    let started = Instant::now();
    assert_error(
        app.read(&id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    double.set_delay(Duration::ZERO);
    app.read_ok(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_vault_is_503_and_fails_readiness_until_unsealed() {
    let bao = Bao::start().await;
    let app = spawn_on_vault(&bao_config(&bao)).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);

    bao.seal().await;
    assert_error(
        app.read(&id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert_error(
        app.create(&password()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Vault is sealed"),
        "{body}"
    );
    let message = assert_error(
        app.connection_test().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert!(message.contains("Vault is sealed"), "{message}");

    bao.unseal().await;
    until_readyz(&app, StatusCode::OK, "").await;
    // The same credbridge, the same token (stored by Vault, so it outlives the seal).
    assert_eq!(app.read_ok(&id).await["username"], "ada@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credbridge_started_while_vault_is_down_serves_503_then_becomes_ready_when_it_starts() {
    let port = Bao::free_port();
    let config = fast(vault_config(
        &format!("http://127.0.0.1:{port}"),
        Bao::ROOT_TOKEN,
        "secret",
        &unique_prefix(),
    ));
    let app = spawn_connecting(&config).await;

    until_readyz(&app, StatusCode::SERVICE_UNAVAILABLE, "cannot reach Vault").await;
    assert_error(
        app.create(&password()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    let message = assert_error(
        app.connection_test().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert!(message.contains("cannot reach Vault"), "{message}");

    let _bao = Bao::start_on(port).await;
    until_readyz(&app, StatusCode::OK, "").await;
    let id = app.create_ok(&password()).await;
    app.read_ok(&id).await;
    assert_eq!(app.connection_test().await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credbridge_started_while_vault_is_sealed_says_so_and_recovers_once_unsealed() {
    let bao = Bao::start().await;
    bao.seal().await;
    let app = spawn_connecting(&bao_config(&bao)).await;
    until_readyz(&app, StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed").await;

    bao.unseal().await;
    until_readyz(&app, StatusCode::OK, "").await;
    app.create_ok(&password()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_outside_the_policy_is_502_permission_denied_and_no_secret() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let (allowed, outside) = (unique_prefix(), unique_prefix());
    let (_, token) = root.documented_token(&allowed, json!({})).await;

    // A credential stored under `outside` by someone else.
    let owner = spawn_on_vault(&vault_config(
        &vault.address,
        &vault.root_token,
        "secret",
        &outside,
    ))
    .await;
    let id = owner.create_ok(&password()).await;

    // credbridge configured with a prefix its token's policy does not cover.
    let app = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &outside)).await;
    let denied = app.read(&id).await;
    let body = denied.text().await.unwrap();
    assert!(!body.contains("correct horse"), "{body}");
    let message = assert_error(
        app.read(&id).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert!(message.contains("Permission was denied"), "{message}");
    assert_error(
        app.create(&password()).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert_eq!(readyz(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(
        app.connection_test().await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;

    // The same token under its own prefix works: the policy, not the token, said no.
    let fine = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &allowed)).await;
    fine.create_ok(&password()).await;
    assert_eq!(readyz(&fine).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_overrides_a_broader_grant() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let (policy, token) = root.documented_token(&prefix, json!({})).await;
    let app = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &prefix)).await;
    let before = app.create_ok(&password()).await;

    // Policies apply to tokens already issued: deny one scope's folder.
    let deny = format!(
        "{}\npath \"secret/data/{prefix}/{}/*\" {{\n  capabilities = [\"deny\"]\n}}\n",
        documented_policy(2, "secret", &prefix),
        app.scope
    );
    root.write_policy(&policy, &deny).await;
    assert_error(
        app.read(&before).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert_error(
        app.create(&password()).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    // The other scope, still under the broader grant, is untouched.
    let other = app
        .request_as_other(Method::POST, &app.base)
        .json(&password())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_static_token_is_502_permission_denied() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let (_, token) = root.documented_token(&prefix, json!({})).await;
    let app = spawn_on_vault(&vault_config(&vault.address, &token, "secret", &prefix)).await;
    let id = app.create_ok(&password()).await;

    // Nothing to log in again with: the denial stands, and says so.
    root.revoke_token(&token).await;
    assert_error(
        app.read(&id).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert_eq!(readyz(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_check_answered_404_for_a_deleted_namespace_is_never_not_found() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let namespace = format!("credbridge-gone-{}", random_hex(4));
    root.create_namespace(&namespace).await;
    root.in_namespace(&namespace).enable_kv("secret", 2).await;
    let config = VaultConfig {
        namespace: Some(namespace.clone()),
        kv_version: KvVersion::V2,
        ..vault_config(
            &vault.address,
            &vault.root_token,
            "secret",
            &unique_prefix(),
        )
    };
    let backend = Arc::new(connected(&config).await);
    backend.check().await.unwrap();
    let app = TestApp::spawn(Arc::clone(&backend) as Arc<dyn Backend>).await;

    // With its namespace gone, Vault answers 404 "namespace not found".
    root.delete_namespace(&namespace).await;
    let error = eventually(Duration::from_secs(30), "the check failing", || async {
        backend.check().await.err()
    })
    .await;
    assert_eq!(error.kind(), ErrorKind::Unexpected, "{error}");
    assert_error(
        app.connection_test().await,
        StatusCode::BAD_GATEWAY,
        "backend_error",
    )
    .await;
    assert_eq!(readyz(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referenced_path_outside_the_policy_is_422_at_create_and_502_at_read() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    let area = format!("existing/{}", random_hex(6));
    root.write_secret(
        "secret",
        2,
        &format!("{area}/smtp"),
        json!({"password": "Policy-Pw-4"}),
    )
    .await;
    // credbridge's own storage only: no grant on the referenced folder yet.
    let own = documented_policy(2, "secret", &prefix);
    let policy = root.new_policy(&own).await;
    let token = root.create_token(&[&policy], json!({})).await;
    let backend = connected(&vault_config(&vault.address, &token, "secret", &prefix)).await;
    let pattern = format!("secret/{area}/*");
    let app = TestApp::spawn_with(Arc::new(backend), move |settings| {
        allow_references(settings, 0, &[pattern]);
    })
    .await;
    let mut body = password();
    body["password"] = json!(format!("ref+vault://secret/{area}/smtp#password"));

    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.contains("credbridge may not read it"), "{message}");

    // The documented grant for references lets it through...
    let granted = format!("{own}\n{}", documented_reference_policy(2, "secret", &area));
    root.write_policy(&policy, &granted).await;
    let id = app.create_ok(&body).await;
    assert_eq!(app.read_ok(&id).await["password"], "Policy-Pw-4");

    // ...and taking it back fails the next read, naming the field.
    root.write_policy(&policy, &own).await;
    let message = assert_error(
        app.read(&id).await,
        StatusCode::BAD_GATEWAY,
        "reference_unresolved",
    )
    .await;
    assert!(message.starts_with("field `password`: "), "{message}");
    assert!(message.contains("credbridge may not read it"), "{message}");
    assert!(!message.contains("Policy-Pw-4"), "{message}");
}
