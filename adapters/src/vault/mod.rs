#![doc = include_str!("docs.md")]

#[cfg(feature = "vault")]
mod auth;
#[cfg(feature = "vault")]
mod backend;
#[cfg(feature = "vault")]
mod client;
mod config;
#[cfg(feature = "vault")]
mod error;

#[cfg(feature = "vault")]
pub use backend::{validate, VaultBackend};
pub use config::{
    AppRoleAuth, KubernetesAuth, KvVersion, TokenAuth, VaultAuth, VaultConfig, VaultTls,
};
