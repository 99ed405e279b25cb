//! A Vault protocol double, in-process, for what a real Vault cannot be made to do on
//! demand in a test: refuse connections and come back, answer slowly, end a token before
//! its TTL, and log in with Kubernetes (which needs a Kubernetes API to review the
//! service-account token). Everything else is tested against OpenBao, a real Vault-API
//! server (see `testkit::vault`).
//!
//! It serves what credbridge calls in those tests, as Vault documents it (each handler
//! names the endpoint; `tests.rs` checks the double against the documentation): KV v2 at
//! `secret/`, token lookup and renewal, Kubernetes login, `sys/health` and
//! `sys/capabilities-self`. Every token may do everything; policies are OpenBao's to test.

mod double;
mod http;
mod kv;
mod state;
mod sys;
#[cfg(test)]
mod tests;
mod tokens;

pub use double::VaultDouble;
