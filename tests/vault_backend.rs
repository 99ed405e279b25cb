//! The Vault backend's own promises beyond the conformance suite: the key layout an
//! operator sees, what delete leaves behind, soft-deleted versions, the KV version, and
//! namespaces. Against the test Vault (OpenBao, from `tests/run`), each test under a
//! prefix of its own.
#![cfg(feature = "vault")]

use std::time::Duration;

use credbridge_adapters::testkit::eventually;
use credbridge_adapters::testkit::vault::{
    connected, documented_policy, unique_prefix, vault_config, TestVault, TEST_NAMESPACE,
};
use credbridge_adapters::testkit::{document, fresh_key, random_hex, unique_scope};
use credbridge_adapters::vault::{KvVersion, VaultBackend, VaultConfig};
use credbridge_adapters::{Backend, ErrorKind};
use serde_json::json;

fn credential() -> credbridge_adapters::Document {
    document(
        json!({"name": "n", "type": "password", "username": "ada", "password": "pw", "totp": null}),
    )
}

/// A backend on the test Vault's `mount` with the root token, under `prefix`.
async fn root_backend(vault: &TestVault, mount: &str, prefix: &str) -> VaultBackend {
    connected(&vault_config(
        &vault.address,
        &vault.root_token,
        mount,
        prefix,
    ))
    .await
}

/// Waits until the backend, still connecting, reports a reason containing `says`.
async fn until_not_connected_because(backend: &VaultBackend, says: &str) {
    let what = format!("the backend saying {says:?}");
    eventually(Duration::from_secs(30), &what, || async {
        match backend.check().await {
            Err(error) if error.to_string().contains(says) => {
                assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
                Some(())
            }
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_are_top_level_keys_at_mount_prefix_scope_id() {
    let vault = TestVault::prepared().await;
    for (mount, version) in [("secret", 2), ("kv", 1)] {
        let prefix = unique_prefix();
        let backend = root_backend(&vault, mount, &prefix).await;
        let key = fresh_key(&unique_scope());
        backend.put(&key, &credential()).await.unwrap();
        let path = format!("{prefix}/{}/{}", key.scope, key.id);
        let stored = vault
            .admin()
            .read_secret(mount, version, &path)
            .await
            .unwrap_or_else(|| panic!("nothing at {mount}/{path} (KV v{version})"));
        assert_eq!(stored["type"], "password");
        assert_eq!(stored["username"], "ada");
        assert_eq!(
            stored.as_object().unwrap().len(),
            5,
            "no wrapper object: {stored}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_delete_removes_every_version_and_the_metadata() {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    let backend = root_backend(&vault, "secret", &prefix).await;
    let key = fresh_key(&unique_scope());
    backend.put(&key, &credential()).await.unwrap();
    let metadata = format!("secret/metadata/{prefix}/{}/{}", key.scope, key.id);
    assert_eq!(vault.admin().call("GET", &metadata, None).await.0, 200);
    backend.delete(&key).await.unwrap();
    assert_eq!(
        vault.admin().call("GET", &metadata, None).await.0,
        404,
        "a soft-deleted version stayed behind"
    );
    // With the metadata gone, the id can be created again (cas=0 passes).
    backend.put(&key, &credential()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_read_of_a_soft_deleted_or_destroyed_latest_version_is_not_found() {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    let backend = root_backend(&vault, "secret", &prefix).await;
    let admin = vault.admin();
    for (method, section, body) in [
        ("DELETE", "data", None),
        ("PUT", "destroy", Some(json!({"versions": [1]}))),
    ] {
        let key = fresh_key(&unique_scope());
        backend.put(&key, &credential()).await.unwrap();
        let path = format!("secret/{section}/{prefix}/{}/{}", key.scope, key.id);
        admin.ok(method, &path, body).await;
        let error = backend.get(&key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound, "{section}: {error}");
        // Still listed by Vault (metadata remains); delete clears it for good.
        backend.delete(&key).await.unwrap();
        assert!(backend.list(&key.scope).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_version_auto_asks_the_mount_and_a_forced_version_is_used_as_is() {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    let key = fresh_key(&unique_scope());
    // `kv` is KV v1: auto-detection stores at kv/<prefix>/..., not kv/data/...
    root_backend(&vault, "kv", &prefix)
        .await
        .put(&key, &credential())
        .await
        .unwrap();
    let path = format!("{prefix}/{}/{}", key.scope, key.id);
    assert!(vault.admin().read_secret("kv", 1, &path).await.is_some());
    // Forcing v2 on a v1 mount reads `data/...` paths, which is not where v1 wrote.
    let forced = connected(&VaultConfig {
        kv_version: KvVersion::V2,
        ..vault_config(&vault.address, &vault.root_token, "kv", &prefix)
    })
    .await;
    assert_eq!(
        forced.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_may_not_read_the_mount_needs_an_explicit_kv_version() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let prefix = unique_prefix();
    // A policy on another mount only: Vault refuses to describe `secret/` to this token.
    let policy = format!("credbridge-{}", random_hex(6));
    root.write_policy(&policy, &documented_policy(1, "kv", &prefix))
        .await;
    let token = root.create_token(&[&policy], json!({})).await;
    let mut config = vault_config(&vault.address, &token, "secret", &prefix);
    let discovering = VaultBackend::connect(&config).await.unwrap();
    until_not_connected_because(&discovering, "kv_version").await;
    config.kv_version = KvVersion::V2;
    connected(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_is_sent_with_every_request() {
    let vault = TestVault::with_namespace().await;
    let team = vault.admin().in_namespace(TEST_NAMESPACE);
    let prefix = unique_prefix();
    let policy = format!("credbridge-{}", random_hex(6));
    team.write_policy(&policy, &documented_policy(2, "secret", &prefix))
        .await;
    // A token of the namespace: valid there and nowhere else.
    let token = team.create_token(&[&policy], json!({})).await;
    let mut config = vault_config(&vault.address, &token, "secret", &prefix);
    let outside = VaultBackend::connect(&config).await.unwrap();
    until_not_connected_because(&outside, "Vault denied permission").await;

    config.namespace = Some(TEST_NAMESPACE.to_owned());
    let backend = connected(&config).await;
    let key = fresh_key(&unique_scope());
    backend.put(&key, &credential()).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), credential());
    backend.check().await.unwrap();
    // Stored in the namespace's mount, not the root namespace's.
    let path = format!("{prefix}/{}/{}", key.scope, key.id);
    assert!(team.read_secret("secret", 2, &path).await.is_some());
    assert!(vault
        .admin()
        .read_secret("secret", 2, &path)
        .await
        .is_none());
}
