//! The AWS backend beyond the shared suites, through the whole service where it matters:
//! an endpoint that goes away or stops answering, secrets in their recovery window, deletes
//! refused as invalid, what a created secret carries, listing past one page, and references
//! by name and by ARN. Against moto, which `tests/run`
//! starts and names in `CREDBRIDGE_TEST_AWS_ENDPOINT`, behind a proxy the tests can cut.
#![cfg(feature = "aws")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credbridge::Settings;
use credbridge_adapters::aws::AwsConfig;
use credbridge_adapters::testkit::moto::{
    self, endpoint as moto_endpoint, moto_config, AwsEntries,
};
use credbridge_adapters::testkit::references::target_of;
use credbridge_adapters::testkit::{eventually, unique_scope, ExistingEntries};
use credbridge_adapters::{Backend, ErrorKind, UnusableValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

use crate::helpers::{allow_references, assert_error, password, TestApp};

fn moto_address() -> SocketAddr {
    let endpoint = moto_endpoint();
    let authority = endpoint
        .strip_prefix("http://")
        .expect("moto's endpoint is http://host:port");
    authority
        .parse()
        .expect("moto's endpoint is an IP address and a port")
}

/// The AWS backend with the default timeouts and retries, pointed at `endpoint`, under a
/// prefix of its own.
async fn backend_at(endpoint: &str, name_prefix: &str) -> Arc<dyn Backend> {
    moto::connect(&AwsConfig {
        endpoint_url: Some(endpoint.to_owned()),
        name_prefix: name_prefix.to_owned(),
        ..moto_config()
    })
    .await
}

fn unique_prefix() -> String {
    format!("faults/{}/", unique_scope())
}

/// The service's own limit on a request; the backend must answer before it.
fn request_timeout() -> Duration {
    Settings::default().http.request_timeout
}

/// A TCP proxy in front of moto that can refuse connections, or accept them and never
/// answer, and then come back on the same port, as an AWS endpoint does after an outage.
struct Proxy {
    address: SocketAddr,
    upstream: SocketAddr,
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = Self {
            address,
            upstream,
            running: Mutex::new(None),
        };
        *proxy.running.lock().await = Some(tokio::spawn(forward(listener, upstream)));
        proxy
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Closes the port and every open connection: connections are refused.
    async fn refuse(&self) {
        if let Some(task) = self.running.lock().await.take() {
            // Dropping the task drops the listener and the connections it owns.
            task.abort();
            let _ = task.await;
        }
    }

    /// Accepts connections and never answers on them.
    async fn stall(&self) {
        self.refuse().await;
        let listener = TcpListener::bind(self.address).await.unwrap();
        *self.running.lock().await = Some(tokio::spawn(hold(listener)));
    }

    /// Forwards to moto again, on the same port.
    async fn restore(&self) {
        self.refuse().await;
        let listener = TcpListener::bind(self.address).await.unwrap();
        *self.running.lock().await = Some(tokio::spawn(forward(listener, self.upstream)));
    }
}

async fn forward(listener: TcpListener, upstream: SocketAddr) {
    // Owned here, so aborting this task closes every connection it opened.
    let mut connections = JoinSet::new();
    while let Ok((mut client, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn hold(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((client, _)) = listener.accept().await {
        held.push(client);
    }
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = call.await;
    (output, started.elapsed())
}

/// Sends one Secrets Manager call to moto directly, signed as moto accepts.
async fn moto_call(target: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(moto_endpoint())
        .header("X-Amz-Target", format!("secretsmanager.{target}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{target}: {}",
        response.status()
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_down_is_503_within_the_timeout_and_recovers_without_restart() {
    let proxy = Proxy::start(moto_address()).await;
    let app = TestApp::spawn(backend_at(&proxy.endpoint(), &unique_prefix()).await).await;
    let body = password();
    let id = app.create_ok(&body).await;
    assert_eq!(app.read_ok(&id).await["password"], body["password"]);

    proxy.refuse().await;
    for (what, (response, elapsed)) in [
        ("read", timed(app.read(&id)).await),
        ("create", timed(app.create(&body)).await),
        ("delete", timed(app.delete(&id)).await),
        ("connection test", timed(app.connection_test()).await),
    ] {
        assert!(
            elapsed < request_timeout(),
            "{what} took {elapsed:?} to report the outage"
        );
        assert_eq!(response.headers()["retry-after"], "1", "{what}");
        assert_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_unavailable",
        )
        .await;
    }
    assert_eq!(app.readyz().await.0, StatusCode::SERVICE_UNAVAILABLE);

    // The same app, the same client: nothing restarted.
    proxy.restore().await;
    assert_eq!(app.read_ok(&id).await["password"], body["password"]);
    // The check result is shared for a second, so readiness follows shortly after.
    eventually(
        Duration::from_secs(30),
        "the service is ready again",
        || async { (app.readyz().await.0 == StatusCode::OK).then_some(()) },
    )
    .await;
    let second = app.create_ok(&body).await;
    assert_eq!(app.delete(&second).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_that_never_answers_is_503_before_the_request_timeout() {
    let proxy = Proxy::start(moto_address()).await;
    let app = TestApp::spawn(backend_at(&proxy.endpoint(), &unique_prefix()).await).await;
    let id = app.create_ok(&password()).await;

    proxy.stall().await;
    let (response, elapsed) = timed(app.read(&id)).await;
    // The backend's operation timeout fires first, so the answer is the backend's own 503
    // rather than the service's generic request timeout.
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
    )
    .await;
    assert!(
        elapsed < request_timeout(),
        "a stalled endpoint took {elapsed:?}"
    );

    proxy.restore().await;
    assert_eq!(app.read(&id).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deleted_secret_reads_404_and_deletes_2xx() {
    let prefix = unique_prefix();
    let app = TestApp::spawn(backend_at(&moto_endpoint(), &prefix).await).await;
    let id = app.create_ok(&password()).await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);

    // The default policy keeps the secret, scheduled for deletion, for 7 days: it is
    // still there, which is what makes AWS answer InvalidRequestException below.
    let name = format!("{prefix}{}/{id}", app.scope);
    let described = moto_call("DescribeSecret", json!({ "SecretId": name })).await;
    assert!(!described["DeletedDate"].is_null(), "{described}");

    assert_error(app.read(&id).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
    assert!(app.stored_ids().await.is_empty());
}

/// An HTTP proxy in front of moto that answers every `DeleteSecret` with the
/// `InvalidRequestException` AWS sends for a secret already scheduled for deletion (its
/// message says so too), and forwards every other call. moto sends that answer only for a
/// secret that really is scheduled; AWS also sends it for other states, which this stands
/// in for.
async fn refusing_deletes() -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::response::Response;

    let upstream = moto_endpoint();
    let client = reqwest::Client::new();
    let proxy = axum::Router::new().fallback(move |request: Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let target = request.headers().get("x-amz-target").cloned();
            if target.is_some_and(|target| target == "secretsmanager.DeleteSecret") {
                return Response::builder()
                    .status(400)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(Body::from(
                        json!({
                            "__type": "InvalidRequestException",
                            "message": "You can't perform this operation on the secret because it was marked for deletion."
                        })
                        .to_string(),
                    ))
                    .unwrap();
            }
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap();
            let mut forwarded = client.request(parts.method, &upstream).body(body);
            for (name, value) in &parts.headers {
                if name != "host" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let answer = forwarded.send().await.unwrap();
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                response = response.header(name, value);
            }
            response.body(Body::from(answer.bytes().await.unwrap())).unwrap()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refused_as_invalid_fails_unless_the_secret_is_scheduled_for_deletion() {
    let prefix = unique_prefix();
    let app = TestApp::spawn(backend_at(&refusing_deletes().await, &prefix).await).await;
    let id = app.create_ok(&password()).await;
    // The secret is alive, whatever the refusal's message says: the delete failed.
    assert_error(
        app.delete(&id).await,
        StatusCode::BAD_GATEWAY,
        "backend_error",
    )
    .await;
    let name = format!("{prefix}{}/{id}", app.scope);
    let described = moto_call("DescribeSecret", json!({ "SecretId": name })).await;
    assert!(described["DeletedDate"].is_null(), "{described}");
    assert_eq!(app.read(&id).await.status(), StatusCode::OK);

    // Once it is scheduled for deletion, the same refusal is the success it stands for.
    moto_call(
        "DeleteSecret",
        json!({ "SecretId": name, "RecoveryWindowInDays": 7 }),
    )
    .await;
    assert_eq!(app.delete(&id).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_secrets_carry_the_name_tags_and_description() {
    let prefix = unique_prefix();
    let config = AwsConfig {
        name_prefix: prefix.clone(),
        tags: [("team".to_owned(), "automation".to_owned())].into(),
        ..moto_config()
    };
    let app = TestApp::spawn(moto::connect(&config).await).await;
    let body = password();
    let id = app.create_ok(&body).await;

    let name = format!("{prefix}{}/{id}", app.scope);
    let described = moto_call("DescribeSecret", json!({ "SecretId": name })).await;
    assert_eq!(described["Name"], name.as_str());
    assert_eq!(described["Description"], body["name"]);
    let tags = described["Tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!({"Key": "managed-by", "Value": "credbridge"})),
        "{tags:?}"
    );
    assert!(
        tags.contains(&json!({"Key": "team", "Value": "automation"})),
        "{tags:?}"
    );

    let stored = moto_call("GetSecretValue", json!({ "SecretId": name })).await;
    let document: Value = serde_json::from_str(stored["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(document["password"], body["password"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_more_than_one_page_of_secrets() {
    // ListSecrets answers at most 100 secrets per page.
    let backend = backend_at(&moto_endpoint(), &unique_prefix()).await;
    let scope = unique_scope();
    let keys: Vec<_> = (0..130)
        .map(|_| credbridge_adapters::testkit::fresh_key(&scope))
        .collect();
    let mut puts = JoinSet::new();
    for key in keys.clone() {
        let backend = Arc::clone(&backend);
        puts.spawn(async move {
            let document = credbridge_adapters::testkit::document(json!({"name": "n"}));
            backend.put(&key, &document).await
        });
    }
    while let Some(put) = puts.join_next().await {
        put.unwrap().unwrap();
    }
    let mut expected: Vec<_> = keys.into_iter().map(|key| key.id).collect();
    expected.sort();
    assert_eq!(backend.list(&scope).await.unwrap(), expected);
}

/// A backend on moto under a prefix of its own, and existing secrets beside it.
async fn with_existing_secrets() -> (Arc<dyn Backend>, AwsEntries) {
    let prefix = unique_prefix();
    (
        backend_at(&moto_endpoint(), &prefix).await,
        AwsEntries::new(&prefix).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_read_a_secret_by_name_or_arn_whole_or_by_key() {
    let (backend, entries) = with_existing_secrets().await;
    entries.write_text("plain", "Plain-Pw-1").await;
    entries
        .write("json", json!({"password": "Json-Pw-2"}))
        .await;
    let read = |reference: String| {
        let backend = Arc::clone(&backend);
        async move {
            backend
                .read_reference(&target_of(&reference))
                .await
                .unwrap_or_else(|error| panic!("{reference}: {error}"))
        }
    };

    let plain = read(format!("ref+awssecrets://{}", entries.name("plain"))).await;
    assert_eq!(plain.value(None).unwrap().expose(), "Plain-Pw-1");
    assert_eq!(
        plain.value(Some("password")).unwrap_err(),
        UnusableValue::NoKeys("password".to_owned())
    );
    let by_key = read(entries.reference("json", "password")).await;
    assert_eq!(
        by_key.value(Some("password")).unwrap().expose(),
        "Json-Pw-2"
    );
    let arn = entries.arn("json").await;
    let by_arn = read(format!("ref+awssecrets://{arn}#password")).await;
    assert_eq!(
        by_arn.value(Some("password")).unwrap().expose(),
        "Json-Pw-2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_secret_is_unusable_and_one_scheduled_for_deletion_is_not_found() {
    let (backend, entries) = with_existing_secrets().await;
    entries.write_binary("bytes", &[0, 159, 146, 150]).await;
    let binary = backend
        .read_reference(&target_of(&format!(
            "ref+awssecrets://{}",
            entries.name("bytes")
        )))
        .await
        .unwrap();
    assert_eq!(binary.value(None).unwrap_err(), UnusableValue::Binary);

    entries.write("leaving", json!({"password": "p"})).await;
    entries.schedule_deletion("leaving").await;
    let error = backend
        .read_reference(&target_of(&entries.reference("leaving", "password")))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arn_reference_needs_a_pattern_that_spells_out_the_arn() {
    let (backend, entries) = with_existing_secrets().await;
    entries.write("smtp", json!({"password": "Arn-Pw-3"})).await;
    let arn = entries.arn("smtp").await;
    let (account_part, _) = arn.split_once(":secret:").unwrap();
    let by_name_pattern = entries.pattern();
    let by_arn_pattern = format!("{account_part}:secret:{by_name_pattern}");
    let app = TestApp::spawn_with(backend, move |settings| {
        allow_references(settings, 0, &[by_name_pattern]);
        allow_references(settings, 1, &[by_arn_pattern]);
    })
    .await;
    let body = json!({"name": "n", "type": "password", "username": "ada",
                      "password": format!("ref+awssecrets://{arn}#password")});
    let message = assert_error(
        app.create(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_credential",
    )
    .await;
    assert!(message.contains("not allowed"), "{message}");

    let created = app
        .request_as_other(Method::POST, &app.base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let id: Value = created.json().await.unwrap();
    let read = app
        .request_as_other(Method::GET, &app.item_url(id["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["password"], "Arn-Pw-3");
}
