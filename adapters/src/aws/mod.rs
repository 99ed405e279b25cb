#![doc = include_str!("docs.md")]

#[cfg(feature = "aws")]
mod backend;
#[cfg(feature = "aws")]
mod client;
mod config;
#[cfg(feature = "aws")]
mod endpoint;
#[cfg(feature = "aws")]
mod error;

#[cfg(feature = "aws")]
pub use backend::AwsBackend;
pub use config::{AwsConfig, DeletePolicy};
#[cfg(feature = "aws")]
pub use endpoint::secrets_manager_endpoint;
