//! Which backend to run, as configuration: a tagged enum on `kind`.
//!
//! Every backend's configuration parses whether or not its cargo feature is compiled in,
//! so that a config for a missing backend fails with "not compiled in" at start-up, not
//! with an "unknown variant" parse error.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::memory::{MemoryBackend, MemoryConfig};
use crate::{Backend, Result};

/// The `[backend]` table: `kind` picks the backend, the other keys are its own.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    /// In-process, lost on restart: for development and tests.
    Memory(MemoryConfig),
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
        }
    }

    /// Builds the backend: one client, one login, shared by every request.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when the
    /// configuration cannot work (or names a backend not compiled into this binary).
    pub async fn build(&self) -> Result<Arc<dyn Backend>> {
        match self {
            BackendConfig::Memory(config) => Ok(Arc::new(MemoryBackend::new(config.clone()))),
        }
    }
}
