//! Settings: every key credbridge reads, its default, and where it comes from.
//!
//! Sources, later ones winning: built-in defaults → a TOML file (`--config PATH`, else
//! `CREDBRIDGE_CONFIG`, else `config/credbridge.toml` when it exists) → `CREDBRIDGE_*`
//! environment variables, `__` separating levels (`CREDBRIDGE_BACKEND__KIND=vault`) →
//! command-line flags. Everything is checked before anything is served; every error names
//! its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use credbridge_adapters::{BackendConfig, Scope, SecretText};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The file read when neither `--config` nor `CREDBRIDGE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "config/credbridge.toml";
/// Prefix of the environment variables read as configuration.
pub const ENV_PREFIX: &str = "CREDBRIDGE_";
/// Shorter tokens are refused: a bearer token is the only thing guarding the credentials.
pub const MIN_TOKEN_LEN: usize = 16;
/// Bounds of `http.max_header_bytes`: room for a bearer token and the usual headers, and
/// below hyper's own read buffer limit, beyond which the setting would have no effect.
const MAX_HEADER_BYTES: std::ops::RangeInclusive<usize> = 1024..=256 * 1024;
/// Strings whose SHA-256 shows up in examples and tutorials: a `sha256` entry equal to the
/// hash of one of them names a token anyone can guess.
const GUESSABLE_TOKENS: &[&str] = &[
    "",
    "test",
    "token",
    "secret",
    "password",
    "changeme",
    "change-me",
    "admin",
    "example",
    "default",
    "credbridge",
    "skyvern",
    "123456",
    "12345678",
    "letmein",
    "dev",
];

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Path the credential routes hang off; Skyvern's base URL ends with it.
    pub base_path: String,
    /// Shorthand for one token in the `default` scope (`CREDBRIDGE_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretText>,
    pub auth: AuthSettings,
    pub http: HttpSettings,
    pub tls: TlsSettings,
    pub rate_limit: RateLimitSettings,
    pub audit: AuditSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub backend: BackendConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: "/api/v1/credentials".to_owned(),
            token: None,
            auth: AuthSettings::default(),
            http: HttpSettings::default(),
            tls: TlsSettings::default(),
            rate_limit: RateLimitSettings::default(),
            audit: AuditSettings::default(),
            metrics: MetricsSettings::default(),
            log: LogSettings::default(),
            backend: BackendConfig::default(),
        }
    }
}

/// `[auth]`: who may call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Accepted bearer tokens; several may share a scope, which is how tokens rotate.
    pub tokens: Vec<TokenSettings>,
    /// How often token files are checked for changes (they are also re-read on SIGHUP).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            reload_interval: Duration::from_secs(10),
        }
    }
}

/// One `[[auth.tokens]]` entry: exactly one of `token`, `sha256`, `file`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretText>,
    /// The token's SHA-256 as 64 hex digits (`credbridge hash-token`), so the file holds
    /// nothing usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The scope the token sees; credentials of other scopes are invisible to it.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// When the token stops being accepted, as RFC 3339 (`2027-01-31T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

fn default_scope() -> String {
    Scope::DEFAULT.to_owned()
}

/// `[http]`: limits on each request and each connection, and who the client is.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Time allowed for a whole request, backend calls included; then 503. Below
    /// Skyvern's own 10 s connection-test timeout, so Skyvern sees our answer.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time a client has to send a request's head (request line and headers): from the
    /// moment its connection opens (after the TLS handshake), or from the first byte of a
    /// later request on a kept-alive connection. Then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (or take to read
    /// its response) before it is closed. Idle connections are also the first closed when
    /// `max_connections` is reached.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections open at once, TLS handshakes included. Further connections wait in the
    /// kernel's listen backlog until one closes.
    pub max_connections: usize,
    /// Largest request head (request line and headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Reverse proxies, as addresses or CIDR ranges, whose `client_address_header` is
    /// believed. Empty: the client is the TCP peer.
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies name the client in.
    pub client_address_header: ClientAddressHeader,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(8),
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(75),
            max_connections: 4096,
            max_header_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            client_address_header: ClientAddressHeader::XForwardedFor,
        }
    }
}

/// Where a trusted proxy writes the address of the client it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// `[tls]`: HTTPS. Off unless `cert_file` and `key_file` are set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle: when set, clients must present a certificate it signed (mTLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for changes, so a renewed certificate is served
    /// without a restart.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Time a client has to finish its TLS handshake; then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            reload_interval: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// `[rate_limit]`: request budgets, as a rate per second and a burst.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per second each token may make, on average.
    pub per_token_per_second: u32,
    /// Requests a token may make at once before the rate applies.
    pub per_token_burst: u32,
    /// Requests without a valid token allowed per client address, per minute.
    pub auth_failures_per_minute: u32,
    /// Failed requests an address may make at once; past them it gets 429 until the
    /// budget refills, whatever token it presents.
    pub auth_failures_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_token_per_second: 500,
            per_token_burst: 1000,
            auth_failures_per_minute: 30,
            auth_failures_burst: 10,
        }
    }
}

/// `[audit]`: one JSON line per credential operation, separate from the diagnostic log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// `"off"`, `"stdout"`, `"stderr"`, or a file path to append to.
    pub output: String,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            output: "off".to_owned(),
        }
    }
}

/// `[metrics]`: Prometheus metrics at `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <this token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretText>,
}

/// `[log]`: the diagnostic log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `credbridge=debug,tower_http=info`); `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("config file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A backend's own check; its message already names the `backend.*` key.
    #[error("{0}")]
    Backend(String),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Command-line values that override every other source.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
}

impl Settings {
    /// Loads and checks the configuration from every source.
    ///
    /// `file` is the explicit `--config`/`CREDBRIDGE_CONFIG` path, which must exist;
    /// without it, [`DEFAULT_CONFIG_FILE`] is read when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) if !path.is_file() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        figment = figment.merge(environment());
        // The token is taken verbatim: figment would read `CREDBRIDGE_TOKEN=0123` as a number.
        if let Ok(token) = std::env::var(format!("{ENV_PREFIX}TOKEN")) {
            figment = figment.merge(Serialized::default("token", token));
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(format) = overrides.log_format {
            figment = figment.merge(Serialized::default("log.format", format));
        }
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot. Token entries are checked one by one where they are
    /// read ([`crate::auth::Authenticator::load`]), so a reload can apply the valid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_base_path(&self.base_path)?;
        self.backend
            .validate()
            .map_err(|error| ConfigError::Backend(format!("backend: {error}")))?;
        self.validate_http()?;
        if self.auth.reload_interval.is_zero() {
            return Err(ConfigError::invalid(
                "auth.reload_interval",
                "must be above 0",
            ));
        }
        self.validate_tls()?;
        let limits = &self.rate_limit;
        for (key, value) in [
            (
                "rate_limit.per_token_per_second",
                limits.per_token_per_second,
            ),
            ("rate_limit.per_token_burst", limits.per_token_burst),
            (
                "rate_limit.auth_failures_per_minute",
                limits.auth_failures_per_minute,
            ),
            ("rate_limit.auth_failures_burst", limits.auth_failures_burst),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key,
                    "must be above 0 (set rate_limit.enabled = false to turn limits off)",
                ));
            }
        }
        if self.audit.output.trim().is_empty() {
            return Err(ConfigError::invalid(
                "audit.output",
                "must be \"off\", \"stdout\", \"stderr\" or a file path",
            ));
        }
        if let Some(token) = &self.metrics.token {
            validate_token_text("metrics.token", token)?;
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        for (key, value) in [
            ("http.request_timeout", http.request_timeout),
            ("http.header_read_timeout", http.header_read_timeout),
            ("http.idle_timeout", http.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be above 0"));
            }
        }
        if http.max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                "http.max_body_bytes",
                "must be above 0",
            ));
        }
        if http.max_connections == 0 {
            return Err(ConfigError::invalid(
                "http.max_connections",
                "must be at least 1",
            ));
        }
        if !MAX_HEADER_BYTES.contains(&http.max_header_bytes) {
            return Err(ConfigError::invalid(
                "http.max_header_bytes",
                format!(
                    "must be between {} and {}",
                    MAX_HEADER_BYTES.start(),
                    MAX_HEADER_BYTES.end()
                ),
            ));
        }
        trusted_proxies(http)?;
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "tls.key_file",
                    "is required with tls.cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "tls.cert_file",
                    "is required with tls.key_file",
                ))
            }
            _ => {}
        }
        if tls.client_ca_file.is_some() && !tls.enabled() {
            return Err(ConfigError::invalid(
                "tls.client_ca_file",
                "needs tls.cert_file and tls.key_file",
            ));
        }
        for (key, value) in [
            ("tls.reload_interval", tls.reload_interval),
            ("tls.handshake_timeout", tls.handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be above 0"));
            }
        }
        Ok(())
    }
}

/// `CREDBRIDGE_*` variables; `CREDBRIDGE_CONFIG` names the file, `CREDBRIDGE_TOKEN` is read
/// verbatim, and `CREDBRIDGE_TEST_*` belongs to the test suite.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .split("__")
        .ignore(&["config", "token"])
        .filter(|key| !key.as_str().starts_with("test_"))
}

fn validate_base_path(path: &str) -> Result<(), ConfigError> {
    let valid = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..].split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        });
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "base_path",
            "must look like /api/v1/credentials: a leading '/', no trailing '/', \
             segments of letters, digits, '-', '_', '.', '~'",
        ))
    }
}

/// `http.trusted_proxies` as networks; a bare address is a network of one.
pub fn trusted_proxies(http: &HttpSettings) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    http.trusted_proxies
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let text = text.trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    ConfigError::invalid(
                        format!("http.trusted_proxies[{index}]"),
                        "must be an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8",
                    )
                })
        })
        .collect()
}

/// Checks the text of a token: long enough to be unguessable, and plain.
pub fn validate_token_text(key: &str, token: &SecretText) -> Result<(), ConfigError> {
    let text = token.expose();
    if text.chars().count() < MIN_TOKEN_LEN {
        return Err(ConfigError::invalid(
            key,
            format!("a token must be at least {MIN_TOKEN_LEN} characters long"),
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::invalid(
            key,
            "a token may contain only printable ASCII without spaces",
        ));
    }
    Ok(())
}

impl TokenSettings {
    /// Checks the entry without reading its file.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let given = [
            self.token.is_some(),
            self.sha256.is_some(),
            self.file.is_some(),
        ];
        if given.iter().filter(|set| **set).count() != 1 {
            return Err(ConfigError::invalid(
                key,
                "set exactly one of `token`, `sha256` or `file`",
            ));
        }
        if let Some(token) = &self.token {
            validate_token_text(&format!("{key}.token"), token)?;
        }
        if let Some(digest) = &self.sha256 {
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    format!("{key}.sha256"),
                    "must be 64 hex digits, as printed by `credbridge hash-token`",
                ));
            }
            let digest = digest.to_ascii_lowercase();
            if GUESSABLE_TOKENS
                .iter()
                .any(|guessable| crate::auth::token_sha256_hex(guessable) == digest)
            {
                return Err(ConfigError::invalid(
                    format!("{key}.sha256"),
                    "is the hash of a well-known example string, which anyone can guess: \
                     hash a long random token instead, with `credbridge hash-token`",
                ));
            }
        }
        Scope::parse(&self.scope)
            .map_err(|error| ConfigError::invalid(format!("{key}.scope"), error.to_string()))?;
        self.expiry(key)?;
        Ok(())
    }

    /// The parsed `expires_at`, if any.
    pub fn expiry(&self, key: &str) -> Result<Option<std::time::SystemTime>, ConfigError> {
        self.expires_at
            .as_deref()
            .map(|text| {
                humantime::parse_rfc3339_weak(text).map_err(|_| {
                    ConfigError::invalid(
                        format!("{key}.expires_at"),
                        "must be an RFC 3339 time such as 2027-01-31T00:00:00Z",
                    )
                })
            })
            .transpose()
    }

    /// Reads the token of a `file` entry, checked like a token given in place.
    pub fn read_file(&self, key: &str) -> Result<Option<SecretText>, ConfigError> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::invalid(
                format!("{key}.file"),
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
        let token = SecretText::new(text.trim());
        validate_token_text(&format!("{key}.file"), &token)?;
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_toml(toml: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(Box::new)?;
        settings.validate()?;
        // Token entries are checked where they are read.
        crate::auth::Authenticator::from_settings(&settings)?;
        Ok(settings)
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_memory() {
        let settings = with_toml("").unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.base_path, "/api/v1/credentials");
        assert_eq!(settings.backend.kind(), "memory");
    }

    #[test]
    fn the_shipped_config_file_is_valid() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE),
        )
        .unwrap();
        assert_eq!(with_toml(&text).unwrap(), Settings::default());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let error = with_toml("[http]\nmax_body = 10").unwrap_err().to_string();
        assert!(error.contains("max_body"), "{error}");
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let error = with_toml("[http]\nmax_body_bytes = \"big\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("http.max_body_bytes"), "{error}");
    }

    #[test]
    fn unknown_backend_kind_is_refused() {
        let error = with_toml("[backend]\nkind = \"floppy\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("floppy") && error.contains("backend"),
            "{error}"
        );
    }

    #[test]
    fn a_token_entry_needs_exactly_one_source() {
        let error = with_toml("[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nsha256 = \"\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "auth.tokens[0]: set exactly one of `token`, `sha256` or `file`"
        );
    }

    #[test]
    fn short_tokens_bad_hashes_and_bad_scopes_name_their_key() {
        let cases = [
            ("[[auth.tokens]]\ntoken = \"short\"", "auth.tokens[0].token"),
            ("[[auth.tokens]]\nsha256 = \"abc\"", "auth.tokens[0].sha256"),
            (
                "[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nscope = \"a/b\"",
                "auth.tokens[0].scope",
            ),
            ("base_path = \"/api/\"", "base_path"),
            ("[http]\nrequest_timeout = \"0s\"", "http.request_timeout"),
            (
                "[http]\nheader_read_timeout = \"0s\"",
                "http.header_read_timeout",
            ),
            ("[http]\nidle_timeout = \"0s\"", "http.idle_timeout"),
            ("[http]\nmax_connections = 0", "http.max_connections"),
            ("[http]\nmax_header_bytes = 100", "http.max_header_bytes"),
            (
                "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.internal\"]",
                "http.trusted_proxies[1]",
            ),
            ("[tls]\nhandshake_timeout = \"0s\"", "tls.handshake_timeout"),
            (
                "[backend]\nkind = \"memory\"\nmax_credentials = 0",
                "backend: backend.max_credentials",
            ),
        ];
        for (toml, key) in cases {
            let error = with_toml(toml).unwrap_err().to_string();
            assert!(error.starts_with(key), "{toml}: {error}");
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_and_the_header_is_named() {
        let settings = with_toml(
            "[http]\ntrusted_proxies = [\"10.0.0.7\", \"172.16.0.0/12\", \"fd00::/8\"]\n\
             client_address_header = \"forwarded\"",
        )
        .unwrap();
        assert_eq!(trusted_proxies(&settings.http).unwrap().len(), 3);
        assert_eq!(
            settings.http.client_address_header,
            ClientAddressHeader::Forwarded
        );
        let error = with_toml("[http]\nclient_address_header = \"x-real-ip\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("client_address_header"), "{error}");
    }

    #[test]
    fn a_numeric_token_is_refused_without_echoing_it() {
        let error = with_toml("token = 12345678901234567")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("12345678901234567"), "{error}");
        assert!(error.contains("token"), "{error}");
    }

    #[test]
    fn debug_and_serialized_settings_redact_tokens() {
        let settings =
            with_toml("token = \"plain-token-0123456789\"\n[[auth.tokens]]\ntoken = \"another-token-0123456789\"")
                .unwrap();
        let printed = format!("{settings:?}{}", toml::to_string(&settings).unwrap());
        assert!(!printed.contains("plain-token"), "{printed}");
        assert!(!printed.contains("another-token"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
