#![doc = include_str!("docs.md")]

#[cfg(feature = "aws")]
mod backend;
mod config;
#[cfg(feature = "aws")]
mod endpoint;
#[cfg(feature = "aws")]
mod error;

#[cfg(feature = "aws")]
pub use backend::AwsSecretsManagerBackend;
pub use config::{AwsConfig, DeletePolicy};
#[cfg(feature = "aws")]
pub use endpoint::secrets_manager_endpoint;
