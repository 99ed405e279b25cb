//! What every backend is tested with: the conformance suite, the backends it runs
//! against, and their helpers.
//!
//! Compiled with the `testkit` feature only; never part of a release build.

pub mod conformance;
mod helpers;
mod matrix;
#[cfg(feature = "aws")]
pub mod moto;
pub mod references;
#[cfg(feature = "vault")]
pub mod vault;
#[cfg(feature = "vault")]
pub mod vault_double;

pub use helpers::{document, eventually, fresh_key, random_hex, unique_scope};
pub use matrix::memory;
pub use references::{ExistingEntries, ReferencePeer};
