//! What every backend that resolves references promises about them, as tests: the
//! [`Backend::read_reference`] and [`Backend::owns`] part of the conformance suite, run
//! through [`reference_suite!`](crate::reference_suite) against each peer of
//! [`reference_matrix!`](crate::reference_matrix).
//!
//! A reference peer is a backend and a way into the vault behind it, as the organization's
//! other tools use it ([`ExistingEntries`]): the tests write, change and remove the
//! entries references point to there, never through credbridge.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{fresh_key, random_hex, unique_scope};
use crate::{Backend, ErrorKind, Key, Reference, ReferenceTarget, UnusableValue};

/// The vault behind a reference peer, as an operator (or another team's tool) uses it.
/// Every name is a path inside an area of the peer's own, so peers can share a server.
#[async_trait]
pub trait ExistingEntries: Send + Sync {
    /// Writes entry `name` holding `fields` (a JSON object of strings), replacing what
    /// was there.
    async fn write(&self, name: &str, fields: Value);
    /// Removes entry `name`, every version of it.
    async fn remove(&self, name: &str);
    /// The fields of entry `name` as an operator reads them; `None` when there is none.
    async fn read(&self, name: &str) -> Option<Value>;
    /// The reference to `key` of entry `name`, as a user types it.
    fn reference(&self, name: &str, key: &str) -> String;
    /// The allowlist pattern covering this peer's area, and nothing else.
    fn pattern(&self) -> String;
    /// A reference to `field` of the credential the peer's backend stores under `key`:
    /// into credbridge's own storage.
    fn own_reference(&self, key: &Key, field: &str) -> String;
}

/// A backend that resolves references, and the vault behind it.
#[derive(Clone)]
pub struct ReferencePeer {
    pub backend: Arc<dyn Backend>,
    pub entries: Arc<dyn ExistingEntries>,
}

/// Expands to one test per reference conformance case, each given a peer by `$factory`,
/// an `async fn() -> ReferencePeer`.
#[macro_export]
macro_rules! reference_suite {
    ($factory:path) => {
        $crate::reference_suite!(@cases $factory;
            a_referenced_entry_reads_with_every_key,
            a_changed_entry_reads_its_new_value,
            a_missing_entry_is_not_found,
            a_missing_key_is_named_by_the_entry,
            credbridge_storage_is_owned_and_never_read,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let peer = $factory().await;
                $crate::testkit::references::$case(peer).await;
            }
        )*
    };
}

/// The target of a reference text, as the service would parse it.
pub fn target_of(reference: &str) -> ReferenceTarget {
    Reference::parse(reference)
        .unwrap_or_else(|error| panic!("{reference}: {error}"))
        .target()
        .clone()
}

/// An entry name no other test uses.
pub fn entry_name() -> String {
    format!("entry-{}", random_hex(6))
}

pub async fn a_referenced_entry_reads_with_every_key(peer: ReferencePeer) {
    let name = entry_name();
    peer.entries
        .write(&name, json!({"username": "ada", "password": "pw-3fK9q"}))
        .await;
    let target = target_of(&peer.entries.reference(&name, "password"));
    assert!(!peer.backend.owns(&target));
    let entry = peer.backend.read_reference(&target).await.unwrap();
    assert_eq!(entry.value(Some("password")).unwrap().expose(), "pw-3fK9q");
    assert_eq!(entry.value(Some("username")).unwrap().expose(), "ada");
    let printed = format!("{entry:?}");
    assert!(!printed.contains("pw-3fK9q"), "{printed}");
}

pub async fn a_changed_entry_reads_its_new_value(peer: ReferencePeer) {
    let name = entry_name();
    let target = target_of(&peer.entries.reference(&name, "password"));
    peer.entries
        .write(&name, json!({"password": "before"}))
        .await;
    let before = peer.backend.read_reference(&target).await.unwrap();
    assert_eq!(before.value(Some("password")).unwrap().expose(), "before");
    peer.entries
        .write(&name, json!({"password": "after"}))
        .await;
    let after = peer.backend.read_reference(&target).await.unwrap();
    assert_eq!(after.value(Some("password")).unwrap().expose(), "after");
}

pub async fn a_missing_entry_is_not_found(peer: ReferencePeer) {
    let never = target_of(&peer.entries.reference(&entry_name(), "password"));
    let error = peer.backend.read_reference(&never).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");

    let name = entry_name();
    peer.entries.write(&name, json!({"password": "p"})).await;
    peer.entries.remove(&name).await;
    let removed = target_of(&peer.entries.reference(&name, "password"));
    let error = peer.backend.read_reference(&removed).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

pub async fn a_missing_key_is_named_by_the_entry(peer: ReferencePeer) {
    let name = entry_name();
    peer.entries.write(&name, json!({"password": "p"})).await;
    let target = target_of(&peer.entries.reference(&name, "pin"));
    let entry = peer.backend.read_reference(&target).await.unwrap();
    assert_eq!(
        entry.value(Some("pin")).unwrap_err(),
        UnusableValue::MissingKey("pin".to_owned())
    );
}

pub async fn credbridge_storage_is_owned_and_never_read(peer: ReferencePeer) {
    let key = fresh_key(&unique_scope());
    peer.backend
        .put(
            &key,
            &super::document(json!({"name": "n", "type": "secret", "secret_value": "mine"})),
        )
        .await
        .unwrap();
    let own = target_of(&peer.entries.own_reference(&key, "secret_value"));
    assert!(peer.backend.owns(&own), "{own}");
    let error = peer.backend.read_reference(&own).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
}
