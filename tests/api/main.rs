//! HTTP tests: the app served in-process on port 0, called as Skyvern calls it.
//!
//! `contract` holds the contract cases, run by `http_suite!` against every backend peer of
//! `credbridge_adapters::backend_matrix!`;
//! `references` holds the cases of references to existing entries, run by
//! `http_reference_suite!` against every peer of `credbridge_adapters::reference_matrix!`;
//! `service` holds behaviour of the service itself (start-up, timeouts, error mapping),
//! run with test doubles; `connections` and `hardening` what hostile clients and operator
//! mistakes meet.

mod helpers;
#[macro_use]
mod contract;
mod connections;
mod hardening;
#[cfg(any(feature = "vault", feature = "aws"))]
#[macro_use]
mod references;
mod service;

// The contract, against every backend peer compiled in: one module per peer.
credbridge_adapters::backend_matrix!(http_suite);

// References, against every peer that resolves them.
#[cfg(any(feature = "vault", feature = "aws"))]
mod reference_peers {
    credbridge_adapters::reference_matrix!(http_reference_suite);
}
