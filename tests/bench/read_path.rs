//! Read-path benchmark: credbridge's `GET {base}/{id}` on the memory backend against a bare
//! axum handler that returns the same bytes, under the same load, on this machine.
//!
//! `cargo bench --bench read_path`; `BENCH_SECONDS` (default 5) and `BENCH_CONCURRENCY`
//! (default 16) tune the run. Each server runs on one thread of its own and the load
//! generator on another, so the comparison is like for like. On a small machine the load
//! generator, not the server, limits throughput; the server's CPU time per request (read
//! from /proc for its thread) is the number that compares the two handlers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use credbridge::config::{AuthSettings, TokenSettings};
use credbridge::{App, Settings};
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::testkit::{document, fresh_key};
use credbridge_adapters::{Backend, Scope, SecretText};
use hdrhistogram::Histogram;
use serde_json::json;

const TOKEN: &str = "bench-token-0123456789abcdef";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server on one OS thread: its address, and where the kernel counts its CPU time.
struct ServerThread {
    address: SocketAddr,
    stat: PathBuf,
}

impl ServerThread {
    /// CPU time the thread has used (user + system), from /proc.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(&self.stat).unwrap_or_default();
        // Fields after the parenthesised name: state is the 3rd; utime, stime the 14th, 15th.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|field| field.parse().ok())
            .collect();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(fields.iter().sum::<u64>() * 10)
    }
}

/// Runs `serve` on a current-thread runtime in its own OS thread.
fn spawn_server<F, Fut>(serve: F) -> ServerThread
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stat = std::fs::read_link("/proc/thread-self")
            .unwrap()
            .join("stat");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            sender
                .send(ServerThread {
                    address,
                    stat: Path::new("/proc").join(stat),
                })
                .unwrap();
            serve(listener).await;
        });
    });
    receiver.recv().unwrap()
}

fn password_body() -> serde_json::Value {
    json!({"name": "shop login", "type": "password", "username": "ada@example.com",
           "password": "correct horse battery staple", "totp": null, "totp_type": "none"})
}

struct Report {
    requests: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
    server_cpu: Duration,
}

/// `concurrency` tasks, each issuing GETs back to back for `seconds`.
async fn load(server: &ServerThread, path: &str, concurrency: u64, seconds: u64) -> Report {
    let url = format!("http://{}{path}", server.address);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    // Warm the connections and the server's caches first.
    for _ in 0..200 {
        client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let cpu_before = server.cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                histogram.record(sent.elapsed().as_micros() as u64).unwrap();
            }
            histogram
        });
    }
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    while let Some(part) = tasks.join_next().await {
        histogram.add(part.unwrap()).unwrap();
    }
    Report {
        requests: histogram.len(),
        elapsed: started.elapsed(),
        histogram,
        server_cpu: server.cpu().saturating_sub(cpu_before),
    }
}

fn print(name: &str, report: &Report) {
    let h = &report.histogram;
    println!(
        "{name:<22} {:>6.1} µs server CPU/request   {:>7.0} req/s   p50 {:>4} µs   p90 {:>4} µs   p99 {:>5} µs   p99.9 {:>5} µs   max {:>6} µs   ({} requests)",
        report.server_cpu.as_secs_f64() * 1e6 / report.requests as f64,
        report.requests as f64 / report.elapsed.as_secs_f64(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        report.requests,
    );
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 5);
    let concurrency = env_number("BENCH_CONCURRENCY", 16);

    // credbridge, memory backend, one stored credential.
    let backend = Arc::new(MemoryBackend::default());
    let key = fresh_key(&Scope::default());
    let stored = document(password_body());
    let settings = Settings {
        auth: AuthSettings {
            tokens: vec![TokenSettings {
                token: Some(SecretText::new(TOKEN)),
                scope: Scope::DEFAULT.to_owned(),
                ..TokenSettings::default()
            }],
            ..AuthSettings::default()
        },
        // The limiter stays in the path, with a budget no benchmark reaches.
        rate_limit: credbridge::config::RateLimitSettings {
            per_token_per_second: 1_000_000,
            per_token_burst: 1_000_000,
            ..Default::default()
        },
        log: credbridge::config::LogSettings {
            level: "off".into(),
            ..Default::default()
        },
        ..Settings::default()
    };
    let app = App::with_backend(&settings, backend.clone()).unwrap();
    let credbridge_server = spawn_server(move |listener| async move {
        app.serve(listener, std::future::pending()).await.unwrap();
    });

    // The baseline: a bare axum handler returning the bytes credbridge returns.
    let mut expected = password_body();
    expected["id"] = json!(key.id.as_str());
    let bytes = serde_json::to_vec(&expected).unwrap();
    let baseline_server = spawn_server(move |listener| async move {
        let body = axum::body::Bytes::from(bytes);
        let router = axum::Router::new().route(
            "/api/v1/credentials/{id}",
            get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        axum::serve(listener, router).await.unwrap();
    });

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(backend.put(&key, &stored)).unwrap();

    println!("read path: {seconds} s per target, {concurrency} concurrent connections, one server thread each");
    let path = format!("/api/v1/credentials/{}", key.id);
    let baseline = client_runtime.block_on(load(&baseline_server, &path, concurrency, seconds));
    print("bare axum handler", &baseline);
    let credbridge = client_runtime.block_on(load(&credbridge_server, &path, concurrency, seconds));
    print("credbridge (memory)", &credbridge);
    let per_request = |report: &Report| report.server_cpu.as_secs_f64() / report.requests as f64;
    println!(
        "credbridge's server CPU per read = {:.2}x the bare handler's",
        per_request(&credbridge) / per_request(&baseline)
    );

    // Memory: resident growth per stored credential in the memory backend.
    let count = 50_000u64;
    let scope = Scope::parse("memory-bench").unwrap();
    let before = resident_bytes();
    client_runtime.block_on(async {
        for _ in 0..count {
            backend
                .put(&fresh_key(&scope), &document(password_body()))
                .await
                .unwrap();
        }
    });
    let after = resident_bytes();
    println!(
        "memory backend: {count} password credentials add {:.1} MiB resident, {} bytes each",
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0),
        after.saturating_sub(before) / count
    );
}
