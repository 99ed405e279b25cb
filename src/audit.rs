//! The audit log: one JSON line per credential operation, apart from the diagnostic log.
//!
//! A line says who (scope and token fingerprint, client address), what (operation,
//! credential id and type, the references its fields hold), when, how it ended and how
//! long it took. It never holds a token or any value of the credential.
//!
//! Lines go through a bounded queue to a writer thread of their own, so a slow sink (a
//! full disk, a stalled pipe) never blocks a runtime thread. When the queue is full, the
//! request whose line does not fit waits, asynchronously, for room: an audit trail with
//! holes is worse than a slow one. Such waits are counted in
//! `credbridge_audit_queue_full_total` and logged, at most every few seconds.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use credbridge_adapters::CredentialId;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::Identity;
use crate::config::{AuditOutput, AuditSettings};
use crate::metrics::Metrics;

/// Where audit lines go.
pub struct AuditLog {
    queue: Option<Queue>,
}

struct Queue {
    lines: mpsc::Sender<Vec<u8>>,
    /// Says when the writer has written everything and stopped (a `Mutex` only to be
    /// `Sync`: it is read once, at drop).
    stopped: Mutex<std_mpsc::Receiver<()>>,
    metrics: Option<Arc<Metrics>>,
    last_warned: Mutex<Option<Instant>>,
}

impl AuditLog {
    /// Lines waiting for the writer, at most: a few MiB.
    pub const QUEUE_LINES: usize = 8192;
    /// How long shutdown waits for the writer to drain the queue.
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
    /// At most one "queue full" warning per this interval.
    const WARN_INTERVAL: Duration = Duration::from_secs(10);

    pub fn disabled() -> Self {
        Self { queue: None }
    }

    /// Opens the configured output; a file is opened for appending and created if absent.
    pub fn open(settings: &AuditSettings, metrics: Option<Arc<Metrics>>) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match &settings.output {
            AuditOutput::Off => return Ok(Self::disabled()),
            AuditOutput::Stdout => Box::new(std::io::stdout()),
            AuditOutput::Stderr => Box::new(std::io::stderr()),
            AuditOutput::File(path) => Box::new(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| {
                        format!("audit.output: cannot open {}: {error}", path.display())
                    })?,
            )),
        };
        Self::with_sink(sink, Self::QUEUE_LINES, metrics)
    }

    /// An audit log writing to `sink` through a queue of `capacity` lines.
    pub fn with_sink(
        mut sink: Box<dyn Write + Send>,
        capacity: usize,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, String> {
        let (lines, mut receiver) = mpsc::channel::<Vec<u8>>(capacity.max(1));
        let (stop, stopped) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("credbridge-audit".to_owned())
            .spawn(move || {
                while let Some(line) = receiver.blocking_recv() {
                    let mut written = sink.write_all(&line);
                    // Flushed whenever the queue runs dry: lines reach the sink promptly,
                    // and a burst is written in few system calls.
                    if written.is_ok() && receiver.is_empty() {
                        written = sink.flush();
                    }
                    if let Err(error) = written {
                        tracing::error!(%error, "cannot write the audit log");
                    }
                }
                let _ = stop.send(());
            })
            .map_err(|error| format!("audit.output: cannot start the writer thread: {error}"))?;
        Ok(Self {
            queue: Some(Queue {
                lines,
                stopped: Mutex::new(stopped),
                metrics,
                last_warned: Mutex::new(None),
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues the line of `event`, waiting for room when the queue is full.
    pub async fn record(&self, event: &AuditEvent<'_>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "cannot encode an audit line");
                return;
            }
        };
        line.push(b'\n');
        let line = match queue.lines.try_send(line) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(line)) => line,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped; an audit line is lost");
                return;
            }
        };
        queue.full();
        if queue.lines.send(line).await.is_err() {
            tracing::error!("the audit writer has stopped; an audit line is lost");
        }
    }
}

impl Queue {
    fn full(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.audit_queue_full();
        }
        let mut last = self
            .last_warned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_none_or(|at| at.elapsed() >= AuditLog::WARN_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                queued = AuditLog::QUEUE_LINES,
                "the audit log's sink is not keeping up: requests wait for their audit lines"
            );
        }
    }
}

impl Drop for AuditLog {
    /// Closes the queue and lets the writer drain it, for a while: a sink stalled for good
    /// must not keep the process from stopping.
    fn drop(&mut self) {
        if let Some(Queue { lines, stopped, .. }) = self.queue.take() {
            drop(lines);
            let stopped = stopped
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if stopped.recv_timeout(Self::DRAIN_TIMEOUT).is_err() {
                tracing::error!("the audit log's sink did not take the last lines in time");
            }
        }
    }
}

/// One audit line.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    pub time: String,
    pub request_id: &'a str,
    pub client: Option<String>,
    pub operation: &'static str,
    pub scope: Option<&'a str>,
    pub token: Option<String>,
    pub id: Option<&'a str>,
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
    /// The references the credential's fields hold (`ref+vault://secret/apps/x#password`):
    /// paths and keys, never values. Absent when it holds none.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub references: &'a [String],
    pub outcome: &'static str,
    pub status: u16,
    pub latency_ms: f64,
}

/// What a request learns about itself on its way through extractors and handlers: its
/// client's address, known from the start, and what the audit line should say, read once
/// the response is ready. Without an audit log the record is inactive: it allocates
/// nothing and ignores every note.
#[derive(Clone, Default)]
pub struct RequestRecord {
    client: Option<IpAddr>,
    fields: Option<Arc<Mutex<RecordFields>>>,
}

#[derive(Debug, Clone, Default)]
pub struct RecordFields {
    pub identity: Option<Identity>,
    pub id: Option<CredentialId>,
    pub kind: Option<&'static str>,
    pub references: Vec<String>,
}

impl RequestRecord {
    /// A record of a request from `client`, keeping what it is told when `active`.
    pub fn new(client: Option<IpAddr>, active: bool) -> Self {
        Self {
            client,
            fields: active.then(Arc::default),
        }
    }

    /// The client's address: the peer's, or the one a trusted proxy named.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    fn with<T: Default>(&self, change: impl FnOnce(&mut RecordFields) -> T) -> T {
        let Some(fields) = &self.fields else {
            return T::default();
        };
        // A poisoned lock only means a panic elsewhere mid-update; the fields are still
        // usable for a log line.
        let mut fields = fields
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut fields)
    }

    pub fn set_identity(&self, identity: &Identity) {
        self.with(|fields| fields.identity = Some(identity.clone()));
    }

    pub fn set_credential(&self, id: &CredentialId, kind: Option<&'static str>) {
        self.with(|fields| {
            fields.id = Some(id.clone());
            if kind.is_some() {
                fields.kind = kind;
            }
        });
    }

    /// Notes the references a credential holds; they are only formatted when the record
    /// is active.
    pub fn set_references(&self, references: impl IntoIterator<Item = String>) {
        self.with(|fields| fields.references = references.into_iter().collect());
    }

    pub fn snapshot(&self) -> RecordFields {
        self.with(|fields| fields.clone())
    }
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A sink that takes nothing until it is opened, as a full disk or an unread pipe.
    #[derive(Clone, Default)]
    struct StalledSink {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        /// Set once a write is waiting in the sink.
        entered: Arc<AtomicBool>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl StalledSink {
        fn open(&self) {
            let (open, opened) = &*self.open;
            *open.lock().unwrap() = true;
            opened.notify_all();
        }

        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.written.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    impl Write for StalledSink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let (open, opened) = &*self.open;
            let mut is_open = open.lock().unwrap();
            self.entered.store(true, Ordering::SeqCst);
            while !*is_open {
                is_open = opened.wait(is_open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(request_id: &str) -> AuditEvent<'_> {
        AuditEvent {
            time: now_rfc3339(),
            request_id,
            client: None,
            operation: "read",
            scope: None,
            token: None,
            id: None,
            kind: None,
            references: &[],
            outcome: "ok",
            status: 200,
            latency_ms: 0.0,
        }
    }

    // One runtime thread: were a full queue to block it, nothing else could run.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stalled_sink_makes_requests_wait_without_blocking_the_runtime_or_losing_lines() {
        let sink = StalledSink::default();
        let metrics = Arc::new(Metrics::new());
        let audit = Arc::new(
            AuditLog::with_sink(Box::new(sink.clone()), 2, Some(Arc::clone(&metrics))).unwrap(),
        );
        // The writer holds one line, stalled in the sink, and the queue holds two.
        audit.record(&event("r1")).await;
        while !sink.entered.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for id in ["r2", "r3"] {
            audit.record(&event(id)).await;
        }
        let waiting = {
            let audit = Arc::clone(&audit);
            tokio::spawn(async move {
                for id in ["r4", "r5"] {
                    audit.record(&event(id)).await;
                }
            })
        };
        let other_work = Arc::new(AtomicBool::new(false));
        let other = {
            let other_work = Arc::clone(&other_work);
            tokio::spawn(async move { other_work.store(true, Ordering::SeqCst) })
        };
        other.await.unwrap();
        assert!(other_work.load(Ordering::SeqCst));
        assert!(
            !waiting.is_finished(),
            "the line found room in a stalled queue"
        );
        assert!(metrics
            .text()
            .contains("credbridge_audit_queue_full_total 1"));

        sink.open();
        waiting.await.unwrap();
        drop(Arc::into_inner(audit).expect("the only reference"));
        let ids: Vec<String> = sink
            .lines()
            .iter()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5"]);
    }
}
