#![doc = include_str!("docs.md")]

#[cfg(feature = "vault")]
mod backend;
#[cfg(feature = "vault")]
mod client;
mod config;
#[cfg(feature = "vault")]
mod error;
#[cfg(feature = "vault")]
mod plan;
#[cfg(feature = "vault")]
mod session;

#[cfg(feature = "vault")]
pub use backend::VaultBackend;
pub use config::{
    AppRoleAuth, KubernetesAuth, KvVersion, TokenAuth, VaultAuth, VaultConfig, VaultTls,
};
#[cfg(feature = "vault")]
pub use plan::validate;
