//! The audit log: one JSON line per credential operation, apart from the diagnostic log.
//!
//! A line says who (scope and token fingerprint, client address), what (operation,
//! credential id and type, the references its fields hold), when, how it ended and how
//! long it took. It never holds a token or any value of the credential. Lines are handed
//! to a background writer, so an audit write never delays a response; the writer blocks
//! rather than drops when its queue is full, because an audit trail with holes is worse
//! than a slow one.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use credbridge_adapters::CredentialId;
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::auth::Identity;
use crate::config::AuditSettings;

/// Where audit lines go.
pub struct AuditLog {
    writer: Option<NonBlocking>,
    _guard: Option<WorkerGuard>,
}

impl AuditLog {
    pub fn disabled() -> Self {
        Self {
            writer: None,
            _guard: None,
        }
    }

    /// Opens the configured output; a file is opened for appending and created if absent.
    pub fn open(settings: &AuditSettings) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match settings.output.as_str() {
            "off" => return Ok(Self::disabled()),
            "stdout" => Box::new(std::io::stdout()),
            "stderr" => Box::new(std::io::stderr()),
            path => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| format!("audit.output: cannot open {path}: {error}"))?,
            ),
        };
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("credbridge-audit")
            .finish(sink);
        Ok(Self {
            writer: Some(writer),
            _guard: Some(guard),
        })
    }

    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    pub fn record(&self, event: &AuditEvent<'_>) {
        let Some(writer) = &self.writer else {
            return;
        };
        match serde_json::to_vec(event) {
            Ok(mut line) => {
                line.push(b'\n');
                if let Err(error) = writer.clone().write_all(&line) {
                    tracing::error!(%error, "cannot write the audit log");
                }
            }
            Err(error) => tracing::error!(%error, "cannot encode an audit line"),
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

/// What a request learns about itself on its way through extractors and handlers, read
/// once the response is ready for the audit line. The default record is inactive: it
/// allocates nothing and ignores every note, which is what requests cost without an
/// audit log.
#[derive(Clone, Default)]
pub struct RequestRecord(Option<Arc<Mutex<RecordFields>>>);

#[derive(Debug, Clone, Default)]
pub struct RecordFields {
    pub identity: Option<Identity>,
    pub id: Option<CredentialId>,
    pub kind: Option<&'static str>,
    pub client: Option<SocketAddr>,
    pub references: Vec<String>,
}

impl RequestRecord {
    /// A record that keeps what it is told.
    pub fn active() -> Self {
        Self(Some(Arc::default()))
    }

    fn with<T: Default>(&self, change: impl FnOnce(&mut RecordFields) -> T) -> T {
        let Some(fields) = &self.0 else {
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

    pub fn set_client(&self, client: SocketAddr) {
        self.with(|fields| fields.client = Some(client));
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
