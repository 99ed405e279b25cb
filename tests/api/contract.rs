//! Skyvern's credential service contract (README, "The calls"), case by case. `http_suite!(factory)` runs every case
//! against the backend `factory` makes, so each backend is held to the same contract.

use std::collections::HashSet;
use std::sync::Arc;

use credbridge_adapters::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_json, credit_card, password, raw_request, secret, TestApp,
};

/// One `#[tokio::test]` per contract case, against the backend `$factory` makes
/// (an `async fn() -> Arc<dyn Backend>`).
macro_rules! http_suite {
    ($factory:path) => {
        http_suite!(@cases $factory;
            password_round_trip_keeps_every_field,
            credit_card_round_trip_keeps_every_field,
            secret_round_trip_keeps_every_field,
            secret_without_label_round_trips,
            null_totp_reads_back_null_with_totp_type_none,
            absent_totp_type_reads_back_as_none,
            unknown_fields_survive_the_round_trip,
            unicode_survives_the_round_trip,
            a_4_kib_secret_round_trips,
            same_name_twice_gets_two_fresh_ids,
            created_ids_are_cred_and_32_lowercase_hex,
            a_body_id_is_ignored,
            read_of_unknown_id_is_404,
            delete_of_unknown_id_is_ok,
            delete_twice_is_ok,
            read_after_delete_is_404,
            connection_test_is_200_with_a_valid_token,
            every_route_refuses_a_missing_token,
            every_route_refuses_a_wrong_token,
            every_route_refuses_a_malformed_authorization_header,
            another_scope_can_neither_read_nor_delete,
            malformed_ids_are_400_and_reach_no_backend,
            a_body_that_is_not_json_is_400,
            a_body_without_json_content_type_is_415,
            an_oversized_body_is_413,
            contract_violations_are_422_naming_the_field,
            concurrent_creates_get_distinct_ids,
            health_probes_need_no_token,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::contract::$case($factory().await).await;
            }
        )*
    };
}

/// Creates `body`, reads it back, and checks every field came back unchanged.
async fn round_trip(app: &TestApp, body: Value) -> Value {
    let id = app.create_ok(&body).await;
    let read = app.read_ok(&id).await;
    assert_eq!(read["id"], id.as_str());
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&read[field], value, "field {field}");
    }
    read
}

pub async fn password_round_trip_keeps_every_field(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = password();
    body["metadata"] = json!({"site": "shop.example"});
    round_trip(&app, body).await;
}

pub async fn credit_card_round_trip_keeps_every_field(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let read = round_trip(&app, credit_card()).await;
    assert_eq!(read["billing_address"]["line2"], Value::Null);
}

pub async fn secret_round_trip_keeps_every_field(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    round_trip(&app, secret()).await;
}

pub async fn secret_without_label_round_trips(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = secret();
    body.as_object_mut().unwrap().remove("secret_label");
    let read = round_trip(&app, body).await;
    assert!(read.get("secret_label").is_none(), "{read}");
}

pub async fn null_totp_reads_back_null_with_totp_type_none(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = password();
    body["totp"] = Value::Null;
    body["totp_type"] = Value::Null;
    let id = app.create_ok(&body).await;
    let read = app.read_ok(&id).await;
    assert_eq!(read["totp"], Value::Null);
    assert_eq!(read["totp_type"], "none");
}

pub async fn absent_totp_type_reads_back_as_none(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = password();
    body.as_object_mut().unwrap().remove("totp_type");
    let id = app.create_ok(&body).await;
    assert_eq!(app.read_ok(&id).await["totp_type"], "none");
}

pub async fn unknown_fields_survive_the_round_trip(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = password();
    body["totp_identifier"] = json!("ada@example.com");
    body["future_field"] = json!({"nested": [1, 2.5, true, null, "x"]});
    round_trip(&app, body).await;
}

pub async fn unicode_survives_the_round_trip(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = password();
    body["name"] = json!("Zürich — 日本語 🔐");
    body["password"] = json!("pä$$wörd \"quoted\" \\ \n\t 🔑 \u{0001}");
    round_trip(&app, body).await;
}

pub async fn a_4_kib_secret_round_trips(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = secret();
    body["secret_value"] = json!("s".repeat(4096));
    round_trip(&app, body).await;
}

pub async fn same_name_twice_gets_two_fresh_ids(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let first = app.create_ok(&password()).await;
    let mut updated = password();
    updated["password"] = json!("a new password");
    let second = app.create_ok(&updated).await;
    assert_ne!(first, second);
    // Skyvern's update: create the new one, then delete the old; the new one must survive.
    assert_eq!(app.delete(&first).await.status(), StatusCode::OK);
    assert_eq!(app.read_ok(&second).await["password"], "a new password");
}

pub async fn created_ids_are_cred_and_32_lowercase_hex(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let response = app.create(&secret()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_json(&response);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hex = id.strip_prefix("cred_").expect("cred_ prefix");
    assert_eq!(hex.len(), 32, "{id}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
}

pub async fn a_body_id_is_ignored(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let mut body = secret();
    body["id"] = json!("cred_chosen_by_client");
    let id = app.create_ok(&body).await;
    assert_ne!(id, "cred_chosen_by_client");
    assert_eq!(app.read_ok(&id).await["id"], id.as_str());
}

pub async fn read_of_unknown_id_is_404(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    assert_error(
        app.read("cred_00000000000000000000000000000000").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

pub async fn delete_of_unknown_id_is_ok(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let response = app.delete("cred_00000000000000000000000000000000").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_json(&response);
}

pub async fn delete_twice_is_ok(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
}

pub async fn read_after_delete_is_404(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_ok(&credit_card()).await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    assert_error(app.read(&id).await, StatusCode::NOT_FOUND, "not_found").await;
    assert!(app.stored_ids().await.is_empty());
}

pub async fn connection_test_is_200_with_a_valid_token(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let response = app.connection_test().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["scope"], app.scope.as_str());
}

/// Every route that touches credentials, as (method, url, body).
fn credential_routes(app: &TestApp) -> Vec<(Method, String, Option<Value>)> {
    let item = app.item_url("cred_00000000000000000000000000000000");
    vec![
        (Method::GET, app.base.clone(), None),
        (Method::POST, app.base.clone(), Some(secret())),
        (Method::GET, item.clone(), None),
        (Method::DELETE, item, None),
    ]
}

async fn assert_every_route_refuses(app: &TestApp, authorization: Option<&str>) {
    for (method, url, body) in credential_routes(app) {
        let mut request = app.client.request(method.clone(), &url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{method} {url}"
        );
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert!(
        app.stored_ids().await.is_empty(),
        "a refused create stored something"
    );
}

pub async fn every_route_refuses_a_missing_token(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    assert_every_route_refuses(&app, None).await;
}

pub async fn every_route_refuses_a_wrong_token(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let wrong = format!("Bearer {}x", app.token);
    assert_every_route_refuses(&app, Some(&wrong)).await;
}

pub async fn every_route_refuses_a_malformed_authorization_header(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let token = app.token.clone();
    for value in [
        format!("Basic {token}"),
        format!("Token {token}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        token.clone(),
        format!("Bearer{token}"),
    ] {
        assert_every_route_refuses(&app, Some(&value)).await;
    }
}

pub async fn another_scope_can_neither_read_nor_delete(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_ok(&password()).await;
    let url = app.item_url(&id);
    let theirs = |method| app.request_as_other(method, &url);

    assert_error(
        theirs(Method::GET).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Delete is idempotent, so another scope gets 200 — and the credential stays.
    assert_eq!(
        theirs(Method::DELETE).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(app.read_ok(&id).await["username"], "ada@example.com");
}

pub async fn malformed_ids_are_400_and_reach_no_backend(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let too_long = "a".repeat(129);
    let bad = [
        "..",
        ".",
        "a.b",
        "%2F",
        "a%2Fb",
        "%2e%2e",
        "a%20b",
        "caf%C3%A9",
        "a/b",
        "..%2F..%2Fsys",
        "%00",
        too_long.as_str(),
    ];
    for id in bad {
        for method in ["GET", "DELETE"] {
            let path = format!("{}/{id}", settings_base_path());
            let (status, body) = raw_request(&app, method, &path).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_id")),
                "{method} {path}"
            );
        }
    }
    let longest = "a".repeat(128);
    assert_error(app.read(&longest).await, StatusCode::NOT_FOUND, "not_found").await;
}

fn settings_base_path() -> String {
    credbridge::Settings::default().base_path
}

pub async fn a_body_that_is_not_json_is_400(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    for body in ["{", "not json", "", "{\"name\": \"x\",}", "\u{feff}{}"] {
        let response = app
            .request(Method::POST, &app.base)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    }
    assert!(app.stored_ids().await.is_empty());
}

pub async fn a_body_without_json_content_type_is_415(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let body = serde_json::to_string(&secret()).unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.request(Method::POST, &app.base).body(body.clone());
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let response = request.send().await.unwrap();
        assert_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert!(app.stored_ids().await.is_empty());
}

pub async fn an_oversized_body_is_413(backend: Arc<dyn Backend>) {
    let app =
        TestApp::spawn_with(backend, |settings| settings.http.max_body_bytes = 8 * 1024).await;
    let mut body = secret();
    body["secret_value"] = json!("s".repeat(9 * 1024));
    let message = assert_error(
        app.create(&body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert!(message.contains("8192"), "{message}");
    assert!(app.stored_ids().await.is_empty());
}

pub async fn contract_violations_are_422_naming_the_field(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    let without = |mut body: Value, field: &str| {
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let with = |mut body: Value, field: &str, value: Value| {
        body[field] = value;
        body
    };
    let cases = [
        (json!([secret()]), "object"),
        (json!("a string"), "object"),
        (without(secret(), "type"), "`type`"),
        (with(secret(), "type", json!("ssh_key")), "`type`"),
        (without(secret(), "name"), "`name`"),
        (without(password(), "username"), "`username`"),
        (without(password(), "password"), "`password`"),
        (with(password(), "totp", json!(123456)), "`totp`"),
        (without(credit_card(), "card_cvv"), "`card_cvv`"),
        (
            with(credit_card(), "card_exp_month", json!(7)),
            "`card_exp_month`",
        ),
        (
            with(credit_card(), "metadata", json!({"a": 1})),
            "`metadata.a`",
        ),
        (
            with(credit_card(), "billing_address", json!({"city": ["x"]})),
            "`billing_address.city`",
        ),
        (without(secret(), "secret_value"), "`secret_value`"),
        (
            with(secret(), "secret_label", json!(false)),
            "`secret_label`",
        ),
    ];
    for (body, named) in cases {
        let message = assert_error(
            app.create(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credential",
        )
        .await;
        assert!(
            message.contains(named),
            "{named} not in {message:?} for {body}"
        );
    }
    assert!(app.stored_ids().await.is_empty());
}

pub async fn concurrent_creates_get_distinct_ids(backend: Arc<dyn Backend>) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let mut body = secret();
            body["secret_value"] = json!(format!("value {n}"));
            app.create_ok(&body).await
        });
    }
    let mut ids = HashSet::new();
    while let Some(id) = tasks.join_next().await {
        assert!(ids.insert(id.unwrap()), "duplicate id");
    }
    assert_eq!(ids.len(), 200);
    let stored: HashSet<String> = app.stored_ids().await.into_iter().collect();
    assert_eq!(stored, ids);
}

pub async fn health_probes_need_no_token(backend: Arc<dyn Backend>) {
    let app = TestApp::spawn(backend).await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app
            .client
            .get(format!("http://{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_json(&response);
        assert_eq!(response.json::<Value>().await.unwrap()["status"], status);
    }
}
