//! Inbound bearer tokens and the scope each one grants.
//!
//! Tokens are kept as SHA-256 digests only, whatever form the configuration gave them in.
//! A presented token is hashed once and compared with every configured digest in constant
//! time, so neither the comparison nor which entry matched shows in the timing.
//!
//! The token list can be replaced while serving ([`TokenStore`]): on SIGHUP and when a
//! token file changes, the configuration is read again and its entries applied one by one
//! ([`TokenSources::reload`]), swapped in atomically; requests in flight finish with the
//! list they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use credbridge_adapters::{Scope, SecretText};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{
    validate_token_text, ConfigError, Settings, TokenDigest, TokenEntry, TokenSource,
};

/// Who may call, and what each caller sees.
#[derive(Clone, Default)]
pub struct Authenticator {
    entries: Vec<Entry>,
    /// Token files this list was read from, watched for changes.
    files: Vec<PathBuf>,
}

#[derive(Clone)]
struct Entry {
    digest: TokenDigest,
    /// Derived from the digest once, at load, rather than on every request.
    fingerprint: Fingerprint,
    scope: Scope,
    expires_at: Option<SystemTime>,
}

impl Entry {
    fn new(digest: TokenDigest, scope: Scope, expires_at: Option<SystemTime>) -> Self {
        Self {
            fingerprint: Fingerprint::of(&digest),
            digest,
            scope,
            expires_at,
        }
    }

    /// One `[[auth.tokens]]` entry, its file read.
    fn from_settings(entry: &TokenEntry, key: &str) -> Result<Self, ConfigError> {
        let entry = entry.settings().map_err(|problem| problem.at(key))?;
        let digest = match &entry.source {
            TokenSource::Token(token) => TokenDigest::of(token.expose()),
            TokenSource::Sha256(digest) => *digest,
            TokenSource::File(path) => {
                TokenDigest::of(read_token_file(path, &format!("{key}.file"))?.expose())
            }
        };
        let expires_at = entry.expires_at.map(SystemTime::from);
        Ok(Self::new(digest, entry.scope.clone(), expires_at))
    }
}

/// The token a `file` entry names, checked like a token given in place. Read at every
/// load, so a rewritten file takes effect at the next reload.
fn read_token_file(path: &Path, key: &str) -> Result<SecretText, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::invalid(key, format!("cannot read {}: {error}", path.display()))
    })?;
    let token = SecretText::new(text.trim());
    validate_token_text(key, &token)?;
    Ok(token)
}

/// An authenticated caller: its scope, and a fingerprint that names its token in the audit
/// log and the rate limiter without revealing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub scope: Scope,
    pub fingerprint: Fingerprint,
}

/// The first 8 bytes of SHA-256 over a domain tag and the token's digest: stable per
/// token, useless for guessing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    fn of(digest: &TokenDigest) -> Self {
        let hash = Sha256::new()
            .chain_update(b"credbridge token fingerprint\0")
            .chain_update(digest.as_bytes())
            .finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash[..8]);
        Self(bytes)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a request was not authenticated, for metrics and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Expired,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Expired => "expired",
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

/// The SHA-256 of a token, as the 64 lowercase hex digits `sha256 = "..."` takes.
pub fn token_sha256_hex(token: &str) -> String {
    TokenDigest::of(token).to_string()
}

impl Authenticator {
    /// Every valid entry of `token` and `[[auth.tokens]]` (reading token files), and why
    /// each other entry was left out. Entries stand alone: one that cannot be read, or that
    /// holds the same token as another (both are left out, since which scope it should see
    /// is unknown), does not stop the rest. Errors name the entry's key, never its token.
    pub fn load(settings: &Settings) -> (Self, Vec<ConfigError>) {
        let mut authenticator = Self::default();
        let mut keys = Vec::new();
        let mut dropped = Vec::new();
        if let Some(token) = &settings.token {
            match validate_token_text("token", token) {
                Ok(()) => {
                    keys.push("token".to_owned());
                    authenticator.add(token, Scope::default());
                }
                Err(error) => dropped.push(error),
            }
        }
        for (index, entry) in settings.auth.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{index}]");
            // Watched even when it cannot be read now, so that fixing it applies it.
            authenticator
                .files
                .extend(entry.file().map(Path::to_path_buf));
            match Entry::from_settings(entry, &key) {
                Ok(loaded) => {
                    keys.push(key);
                    authenticator.entries.push(loaded);
                }
                Err(error) => dropped.push(error),
            }
        }
        let mut keep = vec![true; authenticator.entries.len()];
        for later in 1..authenticator.entries.len() {
            // Only the first earlier twin is named; a third copy is named against it too.
            let earlier = (0..later).find(|&earlier| {
                authenticator.entries[earlier].digest == authenticator.entries[later].digest
            });
            if let Some(earlier) = earlier {
                keep[earlier] = false;
                keep[later] = false;
                dropped.push(ConfigError::invalid(
                    keys[later].clone(),
                    format!(
                        "holds the same token as {}: a token maps to one scope only, so \
                         neither entry is used",
                        keys[earlier]
                    ),
                ));
            }
        }
        let mut kept = keep.into_iter();
        authenticator
            .entries
            .retain(|_| kept.next().unwrap_or(false));
        (authenticator, dropped)
    }

    /// Like [`Authenticator::load`], but every entry must be valid: for start-up and
    /// `check-config`, where a mistake is best refused at once.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let (authenticator, dropped) = Self::load(settings);
        match dropped.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(authenticator),
        }
    }

    /// One token in the default scope.
    pub fn single(token: &SecretText) -> Self {
        let mut authenticator = Self::default();
        authenticator.add(token, Scope::default());
        authenticator
    }

    fn add(&mut self, token: &SecretText, scope: Scope) {
        self.entries
            .push(Entry::new(TokenDigest::of(token.expose()), scope, None));
    }

    /// The token files to watch for changes.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The earliest expiry among the configured tokens, for the start-up message.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.entries
            .iter()
            .filter_map(|entry| entry.expires_at)
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct scopes, for the start-up message.
    pub fn scopes(&self) -> Vec<&Scope> {
        let mut scopes: Vec<&Scope> = self.entries.iter().map(|entry| &entry.scope).collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The identity `token` grants, or why it grants none.
    pub fn authenticate(&self, token: &str) -> Result<Identity, AuthFailure> {
        self.authenticate_at(token, SystemTime::now())
    }

    fn authenticate_at(&self, token: &str, now: SystemTime) -> Result<Identity, AuthFailure> {
        let presented = TokenDigest::of(token);
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (position, entry) in self.entries.iter().enumerate() {
            let is_match = presented.as_bytes().ct_eq(entry.digest.as_bytes());
            // Every entry is compared; the index is picked without a branch on the secret.
            index.conditional_assign(&(position as u32), is_match & !matched);
            matched |= is_match;
        }
        if !bool::from(matched) {
            return Err(AuthFailure::Unknown);
        }
        let entry = &self.entries[index as usize];
        if entry.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(AuthFailure::Expired);
        }
        Ok(Identity {
            scope: entry.scope.clone(),
            fingerprint: entry.fingerprint,
        })
    }
}

/// The token list in force, replaceable while serving, and how its last reload went.
#[derive(Clone, Default)]
pub struct TokenStore {
    current: Arc<ArcSwap<Authenticator>>,
    last_reload: Arc<Mutex<Option<(ReloadOutcome, SystemTime)>>>,
}

impl TokenStore {
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(authenticator)),
            last_reload: Arc::default(),
        }
    }

    /// The current list: a lock-free load.
    pub fn current(&self) -> arc_swap::Guard<Arc<Authenticator>> {
        self.current.load()
    }

    /// Swaps in the list a reload produced, even an empty one (which refuses every
    /// caller: removing every token must revoke every token), and notes the outcome.
    pub fn apply(&self, reloaded: &Reloaded) {
        self.current.store(Arc::new(reloaded.authenticator.clone()));
        *self
            .last_reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((reloaded.outcome, SystemTime::now()));
    }

    /// The outcome and time of the last reload; `None` before the first.
    pub fn last_reload(&self) -> Option<(ReloadOutcome, SystemTime)> {
        *self
            .last_reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How a reload of the token list went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The configuration loaded, and every token entry in it is in force.
    Applied,
    /// The configuration loaded, but some entries were left out (each is logged): the
    /// others are in force.
    Partial,
    /// The configuration could not be loaded at all: the entries in force were read again
    /// from their own sources (see [`TokenSources::reload`]).
    Failed,
}

impl ReloadOutcome {
    pub const ALL: [ReloadOutcome; 3] = [Self::Applied, Self::Partial, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Applied => "applied",
            ReloadOutcome::Partial => "partial",
            ReloadOutcome::Failed => "failed",
        }
    }
}

/// What a reload produced: the new list, and every problem met on the way.
pub struct Reloaded {
    pub outcome: ReloadOutcome,
    pub authenticator: Authenticator,
    /// Each names the key at fault, never a token.
    pub problems: Vec<ConfigError>,
}

/// The token entries last applied, which a reload starts from.
#[derive(Clone, Default)]
pub struct TokenSources {
    token: Option<SecretText>,
    entries: Vec<TokenEntry>,
    /// The token made for this run when none was configured; kept while the configuration
    /// still names none.
    generated: Option<SecretText>,
}

impl TokenSources {
    pub fn new(settings: &Settings, generated: Option<SecretText>) -> Self {
        Self {
            token: settings.token.clone(),
            entries: settings.auth.tokens.clone(),
            generated,
        }
    }

    /// The token list of a freshly loaded configuration, entry by entry.
    ///
    /// When the configuration cannot be loaded at all (it no longer parses, or another of
    /// its keys is invalid), nothing says what the operator meant, so the entries last
    /// applied stay, read again from their own sources: a `file` entry takes what its file
    /// holds now, and is dropped when the file cannot be read. Reads token files: call it
    /// off the async runtime.
    pub fn reload(&mut self, loaded: Result<Settings, ConfigError>) -> Reloaded {
        match loaded {
            Ok(settings) => {
                self.token = settings.token;
                self.entries = settings.auth.tokens;
                let (authenticator, problems) = self.load();
                Reloaded {
                    outcome: if problems.is_empty() {
                        ReloadOutcome::Applied
                    } else {
                        ReloadOutcome::Partial
                    },
                    authenticator,
                    problems,
                }
            }
            Err(error) => {
                let (authenticator, dropped) = self.load();
                let mut problems = vec![error];
                problems.extend(dropped);
                Reloaded {
                    outcome: ReloadOutcome::Failed,
                    authenticator,
                    problems,
                }
            }
        }
    }

    fn load(&self) -> (Authenticator, Vec<ConfigError>) {
        if let (None, true, Some(generated)) =
            (&self.token, self.entries.is_empty(), &self.generated)
        {
            return (Authenticator::single(generated), Vec::new());
        }
        let settings = Settings {
            token: self.token.clone(),
            auth: crate::config::AuthSettings {
                tokens: self.entries.clone(),
                ..Default::default()
            },
            ..Settings::default()
        };
        Authenticator::load(&settings)
    }
}

/// A fresh token for a development run: 256 bits from the OS generator, hex.
pub fn generate_token() -> SecretText {
    let mut bytes = [0u8; 32];
    // Start-up only: with no OS generator there is no safe token to make.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    SecretText::new(format!("cbt_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings with one `[[auth.tokens]]` entry per table given, read as a file is.
    fn settings(entries: &[String]) -> Settings {
        let text: String = entries
            .iter()
            .map(|entry| format!("[[auth.tokens]]\n{entry}\n"))
            .collect();
        Settings::from_toml(&text).unwrap()
    }

    fn inline(token: &str, scope: &str) -> String {
        format!("token = \"{token}\"\nscope = \"{scope}\"")
    }

    fn hashed(hex: &str, scope: &str) -> String {
        format!("sha256 = \"{hex}\"\nscope = \"{scope}\"")
    }

    fn file(path: &Path, scope: &str) -> String {
        format!("file = '{}'\nscope = \"{scope}\"", path.display())
    }

    #[test]
    fn plain_hashed_and_file_tokens_map_to_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "file-token-0123456789\n").unwrap();
        let auth = Authenticator::from_settings(&settings(&[
            inline("plain-token-0123456789", "a"),
            hashed(&token_sha256_hex("hashed-token-0123456789"), "b"),
            file(&path, "c"),
        ]))
        .unwrap();
        let scope = |token| {
            auth.authenticate(token)
                .map(|identity| identity.scope.to_string())
        };
        assert_eq!(scope("plain-token-0123456789").unwrap(), "a");
        assert_eq!(scope("hashed-token-0123456789").unwrap(), "b");
        assert_eq!(scope("file-token-0123456789").unwrap(), "c");
        assert_eq!(scope("plain-token-012345678"), Err(AuthFailure::Unknown));
        assert_eq!(scope(""), Err(AuthFailure::Unknown));
        assert_eq!(auth.files().len(), 1);
    }

    #[test]
    fn two_tokens_may_share_a_scope() {
        let auth = Authenticator::from_settings(&settings(&[
            inline("old-token-0123456789", "s"),
            inline("new-token-0123456789", "s"),
        ]))
        .unwrap();
        let old = auth.authenticate("old-token-0123456789").unwrap();
        let new = auth.authenticate("new-token-0123456789").unwrap();
        assert_eq!((old.scope.as_str(), new.scope.as_str()), ("s", "s"));
        assert_ne!(old.fingerprint, new.fingerprint);
        assert_eq!(auth.scopes().len(), 1);
    }

    #[test]
    fn a_missing_token_file_names_its_key() {
        let error = Authenticator::from_settings(&settings(&[file(
            Path::new("/nonexistent/credbridge-token"),
            "default",
        )]))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("auth.tokens[0].file: cannot read"),
            "{error}"
        );
    }

    #[test]
    fn the_shorthand_token_is_in_the_default_scope() {
        let auth = Authenticator::from_settings(
            &Settings::from_toml("token = \"shorthand-token-0123\"").unwrap(),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate("shorthand-token-0123")
                .unwrap()
                .scope
                .as_str(),
            "default"
        );
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let auth = Authenticator::from_settings(&settings(&[format!(
            "{}\nexpires_at = \"2030-01-01T00:00:00Z\"",
            inline("expiring-token-0123456789", "s")
        )]))
        .unwrap();
        let before = humantime::parse_rfc3339("2029-12-31T23:59:59Z").unwrap();
        let after = humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert!(auth
            .authenticate_at("expiring-token-0123456789", before)
            .is_ok());
        assert_eq!(
            auth.authenticate_at("expiring-token-0123456789", after),
            Err(AuthFailure::Expired)
        );
    }

    #[test]
    fn a_bad_expiry_names_its_key() {
        let error = Authenticator::from_settings(&settings(&[format!(
            "{}\nexpires_at = \"next tuesday\"",
            inline("expiring-token-0123456789", "s")
        )]))
        .unwrap_err();
        assert!(
            error.to_string().starts_with("auth.tokens[0].expires_at"),
            "{error}"
        );
    }

    fn scope_of(auth: &Authenticator, token: &str) -> Option<String> {
        auth.authenticate(token)
            .ok()
            .map(|identity| identity.scope.to_string())
    }

    #[test]
    fn a_reload_applies_the_valid_entries_and_names_the_others() {
        let mut sources = TokenSources::default();
        let reloaded = sources.reload(Ok(settings(&[
            inline("kept-token-0123456789", "a"),
            file(Path::new("/nonexistent/credbridge-token"), "b"),
            format!(
                "{}\nexpires_at = \"soon\"",
                inline("badly-dated-token-0123", "c")
            ),
        ])));
        assert_eq!(reloaded.outcome, ReloadOutcome::Partial);
        assert_eq!(
            scope_of(&reloaded.authenticator, "kept-token-0123456789").as_deref(),
            Some("a")
        );
        assert_eq!(
            scope_of(&reloaded.authenticator, "badly-dated-token-0123"),
            None
        );
        let problems: Vec<String> = reloaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("auth.tokens[1].file: cannot read"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("auth.tokens[2].expires_at"),
            "{problems:?}"
        );
        assert!(
            !problems.concat().contains("badly-dated-token"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_reload_to_no_token_at_all_revokes_every_token() {
        let store = TokenStore::new(Authenticator::single(&SecretText::new(
            "revoked-token-0123456789",
        )));
        let mut sources = TokenSources::new(
            &settings(&[inline("revoked-token-0123456789", "default")]),
            None,
        );
        let reloaded = sources.reload(Ok(settings(&[])));
        assert_eq!(reloaded.outcome, ReloadOutcome::Applied);
        store.apply(&reloaded);
        assert!(store.current().is_empty());
        assert!(store
            .current()
            .authenticate("revoked-token-0123456789")
            .is_err());
        assert_eq!(
            store.last_reload().map(|(outcome, _)| outcome),
            Some(ReloadOutcome::Applied)
        );
    }

    #[test]
    fn a_generated_token_stays_while_the_configuration_names_none() {
        let generated = SecretText::new("cbt_generated-token-0123456789");
        let mut sources = TokenSources::new(&Settings::default(), Some(generated));
        let reloaded = sources.reload(Ok(Settings::default()));
        assert_eq!(reloaded.outcome, ReloadOutcome::Applied);
        assert!(scope_of(&reloaded.authenticator, "cbt_generated-token-0123456789").is_some());
        // Once the configuration names a token, the generated one is gone.
        let reloaded = sources.reload(Ok(settings(&[inline("chosen-token-0123456789", "s")])));
        assert!(scope_of(&reloaded.authenticator, "cbt_generated-token-0123456789").is_none());
        assert!(scope_of(&reloaded.authenticator, "chosen-token-0123456789").is_some());
    }

    #[test]
    fn a_configuration_that_no_longer_loads_keeps_the_entries_and_rereads_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "leaked-file-token-0123456789").unwrap();
        let mut sources = TokenSources::new(
            &settings(&[inline("inline-token-0123456789", "a"), file(&path, "b")]),
            None,
        );
        // The operator rotates the leaked file token while the config file is broken.
        std::fs::write(&path, "rotated-file-token-0123456789").unwrap();
        let broken = || {
            Err(ConfigError::invalid(
                "base_path",
                "must look like /api/v1/credentials",
            ))
        };
        let reloaded = sources.reload(broken());
        assert_eq!(reloaded.outcome, ReloadOutcome::Failed);
        assert_eq!(
            reloaded.problems[0].to_string(),
            "base_path: must look like /api/v1/credentials"
        );
        let auth = &reloaded.authenticator;
        assert!(scope_of(auth, "inline-token-0123456789").is_some());
        assert!(scope_of(auth, "rotated-file-token-0123456789").is_some());
        assert!(scope_of(auth, "leaked-file-token-0123456789").is_none());

        std::fs::remove_file(&path).unwrap();
        let reloaded = sources.reload(broken());
        assert!(scope_of(&reloaded.authenticator, "rotated-file-token-0123456789").is_none());
        assert!(scope_of(&reloaded.authenticator, "inline-token-0123456789").is_some());
        assert!(reloaded.problems[1]
            .to_string()
            .starts_with("auth.tokens[1].file"));
    }

    #[test]
    fn the_same_token_in_two_entries_is_refused_naming_both_and_neither_is_used() {
        let twins = settings(&[
            inline("twin-token-0123456789", "a"),
            inline("other-token-0123456789", "b"),
            hashed(&token_sha256_hex("twin-token-0123456789"), "c"),
        ]);
        let error = Authenticator::from_settings(&twins)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("auth.tokens[2]: holds the same token as auth.tokens[0]"),
            "{error}"
        );
        assert!(!error.contains("twin-token"), "{error}");
        let (auth, dropped) = Authenticator::load(&twins);
        assert_eq!(dropped.len(), 1);
        assert_eq!(scope_of(&auth, "twin-token-0123456789"), None);
        assert_eq!(
            scope_of(&auth, "other-token-0123456789").as_deref(),
            Some("b")
        );
    }

    #[test]
    fn every_form_of_token_is_checked_for_length_and_guessable_hashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        let cases = [
            (
                inline("short", "s"),
                "auth.tokens[0].token: a token must be at least 16",
            ),
            (
                file(&path, "s"),
                "auth.tokens[0].file: a token must be at least 16",
            ),
            (
                hashed(&token_sha256_hex("test").to_uppercase(), "s"),
                "auth.tokens[0].sha256: is the hash of a well-known example string",
            ),
        ];
        for (entry, expected) in cases {
            let error = Authenticator::from_settings(&settings(&[entry]))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(expected), "{error}");
        }
        let error =
            Authenticator::from_settings(&Settings::from_toml("token = \"short\"").unwrap())
                .unwrap_err()
                .to_string();
        assert!(
            error.starts_with("token: a token must be at least 16"),
            "{error}"
        );
    }

    #[test]
    fn hash_token_matches_the_known_sha256_of_test() {
        assert_eq!(
            token_sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.expose().len(), 4 + 64);
        assert_ne!(a.expose(), b.expose());
    }
}
