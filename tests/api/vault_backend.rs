//! The Vault backend's own promises beyond the conformance suite: the key layout an
//! operator sees, what delete leaves behind, soft-deleted versions, the KV version,
//! namespaces, and which mounts and versions references are read from. Against the test Vault (OpenBao, from `tests/run`), each test under a
//! prefix of its own.
#![cfg(feature = "vault")]

use std::time::Duration;

use credbridge_adapters::testkit::eventually;
use credbridge_adapters::testkit::vault::{
    connected, documented_policy, unique_prefix, vault_config, Bao, TestVault, TEST_NAMESPACE,
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
    let policy = root.new_policy(&documented_policy(1, "kv", &prefix)).await;
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
    // A token of the namespace: valid there and nowhere else.
    let (_, token) = team.documented_token(&prefix, json!({})).await;
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

/// The target of a reference text.
fn target(reference: &str) -> credbridge_adapters::ReferenceTarget {
    credbridge_adapters::testkit::references::target_of(reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_read_any_kv_mount_at_its_own_version() {
    let vault = TestVault::prepared().await;
    let root = vault.admin();
    let area = format!("existing/{}", random_hex(6));
    root.write_secret(
        "secret",
        2,
        &format!("{area}/v2"),
        json!({"password": "from-v2"}),
    )
    .await;
    root.write_secret(
        "kv",
        1,
        &format!("{area}/v1"),
        json!({"password": "from-v1"}),
    )
    .await;
    // A mount of two segments: Vault, not the first `/`, says where the mount ends.
    let nested = format!("teams-{}/kv", random_hex(4));
    root.enable_kv(&nested, 2).await;
    root.write_secret(&nested, 2, "app/smtp", json!({"password": "from-nested"}))
        .await;
    for own_mount in ["secret", "kv"] {
        let backend = root_backend(&vault, own_mount, &unique_prefix()).await;
        for (reference, value) in [
            (format!("ref+vault://secret/{area}/v2#password"), "from-v2"),
            (format!("ref+vault://kv/{area}/v1#password"), "from-v1"),
            (
                format!("ref+vault://{nested}/app/smtp#password"),
                "from-nested",
            ),
        ] {
            let entry = backend
                .read_reference(&target(&reference))
                .await
                .unwrap_or_else(|error| panic!("{own_mount}: {reference}: {error}"));
            assert_eq!(entry.value(Some("password")).unwrap().expose(), value);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_referenced_mount_is_asked_its_kv_version_once() {
    // A server of its own, to count the requests in its audit log.
    let bao = Bao::start().await;
    let admin = bao.admin();
    admin.enable_kv("kv", 1).await;
    for name in ["a", "b"] {
        let path = format!("apps/{name}");
        admin.write_secret("kv", 1, &path, json!({"k": name})).await;
        admin
            .write_secret("secret", 2, &path, json!({"k": name}))
            .await;
    }
    let backend = root_backend(
        &TestVault {
            address: bao.address(),
            root_token: Bao::ROOT_TOKEN.to_owned(),
        },
        "secret",
        "credbridge",
    )
    .await;
    for _ in 0..3 {
        for reference in [
            "ref+vault://kv/apps/a#k",
            "ref+vault://kv/apps/b#k",
            "ref+vault://secret/apps/a#k",
            "ref+vault://secret/apps/b#k",
        ] {
            backend.read_reference(&target(reference)).await.unwrap();
        }
    }
    let audit = bao.audit();
    // The write and the three reads.
    eventually(Duration::from_secs(10), "the reads are audited", || async {
        (audit.successes("kv/apps/b") == 4).then_some(())
    })
    .await;
    assert_eq!(audit.successes_under("sys/internal/ui/mounts/kv/"), 1);
    // credbridge's own mount is known from start-up.
    assert_eq!(audit.successes_under("sys/internal/ui/mounts/secret/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_a_kv_engine_or_naming_a_mount_never_resolve() {
    let vault = TestVault::prepared().await;
    let prefix = unique_prefix();
    let backend = root_backend(&vault, "secret", &prefix).await;
    let mount = format!("teams-{}/kv", random_hex(4));
    vault.admin().enable_kv(&mount, 1).await;
    for (reference, kind) in [
        ("ref+vault://cubbyhole/x#k".to_owned(), ErrorKind::NotFound),
        (
            "ref+vault://sys/policy/default#k".to_owned(),
            ErrorKind::NotFound,
        ),
        (format!("ref+vault://{mount}#k"), ErrorKind::NotFound),
        (
            format!("ref+vault://nowhere-{}/x#k", random_hex(4)),
            ErrorKind::PermissionDenied,
        ),
    ] {
        let error = backend
            .read_reference(&target(&reference))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{reference}: {error}");
    }
    // credbridge's own folder, whatever the case it is written in.
    let shouting = format!("ref+vault://SECRET/{}/x/y#k", prefix.to_uppercase());
    assert!(backend.owns(&target(&shouting)));
    let sibling = format!("ref+vault://secret/{prefix}-other/x#k");
    assert!(!backend.owns(&target(&sibling)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_path_starting_with_a_child_namespace_reaches_that_namespace() {
    let vault = TestVault::with_namespace().await;
    let team = vault.admin().in_namespace(TEST_NAMESPACE);
    let area = format!("existing/{}", random_hex(6));
    team.write_secret(
        "secret",
        2,
        &format!("{area}/smtp"),
        json!({"password": "in-the-namespace"}),
    )
    .await;
    let backend = root_backend(&vault, "secret", &unique_prefix()).await;
    let reference = format!("ref+vault://{TEST_NAMESPACE}/secret/{area}/smtp#password");
    let entry = backend.read_reference(&target(&reference)).await.unwrap();
    assert_eq!(
        entry.value(Some("password")).unwrap().expose(),
        "in-the-namespace"
    );
}
