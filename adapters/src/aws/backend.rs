// Placeholder until the aws backend lands; replaced by its issue's work.
use super::AwsConfig;
use crate::{Error, Result};

pub struct AwsSecretsManagerBackend;

impl AwsSecretsManagerBackend {
    pub async fn connect(_config: &AwsConfig) -> Result<crate::memory::MemoryBackend> {
        Err(Error::invalid_config(
            "backend 'aws' is not implemented yet",
        ))
    }
}
