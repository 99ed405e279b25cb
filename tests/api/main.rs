//! HTTP tests: the app served in-process on port 0, called as Skyvern calls it.
//!
//! `contract` holds the contract cases, run against every backend by `http_suite!`;
//! `service` holds behaviour of the service itself (start-up, timeouts, error mapping),
//! run with test doubles; `connections` and `hardening` what hostile clients and operator
//! mistakes meet.

mod helpers;
#[macro_use]
mod contract;
mod connections;
mod hardening;
mod service;

mod memory {
    use std::sync::Arc;

    use credbridge_adapters::memory::MemoryBackend;
    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        Arc::new(MemoryBackend::default())
    }

    http_suite!(backend);
}

/// Against moto, which `tests/run` starts and names in `CREDBRIDGE_TEST_AWS_ENDPOINT`.
#[cfg(feature = "aws")]
mod aws {
    use std::sync::Arc;

    use credbridge_adapters::aws::{AwsConfig, AwsSecretsManagerBackend};
    use credbridge_adapters::testkit::unique_scope;
    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        let endpoint = std::env::var("CREDBRIDGE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
            panic!(
                "CREDBRIDGE_TEST_AWS_ENDPOINT is not set: run tests/run, which starts moto \
                 (the AWS Secrets Manager emulator) and sets it"
            )
        });
        // moto's state is shared by the whole run, so every app gets a prefix of its own.
        let config = AwsConfig {
            region: Some("us-east-1".to_owned()),
            endpoint_url: Some(endpoint),
            name_prefix: format!("http/{}/", unique_scope()),
            ..AwsConfig::default()
        };
        Arc::new(AwsSecretsManagerBackend::connect(&config).await.unwrap())
    }

    http_suite!(backend);
}

/// The contract on Vault KV v2 (the double, or the real Vault named by
/// CREDBRIDGE_TEST_VAULT_ADDR).
#[cfg(feature = "vault")]
mod vault_kv2 {
    use std::sync::Arc;

    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        credbridge_adapters::testkit::vault_double::vault_backend(2).await
    }

    http_suite!(backend);
}

/// The contract on Vault KV v1.
#[cfg(feature = "vault")]
mod vault_kv1 {
    use std::sync::Arc;

    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        credbridge_adapters::testkit::vault_double::vault_backend(1).await
    }

    http_suite!(backend);
}
