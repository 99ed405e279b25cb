//! The `Backend` trait: what every credential store does, stated once.
//!
//! A backend stores opaque JSON [`Document`]s under a [`Key`] (a scope plus an id) and
//! knows nothing of credential types. Each method's documentation is a promise that the
//! conformance suite (`testkit::conformance`) checks against every backend; a backend that
//! passes it can serve the HTTP contract.
//!
//! Names are validated here, before any backend sees them, so that nothing a client sends
//! can become a path separator, a `..`, or an AWS name wildcard.

use std::fmt;

use async_trait::async_trait;

use crate::{Document, ReferenceTarget, ReferencedEntry, Result};

/// A credential store.
///
/// Implementations are shared by every request (`Arc<dyn Backend>`): they hold one client
/// and one login, and no lock across an `.await`.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which backend this is and what it can do. Cheap; no I/O.
    fn info(&self) -> BackendInfo;

    /// Stores `document` under `key`.
    ///
    /// Never overwrites: when `key` already holds a document, returns
    /// [`ErrorKind::AlreadyExists`](crate::ErrorKind::AlreadyExists) and leaves the stored
    /// document unchanged. On any error nothing readable is left under `key`.
    async fn put(&self, key: &Key, document: &Document) -> Result<()>;

    /// Returns the document stored under `key`, exactly as it was put.
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when `key` holds nothing,
    /// including a document that was deleted or is scheduled for deletion.
    async fn get(&self, key: &Key) -> Result<Document>;

    /// Removes the document under `key`, so that a later `get` is `NotFound`.
    ///
    /// Idempotent: succeeds when `key` holds nothing (never created, already deleted, or
    /// scheduled for deletion).
    async fn delete(&self, key: &Key) -> Result<()>;

    /// The ids stored in `scope`, sorted, and only those: never an id of another scope.
    async fn list(&self, scope: &Scope) -> Result<Vec<CredentialId>>;

    /// Succeeds when the backend is reachable and credbridge is authorized to use it;
    /// used by the readiness probe and Skyvern's connection test.
    ///
    /// Never fails with [`ErrorKind::NotFound`](crate::ErrorKind::NotFound): that kind
    /// means a missing credential, and a check is about the backend. A backend whose
    /// check meets a "not found" (a namespace or an endpoint missing) reports it as
    /// another kind, [`ErrorKind::Unexpected`](crate::ErrorKind::Unexpected) unless a more
    /// precise one fits.
    async fn check(&self) -> Result<()>;

    /// Whether `target` lies where this backend keeps credbridge's own credentials (Vault:
    /// `{mount}/{path_prefix}`, AWS: names starting with `name_prefix`): entries no
    /// reference may name, since a credential that referenced another would hand one
    /// scope's secrets to another. Cheap; no I/O. Always `false` for a target of another
    /// backend's kind.
    fn owns(&self, target: &ReferenceTarget) -> bool;

    /// Reads an entry credbridge does not own — a secret an organization already keeps in
    /// this vault — for the credential fields that reference it, through the backend's own
    /// connection and login.
    ///
    /// - Every call asks the vault again (nothing is cached), so what it returns is the
    ///   entry as it is now: a value rotated in the vault is what the next call returns.
    /// - A target of another backend's kind, and every target of a backend that cannot
    ///   resolve references (memory), is refused with
    ///   [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig); nothing is read.
    /// - A target this backend [`owns`](Backend::owns) is refused with
    ///   [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied); nothing is read.
    /// - [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when nothing readable is
    ///   there: no entry, an entry deleted or scheduled for deletion, a Vault path that is
    ///   not in a KV mount.
    /// - [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) when
    ///   credbridge's identity may not read it.
    ///
    /// Each backend states what it reads: Vault, the latest version of the KV secret at
    /// the target's path, the KV version asked of Vault once per mount; AWS,
    /// `GetSecretValue` by name or ARN (the whole string, and its keys when it is a JSON
    /// object).
    async fn read_reference(&self, target: &ReferenceTarget) -> Result<ReferencedEntry>;

    /// When the backend's current login (a Vault token, say) expires, for the metric that
    /// warns before it does. `None` for backends whose credentials do not expire.
    fn login_expires_at(&self) -> Option<std::time::SystemTime> {
        None
    }
}

/// What [`Backend::info`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// The `kind` name used in configuration: `memory`, `vault`, `aws`.
    pub kind: &'static str,
    pub capabilities: Capabilities,
}

/// Facts about a backend that change how the service runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Documents survive a restart of credbridge. A backend that is not persistent is for
    /// development only, which is why it may run with a generated token.
    pub persistent: bool,
    /// Several credbridge replicas can share the store.
    pub shared: bool,
}

/// Where a document lives: a scope (one per inbound token group) and an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub scope: Scope,
    pub id: CredentialId,
}

impl Key {
    pub fn new(scope: Scope, id: CredentialId) -> Self {
        Self { scope, id }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.id)
    }
}

/// Why a scope or id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {reason}")]
pub struct InvalidName {
    pub what: &'static str,
    pub reason: &'static str,
}

/// Checks the one alphabet every name shares: ASCII letters, digits, `_` and `-`.
fn check_name(
    what: &'static str,
    value: &str,
    max_len: usize,
    too_long: &'static str,
) -> Result<(), InvalidName> {
    let invalid = |reason| Err(InvalidName { what, reason });
    if value.is_empty() {
        return invalid("is empty");
    }
    if value.len() > max_len {
        return invalid(too_long);
    }
    if !value
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    {
        return invalid("may contain only ASCII letters, digits, '_' and '-'");
    }
    Ok(())
}

/// The namespace of one group of inbound tokens (one Skyvern organization, say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub const MAX_LEN: usize = 64;
    pub const DEFAULT: &'static str = "default";

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        check_name(
            "scope",
            value,
            Self::MAX_LEN,
            "is longer than 64 characters",
        )?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A credential's id: minted by [`CredentialId::generate`], or parsed from a request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct CredentialId(String);

impl CredentialId {
    pub const MAX_LEN: usize = 128;
    const PREFIX: &'static str = "cred_";

    /// A fresh id: `cred_` and 128 random bits from the operating system, in lowercase hex.
    ///
    /// Fresh on every call, even for the same credential name: Skyvern updates a credential
    /// by creating the new one before deleting the old.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        // Without the OS generator there is no safe id to mint; this is not recoverable.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
        Self(format!("{}{}", Self::PREFIX, hex::encode(bytes)))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        check_name("id", value, Self::MAX_LEN, "is longer than 128 characters")?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_cred_and_32_lowercase_hex() {
        let id = CredentialId::generate();
        let hex = id.as_str().strip_prefix("cred_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(CredentialId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn generated_ids_differ() {
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| CredentialId::generate()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn ids_accept_letters_digits_underscore_and_dash() {
        assert!(CredentialId::parse("Abc_09-x").is_ok());
        assert!(CredentialId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn ids_refuse_separators_dots_encodings_and_excess() {
        for bad in [
            "", "a/b", "..", ".", "a.b", "%2F", "a b", "é", "a\0", "a\\b", "*",
        ] {
            assert!(CredentialId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let error = CredentialId::parse(&"a".repeat(129)).unwrap_err();
        assert_eq!(error.to_string(), "id is longer than 128 characters");
    }

    #[test]
    fn scopes_are_at_most_64_characters() {
        assert!(Scope::parse(&"s".repeat(64)).is_ok());
        assert_eq!(
            Scope::parse(&"s".repeat(65)).unwrap_err().to_string(),
            "scope is longer than 64 characters"
        );
        assert!(Scope::parse("team/a").is_err());
    }
}
