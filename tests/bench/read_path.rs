//! Read-path benchmark: credbridge's `GET {base}/{id}` (Skyvern's hot path) on the memory
//! backend against a bare axum handler that checks the same bearer token and returns a
//! fixed body, under the same load, on this machine; then the memory each stored
//! credential takes in the memory backend.
//!
//! `cargo bench --bench read_path`; `BENCH_SECONDS` (default 5), `BENCH_CONCURRENCY`
//! (default 32) and `BENCH_ROUNDS` (default 3) tune the run. Each server runs on one
//! thread of its own and the load generator on another, so the comparison is like for
//! like; credbridge runs with its defaults, its `info` log included. The server's CPU time
//! per request, read from /proc for its thread, is the number that compares the two: on a
//! small machine the load generator can limit throughput.

mod support;

use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::testkit::{document, fresh_key};
use credbridge_adapters::{Backend, Scope};
use support::{client_runtime, id_of, password_body, Connection, Workload, BASE};

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
    let contenders = support::contenders();

    // One stored credential, created through the API as Skyvern creates it.
    let client_runtime = client_runtime();
    let path = client_runtime.block_on(async {
        let mut connection = Connection::open(contenders.credbridge.address).await;
        let body = serde_json::to_vec(&password_body()).unwrap();
        let answer = connection.send("POST", BASE, Some(&body)).await;
        assert_eq!(answer.status, 200);
        format!("{BASE}/{}", id_of(answer.body))
    });

    contenders.compare("read path", &Workload::Read { path });

    // Memory: resident growth per stored credential in the memory backend.
    let backend = MemoryBackend::default();
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
