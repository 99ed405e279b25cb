//! The order the checks run in, and what each needs from the ones before it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use credbridge_adapters::SecretText;

use super::report::{Check, Report};
use super::skyvern::Target;
use super::{backend, clock, skyvern, tls};
use crate::app::{require_token, StartupError};
use crate::auth::Authenticator;
use crate::config::{Overrides, Settings, DEFAULT_CONFIG_FILE};

/// The probe credential goes to the reserved scope `credbridge-doctor`, id
/// `doctor_probe_…`.
pub const PROBE_TOOL: &str = "doctor";

/// What to check beyond the configuration itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// The base URL Skyvern is configured with (`CUSTOM_CREDENTIAL_API_BASE_URL`).
    pub skyvern_base_url: Option<String>,
    /// The token Skyvern sends; without it, the configuration's plain `token` is tried.
    pub token: Option<SecretText>,
    /// CAs to trust for an https base URL, besides the public ones.
    pub ca_file: Option<PathBuf>,
    /// Warn when the TLS certificate expires sooner than this.
    pub cert_warn_within: Duration,
    /// Warn when a static Vault token expires sooner than this.
    pub login_warn_within: Duration,
    /// The longest any one request may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            skyvern_base_url: None,
            token: None,
            ca_file: None,
            cert_warn_within: Duration::from_secs(14 * 86_400),
            login_warn_within: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Runs every check against the configuration `file` names (or the default one), as `serve`
/// would load it.
pub async fn diagnose(file: Option<&Path>, options: &Options) -> Report {
    let mut report = Report::default();
    let settings = match load(file) {
        Ok((settings, check)) => {
            report.push(check);
            settings
        }
        Err(check) => {
            report.push(check);
            for name in ["backend", "probe", "login", "tls", "clock"] {
                report.push(Check::skip(name, "the configuration does not load"));
            }
            return report;
        }
    };

    let connected = backend::connect(&settings, options.timeout).await;
    report.push(connected.check);
    // A backend that answers, even wrongly, is probed: which step fails says more than the
    // readiness check alone (a token that may read but not create, say).
    match &connected.backend {
        Some(backend) if !connected.unreachable => {
            report.push(backend::probe(backend.as_ref(), &settings, options.timeout).await);
        }
        Some(_) => report.push(Check::skip("probe", "the backend is unreachable")),
        None => report.push(Check::skip("probe", "no connection to the backend")),
    }
    match &connected.backend {
        Some(backend) if !connected.unreachable => report.push(backend::login(
            backend.as_ref(),
            &settings,
            options.login_warn_within,
        )),
        Some(_) => report.push(Check::skip("login", "the backend is unreachable")),
        None => report.push(Check::skip("login", "no connection to the backend")),
    }
    report.push(tls::check(&settings, options.cert_warn_within));
    report.push(clock::check(&settings, options.timeout).await);

    match &options.skyvern_base_url {
        Some(base_url) => {
            let target = Target {
                base_url,
                token: options.token.as_ref().or(settings.token.as_ref()),
                ca_file: options.ca_file.as_deref(),
                timeout: options.timeout,
            };
            for check in skyvern::checks(&target, &settings).await {
                report.push(check);
            }
        }
        None => report.push(Check::skip(
            "skyvern-url",
            "give --skyvern-base-url (Skyvern's CUSTOM_CREDENTIAL_API_BASE_URL) to check \
             Skyvern's side",
        )),
    }
    report
}

/// Loads the configuration and its token files as `serve` does.
fn load(file: Option<&Path>) -> Result<(Settings, Check), Check> {
    const NAME: &str = "config";
    let source = match file {
        Some(path) => path.display().to_string(),
        None if Path::new(DEFAULT_CONFIG_FILE).is_file() => DEFAULT_CONFIG_FILE.to_owned(),
        None => "the built-in defaults and the environment".to_owned(),
    };
    let fix = "correct the configuration (`credbridge check-config` prints it)";
    let settings = Settings::load(file, &Overrides::default())
        .map_err(|error| Check::fail(NAME, format!("{source}: {error}"), fix))?;
    let tokens = Authenticator::from_settings(&settings)
        .map_err(|error| Check::fail(NAME, format!("{source}: {error}"), fix))?;
    if let Err(StartupError::NoToken(kind)) = require_token(settings.backend.info(), &tokens) {
        return Err(Check::fail(
            NAME,
            format!(
                "{source}: no token is configured, and `serve` refuses to run the {kind} backend \
                 without one"
            ),
            "set CREDBRIDGE_TOKEN, `token`, or [[auth.tokens]]",
        ));
    }
    let scopes: Vec<String> = settings
        .token_scopes()
        .iter()
        .map(ToString::to_string)
        .collect();
    let scopes = if scopes.is_empty() {
        "a token generated at start-up".to_owned()
    } else {
        format!("scopes {}", scopes.join(", "))
    };
    let check = Check::ok(
        NAME,
        format!(
            "loaded {source}: {} backend, {scopes}",
            settings.backend.kind()
        ),
    );
    Ok((settings, check))
}
