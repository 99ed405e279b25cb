//! References to existing entries, through the whole service, against every peer that
//! resolves them (`credbridge_adapters::reference_matrix!`: OpenBao KV v1 and v2, with a
//! root token and with AppRole holding only the documented policies, and moto). The
//! existing entries are written, changed and removed in the vault directly, as the
//! organization's other tools would.
#![cfg(any(feature = "vault", feature = "aws"))]

use std::sync::Arc;

use credbridge::config::AuditOutput;
use credbridge::Settings;
use credbridge_adapters::testkit::references::entry_name;
use credbridge_adapters::testkit::{document, ReferencePeer};
use credbridge_adapters::{CredentialId, Key};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{allow_references, assert_error, audit_lines, credit_card, TestApp};

/// One `#[tokio::test]` per case, against the reference peer `$factory` makes (an
/// `async fn() -> ReferencePeer`).
macro_rules! http_reference_suite {
    ($factory:path) => {
        http_reference_suite!(@cases $factory;
            skyvern_password_with_a_referenced_password_reads_back_resolved,
            references_in_several_fields_resolve_reading_each_entry_once,
            a_change_in_the_vault_shows_on_the_next_read,
            references_outside_the_scope_allowlist_are_422_and_store_nothing,
            a_reference_into_credbridge_storage_is_refused_even_when_allowed,
            a_missing_entry_or_key_is_422_at_create,
            an_entry_or_key_gone_after_create_is_502_at_read,
            deleting_a_credential_leaves_the_referenced_entry_untouched,
            audit_lines_and_metrics_name_references_never_values,
            a_malformed_reference_is_422_without_echoing_it,
            a_stored_reference_outside_the_allowlist_is_refused_at_read,
            references_are_off_for_a_scope_without_an_allowlist,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::references::$case($factory().await).await;
            }
        )*
    };
}

/// The app on the peer's backend, its own scope allowed the peer's area, then `configure`.
async fn spawn(peer: &ReferencePeer, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let pattern = peer.entries.pattern();
    TestApp::spawn_with(Arc::clone(&peer.backend), move |settings| {
        allow_references(settings, 0, &[pattern]);
        configure(settings);
    })
    .await
}

/// A fresh entry holding `fields`; its name.
async fn existing(peer: &ReferencePeer, fields: Value) -> String {
    let name = entry_name();
    peer.entries.write(&name, fields).await;
    name
}

/// The value of one series (`name{labels}`) in a metrics text; 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

fn key_of(app: &TestApp, id: &str) -> Key {
    Key::new(app.scope.clone(), CredentialId::parse(id).unwrap())
}

/// The series of `name` for this peer's backend, with `labels` after `backend`.
fn series(peer: &ReferencePeer, name: &str, labels: &str) -> String {
    format!(
        "{name}{{backend=\"{}\",{labels}}}",
        peer.backend.info().kind
    )
}

pub async fn skyvern_password_with_a_referenced_password_reads_back_resolved(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    let name = existing(&peer, json!({"password": "Rotated-9xQ!"})).await;
    let reference = peer.entries.reference(&name, "password");
    // Exactly what Skyvern sends for a password credential without TOTP.
    let body = json!({
        "name": "shop login",
        "type": "password",
        "username": "ada@example.com",
        "password": reference,
        "totp": null,
        "totp_type": "none",
    });
    let id = app.create_ok(&body).await;
    let read = app.read_ok(&id).await;
    assert_eq!(
        read,
        json!({
            "id": id,
            "name": "shop login",
            "type": "password",
            "username": "ada@example.com",
            "password": "Rotated-9xQ!",
            "totp": null,
            "totp_type": "none",
        })
    );
    // The reference is what is stored: the value lives in the vault only.
    let stored = peer.backend.get(&key_of(&app, &id)).await.unwrap();
    assert_eq!(stored.get("password"), Some(&json!(reference)));
}

pub async fn references_in_several_fields_resolve_reading_each_entry_once(peer: ReferencePeer) {
    let app = spawn(&peer, |settings| settings.metrics.enabled = true).await;
    let card = existing(
        &peer,
        json!({"number": "4111111111111111", "cvv": "737", "holder": "Ada Lovelace"}),
    )
    .await;
    let office = existing(
        &peer,
        json!({"street": "12 Analytical Row", "owner": "ada"}),
    )
    .await;
    let mut body = credit_card();
    body["card_number"] = json!(peer.entries.reference(&card, "number"));
    body["card_cvv"] = json!(peer.entries.reference(&card, "cvv"));
    body["card_holder_name"] = json!(peer.entries.reference(&card, "holder"));
    body["billing_address"]["line1"] = json!(peer.entries.reference(&office, "street"));
    body["metadata"]["owner"] = json!(peer.entries.reference(&office, "owner"));
    let id = app.create_ok(&body).await;

    let calls = series(
        &peer,
        "credbridge_backend_calls_total",
        "operation=\"read_reference\",outcome=\"ok\"",
    );
    let resolved = series(
        &peer,
        "credbridge_reference_resolutions_total",
        "outcome=\"ok\"",
    );
    let before = app.metrics().await;
    assert_eq!(sample(&before, &calls), 2.0, "create reads each entry once");
    let read = app.read_ok(&id).await;
    let after = app.metrics().await;
    assert_eq!(sample(&after, &calls), 4.0, "read reads each entry once");
    assert_eq!(sample(&after, &resolved), 10.0, "five references, twice");

    assert_eq!(read["card_number"], "4111111111111111");
    assert_eq!(read["card_cvv"], "737");
    assert_eq!(read["card_holder_name"], "Ada Lovelace");
    assert_eq!(read["billing_address"]["line1"], "12 Analytical Row");
    assert_eq!(read["billing_address"]["city"], "London");
    assert_eq!(read["metadata"]["owner"], "ada");
    assert_eq!(read["metadata"]["cost_center"], "R&D");
    assert_eq!(read["card_brand"], "visa");
}

pub async fn a_change_in_the_vault_shows_on_the_next_read(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    let name = existing(
        &peer,
        json!({"user": "ada", "password": "first-Pw1", "seed": "JBSWY3DPEHPK3PXP"}),
    )
    .await;
    let body = json!({
        "name": "rotated", "type": "password",
        "username": peer.entries.reference(&name, "user"),
        "password": peer.entries.reference(&name, "password"),
        "totp": peer.entries.reference(&name, "seed"),
        "totp_type": "authenticator",
    });
    let id = app.create_ok(&body).await;
    let first = app.read_ok(&id).await;
    assert_eq!(
        (&first["username"], &first["password"], &first["totp"]),
        (
            &json!("ada"),
            &json!("first-Pw1"),
            &json!("JBSWY3DPEHPK3PXP")
        )
    );

    peer.entries
        .write(
            &name,
            json!({"user": "ada", "password": "second-Pw2", "seed": "KRSXG5CTMVRXEZLU"}),
        )
        .await;
    let second = app.read_ok(&id).await;
    assert_eq!(second["password"], "second-Pw2");
    assert_eq!(second["totp"], "KRSXG5CTMVRXEZLU");
}

pub async fn references_outside_the_scope_allowlist_are_422_and_store_nothing(peer: ReferencePeer) {
    // This scope may reference elsewhere only; the other scope may reference the peer's
    // area.
    let elsewhere = peer
        .entries
        .pattern()
        .replacen("existing/", "elsewhere/", 1);
    let theirs = peer.entries.pattern();
    let app = spawn(&peer, move |settings| {
        allow_references(settings, 0, &[elsewhere]);
        allow_references(settings, 1, &[theirs]);
    })
    .await;
    let name = existing(&peer, json!({"password": "Not-For-Us-7"})).await;
    let allowed_for_them = peer.entries.reference(&name, "password");
    let (path, key) = allowed_for_them.split_once('#').unwrap();
    let other_kind = match peer.backend.info().kind {
        "vault" => "ref+awssecrets://existing/x#password".to_owned(),
        _ => "ref+vault://secret/existing/x#password".to_owned(),
    };
    let cases = [
        (
            allowed_for_them.clone(),
            "not allowed for this token's scope",
        ),
        (
            allowed_for_them.replacen("existing/", "outside/", 1),
            "not allowed for this token's scope",
        ),
        (
            allowed_for_them.replacen("existing/", "elsewhere/../existing/", 1),
            "`.` or `..`",
        ),
        (
            allowed_for_them.replacen("existing/", "elsewhere/%2e%2e/existing/", 1),
            "percent-encoding",
        ),
        (
            allowed_for_them.replacen("existing/", "elsewhere%2F..%2Fexisting/", 1),
            "percent-encoding",
        ),
        (
            allowed_for_them.replacen("existing/", "elsewhere\\..\\existing/", 1),
            "backslash",
        ),
        (format!("{path}?version=1#{key}"), "query"),
        (format!("{path}#"), "empty key"),
        (format!("{path} #{key}"), "whitespace"),
        (
            allowed_for_them.replacen("existing/", "elsewhere//existing/", 1),
            "empty path segment",
        ),
        (other_kind, "cannot read"),
    ];
    for (reference, says) in &cases {
        let mut body = json!({"name": "n", "type": "secret", "secret_value": reference});
        body["secret_label"] = json!("label");
        let message = assert_error(
            app.create(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credential",
        )
        .await;
        assert!(message.contains("`secret_value`"), "{reference}: {message}");
        assert!(message.contains(says), "{reference}: {message}");
    }
    assert!(
        app.stored_ids().await.is_empty(),
        "a refused credential was stored"
    );

    // The reference refused for this scope is the other scope's to use.
    let body = json!({"name": "n", "type": "secret", "secret_value": allowed_for_them});
    let created = app
        .request_as_other(Method::POST, &app.base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
}

pub async fn a_reference_into_credbridge_storage_is_refused_even_when_allowed(peer: ReferencePeer) {
    let app = spawn(&peer, |settings| {
        allow_references(settings, 0, &["*".to_owned()]);
    })
    .await;
    let id = app
        .create_ok(&json!({"name": "n", "type": "secret", "secret_value": "mine-4Zt"}))
        .await;
    let own = peer
        .entries
        .own_reference(&key_of(&app, &id), "secret_value");
    let body = json!({"name": "copy", "type": "secret", "secret_value": own});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.contains("credbridge's own storage"), "{message}");
    assert!(!message.contains("mine-4Zt"), "{message}");
    assert_eq!(app.stored_ids().await, [id]);
}

pub async fn a_missing_entry_or_key_is_422_at_create(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    let missing = peer.entries.reference(&entry_name(), "password");
    let body = json!({"name": "n", "type": "password", "username": "ada", "password": missing});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.starts_with("field `password`: "), "{message}");
    assert!(message.contains(&missing), "{message}");

    let name = existing(&peer, json!({"password": "Has-No-Pin-3"})).await;
    let body = json!({"name": "n", "type": "password", "username": "ada",
                      "password": peer.entries.reference(&name, "pin")});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.contains("the entry has no key `pin`"), "{message}");
    assert!(!message.contains("Has-No-Pin-3"), "{message}");
    assert!(app.stored_ids().await.is_empty());
}

pub async fn an_entry_or_key_gone_after_create_is_502_at_read(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    let name = existing(&peer, json!({"user": "Visible-User-5", "password": "pw-5"})).await;
    let password = peer.entries.reference(&name, "password");
    let body = json!({"name": "n", "type": "password",
                      "username": peer.entries.reference(&name, "user"), "password": password});
    let id = app.create_ok(&body).await;

    peer.entries
        .write(&name, json!({"user": "Visible-User-5"}))
        .await;
    let response = app.read(&id).await;
    let text = {
        let message = assert_error(response, StatusCode::BAD_GATEWAY, "reference_unresolved").await;
        assert!(message.starts_with("field `password`: "), "{message}");
        assert!(message.contains(&password), "{message}");
        assert!(message.contains("has no key `password`"), "{message}");
        message
    };
    // Nothing of the credential comes back half-resolved.
    assert!(!text.contains("Visible-User-5"), "{text}");

    peer.entries.remove(&name).await;
    let message = assert_error(
        app.read(&id).await,
        StatusCode::BAD_GATEWAY,
        "reference_unresolved",
    )
    .await;
    assert!(message.contains("did not resolve"), "{message}");
}

pub async fn deleting_a_credential_leaves_the_referenced_entry_untouched(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    let fields = json!({"password": "Kept-Pw-8", "note": "owned by another team"});
    let name = existing(&peer, fields.clone()).await;
    let body = json!({"name": "n", "type": "secret",
                      "secret_value": peer.entries.reference(&name, "password")});
    let id = app.create_ok(&body).await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    assert_eq!(app.read(&id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(peer.entries.read(&name).await, Some(fields));
}

pub async fn audit_lines_and_metrics_name_references_never_values(peer: ReferencePeer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditOutput::File(path.clone());
    let app = spawn(&peer, move |settings| {
        settings.audit.output = audit;
        settings.metrics.enabled = true;
    })
    .await;
    let name = existing(
        &peer,
        json!({"user": "Audit-User-6", "password": "Audit-Pw-6"}),
    )
    .await;
    let user = peer.entries.reference(&name, "user");
    let password = peer.entries.reference(&name, "password");
    let body = json!({"name": "n", "type": "password", "username": user, "password": password});
    let id = app.create_ok(&body).await;
    app.read_ok(&id).await;

    let lines = audit_lines(&path, 2).await;
    let mut expected = vec![password.clone(), user.clone()];
    expected.sort();
    for line in &lines {
        let mut named: Vec<String> =
            serde_json::from_value(line["references"].clone()).unwrap_or_default();
        named.sort();
        assert_eq!(named, expected, "{line}");
    }
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            &series(
                &peer,
                "credbridge_reference_resolutions_total",
                "outcome=\"ok\""
            )
        ),
        4.0
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for needle in ["Audit-User-6", "Audit-Pw-6"] {
        assert!(!text.contains(needle), "{needle} is in the audit log");
        assert!(!metrics.contains(needle), "{needle} is in the metrics");
    }
    assert!(
        !metrics.contains(&name),
        "a reference path is in the metrics"
    );
}

pub async fn a_malformed_reference_is_422_without_echoing_it(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    // A password that merely starts with `ref+` is a reference, and not a valid one.
    let body = json!({"name": "n", "type": "password", "username": "ada",
                      "password": "ref+Sup3r-S3cret%pass"});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(
        message.starts_with("field `password` starts with `ref+` but is not a valid reference"),
        "{message}"
    );
    assert!(!message.contains("Sup3r"), "{message}");
    assert!(app.stored_ids().await.is_empty());
}

pub async fn a_stored_reference_outside_the_allowlist_is_refused_at_read(peer: ReferencePeer) {
    let app = spawn(&peer, |_| {}).await;
    // Someone with write access to credbridge's storage writes a credential that points
    // at an entry this scope may not reference.
    let name = existing(&peer, json!({"password": "Forbidden-Pw-2"})).await;
    let outside = peer
        .entries
        .reference(&name, "password")
        .replacen("existing/", "outside/", 1);
    let id = CredentialId::generate();
    let written = document(json!({"name": "n", "type": "secret", "secret_value": outside}));
    peer.backend
        .put(&Key::new(app.scope.clone(), id.clone()), &written)
        .await
        .unwrap();
    let message = assert_error(
        app.read(id.as_str()).await,
        StatusCode::BAD_GATEWAY,
        "reference_unresolved",
    )
    .await;
    assert!(
        message.contains("not allowed for this token's scope"),
        "{message}"
    );
}

pub async fn references_are_off_for_a_scope_without_an_allowlist(peer: ReferencePeer) {
    let app = TestApp::spawn(Arc::clone(&peer.backend)).await;
    let name = existing(&peer, json!({"password": "Off-Pw-1"})).await;
    let body = json!({"name": "n", "type": "secret",
                      "secret_value": peer.entries.reference(&name, "password")});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.contains("references are not enabled"), "{message}");
}
