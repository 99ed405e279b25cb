//! What the operator tests share: configuration files for each backend, and seeded
//! credentials.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use credbridge_adapters::aws::AwsConfig;
use credbridge_adapters::testkit::vault::{connected, unique_prefix, vault_config, TestVault};
use credbridge_adapters::testkit::{document, moto};
use credbridge_adapters::{Backend, CredentialId, Document, Key, Scope};
use serde_json::json;

use crate::binary::{run, Ran};

impl Ran {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs a blocking command from async tests without holding up the runtime (the Vault
/// double the command talks to may share it).
pub async fn run_async(mut command: Command) -> Ran {
    tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap()
}

/// A credbridge token long enough for the configuration's rules.
pub const TOKEN: &str = "operator-test-token-0123456789";

/// A configuration file: `[backend]` and anything before it.
pub struct ConfigFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credbridge.toml");
        std::fs::write(&path, text).unwrap();
        Self { dir, path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// `[[auth.tokens]]` entries granting `scopes`.
pub fn tokens_for(scopes: &[&Scope]) -> String {
    scopes
        .iter()
        .enumerate()
        .map(|(index, scope)| {
            format!("[[auth.tokens]]\ntoken = \"{TOKEN}-{index}\"\nscope = \"{scope}\"\n")
        })
        .collect()
}

/// An AWS backend on moto under a name prefix of its own, and the `[backend]` table that
/// describes the same.
pub struct Aws {
    pub config: AwsConfig,
    pub toml: String,
}

pub fn aws() -> Aws {
    aws_with(&moto::endpoint(), "")
}

/// Like [`aws`], at any endpoint, with short timeouts and one attempt, so a test aimed at
/// an address that does not answer fails fast.
pub fn aws_at(endpoint: &str) -> Aws {
    let mut aws = aws_with(
        endpoint,
        "max_attempts = 1\nconnect_timeout = \"2s\"\nattempt_timeout = \"5s\"\n\
         operation_timeout = \"5s\"\n",
    );
    aws.config.max_attempts = 1;
    aws.config.connect_timeout = Duration::from_secs(2);
    aws.config.attempt_timeout = Duration::from_secs(5);
    aws.config.operation_timeout = Duration::from_secs(5);
    aws
}

/// The backend's own timeouts otherwise: moto, shared by the whole run, can be slow.
fn aws_with(endpoint: &str, extra: &str) -> Aws {
    let prefix = format!("{}/", unique_prefix());
    let config = AwsConfig {
        endpoint_url: Some(endpoint.to_owned()),
        name_prefix: prefix.clone(),
        force_delete_without_recovery: true,
        ..moto::moto_config()
    };
    let toml = format!(
        "[backend]\nkind = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n\
         name_prefix = \"{prefix}\"\nforce_delete_without_recovery = true\n{extra}"
    );
    Aws { config, toml }
}

impl Aws {
    pub async fn backend(&self) -> Arc<dyn Backend> {
        moto::connect(&self.config).await
    }
}

/// The KV mount the shared test Vault has for `kv_version`: `secret` (v2) or `kv` (v1).
pub fn test_mount(kv_version: u8) -> &'static str {
    if kv_version == 1 {
        "kv"
    } else {
        "secret"
    }
}

/// A Vault backend on the shared test Vault (the OpenBao `tests/run` starts), on the KV
/// `kv_version` mount under a prefix of its own, and the `[backend]` table that describes
/// the same.
pub struct Vault {
    pub vault: TestVault,
    pub kv_version: u8,
    pub prefix: String,
    pub toml: String,
}

pub async fn vault(kv_version: u8) -> Vault {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    Vault {
        toml: vault_toml(&vault, kv_version, &prefix, None),
        vault,
        kv_version,
        prefix,
    }
}

impl Vault {
    /// A backend on the same mount and prefix, with the root token.
    pub async fn backend(&self) -> Arc<dyn Backend> {
        let config = vault_config(
            &self.vault.address,
            &self.vault.root_token,
            test_mount(self.kv_version),
            &self.prefix,
        );
        Arc::new(connected(&config).await)
    }

    /// The `[backend]` table for the same mount and prefix with another token.
    pub fn toml_with_token(&self, token: &str) -> String {
        vault_toml(&self.vault, self.kv_version, &self.prefix, Some(token))
    }
}

/// The `[backend]` table for `vault`, on the KV `kv_version` mount under `prefix`, with
/// `token` (the root token when `None`).
pub fn vault_toml(vault: &TestVault, kv_version: u8, prefix: &str, token: Option<&str>) -> String {
    let token = token.unwrap_or(&vault.root_token);
    format!(
        "[backend]\nkind = \"vault\"\naddress = \"{}\"\nmount = \"{}\"\npath_prefix = \"{prefix}\"\n\
         kv_version = {kv_version}\n[backend.auth]\nmethod = \"token\"\ntoken = \"{token}\"\n",
        vault.address,
        test_mount(kv_version),
    )
}

/// Credentials of every type, with fields a newer Skyvern might add; each has a marker in
/// every secret field so a test can tell that none was printed.
pub fn credentials(count: usize) -> Vec<Document> {
    (0..count)
        .map(|index| match index % 3 {
            0 => document(json!({
                "name": format!("login {index}"), "type": "password",
                "username": format!("user{index}@example.com"),
                "password": format!("SECRET-password-{index} ✓"),
                "totp": null, "totp_type": "none",
                "metadata": {"site": "shop.example"},
            })),
            1 => document(json!({
                "name": format!("card {index}"), "type": "credit_card",
                "card_holder_name": "Ada Lovelace", "card_number": "SECRET-4111111111111111",
                "card_exp_month": "07", "card_exp_year": "2031", "card_cvv": "SECRET-737",
                "card_brand": "visa", "billing_address": {"line1": "12 Row", "line2": null},
            })),
            _ => document(json!({
                "name": format!("api key {index}"), "type": "secret",
                "secret_value": format!("SECRET-value-{index}"),
                "future_field": {"nested": [1, 2.5, true, null, "x"]},
            })),
        })
        .collect()
}

/// Stores `count` credentials in `scope`; returns them by key, sorted.
pub async fn seed(backend: &dyn Backend, scope: &Scope, count: usize) -> Vec<(Key, Document)> {
    let mut stored = Vec::new();
    for document in credentials(count) {
        let key = Key::new(scope.clone(), CredentialId::generate());
        backend.put(&key, &document).await.unwrap();
        stored.push((key, document));
    }
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    stored
}

/// Asserts that `backend` holds exactly `expected` in `scope`: the same ids, none more,
/// each with the same document.
pub async fn assert_holds(backend: &dyn Backend, scope: &Scope, expected: &[(Key, Document)]) {
    let ids = backend.list(scope).await.unwrap();
    let wanted: Vec<&CredentialId> = expected.iter().map(|(key, _)| &key.id).collect();
    assert_eq!(ids.iter().collect::<Vec<_>>(), wanted, "ids in {scope}");
    for (key, document) in expected {
        assert_eq!(&backend.get(key).await.unwrap(), document, "{key}");
    }
}
