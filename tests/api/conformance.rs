//! The backend conformance suite (`credbridge_adapters::testkit::conformance`), run against
//! every backend peer compiled in: one module per peer of
//! `credbridge_adapters::backend_matrix!`; and the reference cases against every peer of
//! `credbridge_adapters::reference_matrix!`. The real servers among them (moto, OpenBao) are
//! started by `tests/run`.

credbridge_adapters::backend_matrix!(credbridge_adapters::conformance_suite);

// What backends that resolve references promise about them, against every such peer.
mod references {
    credbridge_adapters::reference_matrix!(credbridge_adapters::reference_suite);
}
