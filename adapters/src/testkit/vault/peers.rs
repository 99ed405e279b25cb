//! The Vault peers of the backend matrix, and the configuration helpers Vault tests share.

use std::sync::Arc;
use std::time::Duration;

use super::entries::VaultEntries;
use super::target::{reference_role_name, role_name, TestVault, TEST_NAMESPACE};
use crate::testkit::random_hex;
use crate::testkit::references::ReferencePeer;
use crate::vault::{AppRoleAuth, KvVersion, TokenAuth, VaultAuth, VaultBackend, VaultConfig};
use crate::{Backend, SecretText};

/// A path prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("credbridge-test/{}", random_hex(8))
}

/// A configuration for the Vault at `address` with a static `token`, `kv_version =
/// "auto"`.
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

/// The backend for `config`, once its background connection has succeeded; panics with
/// the reason when it has not within 30 s.
pub async fn connected(config: &VaultConfig) -> VaultBackend {
    let backend = VaultBackend::connect(config)
        .await
        .unwrap_or_else(|error| panic!("a Vault configuration the tests made is invalid: {error}"));
    if tokio::time::timeout(Duration::from_secs(30), backend.ready())
        .await
        .is_err()
    {
        let why = backend.check().await.err();
        panic!(
            "not connected to Vault at {:?} after 30 s: {why:?}",
            config.address
        );
    }
    backend
}

async fn root_peer(mount: &str) -> Arc<dyn Backend> {
    let vault = TestVault::prepared().await;
    let config = vault_config(&vault.address, &vault.root_token, mount, &unique_prefix());
    Arc::new(connected(&config).await)
}

/// AppRole with the documented smallest policy on `mount`, under the prefix that policy
/// is written for, in `namespace` when given.
async fn approle_peer(mount: &str, kv_version: u8, namespace: Option<&str>) -> Arc<dyn Backend> {
    approle_as(&role_name(mount, kv_version), mount, namespace).await
}

/// AppRole as `role` on `mount`, with `path_prefix = "credbridge"`, in `namespace` when
/// given.
async fn approle_as(role: &str, mount: &str, namespace: Option<&str>) -> Arc<dyn Backend> {
    let vault = match namespace {
        Some(_) => TestVault::with_namespace().await,
        None => TestVault::prepared().await,
    };
    let root = vault.admin();
    let admin = match namespace {
        Some(namespace) => root.in_namespace(namespace),
        None => root,
    };
    let role_id = admin.role_id(role).await;
    let secret_id = admin.secret_id(role).await;
    let config = VaultConfig {
        namespace: namespace.map(str::to_owned),
        auth: VaultAuth::Approle(AppRoleAuth {
            role_id,
            secret_id: Some(SecretText::new(secret_id)),
            secret_id_file: None,
            mount: "approle".to_owned(),
        }),
        ..vault_config(&vault.address, "", mount, "credbridge")
    };
    Arc::new(connected(&config).await)
}

/// KV v2 at `secret/` with the root token, under a fresh prefix.
pub async fn kv2_root() -> Arc<dyn Backend> {
    root_peer("secret").await
}

/// KV v1 at `kv/` with the root token, under a fresh prefix.
pub async fn kv1_root() -> Arc<dyn Backend> {
    root_peer("kv").await
}

/// KV v2 at `secret/`, logged in with AppRole, holding only the documented policy.
pub async fn kv2_approle() -> Arc<dyn Backend> {
    approle_peer("secret", 2, None).await
}

/// KV v1 at `kv/`, logged in with AppRole, holding only the documented policy.
pub async fn kv1_approle() -> Arc<dyn Backend> {
    approle_peer("kv", 1, None).await
}

/// KV v2 in the namespace [`TEST_NAMESPACE`], logged in there with AppRole, holding only
/// the documented policy.
pub async fn kv2_in_namespace() -> Arc<dyn Backend> {
    approle_peer("secret", 2, Some(TEST_NAMESPACE)).await
}

async fn root_references(mount: &str, kv_version: u8) -> ReferencePeer {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    let config = vault_config(&vault.address, &vault.root_token, mount, &prefix);
    ReferencePeer {
        backend: Arc::new(connected(&config).await),
        entries: Arc::new(VaultEntries::new(&vault, mount, kv_version, &prefix)),
    }
}

async fn approle_references(mount: &str, kv_version: u8) -> ReferencePeer {
    let backend = approle_as(&reference_role_name(mount, kv_version), mount, None).await;
    let vault = TestVault::prepared().await;
    ReferencePeer {
        backend,
        entries: Arc::new(VaultEntries::new(&vault, mount, kv_version, "credbridge")),
    }
}

/// KV v2 at `secret/` with the root token; existing entries in `secret/`.
pub async fn kv2_root_references() -> ReferencePeer {
    root_references("secret", 2).await
}

/// KV v1 at `kv/` with the root token; existing entries in `kv/`.
pub async fn kv1_root_references() -> ReferencePeer {
    root_references("kv", 1).await
}

/// KV v2 at `secret/` through AppRole holding only the documented smallest policy and
/// the documented policy for reading references.
pub async fn kv2_approle_references() -> ReferencePeer {
    approle_references("secret", 2).await
}

/// KV v1 at `kv/`, likewise.
pub async fn kv1_approle_references() -> ReferencePeer {
    approle_references("kv", 1).await
}
