//! What every backend is tested with: the conformance suite and its helpers.
//!
//! Compiled with the `testkit` feature only; never part of a release build.

pub mod conformance;
pub mod vault_double;

use crate::{CredentialId, Document, Key, Scope};

/// A scope no other test uses, so tests can share one server (moto, a real Vault).
pub fn unique_scope() -> Scope {
    let id = CredentialId::generate();
    #[allow(clippy::expect_used)]
    Scope::parse(&format!("t{}", &id.as_str()["cred_".len()..]))
        .expect("a generated scope is valid")
}

/// A key with a fresh id in `scope`.
pub fn fresh_key(scope: &Scope) -> Key {
    Key::new(scope.clone(), CredentialId::generate())
}

/// A document from a `json!({...})` object.
pub fn document(value: serde_json::Value) -> Document {
    match value {
        serde_json::Value::Object(fields) => Document::new(fields),
        other => panic!("test documents are JSON objects, got {other}"),
    }
}
