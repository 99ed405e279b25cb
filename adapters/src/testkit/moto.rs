//! AWS Secrets Manager peers: moto, which `tests/run` starts and names in
//! `CREDBRIDGE_TEST_AWS_ENDPOINT`.

use std::sync::Arc;

use super::unique_scope;
use crate::aws::{AwsConfig, AwsSecretsManagerBackend};
use crate::Backend;

/// moto's endpoint, `http://127.0.0.1:<port>`.
pub fn endpoint() -> String {
    std::env::var("CREDBRIDGE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CREDBRIDGE_TEST_AWS_ENDPOINT is not set: run tests/run, which starts moto \
             (the AWS Secrets Manager emulator) and sets it"
        )
    })
}

/// A configuration for moto under a name prefix of its own: moto's state is shared by the
/// whole run.
pub fn moto_config() -> AwsConfig {
    AwsConfig {
        region: Some("us-east-1".to_owned()),
        endpoint_url: Some(endpoint()),
        name_prefix: format!("test/{}/", unique_scope()),
        ..AwsConfig::default()
    }
}

async fn connect(config: &AwsConfig) -> Arc<dyn Backend> {
    match AwsSecretsManagerBackend::connect(config).await {
        Ok(backend) => Arc::new(backend),
        Err(error) => panic!("cannot set up the AWS backend for moto: {error}"),
    }
}

/// AWS Secrets Manager on moto, deletes keeping the recovery window.
pub async fn backend() -> Arc<dyn Backend> {
    connect(&moto_config()).await
}

/// The same, deleting without a recovery window.
pub async fn force_delete_backend() -> Arc<dyn Backend> {
    connect(&AwsConfig {
        force_delete_without_recovery: true,
        ..moto_config()
    })
    .await
}
