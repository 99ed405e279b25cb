//! Nothing secret reaches the log, at the most verbose level, over a full
//! create/read/delete cycle of every credential type, refusals included, and over one of
//! credentials whose fields reference existing Vault secrets.
//!
//! Its own test binary: it installs the process-wide subscriber, once, for all its tests.

#[path = "logs/captured.rs"]
mod captured;
// The helpers of the `api` suite, of which this binary needs a few.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::{Arc, OnceLock};

use captured::Captured;
use credbridge_adapters::memory::MemoryBackend;
use helpers::TestApp;
use reqwest::Method;
use serde_json::json;

const WRONG_TOKEN: &str = "wrong-token-2d8e6b4a0f";
const SECRETS: [&str; 6] = [
    "pw-Zq8!kLm2",
    "TOTPSEED7JBSWY3DP",
    "4929123456781234",
    "cvv-913",
    "secret-value-Rt5x",
    "label-is-fine-but-value-is-not-Xy7",
];

/// Everything logged at trace level, in both formats, so neither leaks; installed by the
/// first test that asks.
fn capture() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("trace"))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(captured.clone())
                    .with_ansi(false),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(captured.clone()),
            )
            .init();
        captured
    })
}

/// The log so far, once in-flight spans had a moment to close.
async fn log_text() -> String {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    String::from_utf8(capture().bytes().clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cycle_at_trace_level_logs_no_secret() {
    capture();

    let app = TestApp::spawn_with(Arc::new(MemoryBackend::default()), |settings| {
        tracing::debug!(?settings, "settings in force");
    })
    .await;

    let bodies = [
        json!({"name": "login", "type": "password", "username": "ada", "password": SECRETS[0],
               "totp": SECRETS[1], "totp_type": "authenticator"}),
        json!({"name": "card", "type": "credit_card", "card_holder_name": "Ada",
               "card_number": SECRETS[2], "card_exp_month": "01", "card_exp_year": "2030",
               "card_cvv": SECRETS[3], "card_brand": "visa"}),
        json!({"name": "key", "type": "secret", "secret_value": SECRETS[4], "secret_label": "x"}),
    ];
    for body in &bodies {
        let id = app.create_ok(body).await;
        app.read_ok(&id).await;
        let wrong = app
            .client
            .get(app.item_url(&id))
            .bearer_auth(WRONG_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(app.delete(&id).await.status(), 200);
    }
    // Refusals that carry secrets: a contract violation and a non-JSON body.
    let mut invalid = bodies[0].clone();
    invalid["username"] = json!(SECRETS[5].len());
    invalid["password"] = json!(SECRETS[5]);
    assert_eq!(app.create(&invalid).await.status(), 422);
    let broken = format!("{{\"password\": \"{}\"", SECRETS[5]);
    let response = app
        .request(Method::POST, &app.base)
        .header("content-type", "application/json")
        .body(broken)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let log = log_text().await;
    assert!(
        log.contains("credential created"),
        "the capture saw no request logs"
    );
    assert!(
        log.contains("TRACE") || log.contains("\"level\":\"TRACE\""),
        "not at trace level"
    );
    for needle in
        SECRETS
            .iter()
            .chain([&WRONG_TOKEN, &app.token.as_str(), &app.other_token.as_str()])
    {
        assert!(!log.contains(needle), "{needle:?} appeared in the log");
    }
}

/// Values that live only in the vault, and must stay out of credbridge's log.
#[cfg(any(feature = "vault", feature = "aws"))]
const REFERENCED: [&str; 3] = ["ref-Pw-Qz81!", "ref-user-Lk2", "ref-card-4929000011112222"];

#[cfg(feature = "vault")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_vault_references_at_trace_level_logs_no_resolved_value() {
    capture();
    references_cycle(credbridge_adapters::testkit::vault::kv2_root_references().await).await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_aws_references_at_trace_level_logs_no_resolved_value() {
    capture();
    references_cycle(credbridge_adapters::testkit::moto::references().await).await;
}

/// Credentials referencing entries of `peer`: created, read, deleted; a missing key
/// refused at create, a removed entry failing a read.
#[cfg(any(feature = "vault", feature = "aws"))]
async fn references_cycle(peer: credbridge_adapters::testkit::ReferencePeer) {
    use credbridge_adapters::testkit::references::entry_name;
    let pattern = peer.entries.pattern();
    let app = TestApp::spawn_with(Arc::clone(&peer.backend), move |settings| {
        helpers::allow_references(settings, 0, &[pattern]);
    })
    .await;
    let name = entry_name();
    peer.entries
        .write(
            &name,
            json!({"password": REFERENCED[0], "user": REFERENCED[1], "card": REFERENCED[2]}),
        )
        .await;
    let reference = |key| peer.entries.reference(&name, key);
    let bodies = [
        json!({"name": "login", "type": "password", "username": reference("user"),
               "password": reference("password"), "totp": null, "totp_type": "none"}),
        json!({"name": "card", "type": "credit_card", "card_holder_name": reference("user"),
               "card_number": reference("card"), "card_exp_month": "01",
               "card_exp_year": "2030", "card_cvv": "cvv-913", "card_brand": "visa"}),
    ];
    for body in &bodies {
        let id = app.create_ok(body).await;
        assert_eq!(app.read_ok(&id).await["name"], body["name"]);
        assert_eq!(app.delete(&id).await.status(), 200);
    }
    let mut missing = bodies[0].clone();
    missing["password"] = json!(reference("nope"));
    assert_eq!(app.create(&missing).await.status(), 422);
    let id = app.create_ok(&bodies[0]).await;
    peer.entries.remove(&name).await;
    assert_eq!(app.read(&id).await.status(), 502);

    let log = log_text().await;
    assert!(
        log.contains("references resolved") && log.contains("reference_unresolved"),
        "the capture saw no reference resolution"
    );
    for needle in REFERENCED {
        assert!(!log.contains(needle), "{needle:?} appeared in the log");
    }
}
