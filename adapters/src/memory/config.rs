use serde::{Deserialize, Serialize};

use crate::{BackendInfo, Capabilities};

/// `[backend] kind = "memory"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Credentials kept at most; a create beyond answers "full". Bounds the memory a
    /// client (or a bug) can make the process take: about 1.2 KiB per credential.
    // Not serialized at its default: the defaults are merged under whatever `[backend]`
    // the file names, and another backend's table has no such key.
    #[serde(skip_serializing_if = "is_default_max_credentials")]
    pub max_credentials: usize,
}

fn is_default_max_credentials(value: &usize) -> bool {
    *value == MemoryConfig::DEFAULT_MAX_CREDENTIALS
}

impl MemoryConfig {
    /// The memory backend's `kind` and what it can do, known before it is built.
    pub const INFO: BackendInfo = BackendInfo {
        kind: "memory",
        capabilities: Capabilities {
            persistent: false,
            shared: false,
        },
    };
    pub const DEFAULT_MAX_CREDENTIALS: usize = 100_000;

    /// Checks what types alone cannot; errors name the key.
    pub fn validate(&self) -> crate::Result<()> {
        if self.max_credentials == 0 {
            return Err(crate::Error::invalid_setting(
                "backend.max_credentials",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_credentials: Self::DEFAULT_MAX_CREDENTIALS,
        }
    }
}
