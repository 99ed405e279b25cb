// Placeholder until the vault backend lands; replaced by its issue's work.
use super::VaultConfig;
use crate::{Error, Result};

pub struct VaultBackend;

impl VaultBackend {
    pub async fn connect(_config: &VaultConfig) -> Result<crate::memory::MemoryBackend> {
        Err(Error::invalid_config(
            "backend 'vault' is not implemented yet",
        ))
    }
}
