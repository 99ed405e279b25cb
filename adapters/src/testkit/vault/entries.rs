//! The existing entries of the test Vault that references point to, written as an
//! operator would, with the root token, in an area of each test's own.

use async_trait::async_trait;
use serde_json::Value;

use super::admin::Admin;
use super::target::{TestVault, EXISTING_AREA};
use crate::testkit::random_hex;
use crate::testkit::references::ExistingEntries;
use crate::Key;

/// Secrets under `{mount}/existing/<random>/` of the test Vault.
pub struct VaultEntries {
    admin: Admin,
    mount: String,
    kv_version: u8,
    area: String,
    /// The `path_prefix` of the backend the entries are read by.
    own_prefix: String,
}

impl VaultEntries {
    /// An area of its own in `mount` (KV `kv_version`), next to a backend storing under
    /// `own_prefix`.
    pub fn new(vault: &TestVault, mount: &str, kv_version: u8, own_prefix: &str) -> Self {
        Self {
            admin: vault.admin(),
            mount: mount.to_owned(),
            kv_version,
            area: format!("{EXISTING_AREA}/{}", random_hex(6)),
            own_prefix: own_prefix.to_owned(),
        }
    }

    /// The entry's path inside the mount.
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.area)
    }
}

#[async_trait]
impl ExistingEntries for VaultEntries {
    async fn write(&self, name: &str, fields: Value) {
        self.admin
            .write_secret(&self.mount, self.kv_version, &self.path(name), fields)
            .await;
    }

    async fn remove(&self, name: &str) {
        let path = self.path(name);
        let url = match self.kv_version {
            2 => format!("{}/metadata/{path}", self.mount),
            _ => format!("{}/{path}", self.mount),
        };
        self.admin.ok("DELETE", &url, None).await;
    }

    async fn read(&self, name: &str) -> Option<Value> {
        self.admin
            .read_secret(&self.mount, self.kv_version, &self.path(name))
            .await
    }

    fn reference(&self, name: &str, key: &str) -> String {
        format!("ref+vault://{}/{}#{key}", self.mount, self.path(name))
    }

    fn pattern(&self) -> String {
        format!("{}/{}/*", self.mount, self.area)
    }

    fn own_reference(&self, key: &Key, field: &str) -> String {
        format!(
            "ref+vault://{}/{}/{}/{}#{field}",
            self.mount, self.own_prefix, key.scope, key.id
        )
    }
}
