//! The operator's tools as an operator runs them: `migrate` between every pair of backends
//! the test command starts, `doctor` against each backend and with each kind of failure,
//! `healthcheck`, and the configurations of the Kubernetes manifests. Vault is the shared
//! test Vault (the OpenBao `tests/run` starts, or the Vault `CREDBRIDGE_TEST_VAULT_ADDR`
//! names); AWS is the moto `tests/run` starts. Built with both backends, as `tests/run`
//! builds: the tools are tested between them, and memory has nothing to migrate.
#![cfg(all(feature = "vault", feature = "aws"))]

mod doctor;
mod healthcheck;
mod kubernetes;
mod migrate;
mod support;
