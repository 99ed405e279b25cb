//! HTTP tests: the app served in-process on port 0, called as Skyvern calls it.
//!
//! `contract` holds the contract cases, run against every backend by `http_suite!`;
//! `service` holds behaviour of the service itself (start-up, timeouts, error mapping),
//! run with test doubles.

mod helpers;
#[macro_use]
mod contract;
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
