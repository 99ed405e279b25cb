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
