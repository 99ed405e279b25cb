//! Each Vault auth method through the whole service: it logs in once, renews before the
//! lease runs out, logs in again when renewal is no longer possible, and recovers from a
//! token that dies early — without a failed request. Every test runs its own Vault double.
#![cfg(feature = "vault")]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use credbridge_adapters::testkit::vault_double::{
    unique_prefix, vault_config, Policy, TokenSpec, VaultDouble,
};
use credbridge_adapters::vault::{
    AppRoleAuth, KubernetesAuth, TokenAuth, VaultAuth, VaultBackend, VaultConfig,
};
use credbridge_adapters::SecretText;
use helpers::{password, TestApp};

fn config(double: &VaultDouble, prefix: &str, auth: VaultAuth) -> VaultConfig {
    VaultConfig {
        auth,
        ..vault_config(&double.address(), "", "secret", prefix)
    }
}

async fn spawn(config: &VaultConfig) -> TestApp {
    let backend = VaultBackend::connect(config)
        .await
        .expect("connects to the double");
    TestApp::spawn(Arc::new(backend)).await
}

/// Waits up to `limit` for `condition`, checking every 100 ms.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    condition()
}

fn approle(role_id: &str, secret_id: &str) -> VaultAuth {
    VaultAuth::Approle(AppRoleAuth {
        role_id: role_id.to_owned(),
        secret_id: Some(SecretText::new(secret_id)),
        secret_id_file: None,
        mount: "approle".to_owned(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_once_renews_then_logs_in_again_near_max_ttl() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    // TTL 3 s, max TTL 5 s: renewed at ~2 s; at ~4 s renewal grants only the 1 s left,
    // so credbridge logs in again before the token dies at 5 s.
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(3),
    )
    .max_ttl(Duration::from_secs(5));
    double.add_approle("approle", "role-1", "secret-1", spec);
    let app = spawn(&config(&double, &prefix, approle("role-1", "secret-1"))).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(
        double.logins("approle"),
        1,
        "one login shared by every request"
    );

    assert!(
        eventually(Duration::from_secs(4), || double.renewals() >= 1).await,
        "renewed"
    );
    assert_eq!(double.logins("approle"), 1, "renewal, not a new login");
    assert!(
        eventually(Duration::from_secs(5), || double.logins("approle") == 2).await,
        "logged in again when renewal could no longer extend the token"
    );
    for _ in 0..5 {
        app.read_ok(&id).await;
    }
    assert_eq!(double.logins("approle"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_recovers_from_an_early_expiry_with_a_single_login() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(600),
    );
    double.add_approle("approle", "role-1", "secret-1", spec);
    let app = Arc::new(spawn(&config(&double, &prefix, approle("role-1", "secret-1"))).await);
    let id = app.create_ok(&password()).await;

    double.expire_logins("approle");
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, id) = (Arc::clone(&app), id.clone());
        reads.spawn(async move { app.read_ok(&id).await });
    }
    while let Some(read) = reads.join_next().await {
        assert_eq!(read.unwrap()["username"], "ada@example.com");
    }
    assert_eq!(
        double.logins("approle"),
        2,
        "ten denied requests, one new login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_reads_the_secret_id_file_at_login() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(600),
    );
    double.add_approle("approle", "role-1", "rotated-secret", spec);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, "rotated-secret\n").unwrap();
    let auth = VaultAuth::Approle(AppRoleAuth {
        role_id: "role-1".to_owned(),
        secret_id: None,
        secret_id_file: Some(file),
        mount: "approle".to_owned(),
    });
    let app = spawn(&config(&double, &prefix, auth)).await;
    app.create_ok(&password()).await;
    assert_eq!(double.logins("approle"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_id_fails_start_up_without_printing_it() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(60),
    );
    double.add_approle("approle", "role-1", "right-secret", spec);
    let Err(error) = VaultBackend::connect(&config(
        &double,
        &prefix,
        approle("role-1", "wrong-secret-value"),
    ))
    .await
    else {
        panic!("a wrong secret id logged in");
    };
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("wrong-secret-value"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_logs_in_with_the_jwt_renews_and_recovers_from_expiry() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.service-account.signature";
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(3),
    );
    double.add_kubernetes_role("kubernetes", "credbridge", jwt, spec);
    let dir = tempfile::tempdir().unwrap();
    let jwt_path = dir.path().join("token");
    std::fs::write(&jwt_path, jwt).unwrap();
    let auth = VaultAuth::Kubernetes(KubernetesAuth {
        role: "credbridge".to_owned(),
        jwt_path,
        mount: "kubernetes".to_owned(),
    });
    let app = spawn(&config(&double, &prefix, auth)).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(double.logins("kubernetes"), 1);

    assert!(
        eventually(Duration::from_secs(4), || double.renewals() >= 1).await,
        "renewed"
    );
    assert_eq!(double.logins("kubernetes"), 1);

    double.expire_logins("kubernetes");
    app.read_ok(&id).await;
    assert_eq!(double.logins("kubernetes"), 2, "one transparent re-login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_token_is_renewed_before_it_expires() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let token = double.create_token(TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(3),
    ));
    let app = spawn(&vault_config(&double.address(), &token, "secret", &prefix)).await;
    let id = app.create_ok(&password()).await;
    assert!(
        eventually(Duration::from_secs(4), || double.renewals() >= 1).await,
        "renewed"
    );
    // Past the first TTL, the token still works because it was renewed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.read_ok(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_is_read_again_when_the_token_in_it_changes() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let policy = Policy::credbridge("secret", 2, &prefix);
    let first = double.create_token(TokenSpec::unlimited(policy.clone()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vault-token");
    std::fs::write(&file, &first).unwrap();
    let auth = VaultAuth::Token(TokenAuth {
        token: None,
        token_file: Some(file.clone()),
    });
    let app = spawn(&config(&double, &prefix, auth)).await;
    let id = app.create_ok(&password()).await;

    // Vault Agent writes a new token and the old one dies: the next request succeeds.
    let second = double.create_token(TokenSpec::unlimited(policy));
    std::fs::write(&file, &second).unwrap();
    double.expire_token(&first);
    app.read_ok(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_expiry_gauge_counts_down_to_the_vault_tokens_expiry() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let spec = TokenSpec::new(
        Policy::credbridge("secret", 2, &prefix),
        Duration::from_secs(3600),
    );
    double.add_approle("approle", "role-1", "secret-1", spec);
    let backend = VaultBackend::connect(&config(&double, &prefix, approle("role-1", "secret-1")))
        .await
        .expect("connects to the double");
    let app = TestApp::spawn_with(Arc::new(backend), |settings| {
        settings.metrics.enabled = true
    })
    .await;
    let text = app
        .client
        .get(format!("http://{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
