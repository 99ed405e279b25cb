//! What the Vault suites share: which Vault to test against, and a backend for it.

use std::sync::Arc;

use crate::vault::{KvVersion, TokenAuth, VaultAuth, VaultBackend, VaultConfig};
use crate::{Backend, SecretText};

use super::state::random_hex;
use super::VaultDouble;

/// The Vault the suites run against: the one named by `CREDBRIDGE_TEST_VAULT_ADDR` and
/// `CREDBRIDGE_TEST_VAULT_TOKEN` (a root token) when both are set, else the shared double.
pub struct VaultTarget {
    pub address: String,
    pub root_token: String,
    /// `None` when the target is a real Vault.
    pub double: Option<&'static VaultDouble>,
}

pub fn vault_target() -> VaultTarget {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (
        var("CREDBRIDGE_TEST_VAULT_ADDR"),
        var("CREDBRIDGE_TEST_VAULT_TOKEN"),
    ) {
        (Some(address), Some(root_token)) => VaultTarget {
            address,
            root_token,
            double: None,
        },
        _ => {
            let double = VaultDouble::shared();
            VaultTarget {
                address: double.address(),
                root_token: double.root_token(),
                double: Some(double),
            }
        }
    }
}

/// The mount the suites use for `kv_version`: `secret` (v2, as in Vault's dev mode) or
/// `kv` (v1; enabled on a real Vault by [`vault_backend`] when missing).
pub fn test_mount(kv_version: u8) -> &'static str {
    if kv_version == 1 {
        "kv"
    } else {
        "secret"
    }
}

/// A path prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("credbridge-test/{}", random_hex(8))
}

/// A config for `target` with a static token, `kv_version = "auto"`.
pub fn vault_config(address: &str, token: &str, mount: &str, prefix: &str) -> VaultConfig {
    VaultConfig {
        address: Some(address.to_owned()),
        mount: mount.to_owned(),
        path_prefix: prefix.to_owned(),
        kv_version: KvVersion::Auto,
        auth: VaultAuth::Token(TokenAuth {
            token: Some(SecretText::new(token)),
            token_file: None,
        }),
        ..VaultConfig::default()
    }
}

/// A Vault backend on the test target's KV `kv_version` mount, under a fresh prefix.
pub async fn vault_backend(kv_version: u8) -> Arc<dyn Backend> {
    let target = vault_target();
    if target.double.is_none() && kv_version == 1 {
        enable_kv1(&target).await;
    }
    let config = vault_config(
        &target.address,
        &target.root_token,
        test_mount(kv_version),
        &unique_prefix(),
    );
    let backend = VaultBackend::connect(&config)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to Vault at {}: {error}", target.address));
    Arc::new(backend)
}

/// `POST /v1/sys/mounts/kv {"type": "kv", "options": {"version": "1"}}` on a real Vault;
/// a 400 (already mounted) is fine.
async fn enable_kv1(target: &VaultTarget) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/sys/mounts/kv",
            target.address.trim_end_matches('/')
        ))
        .header("X-Vault-Token", &target.root_token)
        .body(r#"{"type":"kv","options":{"version":"1"}}"#)
        .send()
        .await
        .expect("Vault answers");
    let status = response.status().as_u16();
    assert!(
        status == 204 || status == 200 || status == 400,
        "enabling kv/: {status}"
    );
}
