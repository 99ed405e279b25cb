//! The Vault backend's own promises beyond the conformance suite: the key layout an
//! operator sees, what delete leaves behind, soft-deleted versions, the KV version, and
//! namespaces. Each test runs its own Vault double.
#![cfg(feature = "vault")]

use credbridge_adapters::testkit::vault_double::{
    unique_prefix, vault_config, Policy, TokenSpec, VaultDouble,
};
use credbridge_adapters::testkit::{document, fresh_key, unique_scope};
use credbridge_adapters::vault::{KvVersion, VaultBackend};
use credbridge_adapters::{Backend, ErrorKind};
use serde_json::json;

fn credential() -> credbridge_adapters::Document {
    document(
        json!({"name": "n", "type": "password", "username": "ada", "password": "pw", "totp": null}),
    )
}

#[tokio::test]
async fn fields_are_top_level_keys_at_mount_prefix_scope_id() {
    let double = VaultDouble::start().await;
    for (mount, version) in [("secret", 2), ("kv", 1)] {
        let prefix = unique_prefix();
        let config = vault_config(&double.address(), &double.root_token(), mount, &prefix);
        let backend = VaultBackend::connect(&config).await.unwrap();
        let key = fresh_key(&unique_scope());
        backend.put(&key, &credential()).await.unwrap();
        let stored = double
            .stored(mount, &format!("{prefix}/{}/{}", key.scope, key.id))
            .unwrap_or_else(|| panic!("nothing at {mount}/{prefix}/{key} (KV v{version})"));
        assert_eq!(stored["type"], "password");
        assert_eq!(stored["username"], "ada");
        assert_eq!(stored.len(), 5, "no wrapper object: {:?}", stored.keys());
    }
}

#[tokio::test]
async fn kv2_delete_removes_every_version_and_the_metadata() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let backend = VaultBackend::connect(&vault_config(
        &double.address(),
        &double.root_token(),
        "secret",
        &prefix,
    ))
    .await
    .unwrap();
    let key = fresh_key(&unique_scope());
    backend.put(&key, &credential()).await.unwrap();
    let path = format!("{prefix}/{}/{}", key.scope, key.id);
    assert!(double.has_metadata("secret", &path));
    backend.delete(&key).await.unwrap();
    assert!(
        !double.has_metadata("secret", &path),
        "a soft-deleted version stayed behind"
    );
    // With the metadata gone, the id can be created again (cas=0 passes).
    backend.put(&key, &credential()).await.unwrap();
}

#[tokio::test]
async fn kv2_read_of_a_soft_deleted_or_destroyed_latest_version_is_not_found() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let root = double.root_token();
    let backend = VaultBackend::connect(&vault_config(&double.address(), &root, "secret", &prefix))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for (method, section, body) in [
        ("DELETE", "data", None),
        ("PUT", "destroy", Some(r#"{"versions":[1]}"#)),
    ] {
        let key = fresh_key(&unique_scope());
        backend.put(&key, &credential()).await.unwrap();
        let url = format!(
            "{}/v1/secret/{section}/{prefix}/{}/{}",
            double.address(),
            key.scope,
            key.id
        );
        let mut request = client
            .request(method.parse().unwrap(), url)
            .header("X-Vault-Token", &root);
        if let Some(body) = body {
            request = request.body(body);
        }
        assert_eq!(request.send().await.unwrap().status(), 204);
        let error = backend.get(&key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound, "{section}: {error}");
        // Still listed by Vault (metadata remains); delete clears it for good.
        backend.delete(&key).await.unwrap();
    }
}

#[tokio::test]
async fn kv_version_auto_asks_the_mount_and_a_forced_version_is_used_as_is() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    let mut config = vault_config(&double.address(), &double.root_token(), "kv", &prefix);
    let key = fresh_key(&unique_scope());
    // `kv` is KV v1: auto-detection stores at kv/<prefix>/..., not kv/data/...
    VaultBackend::connect(&config)
        .await
        .unwrap()
        .put(&key, &credential())
        .await
        .unwrap();
    assert!(double
        .stored("kv", &format!("{prefix}/{}/{}", key.scope, key.id))
        .is_some());
    // Forcing v2 on a v1 mount writes to `data/...` paths, which is not where v1 reads.
    config.kv_version = KvVersion::V2;
    let forced = VaultBackend::connect(&config).await.unwrap();
    assert_eq!(
        forced.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn a_token_that_may_not_read_the_mount_needs_an_explicit_kv_version() {
    let double = VaultDouble::start().await;
    let prefix = unique_prefix();
    // A policy on another mount only: mount discovery is refused.
    let token = double.create_token(TokenSpec::unlimited(Policy::credbridge("kv", 1, &prefix)));
    let mut config = vault_config(&double.address(), &token, "secret", &prefix);
    let Err(error) = VaultBackend::connect(&config).await else {
        panic!("discovered a mount the token cannot see");
    };
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error.to_string().contains("kv_version"), "{error}");
    config.kv_version = KvVersion::V2;
    VaultBackend::connect(&config).await.unwrap();
}

#[tokio::test]
async fn the_namespace_is_sent_with_every_request() {
    let double = VaultDouble::start().await;
    double.mount_kv("team-a", "secret", 2);
    let prefix = unique_prefix();
    let token = double.create_token(
        TokenSpec::unlimited(Policy::credbridge("secret", 2, &prefix)).in_namespace("team-a"),
    );
    let mut config = vault_config(&double.address(), &token, "secret", &prefix);
    // Without the namespace, the token is not valid at all.
    assert!(VaultBackend::connect(&config).await.is_err());
    config.namespace = Some("team-a".to_owned());
    let backend = VaultBackend::connect(&config).await.unwrap();
    let key = fresh_key(&unique_scope());
    backend.put(&key, &credential()).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), credential());
    backend.check().await.unwrap();
    // Stored in team-a's mount, not the root namespace's.
    assert!(double
        .stored("secret", &format!("{prefix}/{}/{}", key.scope, key.id))
        .is_none());
}
