use serde::{Deserialize, Serialize};

/// `[backend] kind = "vault"`: HashiCorp Vault's KV engine.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {}
