//! Nothing secret reaches the log, at the most verbose level, over a full
//! create/read/delete cycle of every credential type, refusals included.
//!
//! Its own test binary: it installs the process-wide subscriber.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};

use credbridge_adapters::memory::MemoryBackend;
use helpers::TestApp;
use reqwest::Method;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const WRONG_TOKEN: &str = "wrong-token-2d8e6b4a0f";
const SECRETS: [&str; 6] = [
    "pw-Zq8!kLm2",
    "TOTPSEED7JBSWY3DP",
    "4929123456781234",
    "cvv-913",
    "secret-value-Rt5x",
    "label-is-fine-but-value-is-not-Xy7",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cycle_at_trace_level_logs_no_secret() {
    let captured = Captured::default();
    // Both formats, so neither leaks.
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

    // The log worker is synchronous here, but give in-flight spans a moment to close.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
