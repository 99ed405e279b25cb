//! The Vault the suites share: the one `tests/run` starts, named by
//! `CREDBRIDGE_TEST_VAULT_ADDR` and `CREDBRIDGE_TEST_VAULT_TOKEN` (a root token).

use serde_json::json;
use tokio::sync::OnceCell;

use super::admin::Admin;
use super::policy::{documented_policy, documented_reference_policy};

/// The shared test Vault. Tests share it: each works under a prefix, scope, role or token
/// of its own, and none seals it or revokes what it did not create.
#[derive(Debug, Clone)]
pub struct TestVault {
    pub address: String,
    pub root_token: String,
}

/// The namespace the namespace peer and the namespace tests work in.
pub const TEST_NAMESPACE: &str = "credbridge-test";

/// The folder of each mount under which the tests write the existing entries references
/// point to; the reference peers' policy lets them read it.
pub const EXISTING_AREA: &str = "existing";

/// The AppRole role (and its policy, of the same name) of the smallest-policy peers.
pub(super) fn role_name(mount: &str, kv_version: u8) -> String {
    format!("credbridge-{mount}-kv{kv_version}")
}

/// The AppRole role (and its extra policy, of the same name) of the smallest-policy
/// reference peers: the smallest policy and the documented stanza for references.
pub(super) fn reference_role_name(mount: &str, kv_version: u8) -> String {
    format!("{}-references", role_name(mount, kv_version))
}

impl TestVault {
    /// The Vault named by the environment; panics, saying how to get one, when unset.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| {
                    panic!(
                        "{name} is not set: run tests/run, which starts OpenBao and sets \
                         CREDBRIDGE_TEST_VAULT_ADDR and CREDBRIDGE_TEST_VAULT_TOKEN (or set \
                         both to a Vault of your own and a root token)"
                    )
                })
        };
        Self {
            address: var("CREDBRIDGE_TEST_VAULT_ADDR"),
            root_token: var("CREDBRIDGE_TEST_VAULT_TOKEN"),
        }
    }

    /// The root API of this Vault.
    pub fn admin(&self) -> Admin {
        Admin::new(&self.address, &self.root_token)
    }

    /// The shared Vault, set up once per test binary as the peers need it: `secret/` (KV
    /// v2, as dev servers mount it) and `kv/` (KV v1); AppRole at `approle/`; for each
    /// mount, the documented smallest policy and a role bound to it, and a role that also
    /// holds the documented policy for reading references under [`EXISTING_AREA`]. Every
    /// step tolerates an earlier run's result.
    pub async fn prepared() -> Self {
        static PREPARED: OnceCell<()> = OnceCell::const_new();
        let vault = Self::from_env();
        PREPARED
            .get_or_init(|| async {
                let root = vault.admin();
                root.enable_kv("secret", 2).await;
                root.enable_kv("kv", 1).await;
                root.enable_auth("approle", "approle").await;
                for (mount, kv_version) in [("secret", 2), ("kv", 1)] {
                    smallest_policy_role(&root, mount, kv_version).await;
                    reference_role(&root, mount, kv_version).await;
                }
            })
            .await;
        vault
    }

    /// [`TestVault::prepared`], and the namespace [`TEST_NAMESPACE`] set up the same way for
    /// `secret/` (KV v2). Only the tests of namespaces ask for it, so a Vault without
    /// namespaces (HashiCorp Vault's Community edition) runs every other test.
    pub async fn with_namespace() -> Self {
        static PREPARED: OnceCell<()> = OnceCell::const_new();
        let vault = Self::prepared().await;
        PREPARED
            .get_or_init(|| async {
                let root = vault.admin();
                root.create_namespace(TEST_NAMESPACE).await;
                let team = root.in_namespace(TEST_NAMESPACE);
                team.enable_kv("secret", 2).await;
                team.enable_auth("approle", "approle").await;
                smallest_policy_role(&team, "secret", 2).await;
            })
            .await;
        vault
    }
}

/// The documented smallest policy for `mount` under the prefix `credbridge`, and an
/// AppRole role that issues tokens with it alone (and Vault's `default`).
async fn smallest_policy_role(admin: &Admin, mount: &str, kv_version: u8) {
    let name = role_name(mount, kv_version);
    admin
        .write_policy(&name, &documented_policy(kv_version, mount, "credbridge"))
        .await;
    admin
        .write_approle(&name, json!({ "token_policies": [name] }))
        .await;
}

/// The documented policy for reading references, for [`EXISTING_AREA`] of `mount`, and an
/// AppRole role that holds it beside the smallest policy.
async fn reference_role(admin: &Admin, mount: &str, kv_version: u8) {
    let name = reference_role_name(mount, kv_version);
    admin
        .write_policy(
            &name,
            &documented_reference_policy(kv_version, mount, EXISTING_AREA),
        )
        .await;
    admin
        .write_approle(
            &name,
            json!({ "token_policies": [role_name(mount, kv_version), name] }),
        )
        .await;
}
