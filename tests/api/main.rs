//! Every integration test of the service, in one binary: each binary links the whole
//! service and its SDKs, so one link instead of a dozen is most of a cold test run on a
//! small machine. Only tests that install the process-wide log subscriber have binaries of
//! their own (`tests/no_secrets_in_logs.rs`, `tests/vault_logs.rs`): sharing this process,
//! they would capture every other test's lines, and each other's.
//!
//! The app served in-process on port 0, called as Skyvern calls it:
//! `contract` holds the contract cases, run by `http_suite!` against every backend peer of
//! `credbridge_adapters::backend_matrix!` (in `contract_peers`);
//! `references` holds the cases of references to existing entries, run by
//! `http_reference_suite!` against every peer of `credbridge_adapters::reference_matrix!`
//! (in `reference_peers`);
//! `service` holds behaviour of the service itself (start-up, timeouts, error mapping),
//! run with test doubles; `connections`, `hardening`, `properties` and `tls` what hostile
//! clients and operator mistakes meet.
//!
//! The backends on their own: `conformance` runs the backend conformance suite against
//! every peer; `vault_backend`, `vault_auth`, `vault_faults` and `aws_faults` what each
//! backend promises beyond it, and how it fails.
//!
//! The binary as an operator runs it: `cli`, `operator` (`migrate`, `doctor`,
//! `healthcheck`, the Kubernetes manifests) and `observability` (the Prometheus rules and
//! dashboards against a real Prometheus).

mod binary;
mod helpers;
#[macro_use]
mod contract;
mod aws_faults;
mod cli;
mod conformance;
mod connections;
mod hardening;
mod observability;
mod operator;
mod properties;
#[macro_use]
mod references;
mod service;
mod tls;
mod vault_auth;
mod vault_backend;
mod vault_faults;

// The contract, against every backend peer compiled in: one module per peer, apart from
// the other suites' tests so that a filter such as `contract_peers::vault_` picks them.
mod contract_peers {
    credbridge_adapters::backend_matrix!(http_suite);
}

// References, against every peer that resolves them.
#[cfg(any(feature = "vault", feature = "aws"))]
mod reference_peers {
    credbridge_adapters::reference_matrix!(http_reference_suite);
}
