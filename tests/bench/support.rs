//! What the benchmarks share: servers on threads of their own whose CPU time is read from
//! the kernel, a load generator that speaks keep-alive HTTP/1.1 on raw sockets (so that the
//! client costs as little as possible and the server is what is measured), latency
//! histograms, and the reports.

#![allow(dead_code)] // each benchmark uses its own part of this module

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use credbridge::config::RateLimitSettings;
use credbridge::{App, Settings};
use credbridge_adapters::BackendConfig;
use credbridge_adapters::SecretText;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TOKEN: &str = "bench-token-0123456789abcdef";
pub const BASE: &str = "/api/v1/credentials";

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server on one OS thread: its address, and where the kernel counts its CPU time (its
/// own thread's, and the log writer's when the server logs).
pub struct ServerThread {
    pub address: SocketAddr,
    stats: Vec<PathBuf>,
}

impl ServerThread {
    /// CPU time the server's threads have used (user + system), from /proc.
    pub fn cpu(&self) -> Duration {
        self.stats.iter().map(|stat| thread_cpu(stat)).sum()
    }
}

fn thread_cpu(stat: &Path) -> Duration {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
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

/// The log writer's thread id and stat file: credbridge's log lines keep it busy.
fn log_writer() -> Option<(Option<i32>, PathBuf)> {
    let task = std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("credbridge-log"))
        })?;
    let tid = task.file_name().to_str().and_then(|tid| tid.parse().ok());
    Some((tid, task.path().join("stat")))
}

/// The log writer's stat file, for credbridge's CPU time; the writer is pinned beside the
/// servers, as part of credbridge.
fn log_writer_stat() -> Option<PathBuf> {
    let (tid, stat) = log_writer()?;
    if let Some(core) = server_core() {
        pin(tid, std::iter::once(core));
    }
    Some(stat)
}

/// Whether servers and the load generator are pinned to cores of their own; see
/// [`server_core`].
static PINNING: AtomicBool = AtomicBool::new(true);

/// The core the servers run on, the last; the load generator gets the others. Pinned this
/// way, a server (credbridge's log writer included) cannot take CPU time from the load
/// generator, nor the reverse, and runs are comparable. `BENCH_PIN=0` turns it off.
fn server_core() -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores >= 2 && env_number("BENCH_PIN", 1) == 1 && PINNING.load(Ordering::Relaxed))
        .then_some(cores - 1)
}

/// Ends pinning, for measurements with a backend peer, which needs the cores too: the
/// calling thread and the log writer may run anywhere again, and so will servers started
/// from now on.
pub fn stop_pinning() {
    PINNING.store(false, Ordering::Relaxed);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    pin(None, 0..cores);
    if let Some(tid) = log_writer().and_then(|(tid, _)| tid) {
        pin(Some(tid), 0..cores);
    }
}

/// Pins the thread `tid` (the calling thread for `None`) to `cores`.
fn pin(tid: Option<i32>, cores: impl Iterator<Item = usize>) {
    let mut set = rustix::thread::CpuSet::new();
    for core in cores {
        set.set(core);
    }
    let pid = tid.and_then(rustix::process::Pid::from_raw);
    if let Err(error) = rustix::thread::sched_setaffinity(pid, &set) {
        eprintln!("cannot pin a benchmark thread: {error}");
    }
}

/// Runs `serve` on a current-thread runtime in its own OS thread.
pub fn spawn_server<F, Fut>(serve: F) -> ServerThread
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(core) = server_core() {
            pin(None, std::iter::once(core));
        }
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
                    stats: vec![Path::new("/proc").join(stat)],
                })
                .unwrap();
            serve(listener).await;
        });
    });
    receiver.recv().unwrap()
}

/// The load generator's runtime: the calling thread, kept off the servers' core.
pub fn client_runtime() -> tokio::runtime::Runtime {
    if let Some(core) = server_core() {
        pin(None, 0..core);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One keep-alive HTTP/1.1 connection, written and read by hand.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    request: Vec<u8>,
}

/// A response: its status and body.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Connection {
    pub async fn open(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: Vec::with_capacity(4096),
            request: Vec::with_capacity(1024),
        }
    }

    /// Sends one request with the benchmark's token and reads its whole response.
    pub async fn send(&mut self, method: &str, path: &str, json: Option<&[u8]>) -> Answer<'_> {
        self.request.clear();
        self.request.extend_from_slice(
            format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n")
                .as_bytes(),
        );
        if let Some(json) = json {
            self.request.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    json.len()
                )
                .as_bytes(),
            );
        }
        self.request.extend_from_slice(b"\r\n");
        if let Some(json) = json {
            self.request.extend_from_slice(json);
        }
        self.stream.write_all(&self.request).await.unwrap();
        self.read_response().await
    }

    async fn read_response(&mut self) -> Answer<'_> {
        self.buffer.clear();
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("a response without Content-Length: {head}"));
        while self.buffer.len() < head_end + length {
            self.fill().await;
        }
        Answer {
            status,
            body: &self.buffer[head_end..head_end + length],
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The value of `"id":"…"` in a JSON body.
pub fn id_of(body: &[u8]) -> &str {
    let text = std::str::from_utf8(body).unwrap();
    let start = text
        .find("\"id\":\"")
        .unwrap_or_else(|| panic!("no id in {text}"))
        + 6;
    let end = start + text[start..].find('"').unwrap();
    &text[start..end]
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).unwrap()
}

/// What each connection does, over and over.
#[derive(Clone)]
pub enum Workload {
    /// `GET` of one stored credential.
    Read { path: String },
    /// Skyvern's lifecycle: create a credential, read it, delete it.
    Lifecycle { base: String, body: Arc<Vec<u8>> },
}

impl Workload {
    /// The kinds of request, in the order their histograms are kept.
    pub fn names(&self) -> &'static [&'static str] {
        match self {
            Workload::Read { .. } => &["read"],
            Workload::Lifecycle { .. } => &["create", "read", "delete"],
        }
    }

    async fn cycle(&self, connection: &mut Connection, histograms: &mut [Histogram<u64>]) {
        match self {
            Workload::Read { path } => {
                timed(connection, &mut histograms[0], "GET", path, None).await;
            }
            Workload::Lifecycle { base, body } => {
                let created = timed(connection, &mut histograms[0], "POST", base, Some(body)).await;
                let path = format!("{base}/{}", id_of(created));
                timed(connection, &mut histograms[1], "GET", &path, None).await;
                timed(connection, &mut histograms[2], "DELETE", &path, None).await;
            }
        }
    }
}

/// Sends one request, checks it succeeded, records its latency, and returns its body.
async fn timed<'c>(
    connection: &'c mut Connection,
    histogram: &mut Histogram<u64>,
    method: &str,
    path: &str,
    json: Option<&[u8]>,
) -> &'c [u8] {
    let sent = Instant::now();
    let answer = connection.send(method, path, json).await;
    histogram.record(sent.elapsed().as_micros() as u64).unwrap();
    assert_eq!(
        answer.status,
        200,
        "{method} {path}: {}",
        String::from_utf8_lossy(answer.body)
    );
    answer.body
}

/// Latencies of each kind of request, in microseconds, and the server's CPU time.
pub struct Report {
    pub names: &'static [&'static str],
    pub histograms: Vec<Histogram<u64>>,
    pub elapsed: Duration,
    pub server_cpu: Duration,
}

impl Report {
    pub fn requests(&self) -> u64 {
        self.histograms.iter().map(Histogram::len).sum()
    }

    /// Server CPU time per request, in seconds.
    pub fn cpu_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.requests() as f64
    }

    pub fn print(&self, name: &str) {
        let mut all = histogram();
        for part in &self.histograms {
            all.add(part).unwrap();
        }
        println!(
            "{name:<24} {:>5.1} µs server CPU/request  {:>6.0} req/s  p50 {:>4} µs  p99 {:>5} µs  p99.9 {:>5} µs",
            self.cpu_per_request() * 1e6,
            self.requests() as f64 / self.elapsed.as_secs_f64(),
            all.value_at_quantile(0.50),
            all.value_at_quantile(0.99),
            all.value_at_quantile(0.999),
        );
        if self.histograms.len() > 1 {
            for (kind, h) in self.names.iter().zip(&self.histograms) {
                println!(
                    "  {kind:<22} {:>38}  p50 {:>4} µs  p99 {:>5} µs  p99.9 {:>5} µs",
                    "",
                    h.value_at_quantile(0.50),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999),
                );
            }
        }
    }
}

/// Runs `concurrency` connections to `server`, each repeating `workload` for `seconds`
/// after a warm-up, and reports per kind of request: back to back, or paced so that all
/// connections together send `rate` requests a second.
pub async fn run(
    server: &ServerThread,
    workload: &Workload,
    concurrency: u64,
    seconds: u64,
    rate: Option<u64>,
) -> Report {
    let names = workload.names();
    let mut connections = Vec::new();
    for _ in 0..concurrency {
        let mut connection = Connection::open(server.address).await;
        // Warm the connection and the server's caches.
        let mut scratch: Vec<_> = names.iter().map(|_| histogram()).collect();
        for _ in 0..50 {
            workload.cycle(&mut connection, &mut scratch).await;
        }
        connections.push(connection);
    }
    let cpu_before = server.cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    // Each connection's time between cycles, when paced.
    let period = rate.map(|rate| {
        Duration::from_secs_f64((names.len() as u64 * concurrency) as f64 / rate as f64)
    });
    for (index, mut connection) in connections.into_iter().enumerate() {
        let workload = workload.clone();
        let mut histograms: Vec<_> = names.iter().map(|_| histogram()).collect();
        let mut pace = period.map(|period| {
            // Connections start spread over one period, so the load is even.
            let start = started + period.mul_f64(index as f64 / concurrency as f64);
            let mut pace = tokio::time::interval_at(start.into(), period);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            pace
        });
        tasks.spawn(async move {
            while Instant::now() < deadline {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                }
                workload.cycle(&mut connection, &mut histograms).await;
            }
            histograms
        });
    }
    let mut histograms: Vec<_> = names.iter().map(|_| histogram()).collect();
    while let Some(parts) = tasks.join_next().await {
        for (total, part) in histograms.iter_mut().zip(parts.unwrap()) {
            total.add(part).unwrap();
        }
    }
    Report {
        names,
        histograms,
        elapsed: started.elapsed(),
        server_cpu: server.cpu().saturating_sub(cpu_before),
    }
}

pub fn password_body() -> serde_json::Value {
    json!({"name": "shop login", "type": "password", "username": "ada@example.com",
           "password": "correct horse battery staple", "totp": null, "totp_type": "none"})
}

/// The defaults, one token, and a per-token budget no benchmark reaches (the limiter stays
/// in the path).
pub fn settings(backend: BackendConfig) -> Settings {
    Settings {
        token: Some(SecretText::new(TOKEN)),
        rate_limit: RateLimitSettings {
            per_token_per_second: 10_000_000,
            per_token_burst: 10_000_000,
            ..RateLimitSettings::default()
        },
        backend,
        ..Settings::default()
    }
}

/// credbridge on a server thread, answering once its backend is ready.
pub fn credbridge(settings: Settings) -> ServerThread {
    let mut server = spawn_server(move |listener| async move {
        let app = App::build(&settings).await.unwrap();
        app.serve(listener, std::future::pending()).await.unwrap();
    });
    client_runtime().block_on(async {
        let mut connection = Connection::open(server.address).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while connection.send("GET", "/readyz", None).await.status != 200 {
            assert!(Instant::now() < deadline, "credbridge did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    server.stats.extend(log_writer_stat());
    server
}

/// The reference: axum with the same token check and fixed answers.
pub fn bare_handler() -> ServerThread {
    let id = "cred_0123456789abcdef0123456789abcdef";
    let mut stored = password_body();
    stored["id"] = json!(id);
    let created = Bytes::from(serde_json::to_vec(&json!({ "id": id })).unwrap());
    let read = Bytes::from(serde_json::to_vec(&stored).unwrap());
    let deleted = Bytes::from(serde_json::to_vec(&json!({ "id": id, "deleted": true })).unwrap());
    let expected: &'static str = format!("Bearer {TOKEN}").leak();
    spawn_server(move |listener| async move {
        let answer = |body: Bytes| {
            move |headers: HeaderMap| {
                let body = body.clone();
                async move {
                    let authorized = headers
                        .get(header::AUTHORIZATION)
                        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
                    if !authorized {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    Ok(([(header::CONTENT_TYPE, "application/json")], body))
                }
            }
        };
        let create = {
            let answer = answer(created);
            // The body is read, as credbridge reads it.
            move |headers: HeaderMap, _body: Bytes| answer(headers)
        };
        let router = axum::Router::new().route(BASE, post(create)).route(
            &format!("{BASE}/{{id}}"),
            get(answer(read)).delete(answer(deleted)),
        );
        axum::serve(listener, router).await.unwrap();
    })
}

/// Sends every `tracing` line through credbridge's own logger, as `main` does, to a sink;
/// the writer thread's CPU time counts as credbridge's.
pub fn install_logging(settings: &Settings) -> credbridge::telemetry::WriterGuard {
    credbridge::telemetry::init_to(&settings.log, std::io::sink(), false).unwrap()
}

/// How a benchmark run is shaped, from `BENCH_SECONDS` (5), `BENCH_CONCURRENCY` (32) and
/// `BENCH_ROUNDS` (3).
#[derive(Clone, Copy)]
pub struct Shape {
    pub seconds: u64,
    pub concurrency: u64,
    pub rounds: u64,
}

/// What both benchmarks compare: a bare handler, and credbridge with its defaults on the
/// memory backend, logging through its own logger (kept while this lives).
pub struct Contenders {
    pub shape: Shape,
    pub bare: ServerThread,
    pub credbridge: ServerThread,
    _logging: credbridge::telemetry::WriterGuard,
}

pub fn contenders() -> Contenders {
    let memory = settings(BackendConfig::default());
    let logging = install_logging(&memory);
    Contenders {
        shape: Shape {
            seconds: env_number("BENCH_SECONDS", 5),
            concurrency: env_number("BENCH_CONCURRENCY", 32),
            rounds: env_number("BENCH_ROUNDS", 3),
        },
        bare: bare_handler(),
        credbridge: credbridge(memory),
        _logging: logging,
    }
}

impl Contenders {
    /// Prints `title` and the run's shape, then runs the bare handler and credbridge in
    /// turn, `rounds` times as fast as each answers, then once paced at `BENCH_RATE`
    /// requests a second (default 20000), and prints each run and how much of the bare
    /// handler's work per server CPU second credbridge does.
    ///
    /// The paced round compares the two at one rate, below what either can serve: going as
    /// fast as it can, the slower server keeps the load generator waiting, and waking it
    /// costs that server kernel time the faster one pays less often.
    pub fn compare(&self, title: &str, workload: &Workload) {
        let Shape {
            seconds,
            concurrency,
            rounds,
        } = self.shape;
        println!(
            "{title}: {rounds} rounds of {seconds} s per target, {concurrency} connections, \
             one server thread each"
        );
        let client = client_runtime();
        let rate = env_number("BENCH_RATE", 20_000);
        let mut ratios = Vec::new();
        let mut paced_ratio = 0.0;
        for round in 1..=rounds + 1 {
            let paced = (round > rounds).then_some(rate);
            match paced {
                None => println!("round {round}: as fast as each server answers"),
                Some(rate) => println!("round {round}: paced at {rate} requests/s"),
            }
            let baseline = client.block_on(run(&self.bare, workload, concurrency, seconds, paced));
            baseline.print("bare axum handler");
            let measured =
                client.block_on(run(&self.credbridge, workload, concurrency, seconds, paced));
            measured.print("credbridge (memory)");
            let ratio = baseline.cpu_per_request() / measured.cpu_per_request();
            println!(
                "  credbridge does {ratio:.2} of the bare handler's requests per server CPU second"
            );
            match paced {
                None => ratios.push(ratio),
                Some(_) => paced_ratio = ratio,
            }
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "credbridge / bare handler, requests per server CPU second: {:.2} to {:.2} (median {:.2}) \
             as fast as each answers; {paced_ratio:.2} at {rate} requests/s",
            ratios[0],
            ratios[ratios.len() - 1],
            ratios[ratios.len() / 2]
        );
    }
}
