//! Inbound bearer tokens and the scope each one grants.
//!
//! Tokens are kept as SHA-256 digests only, whatever form the configuration gave them in.
//! A presented token is hashed once and compared with every configured digest in constant
//! time, so neither the comparison nor which entry matched shows in the timing.

use credbridge_adapters::{Scope, SecretText};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{ConfigError, Settings};

type TokenDigest = [u8; 32];

/// Who may call, and what each caller sees.
#[derive(Clone, Default)]
pub struct Authenticator {
    entries: Vec<(TokenDigest, Scope)>,
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
            if let Some(token) = &entry.token {
                authenticator.add(token, scope);
            } else if let Some(hex_digest) = &entry.sha256 {
                let mut digest = TokenDigest::default();
                hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                    ConfigError::invalid(format!("{key}.sha256"), "must be 64 hex digits")
                })?;
                authenticator.entries.push((digest, scope));
            } else if let Some(token) = entry.read_file(&key)? {
                authenticator.add(&token, scope);
            }
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
        self.entries.push((digest(token.expose()), scope));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct scopes, for the start-up message.
    pub fn scopes(&self) -> Vec<&Scope> {
        let mut scopes: Vec<&Scope> = self.entries.iter().map(|(_, scope)| scope).collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The scope of `token`, or `None` when it is not a configured token.
    pub fn authenticate(&self, token: &str) -> Option<&Scope> {
        let presented = digest(token);
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (position, (digest, _)) in self.entries.iter().enumerate() {
            let is_match = presented.ct_eq(digest);
            // Every entry is compared; the index is picked without a branch on the secret.
            index.conditional_assign(&(position as u32), is_match & !matched);
            matched |= is_match;
        }
        bool::from(matched).then(|| &self.entries[index as usize].1)
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
            auth: crate::config::AuthSettings { tokens },
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
        assert_eq!(
            auth.authenticate("plain-token-0123456789")
                .unwrap()
                .as_str(),
            "a"
        );
        assert_eq!(
            auth.authenticate("hashed-token-0123456789")
                .unwrap()
                .as_str(),
            "b"
        );
        assert_eq!(
            auth.authenticate("file-token-0123456789").unwrap().as_str(),
            "c"
        );
        assert!(auth.authenticate("plain-token-012345678").is_none());
        assert!(auth.authenticate("").is_none());
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
        assert_eq!(
            auth.authenticate("old-token-0123456789").unwrap().as_str(),
            "s"
        );
        assert_eq!(
            auth.authenticate("new-token-0123456789").unwrap().as_str(),
            "s"
        );
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
            auth.authenticate("shorthand-token-0123").unwrap().as_str(),
            "default"
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
