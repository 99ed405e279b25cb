//! Vault peers: the Vault `tests/run` starts (OpenBao's dev server, or the Vault named by
//! `CREDBRIDGE_TEST_VAULT_ADDR` and `CREDBRIDGE_TEST_VAULT_TOKEN`), OpenBao servers of a
//! test's own for what would disturb other tests (sealing, revoking every login), and
//! what the tests need to set them up as an operator would.

mod admin;
mod bao;
mod entries;
mod peers;
mod policy;
mod target;

pub use admin::Admin;
pub use bao::{AuditLog, Bao};
pub use entries::VaultEntries;
pub use peers::{
    connected, kv1_approle, kv1_approle_references, kv1_root, kv1_root_references, kv2_approle,
    kv2_approle_references, kv2_in_namespace, kv2_root, kv2_root_references, unique_prefix,
    vault_config,
};
pub use policy::{documented_policy, documented_reference_policy};
pub use target::{TestVault, EXISTING_AREA, TEST_NAMESPACE};
