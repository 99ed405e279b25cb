//! The operator's tools as an operator runs them: `migrate` between every pair of backends
//! the test command starts, `doctor` against each backend and with each kind of failure,
//! and `healthcheck`. Vault is the testkit's target (the real Vault named by
//! `CREDBRIDGE_TEST_VAULT_ADDR` when set); AWS is the moto `tests/run` starts.

mod doctor;
mod healthcheck;
mod kubernetes;
mod migrate;
mod support;
