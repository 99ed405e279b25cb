//! Storage for credbridge.
//!
//! This crate owns everything behind the HTTP contract: the [`Backend`] trait every store
//! implements, the one [`Error`] type backends return, the [`Document`] they store, and the
//! backends themselves, one folder each. It knows nothing of HTTP or of credential types:
//! a backend stores an opaque JSON object under a [`Key`], and reads the entries credential
//! fields reference ([`Reference`]).
//!
//! Heavy SDKs sit behind cargo features (`vault`, `aws`) so a build for one vault does not
//! compile the other; their configuration always parses, so a config naming a backend that
//! is not compiled in fails at start-up with a clear message rather than a parse error.

pub mod aws;
pub mod backend;
pub mod config;
pub mod document;
pub mod error;
pub mod memory;
pub mod reference;
pub mod secret;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod vault;

pub use backend::{Backend, BackendInfo, Capabilities, CredentialId, InvalidName, Key, Scope};
pub use config::BackendConfig;
pub use document::Document;
pub use error::{Error, ErrorKind, Result};
pub use reference::{
    AwsSecretId, InvalidReference, Reference, ReferenceTarget, ReferencedEntry, UnusableValue,
};
pub use secret::SecretText;
