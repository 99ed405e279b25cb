//! The only error type backends return.
//!
//! Every backend classifies its SDK's errors into an [`ErrorKind`] once, where they enter
//! (each backend's `error.rs`); everything above works with the kind alone. The message and
//! context are for operators' logs: they name what failed and where, never a secret value.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, in terms the service can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key does not exist (including AWS secrets scheduled for deletion).
    NotFound,
    /// `put` found the key already present; nothing was written.
    AlreadyExists,
    /// The backend refused: the credentials credbridge uses lack a permission.
    PermissionDenied,
    /// The backend could not be reached, timed out, is sealed or is throttling.
    /// The same call may succeed later.
    Unavailable,
    /// The backend's configuration is wrong (start-up should stop), or the backend cannot
    /// do what was asked at all (resolve a reference of another kind).
    InvalidConfig,
    /// The backend holds as many credentials as it is allowed to; nothing was written.
    /// Retrying does not help until credentials are deleted or the limit is raised.
    Full,
    /// Anything else: a malformed answer, an unexpected status.
    Unexpected,
}

impl ErrorKind {
    /// A stable, lowercase name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Full => "full",
            ErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend error: a kind, a sentence, context pairs and the original cause.
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand used by every backend.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
        }
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn invalid_config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// A setting that cannot work, named as the operator wrote it (`backend.mount`, or a
    /// variable such as `VAULT_TOKEN`) ahead of the problem: `backend.mount: must be …`,
    /// the shape every configuration error of the service has.
    pub fn invalid_setting(name: impl fmt::Display, problem: impl fmt::Display) -> Self {
        Self::invalid_config(format!("{name}: {problem}"))
    }

    /// Adds a `key: value` pair that says where the error happened (an id, a path).
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// Keeps the underlying error, so the log shows the whole chain.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// True when the same call may succeed later without anything changing here.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)?;
        for (key, value) in &self.context {
            write!(f, ", {key}: {value}")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_message_kind_context_and_source() {
        let source = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Error::new(ErrorKind::Unavailable, "vault did not answer")
            .with_context("id", "cred_1")
            .with_source(source);
        assert_eq!(
            error.to_string(),
            "vault did not answer (unavailable), id: cred_1: refused"
        );
        assert!(error.is_retryable());
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn only_unavailable_is_retryable() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidConfig,
            ErrorKind::Full,
            ErrorKind::Unexpected,
        ] {
            assert!(!Error::new(kind, "x").is_retryable(), "{kind}");
        }
    }
}
