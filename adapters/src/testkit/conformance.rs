//! The conformance suite: the promises of [`Backend`]'s documentation, as tests.
//!
//! Every backend runs the same cases through [`conformance_suite!`](crate::conformance_suite),
//! which expands to one `#[tokio::test]` per case, named after the behaviour it checks:
//!
//! ```ignore
//! async fn memory() -> Arc<dyn Backend> { Arc::new(MemoryBackend::default()) }
//! credbridge_adapters::conformance_suite!(memory);
//! ```
//!
//! Each case works in a scope of its own, so a suite may share one server between cases.

use std::sync::Arc;

use serde_json::json;

use super::references::target_of;
use super::{document, fresh_key, unique_scope};
use crate::{Backend, ErrorKind, Key};

/// Expands to one test per conformance case, each given a backend by `$factory`,
/// an `async fn() -> Arc<dyn Backend>`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            put_then_get_returns_the_same_document,
            get_of_unknown_key_is_not_found,
            put_never_overwrites,
            delete_removes_the_document,
            delete_of_unknown_key_succeeds,
            delete_twice_succeeds,
            scopes_are_isolated,
            list_returns_the_sorted_ids_of_its_scope_only,
            list_of_empty_scope_is_empty,
            documents_keep_unicode_nulls_and_nested_objects,
            documents_keep_a_16_kib_value,
            concurrent_puts_all_land,
            check_succeeds,
            info_names_the_backend,
            references_of_another_kind_are_refused,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $factory().await;
                $crate::testkit::conformance::$case(backend).await;
            }
        )*
    };
}

fn password_document() -> crate::Document {
    document(json!({
        "name": "shop login",
        "type": "password",
        "username": "ada",
        "password": "correct horse battery staple",
        "totp": null,
        "totp_type": "none",
    }))
}

async fn expect_not_found(backend: &dyn Backend, key: &Key) {
    match backend.get(key).await {
        Err(error) => assert_eq!(error.kind(), ErrorKind::NotFound, "{error}"),
        Ok(document) => panic!("expected NotFound for {key}, got {document:?}"),
    }
}

pub async fn put_then_get_returns_the_same_document(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    let doc = password_document();
    backend.put(&key, &doc).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), doc);
}

pub async fn get_of_unknown_key_is_not_found(backend: Arc<dyn Backend>) {
    expect_not_found(&*backend, &fresh_key(&unique_scope())).await;
}

pub async fn put_never_overwrites(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    let first = password_document();
    backend.put(&key, &first).await.unwrap();
    let second = document(json!({"name": "other", "type": "secret", "secret_value": "x"}));
    let error = backend.put(&key, &second).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyExists, "{error}");
    assert_eq!(backend.get(&key).await.unwrap(), first);
}

pub async fn delete_removes_the_document(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    backend.put(&key, &password_document()).await.unwrap();
    backend.delete(&key).await.unwrap();
    expect_not_found(&*backend, &key).await;
}

pub async fn delete_of_unknown_key_succeeds(backend: Arc<dyn Backend>) {
    backend.delete(&fresh_key(&unique_scope())).await.unwrap();
}

pub async fn delete_twice_succeeds(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    backend.put(&key, &password_document()).await.unwrap();
    backend.delete(&key).await.unwrap();
    backend.delete(&key).await.unwrap();
    expect_not_found(&*backend, &key).await;
}

pub async fn scopes_are_isolated(backend: Arc<dyn Backend>) {
    let mine = fresh_key(&unique_scope());
    let theirs = Key::new(unique_scope(), mine.id.clone());
    let doc = password_document();
    backend.put(&mine, &doc).await.unwrap();

    expect_not_found(&*backend, &theirs).await;
    backend.delete(&theirs).await.unwrap();
    assert!(backend.list(&theirs.scope).await.unwrap().is_empty());
    assert_eq!(backend.get(&mine).await.unwrap(), doc);
}

pub async fn list_returns_the_sorted_ids_of_its_scope_only(backend: Arc<dyn Backend>) {
    let scope = unique_scope();
    let mut keys: Vec<Key> = (0..3).map(|_| fresh_key(&scope)).collect();
    for key in &keys {
        backend.put(key, &password_document()).await.unwrap();
    }
    backend
        .put(&fresh_key(&unique_scope()), &password_document())
        .await
        .unwrap();
    backend.delete(&keys[0]).await.unwrap();
    keys.remove(0);

    let mut expected: Vec<_> = keys.into_iter().map(|key| key.id).collect();
    expected.sort();
    assert_eq!(backend.list(&scope).await.unwrap(), expected);
}

pub async fn list_of_empty_scope_is_empty(backend: Arc<dyn Backend>) {
    assert!(backend.list(&unique_scope()).await.unwrap().is_empty());
}

pub async fn documents_keep_unicode_nulls_and_nested_objects(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    let doc = document(json!({
        "name": "Zürich 日本 🔐",
        "type": "credit_card",
        "card_holder_name": "Ådå \"quoted\" \\ back\nline",
        "card_number": "4111 1111 1111 1111",
        "totp": null,
        "billing_address": {"line1": "1 Rue de l'Église", "country_code": "FR"},
        "metadata": {"team": "paiements", "empty": ""},
        "totp_identifier": "someone@example.com",
    }));
    backend.put(&key, &doc).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), doc);
}

pub async fn documents_keep_a_16_kib_value(backend: Arc<dyn Backend>) {
    let key = fresh_key(&unique_scope());
    let value: String = (0..16 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let doc = document(json!({"name": "big", "type": "secret", "secret_value": value}));
    backend.put(&key, &doc).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), doc);
}

pub async fn concurrent_puts_all_land(backend: Arc<dyn Backend>) {
    let scope = unique_scope();
    let keys: Vec<Key> = (0..20).map(|_| fresh_key(&scope)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let backend = Arc::clone(&backend);
        tasks.spawn(async move { backend.put(&key, &password_document()).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let mut expected: Vec<_> = keys.into_iter().map(|key| key.id).collect();
    expected.sort();
    assert_eq!(backend.list(&scope).await.unwrap(), expected);
}

pub async fn check_succeeds(backend: Arc<dyn Backend>) {
    backend.check().await.unwrap();
}

pub async fn info_names_the_backend(backend: Arc<dyn Backend>) {
    let info = backend.info();
    assert!(
        ["memory", "vault", "aws"].contains(&info.kind),
        "unexpected kind {:?}",
        info.kind
    );
}

/// A reference target of a kind the backend does not store in is refused without a read,
/// and never owned; the memory backend refuses both kinds.
pub async fn references_of_another_kind_are_refused(backend: Arc<dyn Backend>) {
    let kind = backend.info().kind;
    for reference in [
        "ref+vault://secret/apps/x#password",
        "ref+awssecrets://apps/x#password",
    ] {
        let target = target_of(reference);
        if target.backend_kind() == kind {
            continue;
        }
        assert!(!backend.owns(&target), "{reference}");
        let error = backend.read_reference(&target).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidConfig,
            "{reference}: {error}"
        );
    }
}
