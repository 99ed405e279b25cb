//! The one table from Vault's answers to [`ErrorKind`].
//!
//! Every Vault call's error passes through [`classify`] once, where it enters credbridge.
//! The table matches on `vaultrs`'s typed error and the HTTP status, never on message
//! text; Vault's own error strings and response bodies stay out of the message (a KV v2
//! 404 body carries the secret's metadata, and bodies are not ours to log).
//!
//! | Vault's answer                                   | kind              |
//! |--------------------------------------------------|-------------------|
//! | 404                                              | `NotFound`        |
//! | 403                                              | `PermissionDenied`|
//! | 400 to a login (wrong role or secret id)         | `PermissionDenied`|
//! | 503 (sealed, no active node), 429 (rate limited) | `Unavailable`     |
//! | no answer: connection refused, reset, timeout    | `Unavailable`     |
//! | 400 to a check-and-set write                     | `AlreadyExists`   |
//! | anything else (other 4xx/5xx, undecodable body)  | `Unexpected`      |
//!
//! `sys/health` answers with a status code per node state; [`health`] is its table.

use rustify::errors::ClientError as HttpError;
use vaultrs::error::ClientError;

use crate::{Error, ErrorKind};

/// What the failed request was, where that changes the meaning of a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// A KV v2 write with `cas=0`: Vault answers 400 when the key already exists.
    CheckAndSet,
    /// A login: Vault answers credentials it does not accept with 400 (AppRole) or 403.
    Login,
    Other,
}

/// The HTTP status of Vault's answer, when there was one.
pub(crate) fn status(error: &ClientError) -> Option<u16> {
    match error {
        ClientError::APIError { code, .. } => Some(*code),
        // vaultrs leaves an error answer whose body has no `errors` array (a KV v2 404 for
        // a deleted version, a 503 from sys/health) as the transport's error.
        ClientError::RestClientError {
            source: HttpError::ServerResponseError { code, .. },
        } => Some(*code),
        _ => None,
    }
}

/// The kind of a Vault error: the table above.
pub(crate) fn kind(error: &ClientError, request: Request) -> ErrorKind {
    if let Some(code) = status(error) {
        return match (code, request) {
            (404, _) => ErrorKind::NotFound,
            (403, _) | (400, Request::Login) => ErrorKind::PermissionDenied,
            (503 | 429, _) => ErrorKind::Unavailable,
            (400, Request::CheckAndSet) => ErrorKind::AlreadyExists,
            _ => ErrorKind::Unexpected,
        };
    }
    match error {
        // The request never got an answer: refused, reset, timed out, TLS failed.
        ClientError::RestClientError {
            source: HttpError::RequestError { .. } | HttpError::ResponseError { .. },
        } => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

/// Turns a Vault error into credbridge's, saying what was being done (`action`).
pub(crate) fn classify(error: ClientError, request: Request, action: &'static str) -> Error {
    let kind = kind(&error, request);
    let code = status(&error);
    let message = match (kind, request, code) {
        (ErrorKind::NotFound, _, _) => "Vault has no secret at this path",
        (ErrorKind::AlreadyExists, _, _) => "a secret already exists at this path",
        (ErrorKind::PermissionDenied, Request::Login, _) => "Vault refused the login",
        (ErrorKind::PermissionDenied, _, _) => "Vault denied permission",
        (ErrorKind::Unavailable, _, None) => "cannot reach Vault",
        (ErrorKind::Unavailable, _, Some(429)) => "Vault is rate limiting requests",
        (ErrorKind::Unavailable, _, _) => "Vault is sealed or has no active node",
        _ => "Vault answered unexpectedly",
    };
    let mut classified = Error::new(kind, message).with_context("action", action);
    if let Some(code) = code {
        classified = classified.with_context("status", code);
    }
    // A request that got no answer: its root cause (refused, timed out, TLS) is what an
    // operator needs, and holds nothing Vault sent.
    if let ClientError::RestClientError {
        source: HttpError::RequestError { source, .. },
    } = &error
    {
        if let Some(cause) = source.chain().last() {
            classified = classified.with_context("cause", cause);
        }
    }
    // vaultrs's `Display` names the failure without the body (and without Vault's error
    // strings), so the source keeps the chain without leaking what Vault sent.
    classified.with_source(error)
}

/// What `sys/health`'s status code says about serving requests now: `Ok` when this node
/// can serve them, else why not. Codes as Vault documents them (api-docs/system/health);
/// a node answers them without a token and whatever its Enterprise features.
pub(crate) fn health(code: u16) -> Result<(), Error> {
    let (kind, message) = match code {
        // Active; or a standby, which forwards requests to the active node; or a
        // performance standby, which serves reads itself and forwards writes.
        200..=299 | 429 | 473 => return Ok(()),
        // A disaster-recovery secondary replicates but refuses client requests until it
        // is promoted, so forwarding does not help: not ready.
        472 => (
            ErrorKind::Unavailable,
            "Vault is a disaster-recovery secondary, which serves no requests",
        ),
        474 => (
            ErrorKind::Unavailable,
            "Vault is a standby that cannot reach its active node",
        ),
        501 => (ErrorKind::Unavailable, "Vault is not initialized"),
        503 => (ErrorKind::Unavailable, "Vault is sealed"),
        530 => (
            ErrorKind::Unavailable,
            "this Vault node was removed from its cluster",
        ),
        _ => (
            ErrorKind::Unexpected,
            "Vault's health endpoint answered unexpectedly",
        ),
    };
    Err(Error::new(kind, message)
        .with_context("action", "check Vault's health")
        .with_context("status", code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> ClientError {
        ClientError::APIError {
            code,
            errors: vec!["from vault".to_owned()],
        }
    }

    fn bare(code: u16) -> ClientError {
        ClientError::RestClientError {
            source: HttpError::ServerResponseError {
                code,
                content: Some("{\"data\":{\"metadata\":{}}}".to_owned()),
            },
        }
    }

    fn transport() -> ClientError {
        ClientError::RestClientError {
            source: HttpError::RequestError {
                source: anyhow_error(),
                url: "http://127.0.0.1:1/v1/secret/data/x".to_owned(),
                method: "GET".to_owned(),
            },
        }
    }

    fn anyhow_error() -> anyhow::Error {
        anyhow::Error::msg("connection refused")
    }

    #[test]
    fn row_404_is_not_found() {
        assert_eq!(kind(&api(404), Request::Other), ErrorKind::NotFound);
        // A KV v2 read of a deleted version: 404 whose body has no `errors` array.
        assert_eq!(kind(&bare(404), Request::Other), ErrorKind::NotFound);
    }

    #[test]
    fn row_403_is_permission_denied() {
        assert_eq!(kind(&api(403), Request::Other), ErrorKind::PermissionDenied);
        assert_eq!(
            kind(&api(403), Request::CheckAndSet),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn row_503_sealed_is_unavailable() {
        assert_eq!(kind(&api(503), Request::Other), ErrorKind::Unavailable);
        // sys/health answers a sealed Vault with 503 and its health document.
        assert_eq!(kind(&bare(503), Request::Other), ErrorKind::Unavailable);
        assert_eq!(kind(&api(429), Request::Other), ErrorKind::Unavailable);
    }

    #[test]
    fn row_connection_refused_or_timeout_is_unavailable() {
        assert_eq!(kind(&transport(), Request::Other), ErrorKind::Unavailable);
        let body_lost = ClientError::RestClientError {
            source: HttpError::ResponseError {
                source: anyhow_error(),
            },
        };
        assert_eq!(kind(&body_lost, Request::Other), ErrorKind::Unavailable);
    }

    #[test]
    fn row_400_to_a_login_is_permission_denied() {
        assert_eq!(kind(&api(400), Request::Login), ErrorKind::PermissionDenied);
        let error = classify(api(400), Request::Login, "log in with AppRole");
        assert_eq!(error.message(), "Vault refused the login");
    }

    #[test]
    fn no_answer_names_its_root_cause() {
        let refused = ClientError::RestClientError {
            source: HttpError::RequestError {
                source: anyhow_error().context("error sending request"),
                url: "http://127.0.0.1:1/v1/sys/health".to_owned(),
                method: "GET".to_owned(),
            },
        };
        let error = classify(refused, Request::Other, "check Vault's health");
        assert!(
            error.to_string().contains("cause: connection refused"),
            "{error}"
        );
    }

    #[test]
    fn unavailable_says_whether_vault_answered() {
        assert_eq!(
            classify(transport(), Request::Other, "read").message(),
            "cannot reach Vault"
        );
        assert_eq!(
            classify(api(503), Request::Other, "read").message(),
            "Vault is sealed or has no active node"
        );
    }

    #[test]
    fn health_active_standby_and_performance_standby_are_ready() {
        for code in [200, 429, 473] {
            assert!(health(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn health_sealed_uninitialized_dr_secondary_and_removed_are_unavailable() {
        for (code, said) in [
            (503, "sealed"),
            (501, "not initialized"),
            (472, "disaster-recovery"),
            (474, "cannot reach its active node"),
            (530, "removed"),
        ] {
            let error = health(code).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unavailable, "{code}");
            assert!(error.message().contains(said), "{code}: {error}");
        }
    }

    #[test]
    fn health_anything_else_is_unexpected() {
        for code in [400, 404, 500] {
            assert_eq!(health(code).unwrap_err().kind(), ErrorKind::Unexpected);
        }
    }

    #[test]
    fn row_400_on_check_and_set_is_already_exists() {
        assert_eq!(
            kind(&api(400), Request::CheckAndSet),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind(&api(400), Request::Other), ErrorKind::Unexpected);
    }

    #[test]
    fn row_anything_else_is_unexpected() {
        for code in [401, 405, 412, 500, 502] {
            assert_eq!(
                kind(&api(code), Request::Other),
                ErrorKind::Unexpected,
                "{code}"
            );
        }
        assert_eq!(
            kind(&ClientError::ResponseEmptyError, Request::Other),
            ErrorKind::Unexpected
        );
        let undecodable = ClientError::RestClientError {
            source: HttpError::ResponseParseError {
                source: anyhow_error(),
                content: None,
            },
        };
        assert_eq!(kind(&undecodable, Request::Other), ErrorKind::Unexpected);
    }

    #[test]
    fn the_message_never_carries_vaults_body_or_errors() {
        let error = classify(bare(404), Request::Other, "read");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("metadata"), "{shown}");
        let error = classify(api(403), Request::Other, "read");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("from vault"), "{shown}");
        assert!(shown.contains("status: 403"), "{shown}");
    }
}
