//! Whatever arrives — arbitrary bytes, arbitrary JSON, arbitrary paths and methods — the
//! service answers without a 5xx and without panicking, in JSON, and stores nothing for a
//! request it refuses.

use std::sync::Arc;

use credbridge::{App, Settings};
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::{Backend, Scope};
use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "property-token-0123456789";

struct Server {
    runtime: tokio::runtime::Runtime,
    address: std::net::SocketAddr,
    backend: Arc<MemoryBackend>,
}

/// The server of the calling test. Each test has its own (tests run in parallel threads),
/// so what one test counts as stored is never changed by another's creates.
fn server() -> &'static Server {
    type Servers = std::sync::Mutex<std::collections::HashMap<String, &'static Server>>;
    static SERVERS: std::sync::OnceLock<Servers> = std::sync::OnceLock::new();
    let test = std::thread::current().name().unwrap_or_default().to_owned();
    let mut servers = SERVERS.get_or_init(Default::default).lock().unwrap();
    servers
        .entry(test)
        .or_insert_with(|| Box::leak(Box::new(start_server())))
}

fn start_server() -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = Arc::new(MemoryBackend::default());
    let settings = Settings::from_toml(&format!(
        "[[auth.tokens]]\ntoken = \"{TOKEN}\"\nscope = \"default\"\n\
         [rate_limit]\nenabled = false\n[http]\nmax_body_bytes = 4096\n"
    ))
    .unwrap();
    let app = App::with_backend(&settings, backend.clone() as Arc<dyn Backend>).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(app.serve(listener, std::future::pending()));
    Server {
        runtime,
        address,
        backend,
    }
}

/// Sends one raw HTTP/1.1 request; returns the status and the body.
fn send(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    authorized: bool,
) -> (u16, Vec<u8>) {
    let server = server();
    server.runtime.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(server.address)
            .await
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        if authorized {
            head.push_str(&format!("authorization: Bearer {TOKEN}\r\n"));
        }
        if let Some(value) = content_type {
            head.push_str(&format!("content-type: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        let status = text
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map_or_else(Vec::new, |at| response[at + 4..].to_vec());
        (status, body)
    })
}

fn stored() -> usize {
    let server = server();
    server
        .runtime
        .block_on(server.backend.list(&Scope::default()))
        .unwrap()
        .len()
}

/// The answer is a real status below 500, and any error body is the contract's JSON.
fn assert_sane(status: u16, body: &[u8]) {
    assert!((200..500).contains(&status), "status {status}");
    if status >= 400 && !body.is_empty() {
        let value: Value = serde_json::from_slice(body).expect("a JSON error body");
        assert!(
            value["error"].is_string() && value["message"].is_string(),
            "{value}"
        );
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        prop_oneof![Just("password"), Just("credit_card"), Just("secret")].prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("type".to_owned()),
                    Just("username".to_owned()),
                    Just("password".to_owned()),
                    Just("secret_value".to_owned()),
                    Just("totp".to_owned()),
                    Just("metadata".to_owned()),
                    Just("billing_address".to_owned()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..8,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/api/v1/credentials".to_owned()),
        "[a-zA-Z0-9_./%-]{0,40}".prop_map(|rest| format!("/api/v1/credentials/{rest}")),
        "(%[0-9A-Fa-f]{2}|[a-z/.]){0,30}".prop_map(|rest| format!("/api/v1/credentials/{rest}")),
        "/[a-z/.%0-9]{0,30}",
    ]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("DELETE"),
        Just("PUT"),
        Just("PATCH"),
        Just("OPTIONS")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_creates_are_stored_only_when_accepted(body in json_value()) {
        let before = stored();
        let (status, response) = send("POST", "/api/v1/credentials", Some("application/json"), body.to_string().as_bytes(), true);
        assert_sane(status, &response);
        let expected = before + usize::from(status == 200);
        prop_assert_eq!(stored(), expected);
    }

    #[test]
    fn arbitrary_bytes_never_fail_the_server(body in prop::collection::vec(any::<u8>(), 0..6000),
                                             content_type in prop::option::of(prop_oneof![Just("application/json"), Just("text/plain"), Just("application/x+json")])) {
        let before = stored();
        let (status, response) = send("POST", "/api/v1/credentials", content_type, &body, true);
        assert_sane(status, &response);
        prop_assert_eq!(stored(), before + usize::from(status == 200));
    }

    #[test]
    fn arbitrary_paths_and_methods_never_fail_the_server(method in method(), path in path(), authorized in any::<bool>()) {
        let before = stored();
        let (status, response) = send(method, &path, Some("application/json"), b"{}", authorized);
        prop_assert!(status != 0, "no HTTP answer to {} {}", method, path);
        assert_sane(status, &response);
        prop_assert!(stored() <= before, "{} {} stored something", method, path);
        if !authorized && path.starts_with("/api/v1/credentials") && (200..300).contains(&status) {
            prop_assert!(false, "{} {} succeeded without a token", method, path);
        }
    }
}
