//! The command line: `serve` (the default), `check-config`, `hash-token`, `openapi`, and the
//! operator's tools `migrate`, `doctor` and `healthcheck` (thin wrappers: the work is in
//! [`crate::migrate`], [`crate::doctor`] and [`crate::healthcheck`]).

use std::io::IsTerminal;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use credbridge_adapters::{Scope, SecretText};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::net::TcpListener;

use crate::app::{shutdown_signal, App};
use crate::auth::{token_sha256_hex, Authenticator};
use crate::config::{validate_token_text, LogFormat, Overrides, Settings};
use crate::migrate::{ItemReport, Plan, Progress, SourceDeletion, Summary};
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
    /// Copy every credential of some scopes from one backend to another, keeping their ids
    #[command(long_about = MIGRATE_ABOUT)]
    Migrate(MigrateArgs),
    /// Check a deployment end to end: configuration, backend, TLS, clock, Skyvern's side
    #[command(long_about = DOCTOR_ABOUT)]
    Doctor(DoctorArgs),
    /// Ask the credbridge serving on this machine for /healthz (or /readyz); exit 0 when it passes
    #[command(long_about = HEALTHCHECK_ABOUT)]
    Healthcheck(HealthcheckArgs),
}

const MIGRATE_ABOUT: &str = "\
Copy every credential of some scopes from the backend of one configuration file (--from) to \
the backend of another (--to), under the same ids, so Skyvern finds each one after the move.

Safe to interrupt and run again: an id the target already holds with the same document is \
skipped; one it holds with a different document is a conflict, reported and never \
overwritten. Each copy is read back from the target and compared before it counts. \
--delete-source deletes from the source only after a run with no failure and no conflict, \
and only the ids found identical in the target. No field of a credential is ever printed.

The memory backend cannot be either side: it lives inside one process. CREDBRIDGE_* \
variables apply to both files. Exit status: 0 when nothing failed and nothing conflicted.";

const DOCTOR_ABOUT: &str = "\
Check a deployment end to end, one line per check with what to do about a failure: the \
configuration loads; the backend is reachable and logged in, and a probe credential can be \
created, read and deleted (in the reserved scope credbridge-doctor); the login's remaining \
lifetime; the TLS certificate; the clock against AWS; and, with --skyvern-base-url, that \
Skyvern's base URL reaches this credbridge, that Skyvern's token works there, and whether \
Skyvern's private-host rule (ALLOWED_HOSTS) blocks the URL's host.

Exit status: 0 when no check failed (warnings and skipped checks pass), 1 otherwise.";

const HEALTHCHECK_ABOUT: &str = "\
GET /healthz (with --ready, /readyz) on the address credbridge listens on (the \
configuration's `listen`, over loopback when that is 0.0.0.0, over HTTPS when [tls] is on, \
accepting any certificate) and exit 0 when it answers 200 with status ok (ready), 1 \
otherwise. For container health checks and Kubernetes exec probes, in images without a \
shell or curl.";

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Configuration file of the backend to copy from
    #[arg(long, value_name = "PATH")]
    from: PathBuf,
    /// Configuration file of the backend to copy to
    #[arg(long, value_name = "PATH")]
    to: PathBuf,
    /// A scope to copy; repeat for several [default: the scopes of the --from
    /// configuration's tokens, that is, every scope that deployment serves]
    #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Read and compare only; write and delete nothing
    #[arg(long)]
    dry_run: bool,
    /// After a run with no failure and no conflict, delete from the source every id found
    /// identical in the target
    #[arg(long)]
    delete_source: bool,
    /// Ids copied at once
    #[arg(long, default_value_t = crate::migrate::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Print one line per id: scope, id, outcome
    #[arg(long, short)]
    verbose: bool,
    /// Print the summary (and, with --verbose, every id) as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The base URL Skyvern is configured with (CUSTOM_CREDENTIAL_API_BASE_URL)
    #[arg(long, value_name = "URL")]
    skyvern_base_url: Option<String>,
    /// A file holding the token Skyvern sends (CUSTOM_CREDENTIAL_API_TOKEN), or `-` for
    /// standard input [default: the configuration's plain `token`, when set]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// PEM CAs to trust for an https base URL, besides the public ones
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// Warn when the TLS certificate expires sooner than this
    #[arg(long, value_name = "DURATION", default_value = "14d", value_parser = humantime::parse_duration)]
    cert_warn_within: Duration,
    /// Warn when a static Vault token expires sooner than this
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    login_warn_within: Duration,
    /// The longest one request may take
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the checks as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// Ask /readyz instead: the backend answers too
    #[arg(long)]
    ready: bool,
    /// The URL to ask [default: /healthz, or /readyz, on the configured `listen` address]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The longest the answer may take
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).map_err(|error| error.to_string())
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
        Command::Migrate(args) => migrate(args),
        Command::Doctor(args) => doctor(cli.config, args),
        Command::Healthcheck(args) => healthcheck(cli.config, args),
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
        let info = app.backend().info();
        let kind = info.kind;
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
        let links = crate::config::service_links();
        if !links.is_empty() {
            tracing::info!(
                variables = %links.join(","),
                "ignoring Kubernetes service-link variables: they describe a Service, not credbridge's configuration"
            );
        }
        if !info.capabilities.persistent {
            tracing::warn!("the {kind} backend keeps credentials in this process only: they are lost on restart");
        }
        if let Some(token) = app.generated_token() {
            // Printed once, to the terminal, never through the log.
            eprintln!(
                "\nNo token is configured, so credbridge made one for this run (local use only):\n\n    {}\n\nSet CREDBRIDGE_TOKEN to choose your own.\n",
                token.expose()
            );
        }
        // Off the serving path: a backend may still be connecting (Vault logs in in the
        // background), so it gets a moment before it is called not ready.
        tokio::spawn(report_readiness(std::sync::Arc::clone(app.backend())));
        app.serve(listener, shutdown_signal())
            .await
            .map_err(|error| format!("server error: {error}"))?;
        tracing::info!("credbridge stopped");
        Ok(())
    })
}

/// Logs once whether the backend is ready, giving it a few seconds to get there.
async fn report_readiness(backend: std::sync::Arc<dyn credbridge_adapters::Backend>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match backend.check().await {
            Ok(()) => {
                tracing::info!("the backend is ready");
                return;
            }
            Err(error) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(%error, "the backend is not ready yet; /readyz answers 503 until it is");
                return;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

fn check_config(config: Option<PathBuf>) -> Result<(), String> {
    let settings =
        Settings::load(config.as_deref(), &Overrides::default()).map_err(|e| e.to_string())?;
    // Token files are read here too, so a missing one fails the check, not the start.
    Authenticator::from_settings(&settings).map_err(|e| e.to_string())?;
    let text = toml::to_string_pretty(&settings).map_err(|error| error.to_string())?;
    println!("{text}");
    let links = crate::config::service_links();
    if !links.is_empty() {
        eprintln!(
            "credbridge: ignored Kubernetes service-link variables: {}",
            links.join(", ")
        );
    }
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

/// A runtime for the commands that talk to backends.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

fn migrate(args: MigrateArgs) -> Result<(), String> {
    let load = |path: &PathBuf, flag: &str| {
        Settings::load(Some(path), &Overrides::default())
            .map_err(|error| format!("{flag}: {error}"))
    };
    let (from, to) = (load(&args.from, "--from")?, load(&args.to, "--to")?);
    let shared = crate::config::setting_variables();
    if !shared.is_empty() {
        eprintln!(
            "credbridge migrate: these variables apply to both --from and --to: {}",
            shared.join(", ")
        );
    }
    crate::migrate::check_sides(&from, &to).map_err(|error| error.to_string())?;
    let plan = Plan {
        scopes: Plan::scopes_for(&from, args.scopes).map_err(|error| error.to_string())?,
        dry_run: args.dry_run,
        delete_source: args.delete_source,
        concurrency: usize::from(args.concurrency),
    };
    let mut display = MigrateDisplay::new(args.verbose, args.json);
    let outcome = runtime()?.block_on(async {
        let (source, target) = crate::migrate::connect(&from, &to)
            .await
            .map_err(|error| error.to_string())?;
        let run = crate::migrate::run(source.as_ref(), target.as_ref(), &plan, &mut display);
        tokio::select! {
            summary = run => summary.map_err(|error| error.to_string()).map(Some),
            // Should the handler not install, the run simply goes on.
            Ok(()) = tokio::signal::ctrl_c() => Ok(None),
        }
    });
    display.bar.finish_and_clear();
    let Some(summary) = outcome? else {
        return Err(format!(
            "interrupted after {} of {} ids: run the same command again to resume (what was \
             copied is skipped)",
            display.done, display.total
        ));
    };
    if args.json {
        let mut json = serde_json::to_value(&summary).map_err(|error| error.to_string())?;
        if args.verbose {
            json["items"] = serde_json::Value::Array(display.items);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|error| error.to_string())?
        );
    } else {
        print!("{}", migrate_summary(&summary));
    }
    if summary.clean() {
        Ok(())
    } else {
        Err(format!(
            "conflicts {}, failures {}",
            summary.conflicts.len(),
            summary.failures.len()
        ))
    }
}

/// The progress bar (on a terminal only), `--verbose` lines, and what an interruption
/// reports.
struct MigrateDisplay {
    bar: ProgressBar,
    verbose: bool,
    json: bool,
    items: Vec<serde_json::Value>,
    total: usize,
    done: usize,
}

impl MigrateDisplay {
    fn new(verbose: bool, json: bool) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            verbose,
            json,
            items: Vec::new(),
            total: 0,
            done: 0,
        }
    }

    fn show(&mut self, report: &ItemReport) {
        self.bar.inc(1);
        if !self.verbose {
            return;
        }
        if self.json {
            self.items.push(serde_json::json!({
                "scope": report.scope,
                "id": report.id,
                "outcome": report.outcome.as_str(),
            }));
        } else {
            let line = format!(
                "{}\t{}\t{}",
                report.scope,
                report.id,
                report.outcome.as_str()
            );
            self.bar.suspend(|| println!("{line}"));
        }
    }
}

impl Progress for MigrateDisplay {
    fn started(&mut self, total: usize) {
        self.total = total;
        self.bar.set_length(total as u64);
        self.bar.set_message("copying");
    }

    fn item(&mut self, report: &ItemReport) {
        self.done += 1;
        self.show(report);
    }

    fn deleting(&mut self, total: usize) {
        self.bar.set_position(0);
        self.bar.set_length(total as u64);
        self.bar.set_message("deleting from the source");
    }

    fn deleted(&mut self, report: &ItemReport) {
        self.show(report);
    }
}

/// The human summary: totals, then every conflict and failure by id.
fn migrate_summary(summary: &Summary) -> String {
    let scopes: Vec<String> = summary.scopes.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "{}{} ids in scopes {}: ",
        if summary.dry_run { "dry run: " } else { "" },
        summary.listed,
        scopes.join(", ")
    );
    let copied = if summary.dry_run {
        format!("would copy {}", summary.would_copy)
    } else {
        format!("copied {}", summary.copied)
    };
    text.push_str(&format!(
        "{copied}, skipped {} (already identical), conflicts {}, failures {}",
        summary.skipped,
        summary.conflicts.len(),
        summary.failures.len()
    ));
    if summary.gone > 0 {
        text.push_str(&format!(
            ", {} gone from the source meanwhile",
            summary.gone
        ));
    }
    text.push('\n');
    for conflict in &summary.conflicts {
        text.push_str(&format!(
            "conflict {}/{}: the target holds a different document; left alone\n",
            conflict.scope, conflict.id
        ));
    }
    for failure in &summary.failures {
        match &failure.id {
            Some(id) => text.push_str(&format!(
                "failed {}/{id}: {}\n",
                failure.scope, failure.reason
            )),
            None => text.push_str(&format!("failed {}: {}\n", failure.scope, failure.reason)),
        }
    }
    if !summary.references.is_empty() {
        text.push_str(&format!(
            "{} credentials hold references, which credbridge resolves through its own backend \
             on every read: the entries must be readable by the target's credbridge and allowed \
             by its references.scopes\n",
            summary.references.len()
        ));
    }
    for credential in &summary.references {
        let fields: Vec<String> = credential
            .fields
            .iter()
            .map(|reference| {
                let kind = reference.backend.unwrap_or("not a valid reference");
                format!("`{}` ({kind})", reference.field)
            })
            .collect();
        text.push_str(&format!(
            "references {}/{}: {}\n",
            credential.scope,
            credential.id,
            fields.join(", ")
        ));
    }
    text.push_str(&match summary.source_deletion {
        SourceDeletion::NotRequested if summary.dry_run => "nothing was written\n".to_owned(),
        SourceDeletion::NotRequested => "the source is unchanged\n".to_owned(),
        SourceDeletion::Withheld if summary.dry_run => {
            "nothing was written or deleted (dry run)\n".to_owned()
        }
        SourceDeletion::Withheld => {
            "the source is unchanged: --delete-source waits for a run without conflicts or \
             failures\n"
                .to_owned()
        }
        SourceDeletion::Done => format!("{} deleted from the source\n", summary.deleted),
    });
    text
}

fn doctor(config: Option<PathBuf>, args: DoctorArgs) -> Result<(), String> {
    let token = match &args.token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    let options = crate::doctor::Options {
        skyvern_base_url: args.skyvern_base_url,
        token,
        ca_file: args.ca_file,
        cert_warn_within: args.cert_warn_within,
        login_warn_within: args.login_warn_within,
        timeout: args.timeout,
    };
    let report = runtime()?.block_on(crate::doctor::diagnose(config.as_deref(), &options));
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.passed() {
        Ok(())
    } else {
        Err("doctor: a check failed".to_owned())
    }
}

/// A token from a file, or from standard input for `-`; surrounding whitespace ignored.
fn read_token(path: &PathBuf) -> Result<SecretText, String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|error| format!("--token-file {}: {error}", path.display()))?;
    let token = SecretText::new(text.trim());
    if token.is_empty() {
        return Err(format!("--token-file {}: no token in it", path.display()));
    }
    Ok(token)
}

fn healthcheck(config: Option<PathBuf>, args: HealthcheckArgs) -> Result<(), String> {
    use crate::healthcheck::Probe;
    let probe = if args.ready {
        Probe::Ready
    } else {
        Probe::Live
    };
    let url = match args.url {
        Some(url) => url,
        None => {
            let settings = Settings::load(config.as_deref(), &Overrides::default())
                .map_err(|error| error.to_string())?;
            crate::healthcheck::url_for(&settings, probe)
        }
    };
    runtime()?.block_on(crate::healthcheck::check(&url, probe, args.timeout))
}
