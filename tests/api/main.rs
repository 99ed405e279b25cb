//! HTTP tests: the app served in-process on port 0, called as Skyvern calls it.
//!
//! `contract` holds the contract cases, run by `http_suite!` against every backend peer of
//! `credbridge_adapters::backend_matrix!`;
//! `service` holds behaviour of the service itself (start-up, timeouts, error mapping),
//! run with test doubles; `connections` and `hardening` what hostile clients and operator
//! mistakes meet.

mod helpers;
#[macro_use]
mod contract;
mod connections;
mod hardening;
mod service;

// The contract, against every backend peer compiled in: one module per peer.
credbridge_adapters::backend_matrix!(http_suite);
