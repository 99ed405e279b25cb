//! The backend conformance suite (`credbridge_adapters::testkit::conformance`), run against
//! every backend compiled in. Each backend's peer is started by `tests/run`.

mod memory {
    use std::sync::Arc;

    use credbridge_adapters::memory::MemoryBackend;
    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        Arc::new(MemoryBackend::default())
    }

    credbridge_adapters::conformance_suite!(backend);
}

/// Against moto, which `tests/run` starts and names in `CREDBRIDGE_TEST_AWS_ENDPOINT`.
#[cfg(feature = "aws")]
mod aws {
    use std::sync::Arc;

    use credbridge_adapters::aws::{AwsConfig, AwsSecretsManagerBackend};
    use credbridge_adapters::testkit::unique_scope;
    use credbridge_adapters::Backend;

    /// moto's state is shared by the whole run, so every backend gets a prefix of its own.
    pub fn moto_config() -> AwsConfig {
        let endpoint = std::env::var("CREDBRIDGE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
            panic!(
                "CREDBRIDGE_TEST_AWS_ENDPOINT is not set: run tests/run, which starts moto \
                 (the AWS Secrets Manager emulator) and sets it"
            )
        });
        AwsConfig {
            region: Some("us-east-1".to_owned()),
            endpoint_url: Some(endpoint),
            name_prefix: format!("conformance/{}/", unique_scope()),
            ..AwsConfig::default()
        }
    }

    async fn backend() -> Arc<dyn Backend> {
        Arc::new(
            AwsSecretsManagerBackend::connect(&moto_config())
                .await
                .unwrap(),
        )
    }

    credbridge_adapters::conformance_suite!(backend);

    /// The same promises hold when deletes skip the recovery window.
    mod force_delete {
        use super::*;

        async fn backend() -> Arc<dyn Backend> {
            let config = AwsConfig {
                force_delete_without_recovery: true,
                ..moto_config()
            };
            Arc::new(AwsSecretsManagerBackend::connect(&config).await.unwrap())
        }

        credbridge_adapters::conformance_suite!(backend);
    }
}

/// KV v2 on the Vault double (or the real Vault named by CREDBRIDGE_TEST_VAULT_ADDR).
#[cfg(feature = "vault")]
mod vault_kv2 {
    use std::sync::Arc;

    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        credbridge_adapters::testkit::vault_double::vault_backend(2).await
    }

    credbridge_adapters::conformance_suite!(backend);
}

/// KV v1 on the Vault double (or the real Vault named by CREDBRIDGE_TEST_VAULT_ADDR).
#[cfg(feature = "vault")]
mod vault_kv1 {
    use std::sync::Arc;

    use credbridge_adapters::Backend;

    async fn backend() -> Arc<dyn Backend> {
        credbridge_adapters::testkit::vault_double::vault_backend(1).await
    }

    credbridge_adapters::conformance_suite!(backend);
}
