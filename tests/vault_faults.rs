//! Vault failing, through the whole service: down, slow, sealed, and a policy that does not
//! cover the path. Every test runs its own Vault double, so stopping or sealing it does
//! not disturb other tests.
#![cfg(feature = "vault")]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use credbridge_adapters::testkit::vault_double::{
    unique_prefix, vault_config, Policy, TokenSpec, VaultDouble,
};
use credbridge_adapters::vault::{VaultBackend, VaultConfig};
use helpers::{assert_error, password, TestApp};
use reqwest::StatusCode;

async fn spawn(config: &VaultConfig) -> TestApp {
    let backend = VaultBackend::connect(config)
        .await
        .expect("connects to the double");
    TestApp::spawn(Arc::new(backend)).await
}

/// A config with a 500 ms connect timeout and a 1 s request timeout, and a root token.
fn fast_config(double: &VaultDouble) -> VaultConfig {
    VaultConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        ..vault_config(
            &double.address(),
            &double.root_token(),
            "secret",
            &unique_prefix(),
        )
    }
}

/// Readiness as the backend stands now: the check result is shared for an interval, so
/// one interval after the last check a new one is made.
async fn readyz(app: &TestApp) -> StatusCode {
    tokio::time::sleep(credbridge::api::SharedCheck::INTERVAL).await;
    let url = format!("http://{}/readyz", app.address);
    app.client.get(url).send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_down_is_503_within_the_timeout_and_recovers_without_a_restart() {
    let double = VaultDouble::start().await;
    let app = spawn(&fast_config(&double)).await;
    let id = app.create_ok(&password()).await;

    double.stop().await;
    let started = Instant::now();
    let message = assert_error(
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
    assert!(message.contains("unavailable"), "{message}");
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    double.resume().await;
    assert_eq!(app.read_ok(&id).await["username"], "ada@example.com");
    assert_eq!(readyz(&app).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_slower_than_the_request_timeout_is_503_in_time() {
    let double = VaultDouble::start().await;
    let app = spawn(&fast_config(&double)).await;
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
    let double = VaultDouble::start().await;
    let app = spawn(&fast_config(&double)).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);

    double.seal();
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
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    double.unseal();
    app.read_ok(&id).await;
    assert_eq!(readyz(&app).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_outside_the_policy_is_502_permission_denied_and_no_secret() {
    let double = VaultDouble::start().await;
    let (allowed, outside) = (unique_prefix(), unique_prefix());
    let token = double.create_token(TokenSpec::unlimited(Policy::credbridge(
        "secret", 2, &allowed,
    )));

    // A credential stored under `outside` by someone else.
    let root = spawn(&vault_config(
        &double.address(),
        &double.root_token(),
        "secret",
        &outside,
    ))
    .await;
    let id = root.create_ok(&password()).await;

    // credbridge configured with a prefix its token's policy does not cover.
    let app = spawn(&vault_config(&double.address(), &token, "secret", &outside)).await;
    let denied = app.read(&id).await;
    let body = denied.text().await.unwrap();
    assert!(!body.contains("correct horse"), "{body}");
    let denied = app.read(&id).await;
    let message = assert_error(denied, StatusCode::BAD_GATEWAY, "backend_permission_denied").await;
    assert!(message.contains("Permission was denied"), "{message}");
    assert_error(
        app.create(&password()).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    // The same token under its own prefix works: the policy, not the token, said no.
    let fine = spawn(&vault_config(&double.address(), &token, "secret", &allowed)).await;
    fine.create_ok(&password()).await;
    assert_eq!(readyz(&fine).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_static_token_is_502_permission_denied() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let token = double.create_token(TokenSpec::unlimited(Policy::credbridge(
        "secret", 2, &prefix,
    )));
    let app = spawn(&vault_config(&double.address(), &token, "secret", &prefix)).await;
    let id = app.create_ok(&password()).await;
    // Nothing to log in again with: the denial stands, and says so.
    double.expire_token(&token);
    assert_error(
        app.read(&id).await,
        StatusCode::BAD_GATEWAY,
        "backend_permission_denied",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_when_vault_is_down() {
    let double = VaultDouble::start().await;
    let config = fast_config(&double);
    double.stop().await;
    let Err(error) = VaultBackend::connect(&config).await else {
        panic!("connected to a stopped Vault");
    };
    assert_eq!(
        error.kind(),
        credbridge_adapters::ErrorKind::Unavailable,
        "{error}"
    );
}
