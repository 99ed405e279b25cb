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
