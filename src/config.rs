//! Settings: every key credbridge reads, its default, and where it comes from.
//!
//! Sources, later ones winning: built-in defaults → a TOML file (`--config PATH`, else
//! `CREDBRIDGE_CONFIG`, else `config/credbridge.toml` when it exists) → `CREDBRIDGE_*`
//! environment variables, `__` separating levels (`CREDBRIDGE_BACKEND__KIND=vault`) →
//! command-line flags. Everything is checked before anything is served; every error names
//! its key, or the variable. Kubernetes' service-link variables are the platform's, not
//! configuration, and are ignored ([`service_links`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use credbridge_adapters::vault::VaultAuth;
use credbridge_adapters::{BackendConfig, CredentialId, Key, Scope, SecretText};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The file read when neither `--config` nor `CREDBRIDGE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "config/credbridge.toml";
/// Prefix of the environment variables read as configuration.
pub const ENV_PREFIX: &str = "CREDBRIDGE_";
/// Shorter tokens are refused: a bearer token is the only thing guarding the credentials.
pub const MIN_TOKEN_LEN: usize = 16;
/// Scopes beginning with this belong to credbridge's own tools (`doctor`'s probe,
/// `migrate`'s check that two stores differ): no token may be given one, so what the tools
/// write there is never a client's credential.
pub const RESERVED_SCOPE_PREFIX: &str = "credbridge-";

/// A fresh key for a tool's own document: scope `credbridge-{tool}`, id
/// `{tool}_{what}_` and 32 random hex digits.
pub fn reserved_key(tool: &str, what: &str) -> Key {
    let random = CredentialId::generate();
    let hex = random.as_str().trim_start_matches("cred_");
    // Both names are made of constants in the one alphabet names share, within bounds; a
    // unit test holds every caller's constants to that.
    #[allow(clippy::expect_used)]
    let key = Key::new(
        Scope::parse(&format!("{RESERVED_SCOPE_PREFIX}{tool}")).expect("a valid reserved scope"),
        CredentialId::parse(&format!("{tool}_{what}_{hex}")).expect("a valid reserved id"),
    );
    key
}

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
    pub references: ReferenceSettings,
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
            references: ReferenceSettings::default(),
        }
    }
}

/// `[auth]`: who may call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Accepted bearer tokens; several may share a scope, which is how tokens rotate.
    pub tokens: Vec<TokenEntry>,
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

/// One `[[auth.tokens]]` entry, parsed as the configuration is read.
///
/// An entry that does not parse is kept, as its problem, rather than failing the whole
/// configuration: entries stand alone, so a reload applies the valid ones and leaves out
/// only the others ([`crate::auth::Authenticator::load`] names each one left out).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(from = "TokenFields", into = "TokenFields")]
pub struct TokenEntry {
    /// As written: printed back as it was, and its file watched even while the entry is
    /// refused, so that fixing the file applies it.
    written: TokenFields,
    parsed: Result<TokenSettings, TokenProblem>,
}

/// A token entry that parsed: where the token comes from, what it sees, until when.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSettings {
    pub source: TokenSource,
    /// Never one of the [`RESERVED_SCOPE_PREFIX`] scopes.
    pub scope: Scope,
    pub expires_at: Option<humantime::Timestamp>,
}

/// Where an entry's token comes from: exactly one of `token`, `sha256`, `file`.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// The token itself, long enough and plain ([`check_token_text`]).
    Token(SecretText),
    /// Its SHA-256, not that of a guessable string.
    Sha256(TokenDigest),
    /// A file holding it, read (and its token checked) where the tokens are loaded.
    File(PathBuf),
}

/// Why a token entry was refused: the field at fault (none when the entry as a whole is),
/// and the problem. Never holds a token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenProblem {
    field: Option<&'static str>,
    message: String,
}

impl TokenProblem {
    /// The error, naming the field below `key`, the entry's own key (`auth.tokens[2]`).
    pub fn at(&self, key: &str) -> ConfigError {
        match self.field {
            Some(field) => ConfigError::invalid(format!("{key}.{field}"), &self.message),
            None => ConfigError::invalid(key, &self.message),
        }
    }
}

/// The keys of a `[[auth.tokens]]` entry, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TokenFields {
    /// The token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<SecretText>,
    /// The token's SHA-256 as 64 hex digits (`credbridge hash-token`), so the file holds
    /// nothing usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    /// The scope the token sees; credentials of other scopes are invisible to it.
    #[serde(default = "default_scope")]
    scope: String,
    /// When the token stops being accepted, as RFC 3339 (`2027-01-31T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

fn default_scope() -> String {
    Scope::DEFAULT.to_owned()
}

impl From<TokenFields> for TokenEntry {
    fn from(written: TokenFields) -> Self {
        let parsed = TokenSettings::parse(&written);
        Self { written, parsed }
    }
}

impl From<TokenEntry> for TokenFields {
    fn from(entry: TokenEntry) -> Self {
        entry.written
    }
}

impl TokenEntry {
    /// The entry, or why it was refused.
    pub fn settings(&self) -> Result<&TokenSettings, &TokenProblem> {
        self.parsed.as_ref()
    }

    /// The token file the entry names, whether or not the entry parsed.
    pub fn file(&self) -> Option<&Path> {
        self.written.file.as_deref()
    }

    /// The scope the entry names, when it is a scope at all: an entry refused for another
    /// reason (or for naming a reserved scope) still names the scope, for the tools that
    /// work on a configuration's scopes (`migrate` refuses a reserved one by name).
    pub fn scope(&self) -> Option<Scope> {
        match &self.parsed {
            Ok(settings) => Some(settings.scope.clone()),
            Err(_) => Scope::parse(&self.written.scope).ok(),
        }
    }
}

impl TokenSettings {
    /// Parses an entry as written, checking its fields in the order they are documented.
    fn parse(fields: &TokenFields) -> Result<Self, TokenProblem> {
        let problem = |field, message: String| TokenProblem { field, message };
        let source = match (&fields.token, &fields.sha256, &fields.file) {
            (Some(token), None, None) => {
                check_token_text(token).map_err(|message| problem(Some("token"), message))?;
                TokenSource::Token(token.clone())
            }
            (None, Some(hex), None) => TokenSource::Sha256(
                TokenDigest::parse_configured(hex)
                    .map_err(|message| problem(Some("sha256"), message.to_owned()))?,
            ),
            (None, None, Some(path)) => TokenSource::File(path.clone()),
            _ => {
                return Err(problem(
                    None,
                    "set exactly one of `token`, `sha256` or `file`".to_owned(),
                ))
            }
        };
        let scope = Scope::parse(&fields.scope)
            .map_err(|error| problem(Some("scope"), error.to_string()))?;
        if scope.as_str().starts_with(RESERVED_SCOPE_PREFIX) {
            return Err(problem(
                Some("scope"),
                format!(
                    "scopes beginning with `{RESERVED_SCOPE_PREFIX}` are reserved for \
                     credbridge's own tools"
                ),
            ));
        }
        let expires_at = fields
            .expires_at
            .as_deref()
            .map(|text| {
                text.parse::<humantime::Timestamp>().map_err(|_| {
                    problem(
                        Some("expires_at"),
                        "must be an RFC 3339 time such as 2027-01-31T00:00:00Z".to_owned(),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            source,
            scope,
            expires_at,
        })
    }
}

/// A token's SHA-256: how every token is kept, whatever form the configuration gave it in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A `sha256` setting: 64 hex digits, in either case, and not the hash of a string
    /// anyone would guess.
    fn parse_configured(hex: &str) -> Result<Self, &'static str> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex, &mut digest)
            .map_err(|_| "must be 64 hex digits, as printed by `credbridge hash-token`")?;
        let digest = Self(digest);
        if GUESSABLE_TOKENS
            .iter()
            .any(|guessable| Self::of(guessable) == digest)
        {
            return Err(
                "is the hash of a well-known example string, which anyone can guess: \
                 hash a long random token instead, with `credbridge hash-token`",
            );
        }
        Ok(digest)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// 64 lowercase hex digits, as `sha256 = "..."` takes them.
impl std::fmt::Display for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenDigest({self})")
    }
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
    /// kernel's listen backlog until one closes; while one waits, idle connections and ones
    /// still sending their request head (or TLS handshake) are closed to make room.
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
    /// Failed authentications an address may make at once; past them its requests without
    /// a valid token get 429 instead of 401 until the budget refills. A valid token is
    /// checked first and is never refused for the address's failures.
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
    pub output: AuditOutput,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            output: AuditOutput::Off,
        }
    }
}

/// Where audit lines go, written as one string: `off`, `stdout`, `stderr`, or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutput {
    Off,
    Stdout,
    Stderr,
    /// Appended to, created if absent.
    File(PathBuf),
}

impl AuditOutput {
    fn parse(text: &str) -> Result<Self, &'static str> {
        Ok(match text {
            "off" => Self::Off,
            "stdout" => Self::Stdout,
            "stderr" => Self::Stderr,
            blank if blank.trim().is_empty() => {
                return Err(r#"must be "off", "stdout", "stderr" or a file path"#)
            }
            path => Self::File(PathBuf::from(path)),
        })
    }
}

impl<'de> Deserialize<'de> for AuditOutput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for AuditOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Off => serializer.serialize_str("off"),
            Self::Stdout => serializer.serialize_str("stdout"),
            Self::Stderr => serializer.serialize_str("stderr"),
            Self::File(path) => path.serialize(serializer),
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
    /// A `tracing` filter (`info`, `credbridge=debug,hyper=info`); `RUST_LOG` wins.
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

/// `[references]`: which existing vault entries credential fields may reference, per scope.
/// Off unless configured: a scope without an entry here may use no reference at all.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceSettings {
    /// `[references.scopes.<scope>]`, one table per scope.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scopes: BTreeMap<String, ScopeReferences>,
}

/// `[references.scopes.<scope>]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeReferences {
    /// Patterns of the entries this scope's credentials may reference: a Vault path with
    /// its mount (`secret/apps/team-a/*`), an AWS secret name (`apps/team-a/*`) or ARN; a
    /// trailing `*` matches any rest, `/` included.
    pub allow: Vec<String>,
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
    #[error(
        "environment variable {variable} is not a credbridge setting (expected one of {expected} \
         at that level): correct its name or unset it"
    )]
    UnknownVariable { variable: String, expected: String },
    #[error("config file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A backend's own check; its message names the `backend.*` key (or the variable,
    /// such as `VAULT_TOKEN`) first.
    #[error("{0}")]
    Backend(credbridge_adapters::Error),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Names the variable at fault when an environment variable is not a setting; other errors
/// keep figment's own message, which names the key and the file. An unknown key is named
/// in full even inside a tagged enum, where figment's own path stops ([`unknown_key_below`]).
fn load_error(figment: &Figment, mut error: figment::Error) -> ConfigError {
    if let figment::error::Kind::UnknownField(field, expected) = &error.kind {
        if let Some((path, metadata)) = unknown_key_below(figment, &error.path, field, expected) {
            error.path = path;
            error.metadata = Some(metadata);
        }
    }
    name_vault_method(figment, &mut error);
    if let (figment::error::Kind::UnknownField(_, expected), Some(metadata)) =
        (&error.kind, &error.metadata)
    {
        if metadata.name == ENV_SOURCE {
            let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
            let profile = error.profile.clone().unwrap_or_default();
            return ConfigError::UnknownVariable {
                variable: metadata.interpolate(&profile, &path),
                expected: expected
                    .iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
        }
    }
    ConfigError::Load(Box::new(error))
}

/// Names a missing or unknown Vault login method as the key it is, `backend.auth.method`
/// (`CREDBRIDGE_BACKEND__AUTH__METHOD` when `backend.auth` came from the environment), with
/// the methods there are. serde reports both at the `backend` table: the method tags an
/// enum inside the `backend` enum, where figment's own path stops.
fn name_vault_method(figment: &Figment, error: &mut figment::Error) {
    use figment::error::Kind;
    let tag = VaultAuth::TAG;
    let methods = VaultAuth::METHODS
        .map(|method| format!("`{method}`"))
        .join(", ");
    let message = match &error.kind {
        Kind::MissingField(field) if field == tag => {
            format!("missing field `{tag}` (one of {methods})")
        }
        Kind::UnknownVariant(found, expected) if *expected == VaultAuth::METHODS => {
            format!("unknown {tag} `{found}` (expected one of {methods})")
        }
        _ => return,
    };
    let mut path = error.path.clone();
    path.push("auth".to_owned());
    let Ok(auth) = figment.find_value(&path.join(".")) else {
        return;
    };
    let Some(table) = auth.as_dict() else {
        return;
    };
    // The source of the method when it is set (an unknown one), else of its table.
    let set_by = table.get(tag).unwrap_or(&auth);
    let Some(metadata) = figment.get_metadata(set_by.tag()) else {
        return;
    };
    path.push(tag.to_owned());
    error.path = path;
    error.metadata = Some(metadata.clone());
    error.kind = Kind::Message(message);
}

/// The full path of an unknown key that figment reports by an ancestor's path, and the
/// source that set it; `None` when figment's path already ends with the key.
///
/// serde reads a tagged enum (`backend` on `kind`, `backend.auth` on `method`) from a
/// buffered copy that figment cannot follow, so an unknown key anywhere inside one is
/// reported at the enum's own path (`CREDBRIDGE_BACKEND` for `CREDBRIDGE_BACKEND__ADRESS`)
/// and with the source of the enum's table, which need not be the key's. So the key is
/// looked for below that path. Where it occurs at several levels, the level holding most of
/// the names expected beside it is taken, then the deepest: a table reached through a name
/// the level expects is a known setting's own. A key set in the environment is named by a
/// variable actually set, so a key holding a table is followed down to one of its values.
fn unknown_key_below(
    figment: &Figment,
    path: &[String],
    field: &str,
    expected: &[&str],
) -> Option<(Vec<String>, figment::Metadata)> {
    let root = figment.find_value("").ok()?;
    let mut reported = &root;
    for key in path {
        reported = reported.as_dict()?.get(key)?;
    }
    let reported = reported.as_dict()?;
    if path.last().is_some_and(|last| last == field) && !reported.contains_key(field) {
        return None;
    }
    // Each table holding the key: its path below `reported`, the value, and how many of
    // the table's names the failing level expects.
    let mut found: Vec<(Vec<String>, &figment::value::Value, usize)> = Vec::new();
    let mut tables: Vec<(Vec<String>, &figment::value::Dict)> = vec![(Vec::new(), reported)];
    while let Some((below, table)) = tables.pop() {
        if let Some(value) = table.get(field) {
            let known = table
                .keys()
                .filter(|key| expected.contains(&key.as_str()))
                .count();
            found.push((below.clone(), value, known));
        }
        for (key, value) in table {
            if let Some(inner) = value.as_dict() {
                let mut deeper = below.clone();
                deeper.push(key.clone());
                tables.push((deeper, inner));
            }
        }
    }
    let (below, mut value, _) = found
        .into_iter()
        .max_by_key(|(below, _, known)| (*known, below.len()))?;
    let mut key_path: Vec<String> = path.iter().chain(&below).cloned().collect();
    key_path.push(field.to_owned());
    let metadata = figment.get_metadata(value.tag())?.clone();
    if metadata.name == ENV_SOURCE {
        while let Some((key, inner)) = value.as_dict().and_then(|table| table.iter().next()) {
            key_path.push(key.clone());
            value = inner;
        }
    }
    Some((key_path, metadata))
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
        let mut figment = Self::defaults();
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
        Self::extract(&figment)
    }

    /// The settings a TOML text gives over the defaults, read and checked as [`Settings::load`]
    /// reads a file, without the environment or the command line: how tests build
    /// settings, so that what they run is what a configuration file would give.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(&Self::defaults().merge(Toml::string(text)))
    }

    fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
    }

    fn extract(figment: &Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment
            .extract()
            .map_err(|error| load_error(figment, error))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The scopes this configuration's tokens grant, sorted: what a deployment serves.
    pub fn token_scopes(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = self
            .token
            .iter()
            .map(|_| Scope::default())
            .chain(self.auth.tokens.iter().filter_map(TokenEntry::scope))
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// Checks what types alone cannot. Token entries are not refused here: each one that
    /// did not parse is refused on its own where the tokens are loaded (with the token
    /// files, [`crate::auth::Authenticator::load`]), so a reload can apply the valid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_base_path(&self.base_path)?;
        self.backend.validate().map_err(ConfigError::Backend)?;
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
        if let Some(token) = &self.metrics.token {
            validate_token_text("metrics.token", token)?;
        }
        crate::references::Allowlist::from_settings(&self.references)?;
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
/// verbatim, `CREDBRIDGE_TEST_*` belongs to the test suite, and Kubernetes' service links
/// (see [`service_links`]) belong to the platform. Any other name must be a configuration
/// key: a misspelt variable is refused, naming it, exactly as an unknown key in a file is.
fn environment() -> Environment {
    let links: Vec<String> = service_links()
        .into_iter()
        .map(|name| name[ENV_PREFIX.len()..].to_owned())
        .collect();
    Environment(
        Env::prefixed(ENV_PREFIX)
            // Before `split`, so the names compared are the variables' own.
            .filter(move |key| !links.iter().any(|link| key == link.as_str()))
            .split("__")
            .ignore(&["config", "token"])
            // Uncased: the variables are upper case, `as_str` would keep them so.
            .filter(|key| !key.starts_with("test_")),
    )
}

const ENV_SOURCE: &str = "environment variable";

/// The `CREDBRIDGE_*` variables set in this process that [`Settings::load`] reads as
/// settings (`CREDBRIDGE_TOKEN` included), sorted: what applies to every file loaded.
pub fn setting_variables() -> Vec<String> {
    let links = service_links();
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|key| !key.is_empty() && key != "CONFIG" && !key.starts_with("TEST_"))
                && !links.contains(name)
        })
        .collect();
    names.sort();
    names
}

/// figment's environment provider, with errors naming the variable as it is set
/// (`CREDBRIDGE_HTTP__MAX_BODY`) rather than as a key path (`HTTP.MAX_BODY`).
struct Environment(Env);

impl figment::Provider for Environment {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(ENV_SOURCE).interpolater(|_, keys| {
            let keys: Vec<String> = keys.iter().map(|key| key.to_ascii_uppercase()).collect();
            format!("{ENV_PREFIX}{}", keys.join("__"))
        })
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

/// The `CREDBRIDGE_*` variables Kubernetes put in this process's environment for a Service
/// whose name starts with `credbridge` (its "service links"), sorted. They describe the
/// Service, not this process's configuration, so they are never read as configuration.
pub fn service_links() -> Vec<String> {
    let mut links: Vec<String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, value)| name.starts_with(ENV_PREFIX) && is_service_link(name, value))
        .map(|(name, _)| name)
        .collect();
    links.sort();
    links
}

/// Whether `name=value` has the shape of a variable Kubernetes injects for a Service `S`
/// (upper case, `-` as `_`): `S_SERVICE_HOST`, `S_SERVICE_PORT`, `S_SERVICE_PORT_<NAME>`,
/// `S_PORT`, `S_PORT_<N>_<PROTO>` and its `_PROTO`, `_PORT` and `_ADDR`. Both the name and
/// the value must match, so a mistyped configuration variable is never taken for one.
fn is_service_link(name: &str, value: &str) -> bool {
    let is_ip = || value.parse::<std::net::IpAddr>().is_ok();
    let is_port = |text: &str| text.parse::<u16>().is_ok_and(|port| port > 0);
    let is_protocol = |text: &str| matches!(text, "TCP" | "UDP" | "SCTP");
    // `tcp://10.96.0.12:8080`, `tcp://[fd00::12]:8080`
    let is_url = || {
        value.split_once("://").is_some_and(|(protocol, address)| {
            is_protocol(&protocol.to_ascii_uppercase()) && address.parse::<SocketAddr>().is_ok()
        })
    };
    if let Some(service) = name.strip_suffix("_SERVICE_HOST") {
        return !service.is_empty() && is_ip();
    }
    if let Some((service, port_name)) = name.rsplit_once("_SERVICE_PORT") {
        let named = port_name.is_empty() || port_name.starts_with('_') && port_name.len() > 1;
        return !service.is_empty() && named && is_port(value);
    }
    let segments: Vec<&str> = name.split('_').collect();
    match segments.as_slice() {
        [_, .., "PORT", port, protocol, field] if is_port(port) && is_protocol(protocol) => {
            match *field {
                "PROTO" => value.eq_ignore_ascii_case(protocol),
                "PORT" => value == *port,
                "ADDR" => is_ip(),
                _ => false,
            }
        }
        [_, .., "PORT", port, protocol] if is_port(port) && is_protocol(protocol) => is_url(),
        [_, .., "PORT"] => is_url(),
        _ => false,
    }
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

/// The rules every token's text meets, however it is given: long enough to be
/// unguessable, and plain. The problem, without the token.
pub fn check_token_text(token: &SecretText) -> Result<(), String> {
    let text = token.expose();
    if text.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "a token must be at least {MIN_TOKEN_LEN} characters long"
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token may contain only printable ASCII without spaces".to_owned());
    }
    Ok(())
}

/// [`check_token_text`], naming `key` in the error.
pub fn validate_token_text(key: &str, token: &SecretText) -> Result<(), ConfigError> {
    check_token_text(token).map_err(|message| ConfigError::invalid(key, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_toml(toml: &str) -> Result<Settings, ConfigError> {
        let settings = Settings::from_toml(toml)?;
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
                "backend.max_credentials: ",
            ),
            ("[audit]\noutput = \" \"", "must be \"off\""),
        ];
        for (toml, key) in cases {
            let error = with_toml(toml).unwrap_err().to_string();
            assert!(error.starts_with(key), "{toml}: {error}");
        }
    }

    #[test]
    fn every_backend_names_a_bad_key_first_and_in_full() {
        let cases = [
            (
                "[backend]\nkind = \"memory\"\nmax_credentials = 0",
                "backend.max_credentials: must be at least 1",
            ),
            (
                "[backend]\nkind = \"aws\"\nmax_attempts = 0",
                "backend.max_attempts: must be at least 1",
            ),
            #[cfg(feature = "vault")]
            (
                "[backend]\nkind = \"vault\"\nmount = \"a//b\"\n[backend.auth]\n\
                 method = \"token\"\ntoken = \"hvs.0123\"",
                "backend.mount: must be a Vault path",
            ),
            #[cfg(feature = "vault")]
            (
                "[backend]\nkind = \"vault\"\n[backend.auth]\nmethod = \"approle\"\n\
                 role_id = \"\"\nsecret_id = \"s\"",
                "backend.auth.role_id: is empty",
            ),
        ];
        for (toml, expected) in cases {
            let error = with_toml(toml).unwrap_err();
            assert!(
                matches!(error, ConfigError::Backend(_)),
                "{toml}: {error:?}"
            );
            assert!(error.to_string().starts_with(expected), "{toml}: {error}");
        }
    }

    #[test]
    fn a_missing_or_unknown_vault_login_method_is_named_in_full_with_the_methods() {
        for (auth, problem) in [
            ("secret_id = \"s\"", "missing field `method`"),
            ("method = \"ldap\"", "unknown method `ldap`"),
        ] {
            let error = with_toml(&format!(
                "[backend]\nkind = \"vault\"\n[backend.auth]\n{auth}"
            ))
            .unwrap_err()
            .to_string();
            assert!(error.starts_with(problem), "{error}");
            assert!(error.contains("backend.auth.method"), "{error}");
            assert!(
                error.contains("`token`, `approle`, `kubernetes`"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_audit_output_is_off_a_standard_stream_or_a_file() {
        for (text, output) in [
            ("off", AuditOutput::Off),
            ("stdout", AuditOutput::Stdout),
            ("stderr", AuditOutput::Stderr),
            (
                "/var/log/credbridge/audit.jsonl",
                AuditOutput::File("/var/log/credbridge/audit.jsonl".into()),
            ),
        ] {
            let settings = with_toml(&format!("[audit]\noutput = \"{text}\"")).unwrap();
            assert_eq!(settings.audit.output, output);
            // Printed back as written, so `check-config` shows what it read.
            let printed = toml::to_string(&settings).unwrap();
            assert!(
                printed.contains(&format!("output = \"{text}\"")),
                "{printed}"
            );
        }
        assert_eq!(with_toml("").unwrap().audit.output, AuditOutput::Off);
    }

    #[test]
    fn token_entries_are_printed_back_as_written() {
        let toml = "[[auth.tokens]]\nsha256 = \"f6b3dac63e528af146813954edf9e735aba38d72b83058170f553236aab48c08\"\nscope = \"team-b\"\nexpires_at = \"2027-01-31T00:00:00Z\"\n";
        let settings = with_toml(toml).unwrap();
        let printed = toml::to_string(&settings).unwrap();
        assert!(printed.contains(toml), "{printed}");
        assert_eq!(with_toml(&printed).unwrap(), settings);
    }

    /// What Kubernetes injects into every pod of a namespace with a Service named
    /// `credbridge` whose ports are 8080 (`http`) and 9090 (`metrics`).
    const SERVICE_LINKS: [(&str, &str); 14] = [
        ("CREDBRIDGE_SERVICE_HOST", "10.96.0.12"),
        ("CREDBRIDGE_SERVICE_PORT", "8080"),
        ("CREDBRIDGE_SERVICE_PORT_HTTP", "8080"),
        ("CREDBRIDGE_SERVICE_PORT_METRICS", "9090"),
        ("CREDBRIDGE_PORT", "tcp://10.96.0.12:8080"),
        ("CREDBRIDGE_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
        ("CREDBRIDGE_PORT_8080_TCP_PROTO", "tcp"),
        ("CREDBRIDGE_PORT_8080_TCP_PORT", "8080"),
        ("CREDBRIDGE_PORT_8080_TCP_ADDR", "10.96.0.12"),
        ("CREDBRIDGE_PORT_9090_TCP", "tcp://10.96.0.12:9090"),
        ("CREDBRIDGE_PORT_9090_TCP_PROTO", "tcp"),
        ("CREDBRIDGE_PORT_9090_TCP_PORT", "9090"),
        ("CREDBRIDGE_PORT_9090_TCP_ADDR", "10.96.0.12"),
        // A Service named `credbridge-vault`, dual-stack.
        ("CREDBRIDGE_VAULT_PORT", "tcp://[fd00:10:96::c]:8200"),
    ];

    #[test]
    fn kubernetes_service_links_are_recognised_by_name_and_value() {
        for (name, value) in SERVICE_LINKS {
            assert!(is_service_link(name, value), "{name}={value}");
        }
    }

    #[test]
    fn configuration_variables_and_near_misses_are_not_service_links() {
        for (name, value) in [
            ("CREDBRIDGE_LISTEN", "0.0.0.0:8080"),
            ("CREDBRIDGE_BACKEND__KIND", "vault"),
            // The name of a link with a value that is not one: a typo, not the platform.
            ("CREDBRIDGE_PORT", "8080"),
            ("CREDBRIDGE_SERVICE_HOST", "credbridge.internal"),
            ("CREDBRIDGE_PORT_8080_TCP_PORT", "9090"),
            ("CREDBRIDGE_PORT_8080_TCP_PROTO", "udp"),
            ("CREDBRIDGE_PORT_8080_HTTP", "tcp://10.96.0.12:8080"),
            ("CREDBRIDGE_SERVICE_PORTS", "8080"),
            ("_SERVICE_HOST", "10.96.0.12"),
        ] {
            assert!(!is_service_link(name, value), "{name}={value}");
        }
    }

    #[test]
    fn scopes_beginning_with_credbridge_dash_are_reserved() {
        let error = with_toml(
            "[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nscope = \"credbridge-doctor\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("auth.tokens[0].scope") && error.contains("reserved"),
            "{error}"
        );
        assert!(
            with_toml("[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nscope = \"credbridge\"")
                .is_ok()
        );
    }

    #[test]
    fn reserved_keys_are_fresh_and_in_a_reserved_scope() {
        for (tool, what) in [("doctor", "probe"), ("migrate", "canary")] {
            let (first, second) = (reserved_key(tool, what), reserved_key(tool, what));
            assert_eq!(first.scope.as_str(), format!("credbridge-{tool}"));
            assert!(first.id.as_str().starts_with(&format!("{tool}_{what}_")));
            assert_ne!(first.id, second.id);
        }
    }

    #[test]
    fn token_scopes_are_the_distinct_scopes_of_every_token() {
        let settings = with_toml(
            "token = \"0123456789abcdef\"\n[[auth.tokens]]\nsha256 = \"f6b3dac63e528af146813954edf9e735aba38d72b83058170f553236aab48c08\"\nscope = \"team-b\"\n[[auth.tokens]]\ntoken = \"fedcba9876543210\"\nscope = \"team-b\"",
        )
        .unwrap();
        let scopes: Vec<String> = settings
            .token_scopes()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(scopes, ["default", "team-b"]);
        assert!(with_toml("").unwrap().token_scopes().is_empty());
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
    fn references_are_allowlists_per_scope_and_errors_name_their_key() {
        let settings = with_toml(
            "[references.scopes.team-a]\nallow = [\"secret/apps/team-a/*\", \"kv/shared/smtp\"]",
        )
        .unwrap();
        assert_eq!(
            settings.references.scopes["team-a"].allow,
            ["secret/apps/team-a/*", "kv/shared/smtp"]
        );
        assert!(with_toml("").unwrap().references.scopes.is_empty());
        let error = with_toml("[references.scopes.team-a]\nallow = [\"secret/*/x\"]")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("references.scopes.team-a.allow[0]: "),
            "{error}"
        );
        let error = with_toml("[references.scopes.team-a]\nalow = []")
            .unwrap_err()
            .to_string();
        assert!(error.contains("alow"), "{error}");
        let error = with_toml("[references]\nteam-a = []")
            .unwrap_err()
            .to_string();
        assert!(error.contains("team-a"), "{error}");
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
