//! A HashiCorp Vault protocol double: Vault's HTTP API for what credbridge uses, in-process,
//! and controls to make it fail (refuse connections, answer slowly, seal, expire tokens).
//!
//! No Vault server can be installed on the project's machines (see TESTING.md), so the
//! Vault backend is tested against this double, kept honest by its own tests, each of
//! which cites the documented behaviour it reproduces; the same suites run against a real
//! Vault when `CREDBRIDGE_TEST_VAULT_ADDR` and `CREDBRIDGE_TEST_VAULT_TOKEN` are set.

#[cfg(feature = "vault")]
mod harness;
mod server;
mod state;
#[cfg(all(test, feature = "vault"))]
mod tests;

#[cfg(feature = "vault")]
pub use harness::{
    test_mount, unique_prefix, vault_backend, vault_config, vault_target, VaultTarget,
};
pub use server::VaultDouble;
pub use state::{Policy, TokenSpec};
