//! Inbound bearer tokens and the scope each one grants.
//!
//! Tokens are kept as SHA-256 digests only, whatever form the configuration gave them in.
//! A presented token is hashed once and compared with every configured digest in constant
//! time, so neither the comparison nor which entry matched shows in the timing.
//!
//! The token list can be replaced while serving ([`TokenStore`]): on SIGHUP and when a
//! token file changes, the configuration is read again and, if it is valid, swapped in
//! atomically; requests in flight finish with the list they started with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use credbridge_adapters::{Scope, SecretText};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{ConfigError, Settings};

type TokenDigest = [u8; 32];

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
            .chain_update(digest)
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
    hex::encode(digest(token))
}

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// The tokens of `token` and `[[auth.tokens]]`, reading token files. Empty when none
    /// is configured.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut authenticator = Self::default();
        if let Some(token) = &settings.token {
            authenticator.add(token, Scope::default());
        }
        for (index, entry) in settings.auth.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{index}]");
            let scope = Scope::parse(&entry.scope)
                .map_err(|error| ConfigError::invalid(format!("{key}.scope"), error.to_string()))?;
            let expires_at = entry.expiry(&key)?;
            let digest = if let Some(token) = &entry.token {
                digest(token.expose())
            } else if let Some(hex_digest) = &entry.sha256 {
                let mut digest = TokenDigest::default();
                hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                    ConfigError::invalid(format!("{key}.sha256"), "must be 64 hex digits")
                })?;
                digest
            } else {
                let Some(token) = entry.read_file(&key)? else {
                    continue;
                };
                authenticator.files.extend(entry.file.clone());
                digest(token.expose())
            };
            authenticator
                .entries
                .push(Entry::new(digest, scope, expires_at));
        }
        Ok(authenticator)
    }

    /// One token in the default scope.
    pub fn single(token: &SecretText) -> Self {
        let mut authenticator = Self::default();
        authenticator.add(token, Scope::default());
        authenticator
    }

    fn add(&mut self, token: &SecretText, scope: Scope) {
        self.entries
            .push(Entry::new(digest(token.expose()), scope, None));
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
        let presented = digest(token);
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (position, entry) in self.entries.iter().enumerate() {
            let is_match = presented.ct_eq(&entry.digest);
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

/// The token list in force, replaceable while serving.
#[derive(Clone, Default)]
pub struct TokenStore(Arc<ArcSwap<Authenticator>>);

impl TokenStore {
    pub fn new(authenticator: Authenticator) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(authenticator)))
    }

    /// The current list: a lock-free load.
    pub fn current(&self) -> arc_swap::Guard<Arc<Authenticator>> {
        self.0.load()
    }

    /// Swaps in a new list, unless it holds no token at all (which would lock every
    /// caller out); returns whether it was swapped.
    pub fn replace(&self, authenticator: Authenticator) -> bool {
        if authenticator.is_empty() {
            return false;
        }
        self.0.store(Arc::new(authenticator));
        true
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
    use crate::config::TokenSettings;

    fn settings(tokens: Vec<TokenSettings>) -> Settings {
        Settings {
            auth: crate::config::AuthSettings {
                tokens,
                ..Default::default()
            },
            ..Settings::default()
        }
    }

    fn entry(scope: &str) -> TokenSettings {
        TokenSettings {
            scope: scope.to_owned(),
            ..TokenSettings::default()
        }
    }

    #[test]
    fn plain_hashed_and_file_tokens_map_to_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "file-token-0123456789\n").unwrap();
        let auth = Authenticator::from_settings(&settings(vec![
            TokenSettings {
                token: Some(SecretText::new("plain-token-0123456789")),
                ..entry("a")
            },
            TokenSettings {
                sha256: Some(token_sha256_hex("hashed-token-0123456789")),
                ..entry("b")
            },
            TokenSettings {
                file: Some(file),
                ..entry("c")
            },
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
        let auth = Authenticator::from_settings(&settings(vec![
            TokenSettings {
                token: Some(SecretText::new("old-token-0123456789")),
                ..entry("s")
            },
            TokenSettings {
                token: Some(SecretText::new("new-token-0123456789")),
                ..entry("s")
            },
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
        let error = Authenticator::from_settings(&settings(vec![TokenSettings {
            file: Some("/nonexistent/credbridge-token".into()),
            ..entry("default")
        }]))
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
        let auth = Authenticator::from_settings(&Settings {
            token: Some(SecretText::new("shorthand-token-0123")),
            ..Settings::default()
        })
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
        let auth = Authenticator::from_settings(&settings(vec![TokenSettings {
            token: Some(SecretText::new("expiring-token-0123456789")),
            expires_at: Some("2030-01-01T00:00:00Z".to_owned()),
            ..entry("s")
        }]))
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
        let error = Authenticator::from_settings(&settings(vec![TokenSettings {
            token: Some(SecretText::new("expiring-token-0123456789")),
            expires_at: Some("next tuesday".to_owned()),
            ..entry("s")
        }]))
        .unwrap_err();
        assert!(
            error.to_string().starts_with("auth.tokens[0].expires_at"),
            "{error}"
        );
    }

    #[test]
    fn the_store_refuses_an_empty_list() {
        let store = TokenStore::new(Authenticator::single(&SecretText::new(
            "first-token-0123456789",
        )));
        assert!(!store.replace(Authenticator::default()));
        assert!(store
            .current()
            .authenticate("first-token-0123456789")
            .is_ok());
        assert!(store.replace(Authenticator::single(&SecretText::new(
            "second-token-0123456789"
        ))));
        assert!(store
            .current()
            .authenticate("first-token-0123456789")
            .is_err());
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
