//! What the Vault double remembers: mounts, secrets, tokens, policies, auth roles.
//!
//! Behaviour, case by case, follows Vault's API documentation; each handler in
//! `server.rs` names the endpoint it reproduces.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// What a token may do, as Vault ACL rules: a path, or a path ending in `*` (a prefix),
/// with the capabilities allowed there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    root: bool,
    rules: Vec<(String, BTreeSet<String>)>,
}

impl Policy {
    /// The root policy: everything, everywhere.
    pub fn root() -> Self {
        Self {
            root: true,
            rules: Vec::new(),
        }
    }

    /// No rule at all: every KV path is denied.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a rule, as Vault's `path "<glob>" { capabilities = [...] }`.
    pub fn allow(mut self, path: &str, capabilities: &[&str]) -> Self {
        let capabilities = capabilities.iter().map(|c| (*c).to_owned()).collect();
        self.rules.push((path.to_owned(), capabilities));
        self
    }

    /// The smallest policy credbridge needs on `{mount}/{prefix}` (as its docs.md states).
    pub fn credbridge(mount: &str, kv_version: u8, prefix: &str) -> Self {
        if kv_version == 2 {
            Self::none()
                .allow(
                    &format!("{mount}/data/{prefix}/*"),
                    &["create", "read", "update"],
                )
                .allow(&format!("{mount}/metadata/{prefix}/*"), &["delete", "list"])
        } else {
            Self::none().allow(
                &format!("{mount}/{prefix}/*"),
                &["create", "read", "delete", "list"],
            )
        }
    }

    /// The capabilities on `path`, as `sys/capabilities-self` reports them: `root`,
    /// the allowed ones, or `deny`.
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".to_owned()];
        }
        let mut allowed = BTreeSet::new();
        for (glob, capabilities) in &self.rules {
            let matches = match glob.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == glob,
            };
            if matches {
                allowed.extend(capabilities.iter().cloned());
            }
        }
        if allowed.is_empty() {
            vec!["deny".to_owned()]
        } else {
            allowed.into_iter().collect()
        }
    }

    pub fn allows(&self, path: &str, capability: &str) -> bool {
        let capabilities = self.capabilities(path);
        capabilities.iter().any(|c| c == "root" || c == capability)
    }

    /// Whether the token may see a mount at all (`sys/internal/ui/mounts/<mount>`).
    pub fn touches_mount(&self, mount: &str) -> bool {
        self.root
            || self
                .rules
                .iter()
                .any(|(glob, _)| glob.starts_with(&format!("{mount}/")))
    }

    pub(crate) fn names(&self) -> Vec<String> {
        if self.root {
            vec!["root".to_owned()]
        } else {
            vec!["default".to_owned(), "credbridge".to_owned()]
        }
    }
}

/// How a token is issued: its policy, lifetime and namespace.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub policy: Policy,
    /// `None`: never expires (like a root token).
    pub ttl: Option<Duration>,
    /// Renewals never extend the token past this, counted from issue.
    pub max_ttl: Option<Duration>,
    pub renewable: bool,
    /// The namespace the token lives in; `""` is the root namespace.
    pub namespace: String,
}

impl TokenSpec {
    /// A renewable service token with `policy`, `ttl` and a max TTL of ten times that.
    pub fn new(policy: Policy, ttl: Duration) -> Self {
        Self {
            policy,
            ttl: Some(ttl),
            max_ttl: Some(ttl * 10),
            renewable: true,
            namespace: String::new(),
        }
    }

    /// A token that never expires.
    pub fn unlimited(policy: Policy) -> Self {
        Self {
            policy,
            ttl: None,
            max_ttl: None,
            renewable: false,
            namespace: String::new(),
        }
    }

    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = Some(max_ttl);
        self
    }

    pub fn renewable(mut self, renewable: bool) -> Self {
        self.renewable = renewable;
        self
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.trim_matches('/').to_owned();
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub accessor: String,
    pub spec: TokenSpec,
    pub issued: SystemTime,
    pub issued_at: Instant,
    pub expires_at: Option<Instant>,
    /// The auth mount that issued it (`token` for tokens made by tests).
    pub issuer: String,
}

impl Token {
    pub fn alive(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whole seconds left, rounded up: 0 would mean "never expires" to a client.
    pub fn ttl_seconds(&self, now: Instant) -> u64 {
        self.expires_at.map_or(0, |at| {
            let left = at.saturating_duration_since(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        })
    }
}

/// One KV v2 version.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub data: Option<Map<String, Value>>,
    pub created_time: String,
    pub deletion_time: String,
    pub destroyed: bool,
}

/// One KV v2 key: its versions and metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct Versioned {
    pub current_version: u64,
    pub versions: BTreeMap<u64, Version>,
    pub created_time: String,
    pub updated_time: String,
}

/// A KV mount.
#[derive(Debug, Clone)]
pub(crate) struct KvMount {
    pub version: u8,
    pub accessor: String,
    pub v1: BTreeMap<String, Map<String, Value>>,
    pub v2: BTreeMap<String, Versioned>,
}

impl KvMount {
    pub fn new(version: u8) -> Self {
        Self {
            version,
            accessor: format!("kv_{}", random_hex(4)),
            v1: BTreeMap::new(),
            v2: BTreeMap::new(),
        }
    }

    /// The names directly under `folder` (sub-folders with a trailing `/`), as LIST
    /// answers them.
    pub fn list(&self, folder: &str) -> Vec<String> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{}/", folder.trim_end_matches('/'))
        };
        let names: Box<dyn Iterator<Item = &String>> = if self.version == 2 {
            Box::new(self.v2.keys())
        } else {
            Box::new(self.v1.keys())
        };
        let mut keys = BTreeSet::new();
        for name in names {
            if let Some(rest) = name.strip_prefix(&prefix) {
                match rest.split_once('/') {
                    Some((folder, _)) => keys.insert(format!("{folder}/")),
                    None => keys.insert(rest.to_owned()),
                };
            }
        }
        keys.into_iter().collect()
    }
}

/// An auth method mount and its roles.
#[derive(Debug, Clone)]
pub(crate) enum AuthMount {
    /// role id → (secret id, token spec)
    AppRole(HashMap<String, (String, TokenSpec)>),
    /// role name → (the one JWT accepted, token spec)
    Kubernetes(HashMap<String, (String, TokenSpec)>),
}

/// Everything the double remembers.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// (namespace, mount path) → mount
    pub kv: HashMap<(String, String), KvMount>,
    /// (namespace, auth mount path) → auth method
    pub auth: HashMap<(String, String), AuthMount>,
    pub tokens: HashMap<String, Token>,
    pub sealed: bool,
    /// auth mount → successful logins
    pub logins: HashMap<String, usize>,
    pub renewals: usize,
}

impl State {
    pub fn issue(&mut self, spec: TokenSpec, issuer: &str) -> String {
        let token = format!("hvs.{}", random_hex(12));
        let now = Instant::now();
        self.tokens.insert(
            token.clone(),
            Token {
                accessor: random_hex(12),
                expires_at: spec.ttl.map(|ttl| now + ttl),
                spec,
                issued: SystemTime::now(),
                issued_at: now,
                issuer: issuer.to_owned(),
            },
        );
        token
    }
}

/// `n` random bytes in lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // Tests only: without the OS generator nothing can run anyway.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random generator");
    hex::encode(bytes)
}

/// A UUID-shaped random id, as Vault's `request_id`.
pub(crate) fn request_id() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// RFC 3339 in UTC with nanoseconds, as Vault writes `created_time`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z",
        since.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_a_known_instant() {
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(time), "2023-11-14T22:13:20.000000000Z");
    }

    #[test]
    fn policy_globs_match_prefixes_and_exact_paths() {
        let policy = Policy::none()
            .allow("secret/data/app/*", &["read"])
            .allow("secret/metadata/app", &["list"]);
        assert_eq!(policy.capabilities("secret/data/app/x"), ["read"]);
        assert_eq!(policy.capabilities("secret/metadata/app"), ["list"]);
        assert_eq!(policy.capabilities("secret/data/other/x"), ["deny"]);
        assert_eq!(Policy::root().capabilities("anything"), ["root"]);
    }

    #[test]
    fn list_names_children_and_folders_once() {
        let mut mount = KvMount::new(1);
        for key in ["p/a/1", "p/a/2", "p/b", "q/c"] {
            mount.v1.insert(key.to_owned(), Map::new());
        }
        assert_eq!(mount.list("p"), ["a/", "b"]);
        assert_eq!(mount.list("p/a/"), ["1", "2"]);
        assert!(mount.list("z").is_empty());
    }
}
