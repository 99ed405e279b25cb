//! The diagnostic log: one `tracing` subscriber, installed once at start-up.
//!
//! Lines are formatted on the calling thread but written by a background worker, so a slow
//! terminal or collector never stalls a request.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};

/// Installs the subscriber. Keep the guard alive until exit: dropping it flushes the log.
pub fn init(settings: &LogSettings) -> Result<WorkerGuard, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => {
            EnvFilter::try_new(&value).map_err(|error| format!("RUST_LOG: {error}"))?
        }
        _ => EnvFilter::try_new(&settings.level).map_err(|error| format!("log.level: {error}"))?,
    };
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match settings.format {
        LogFormat::Human => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_target(false)
                    // Colour codes only help a terminal; in a file they are noise.
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))?;
    Ok(guard)
}
