//! Which backend to run, as configuration: a tagged enum on `kind`.
//!
//! Every backend's configuration parses whether or not its cargo feature is compiled in,
//! so that a config for a missing backend fails with "not compiled in" at start-up, not
//! with an "unknown variant" parse error.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::aws::AwsConfig;
use crate::memory::{MemoryBackend, MemoryConfig};
use crate::vault::VaultConfig;
use crate::{Backend, Error, Result};

/// The `[backend]` table: `kind` picks the backend, the other keys are its own.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
// Built once at start-up and never moved in a hot path: a few hundred bytes inline cost
// nothing, and boxing would only make every variant harder to construct.
#[allow(clippy::large_enum_variant)]
pub enum BackendConfig {
    /// In-process, lost on restart: for development and tests.
    Memory(MemoryConfig),
    /// The KV engine, version 1 or 2, of HashiCorp Vault or OpenBao (cargo feature `vault`).
    Vault(VaultConfig),
    /// AWS Secrets Manager (cargo feature `aws`).
    Aws(AwsConfig),
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Memory(MemoryConfig::default())
    }
}

impl BackendConfig {
    /// The `kind` name, as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Memory(_) => MemoryBackend::KIND,
            BackendConfig::Vault(_) => "vault",
            BackendConfig::Aws(_) => "aws",
        }
    }

    /// Checks what types alone cannot, without connecting, so `check-config` catches it.
    pub fn validate(&self) -> Result<()> {
        match self {
            BackendConfig::Memory(config) => config.validate(),
            #[cfg(feature = "vault")]
            BackendConfig::Vault(config) => crate::vault::validate(config),
            #[cfg(feature = "aws")]
            BackendConfig::Aws(config) => config.validate(),
            #[allow(unreachable_patterns)]
            other => Err(not_compiled_in(other.kind())),
        }
    }

    /// Whether the backend keeps credentials beyond this process, known before connecting
    /// so that start-up can refuse a token-less persistent backend without touching it.
    pub fn persistent(&self) -> bool {
        !matches!(self, BackendConfig::Memory(_))
    }

    /// Builds the backend: one client, one login, shared by every request.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when the
    /// configuration cannot work (or names a backend not compiled into this binary).
    pub async fn build(&self) -> Result<Arc<dyn Backend>> {
        match self {
            BackendConfig::Memory(config) => Ok(Arc::new(MemoryBackend::new(config.clone()))),
            #[cfg(feature = "vault")]
            BackendConfig::Vault(config) => {
                Ok(Arc::new(crate::vault::VaultBackend::connect(config).await?))
            }
            #[cfg(feature = "aws")]
            BackendConfig::Aws(config) => {
                Ok(Arc::new(crate::aws::AwsBackend::connect(config).await?))
            }
            #[allow(unreachable_patterns)]
            other => Err(not_compiled_in(other.kind())),
        }
    }
}

fn not_compiled_in(kind: &'static str) -> Error {
    Error::invalid_config(format!(
        "backend '{kind}' is not compiled in: rebuild with `--features {kind}`"
    ))
}
