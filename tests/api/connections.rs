//! Connections from hostile or careless clients: half-sent requests, idle kept-alive
//! connections, oversized heads, more connections than the cap. Raw TCP where an HTTP
//! client would be too polite.

use std::sync::Arc;
use std::time::Duration;

use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::Backend;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use credbridge_adapters::testkit::eventually;

use crate::helpers::{metric, TestApp};

fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::default())
}

/// Half of a request line, as a slow or hostile client leaves it.
const HALF_SENT: &[u8] = b"GET /api/v1/cre";

async fn half_sent(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream.write_all(HALF_SENT).await.unwrap();
    stream
}

/// Completes when the server closes `stream` (end of stream or reset); returns whatever it
/// sent before.
async fn closed_by_server(mut stream: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Sends a complete GET of `path` on `stream`, kept alive, and reads the response head.
async fn get_on(stream: &mut TcpStream, app: &TestApp, path: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\r\n",
        app.address, app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the server closed"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head
}

fn closed_for(text: &str, reason: &str) -> f64 {
    metric(
        text,
        &format!("credbridge_http_connections_closed_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_half_sent_requests_are_closed_by_the_header_timeout_while_a_valid_client_is_served(
) {
    const HOSTILE: usize = 2000;
    // Both ends of every connection live in this process, and the server serves half of
    // what the open-file limit leaves: room for every connection takes about 4 * HOSTILE.
    let limit = credbridge::server::raise_open_file_limit();
    assert!(
        limit.is_none_or(|limit| limit >= 4 * HOSTILE as u64 + 256),
        "this test needs an open-file limit of at least {} (ulimit -Hn is {limit:?})",
        4 * HOSTILE + 256
    );
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.header_read_timeout = Duration::from_secs(2);
        settings.metrics.enabled = true;
    })
    .await;
    let mut hostile = Vec::with_capacity(HOSTILE);
    for _ in 0..HOSTILE {
        hostile.push(half_sent(&app).await);
    }
    assert_eq!(app.connection_test().await.status(), StatusCode::OK);

    let mut closing = JoinSet::new();
    for stream in hostile {
        closing.spawn(closed_by_server(stream));
    }
    // hyper's own header timer, kept as a backstop, would take the header and idle
    // timeouts together (77 s): well past this bound.
    let all_closed = tokio::time::timeout(Duration::from_secs(40), async {
        while let Some(received) = closing.join_next().await {
            assert!(
                received.unwrap().is_empty(),
                "a half-sent request was answered"
            );
        }
    })
    .await;
    assert!(
        all_closed.is_ok(),
        "{} half-sent connections still open",
        closing.len()
    );
    let text = app.metrics().await;
    assert!(
        closed_for(&text, "header_read_timeout") >= HOSTILE as f64,
        "{text}"
    );
}

#[tokio::test]
async fn with_the_default_settings_a_half_sent_request_is_closed() {
    let app = TestApp::spawn(memory()).await;
    let stream = half_sent(&app).await;
    // The default header timeout is 5 s.
    let closed = tokio::time::timeout(Duration::from_secs(30), closed_by_server(stream)).await;
    assert_eq!(closed.ok(), Some(Vec::new()));
}

#[tokio::test]
async fn an_idle_kept_alive_connection_outlives_the_header_timeout() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.header_read_timeout = Duration::from_millis(200);
        settings.http.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    assert!(get_on(&mut stream, &app, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    // Idle for several header timeouts: with hyper's timer alone, which also runs between
    // requests, the connection would be gone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let head = get_on(&mut stream, &app, "/api/v1/credentials").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.idle_timeout = Duration::from_millis(500);
        settings.metrics.enabled = true;
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    assert!(get_on(&mut stream, &app, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(30), closed_by_server(stream)).await;
    assert_eq!(closed.ok(), Some(Vec::new()));
    assert_eq!(closed_for(&app.metrics().await, "idle_timeout"), 1.0);
}

#[tokio::test]
async fn a_head_over_max_header_bytes_is_refused_with_431() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.max_header_bytes = 2048;
    })
    .await;
    let response = app
        .request(reqwest::Method::GET, &app.base)
        .header("x-padding", "p".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // A head within the limit is served.
    let response = app
        .request(reqwest::Method::GET, &app.base)
        .header("x-padding", "p".repeat(512))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A create whose head is complete and whose body is half sent: a request being handled.
async fn body_half_sent(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let path = &app.base[app.base.find("/api/").unwrap()..];
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\"",
        app.address, app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_while_every_slot_handles_a_request() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.max_connections = 2;
        settings.http.request_timeout = Duration::from_secs(2);
    })
    .await;
    let mut handled = Vec::new();
    for _ in 0..2 {
        handled.push(body_half_sent(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every slot handles a request, which is never cut short: this client's connection
    // waits, unserved.
    let waiting = tokio::spawn(app.request(reqwest::Method::GET, &app.base).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a connection beyond the cap was served"
    );
    // Once the requests time out, it is served.
    let response = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("served once slots free up")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(handled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_half_sent_requests_are_closed_to_make_room_for_a_valid_client() {
    const CAP: usize = 20;
    const HOSTILE: usize = 100;
    let mut header_read_timeout = Duration::ZERO;
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.max_connections = CAP;
        settings.metrics.enabled = true;
        header_read_timeout = settings.http.header_read_timeout;
    })
    .await;
    assert_eq!(header_read_timeout, Duration::from_secs(5), "the default");
    let mut hostile = Vec::with_capacity(HOSTILE);
    for _ in 0..HOSTILE {
        hostile.push(half_sent(&app).await);
    }
    // Five times as many half-sent requests as slots, none of them past its header timeout:
    // the valid client is served well before any would time out.
    let response = tokio::time::timeout(header_read_timeout / 2, app.connection_test())
        .await
        .expect("served well before the header timeout");
    assert_eq!(response.status(), StatusCode::OK);

    let mut closing = JoinSet::new();
    for stream in hostile {
        closing.spawn(tokio::time::timeout(
            header_read_timeout / 2,
            closed_by_server(stream),
        ));
    }
    let mut closed = 0;
    while let Some(outcome) = closing.join_next().await {
        if let Ok(received) = outcome.unwrap() {
            assert!(received.is_empty(), "a half-sent request was answered");
            closed += 1;
        }
    }
    assert!(
        closed >= HOSTILE - CAP,
        "only {closed} of {HOSTILE} half-sent requests were closed to make room"
    );
    let text = app.metrics().await;
    assert!(
        closed_for(&text, "reclaimed") >= (HOSTILE - CAP) as f64,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_idle_connections_are_closed_to_make_room() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.max_connections = 2;
        settings.http.idle_timeout = Duration::from_secs(120);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        assert!(get_on(&mut stream, &app, "/healthz")
            .await
            .starts_with("HTTP/1.1 200"));
        idle.push(stream);
    }
    // Far below the 120 s idle timeout: only reclaiming the idle connections serves it.
    let response = tokio::time::timeout(Duration::from_secs(30), app.connection_test())
        .await
        .expect("served without waiting for the idle timeout");
    assert_eq!(response.status(), StatusCode::OK);
    let mut reclaimed = 0;
    for stream in idle {
        if tokio::time::timeout(Duration::from_secs(5), closed_by_server(stream))
            .await
            .is_ok()
        {
            reclaimed += 1;
        }
    }
    assert!(reclaimed >= 1, "no idle connection was closed");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_too() {
    let app = TestApp::spawn_with(memory(), |settings| {
        settings.http.header_read_timeout = Duration::from_millis(500);
        settings.metrics.enabled = true;
    })
    .await;
    let stream = TcpStream::connect(app.address).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(30), closed_by_server(stream)).await;
    assert_eq!(closed.ok(), Some(Vec::new()));
    eventually(
        Duration::from_secs(30),
        "the closed connection is no longer counted",
        || async {
            (metric(&app.metrics().await, "credbridge_http_connections") == Some(1.0)).then_some(())
        },
    )
    .await;
}
