//! The diagnostic log: one `tracing` subscriber, installed once at start-up.
//!
//! Lines are formatted on the calling thread but written in batches by a thread of its own
//! ([`writer`]), so a slow terminal or collector never stalls a request.

mod writer;

use std::io::{IsTerminal, Write};

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};

pub use writer::WriterGuard;

/// Installs the subscriber, writing to standard output. Keep the guard alive until exit:
/// dropping it writes what is pending.
pub fn init(settings: &LogSettings) -> Result<WriterGuard, String> {
    // Colour codes only help a terminal; in a file they are noise.
    let ansi = std::io::stdout().is_terminal();
    init_to(settings, std::io::stdout(), ansi)
}

/// Installs the subscriber as [`init`] does, writing to `output` (benchmarks log to a sink).
pub fn init_to<W: Write + Send + 'static>(
    settings: &LogSettings,
    output: W,
    ansi: bool,
) -> Result<WriterGuard, String> {
    let (key, filter) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => ("RUST_LOG", value),
        _ => ("log.level", settings.level.clone()),
    };
    let (writer, guard) = writer::batch_writer(output)
        .map_err(|error| format!("cannot start the log writer: {error}"))?;
    install(&filter, settings.format, writer, ansi).map_err(|error| format!("{key}: {error}"))?;
    Ok(guard)
}

/// Installs the subscriber credbridge logs through, writing to `writer`, for lines that
/// `filter` (a tracing filter such as `info` or `credbridge=debug`) lets through.
pub fn install<W>(filter: &str, format: LogFormat, writer: W, ansi: bool) -> Result<(), String>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let directives = EnvFilter::try_new(filter).map_err(|error| error.to_string())?;
    let registry = tracing_subscriber::registry()
        .with(directives)
        .with((!names_a_vault_library(filter)).then(quiet_vault_libraries));
    let installed = match format {
        LogFormat::Human => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_target(false)
                    .with_ansi(ansi),
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
    installed.map_err(|error| format!("cannot install the logger: {error}"))
}

/// The libraries credbridge calls Vault through. They report every answer that is not a
/// success, a missing credential included, as an ERROR before credbridge has read it;
/// credbridge logs each outcome itself, once, at the level its meaning deserves. Their
/// WARN lines are another matter: vaultrs strips the `warnings` Vault sends with a
/// successful answer (a deprecated endpoint, an ignored parameter, a capped TTL) and only
/// logs them, at WARN (`vaultrs::api`), so that is the one place an operator sees them.
const VAULT_LIBRARIES: [&str; 2] = ["vaultrs", "rustify"];

fn is_vault_library(target: &str) -> bool {
    VAULT_LIBRARIES.iter().any(|library| {
        target
            .strip_prefix(library)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether an operator's filter says something about the Vault libraries: then it is
/// followed as written, their errors included.
fn names_a_vault_library(filter: &str) -> bool {
    filter.split(',').any(|directive| {
        let target = directive.split(['=', '[']).next().unwrap_or_default();
        is_vault_library(target.trim())
    })
}

/// Lets the Vault libraries' warnings, and their debug and trace lines when the filter asks
/// for them, through: nothing at ERROR (their report of every refusal) or INFO (the spans
/// around each request).
fn quiet_vault_libraries() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    fn allowed(metadata: &Metadata<'_>) -> bool {
        !is_vault_library(metadata.target())
            || matches!(*metadata.level(), Level::WARN | Level::DEBUG | Level::TRACE)
    }
    filter_fn(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vault_libraries_and_their_modules_are_recognized() {
        for target in ["vaultrs", "vaultrs::api", "rustify::client"] {
            assert!(is_vault_library(target), "{target}");
        }
        for target in ["credbridge", "vaultrs_extra", "rustify2::x", "tower_http"] {
            assert!(!is_vault_library(target), "{target}");
        }
    }

    /// The lines that reach a subscriber with `filter` and the quieting filter, as text.
    fn logged(filter: &str, emit: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::try_new(filter).unwrap())
            .with(quiet_vault_libraries())
            .with(
                fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_ansi(false),
            );
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn vaults_own_warnings_pass_and_the_libraries_errors_do_not() {
        let log = logged("debug", || {
            // What vaultrs logs for a successful answer carrying Vault's `warnings`, and
            // for a refusal (a 404 or 403) that credbridge reports itself.
            tracing::warn!(target: "vaultrs::api", "Detected warnings in API response: [\"deprecated\"]");
            tracing::error!(target: "vaultrs::api", "Detected errors in API response: []");
            tracing::error!(target: "rustify::endpoint", "error=Server returned error");
            tracing::info!(target: "vaultrs::api", "an info line");
            tracing::debug!(target: "rustify::client", "a debug line");
            tracing::error!(target: "credbridge::api", "credbridge's own error");
        });
        assert!(log.contains("Detected warnings in API response"), "{log}");
        assert!(log.contains("a debug line"), "{log}");
        assert!(log.contains("credbridge's own error"), "{log}");
        assert!(!log.contains("Detected errors"), "{log}");
        assert!(!log.contains("Server returned error"), "{log}");
        assert!(!log.contains("an info line"), "{log}");

        // At the default level, the warnings still show; the debug lines do not.
        let log = logged("info", || {
            tracing::warn!(target: "vaultrs::api", "Detected warnings in API response");
            tracing::debug!(target: "rustify::client", "a debug line");
        });
        assert!(log.contains("Detected warnings in API response"), "{log}");
        assert!(!log.contains("a debug line"), "{log}");
    }

    #[test]
    fn a_filter_naming_a_vault_library_is_followed_as_written() {
        for filter in [
            "info,vaultrs=debug",
            "rustify::client=trace",
            "vaultrs[request]=info",
        ] {
            assert!(names_a_vault_library(filter), "{filter}");
        }
        for filter in ["info", "credbridge=debug,tower_http=warn", "debug"] {
            assert!(!names_a_vault_library(filter), "{filter}");
        }
    }
}
