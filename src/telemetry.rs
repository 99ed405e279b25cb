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
/// credbridge logs each outcome itself, once, at the level its meaning deserves.
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

/// Lets the Vault libraries' debug and trace lines through (when the filter asks for
/// them), nothing more severe.
fn quiet_vault_libraries() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    fn allowed(metadata: &Metadata<'_>) -> bool {
        // Levels compare by verbosity: DEBUG and TRACE are the ones at or above DEBUG.
        *metadata.level() >= Level::DEBUG || !is_vault_library(metadata.target())
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
