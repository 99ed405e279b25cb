//! Small helpers every backend test shares: names no other test uses, documents, polling.

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

/// Polls `check` every 100 ms until it gives `Some`, for up to `limit` (generous: the
/// machine may be busy); then panics saying what never happened.
pub async fn eventually<T, F, Fut>(limit: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Lowercase hex of `n` random bytes, for names no other test uses.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // Tests only: without the OS generator nothing can run anyway.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random generator");
    hex::encode(bytes)
}
