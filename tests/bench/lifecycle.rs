//! Lifecycle benchmark: Skyvern's create, read and delete of a credential, each
//! connection repeating the three, against credbridge in its default configuration and a
//! bare axum handler that checks the same bearer token and answers fixed bodies.
//!
//! `cargo bench --bench lifecycle`. Each server runs on one thread of its own and the
//! load generator on another; runs of the two alternate (`BENCH_ROUNDS`, default 3), each
//! `BENCH_SECONDS` long (default 5) over `BENCH_CONCURRENCY` keep-alive connections
//! (default 32). credbridge runs with the defaults a user gets (its `info` log included,
//! formatted on the server thread and written by the logger's own thread to a sink), the
//! memory backend, and the per-token rate limit raised out of the benchmark's way.
//!
//! Run under `tests/run --exec`, which starts OpenBao and moto, it then measures the same
//! lifecycle against the Vault backend (KV v2 with a static token) and the AWS backend:
//! what credbridge adds to each request over the same backend called directly, and how
//! many connections to the backend it opened.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credbridge_adapters::testkit::{document, fresh_key};
use credbridge_adapters::{Backend, BackendConfig, Scope};
use hdrhistogram::Histogram;
use support::{
    bare_handler, credbridge, env_number, histogram, password_body, run, settings, Workload, BASE,
};

fn main() {
    let contenders = support::contenders();
    contenders.compare("lifecycle (create, read, delete)", &lifecycle());
    backends(
        contenders.shape.seconds,
        env_number("BENCH_BACKEND_CONCURRENCY", 4),
    );
}

fn lifecycle() -> Workload {
    Workload::Lifecycle {
        base: BASE.to_owned(),
        body: Arc::new(serde_json::to_vec(&password_body()).unwrap()),
    }
}

/// The backends `tests/run` starts, when it named them.
fn backends(seconds: u64, concurrency: u64) {
    // Filled only by the backends compiled in.
    #[allow(unused_mut)]
    let mut peers: Vec<(&str, BackendConfig, String)> = Vec::new();
    #[cfg(feature = "vault")]
    if let (Ok(address), Ok(token)) = (
        std::env::var("CREDBRIDGE_TEST_VAULT_ADDR"),
        std::env::var("CREDBRIDGE_TEST_VAULT_TOKEN"),
    ) {
        let prefix = credbridge_adapters::testkit::vault::unique_prefix();
        let config =
            credbridge_adapters::testkit::vault::vault_config(&address, &token, "secret", &prefix);
        peers.push((
            "Vault KV v2 (OpenBao)",
            BackendConfig::Vault(config),
            address,
        ));
    }
    #[cfg(feature = "aws")]
    if std::env::var("CREDBRIDGE_TEST_AWS_ENDPOINT").is_ok() {
        let config = credbridge_adapters::testkit::moto::moto_config();
        let endpoint = config.endpoint_url.clone().unwrap_or_default();
        peers.push((
            "AWS Secrets Manager (moto)",
            BackendConfig::Aws(config),
            endpoint,
        ));
    }
    if peers.is_empty() {
        println!(
            "\nno backend peer named: run under `tests/run --exec` to measure Vault and AWS too"
        );
        return;
    }
    println!(
        "\nwhat credbridge adds over a direct call to its backend: {seconds} s each, \
         {concurrency} connections, no thread pinned (the backend needs the cores too)"
    );
    support::stop_pinning();
    // The HTTP hop alone: any service between Skyvern and the vault adds it.
    let bare = bare_handler();
    let hop = support::client_runtime()
        .block_on(run(&bare, &lifecycle(), concurrency, seconds, None))
        .histograms
        .iter()
        .map(Histogram::mean)
        .sum::<f64>()
        / 3.0;
    println!("  one HTTP round trip to a bare axum handler: {hop:.0} µs on average");
    for (name, config, address) in peers {
        let port = port_of(&address);
        let client = support::client_runtime();
        let watcher = ConnectionWatcher::start(port);
        let direct = client.block_on(async {
            let backend = config.build().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Err(error) = backend.check().await {
                assert!(Instant::now() < deadline, "{name} is not ready: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            direct_lifecycle(backend, concurrency, seconds).await
        });
        let direct_connections = watcher.stop();
        let server = credbridge(settings(config));
        let watcher = ConnectionWatcher::start(port);
        let through = client.block_on(run(&server, &lifecycle(), concurrency, seconds, None));
        let connections = watcher.stop();
        println!("{name}");
        for (index, kind) in ["create", "read", "delete"].into_iter().enumerate() {
            let direct_mean = direct[index].mean();
            let through_mean = through.histograms[index].mean();
            let added = through_mean - direct_mean;
            println!(
                "  {kind:<7} direct {direct_mean:>7.0} µs   through credbridge {through_mean:>7.0} µs   \
                 added {added:>5.0} µs = {:>5.1}% of the backend's own, {:>5.1}% beyond the HTTP hop",
                added / direct_mean * 100.0,
                (added - hop) / direct_mean * 100.0,
            );
        }
        let direct_mean = direct.iter().map(Histogram::mean).sum::<f64>() / 3.0;
        let cpu = through.cpu_per_request() * 1e6;
        println!(
            "  credbridge's own CPU per request (its HTTP server, checks and backend client): \
             {cpu:.0} µs = {:.1}% of the backend's own latency",
            cpu / direct_mean * 100.0
        );
        let direct_requests: u64 = direct.iter().map(Histogram::len).sum();
        println!(
            "  connections opened to the backend: {direct_connections} for {direct_requests} \
             direct calls, {connections} for {} requests through credbridge",
            through.requests()
        );
    }
}

/// The lifecycle through the `Backend` trait, with no HTTP server in between.
async fn direct_lifecycle(
    backend: Arc<dyn Backend>,
    concurrency: u64,
    seconds: u64,
) -> Vec<Histogram<u64>> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let backend = Arc::clone(&backend);
        tasks.spawn(async move {
            let mut histograms = vec![histogram(), histogram(), histogram()];
            let stored = document(password_body());
            let mut warm = 10;
            while warm > 0 || Instant::now() < deadline {
                let key = fresh_key(&Scope::default());
                let mut timings = [Duration::ZERO; 3];
                let started = Instant::now();
                backend.put(&key, &stored).await.unwrap();
                timings[0] = started.elapsed();
                let started = Instant::now();
                backend.get(&key).await.unwrap();
                timings[1] = started.elapsed();
                let started = Instant::now();
                backend.delete(&key).await.unwrap();
                timings[2] = started.elapsed();
                if warm > 0 {
                    warm -= 1;
                    continue;
                }
                for (histogram, timing) in histograms.iter_mut().zip(timings) {
                    histogram.record(timing.as_micros() as u64).unwrap();
                }
            }
            histograms
        });
    }
    let mut totals = vec![histogram(), histogram(), histogram()];
    while let Some(parts) = tasks.join_next().await {
        for (total, part) in totals.iter_mut().zip(parts.unwrap()) {
            total.add(part).unwrap();
        }
    }
    totals
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// Counts the TCP connections opened to a port while it runs (not those open before), by
/// sampling the kernel's socket table.
struct ConnectionWatcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashSet<u16>>>,
    thread: std::thread::JoinHandle<()>,
}

impl ConnectionWatcher {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let before: HashSet<u16> = client_ports(port).into_iter().collect();
        let thread = std::thread::spawn({
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = client_ports(port);
                    seen.lock()
                        .unwrap()
                        .extend(now.into_iter().filter(|port| !before.contains(port)));
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self { stop, seen, thread }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        let seen = self.seen.lock().unwrap();
        seen.len()
    }
}

/// Local ports of the sockets connected to `port` (the client ends).
fn client_ports(port: u16) -> Vec<u16> {
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port_in = |address: &str| {
                address
                    .rsplit(':')
                    .next()
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            };
            if let (Some(local), Some(remote)) = (
                fields.get(1).and_then(|a| port_in(a)),
                fields.get(2).and_then(|a| port_in(a)),
            ) {
                if remote == port && local != port {
                    ports.push(local);
                }
            }
        }
    }
    ports
}
