#![doc = include_str!("docs.md")]

#[cfg(feature = "vault")]
mod backend;
mod config;

#[cfg(feature = "vault")]
pub use backend::VaultBackend;
pub use config::VaultConfig;
