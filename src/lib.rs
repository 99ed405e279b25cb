//! credbridge: Skyvern's custom credential service, in front of the vault you already run.
//!
//! The modules, each owning one concern: [`config`] (settings and their sources),
//! [`credential`] (the contract's model and rules), [`auth`] (tokens to scopes), [`api`]
//! (routes and HTTP errors), [`app`] (start-up), [`limits`] (rate limits), [`audit`]
//! (the audit log), [`metrics`], [`references`] (fields that name existing vault entries),
//! [`server`] (connections and their limits), [`tls`], [`watch`] (file changes),
//! [`telemetry`] (the diagnostic log), [`cli`]; and the operator's tools: [`migrate`] (copy
//! credentials between backends), [`doctor`] (check a deployment), [`healthcheck`] (a probe
//! for containers).

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod credential;
pub mod doctor;
pub mod healthcheck;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod references;
pub mod reload;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod watch;

pub use app::App;
pub use config::Settings;

/// mimalloc serves the many small, short-lived allocations of a request (headers, JSON
/// values, log lines) faster than the system allocator (see the README's benchmark). Set
/// here rather than in `main.rs` so that tests and benchmarks run on the allocator
/// production uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
