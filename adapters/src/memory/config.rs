use serde::{Deserialize, Serialize};

/// `[backend] kind = "memory"`: the memory backend takes no options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {}
