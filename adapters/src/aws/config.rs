use serde::{Deserialize, Serialize};

/// `[backend] kind = "aws"`: AWS Secrets Manager.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {}
