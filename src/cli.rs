//! The command line: `serve` (the default), `check-config`, `hash-token`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use credbridge_adapters::SecretText;
use tokio::net::TcpListener;

use crate::app::{shutdown_signal, App};
use crate::auth::{token_sha256_hex, Authenticator};
use crate::config::{validate_token_text, LogFormat, Overrides, Settings};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(name = "credbridge", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file [default: config/credbridge.toml, when it exists]
    #[arg(long, global = true, env = "CREDBRIDGE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the credential API (the default command)
    Serve {
        /// Address to listen on, overriding `listen` and CREDBRIDGE_LISTEN
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Log format, overriding `log.format`
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Load and check the configuration, print it with secrets redacted, and exit
    CheckConfig,
    /// Print the SHA-256 form of a token read from standard input, for `sha256 = "..."`
    HashToken,
    /// Print the OpenAPI document of the API (for the configured base path)
    Openapi,
}

/// Runs the command line; the exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command.unwrap_or(Command::Serve {
        listen: None,
        log_format: None,
    }) {
        Command::Serve { listen, log_format } => {
            let overrides = Overrides { listen, log_format };
            serve(cli.config, overrides)
        }
        Command::CheckConfig => check_config(cli.config),
        Command::HashToken => hash_token(),
        Command::Openapi => openapi(cli.config),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("credbridge: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, overrides: Overrides) -> Result<(), String> {
    let settings = Settings::load(config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    let _log_guard = telemetry::init(&settings.log)?;
    let open_files = crate::server::raise_open_file_limit();
    tracing::debug!(?open_files, "open-file limit");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(async {
        let source_config = config.clone();
        let source_overrides = overrides.clone();
        let app = App::build(&settings)
            .await
            .map_err(|e| e.to_string())?
            .reload_from(std::sync::Arc::new(move || {
                Settings::load(source_config.as_deref(), &source_overrides)
            }));
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", settings.listen))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        let kind = app.backend().info().kind;
        let scopes: Vec<String> = app
            .tokens()
            .current()
            .scopes()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            listen = %address,
            base_path = %settings.base_path,
            backend = kind,
            scopes = %scopes.join(","),
            "credbridge is serving on {}://{address}{}",
            if app.tls_enabled() { "https" } else { "http" },
            settings.base_path,
        );
        if !app.tls_enabled() && !address.ip().is_loopback() {
            tracing::warn!(
                listen = %address,
                "serving plain HTTP on a non-loopback address: tokens and credentials cross the network unencrypted; configure [tls] or listen on loopback behind a TLS proxy"
            );
        }
        if let Some(expiry) = app.tokens().current().next_expiry() {
            tracing::info!(expires_at = %humantime::format_rfc3339_seconds(expiry), "a configured token expires");
        }
        if kind == "memory" {
            tracing::warn!("the memory backend keeps credentials in this process only: they are lost on restart");
        }
        if let Some(token) = app.generated_token() {
            // Printed once, to the terminal, never through the log.
            eprintln!(
                "\nNo token is configured, so credbridge made one for this run (local use only):\n\n    {}\n\nSet CREDBRIDGE_TOKEN to choose your own.\n",
                token.expose()
            );
        }
        if let Err(error) = app.backend().check().await {
            tracing::warn!(%error, "the backend is not ready yet; /readyz answers 503 until it is");
        }
        app.serve(listener, shutdown_signal())
            .await
            .map_err(|error| format!("server error: {error}"))?;
        tracing::info!("credbridge stopped");
        Ok(())
    })
}

fn check_config(config: Option<PathBuf>) -> Result<(), String> {
    let settings =
        Settings::load(config.as_deref(), &Overrides::default()).map_err(|e| e.to_string())?;
    // Token files are read here too, so a missing one fails the check, not the start.
    Authenticator::from_settings(&settings).map_err(|e| e.to_string())?;
    let text = toml::to_string_pretty(&settings).map_err(|error| error.to_string())?;
    println!("{text}");
    eprintln!("credbridge: the configuration is valid");
    Ok(())
}

fn hash_token() -> Result<(), String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| format!("cannot read the token from standard input: {error}"))?;
    let token = input.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err("no token on standard input".to_owned());
    }
    // The same rules as a token given in place: a hash does not make a short token safe.
    validate_token_text("the token on standard input", &SecretText::new(token))
        .map_err(|error| error.to_string())?;
    println!("{}", token_sha256_hex(token));
    Ok(())
}

fn openapi(config: Option<PathBuf>) -> Result<(), String> {
    let settings =
        Settings::load(config.as_deref(), &Overrides::default()).map_err(|e| e.to_string())?;
    let document = crate::api::openapi::document(&settings.base_path)
        .to_pretty_json()
        .map_err(|error| error.to_string())?;
    println!("{document}");
    Ok(())
}
