//! The backend conformance suite (`credbridge_adapters::testkit::conformance`), run against
//! every backend peer compiled in: one module per peer of
//! `credbridge_adapters::backend_matrix!`. The real servers among them (moto, OpenBao) are
//! started by `tests/run`.

credbridge_adapters::backend_matrix!(credbridge_adapters::conformance_suite);
