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
use crate::{Backend, BackendInfo, Error, Result};

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
    /// What the configured backend is and can do, as its built backend's
    /// [`Backend::info`] reports it, known without building it (so start-up can refuse a
    /// token-less persistent backend without touching it) and whether or not its cargo
    /// feature is compiled in.
    pub fn info(&self) -> BackendInfo {
        match self {
            BackendConfig::Memory(_) => MemoryConfig::INFO,
            BackendConfig::Vault(_) => VaultConfig::INFO,
            BackendConfig::Aws(_) => AwsConfig::INFO,
        }
    }

    /// The `kind` name, as written in configuration.
    pub fn kind(&self) -> &'static str {
        self.info().kind
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

#[cfg(test)]
mod tests {
    use super::*;

    /// serde names each variant by its own `rename_all`: it must spell the kind `info`
    /// reports, or a `kind` read back from configuration would name another backend.
    #[test]
    fn the_kind_written_in_configuration_is_the_kind_info_reports() {
        for config in [
            BackendConfig::Memory(MemoryConfig::default()),
            BackendConfig::Vault(VaultConfig::default()),
            BackendConfig::Aws(AwsConfig::default()),
        ] {
            let written = serde_json::to_value(&config).unwrap();
            assert_eq!(written["kind"], config.kind());
            let read: BackendConfig =
                serde_json::from_value(serde_json::json!({ "kind": config.kind() })).unwrap();
            assert_eq!(read.info(), config.info());
        }
    }
}
