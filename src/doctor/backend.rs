//! The backend checks: reachable and logged in, a probe credential written, read and
//! deleted, and the login's remaining lifetime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credbridge_adapters::vault::VaultAuth;
use credbridge_adapters::{Backend, BackendConfig, CredentialId, Document, Error, ErrorKind};

use super::report::Check;
use crate::config::{reserved_key, Settings};

/// What to do about a backend error, by kind.
pub(super) fn fix_for(error: &Error, settings: &Settings) -> String {
    match error.kind() {
        ErrorKind::Unavailable => match settings.backend {
            BackendConfig::Vault(_) => {
                "check that Vault answers at backend.address from here (DNS, network \
                 policy, firewall, TLS) and that it is unsealed"
                    .to_owned()
            }
            BackendConfig::Aws(_) => "check that Secrets Manager is reachable from here \
                                      (region, endpoint_url, proxy or VPC endpoint) and that \
                                      AWS credentials are found"
                .to_owned(),
            BackendConfig::Memory(_) => "check that the backend is reachable from here".to_owned(),
        },
        ErrorKind::PermissionDenied => match settings.backend {
            BackendConfig::Vault(_) => {
                "give credbridge's Vault login the policy in the Vault docs (create, read, \
                 delete and list under {mount}/{path_prefix}), or check the token or role"
                    .to_owned()
            }
            BackendConfig::Aws(_) => "give credbridge's AWS identity the IAM policy in the \
                                      AWS docs (CreateSecret, GetSecretValue, DeleteSecret, \
                                      ListSecrets on the name prefix)"
                .to_owned(),
            BackendConfig::Memory(_) => "check the backend's permissions".to_owned(),
        },
        ErrorKind::InvalidConfig => {
            "correct the [backend] configuration (`credbridge check-config` checks it)".to_owned()
        }
        _ => "see the backend's own log for this request".to_owned(),
    }
}

/// The backend as the `backend` check left it.
pub(super) struct Connected {
    pub check: Check,
    /// `None` when it could not be built.
    pub backend: Option<Arc<dyn Backend>>,
    /// The readiness check found it unreachable: a probe would only wait for it again.
    pub unreachable: bool,
}

/// Builds the backend as `serve` does (a Vault login included) and runs its readiness check.
pub(super) async fn connect(settings: &Settings, timeout: Duration) -> Connected {
    const NAME: &str = "backend";
    let kind = settings.backend.kind();
    let failed = |check| Connected {
        check,
        backend: None,
        unreachable: false,
    };
    let backend = match tokio::time::timeout(timeout, settings.backend.build()).await {
        Ok(Ok(backend)) => backend,
        Ok(Err(error)) => {
            let fix = fix_for(&error, settings);
            return failed(Check::fail(
                NAME,
                format!("cannot connect to {kind}: {error}"),
                fix,
            ));
        }
        Err(_) => {
            return failed(Check::fail(
                NAME,
                format!("connecting to {kind} took more than {}", seconds(timeout)),
                "check that the backend is reachable from here",
            ))
        }
    };
    // A backend may still be connecting right after it is built (Vault logs in in the
    // background): it gets `timeout` to get there.
    let ready = crate::migrate::until_ready(backend.as_ref(), timeout);
    let (check, unreachable) = match tokio::time::timeout(timeout * 2, ready).await {
        Ok(Ok(())) if !backend.info().capabilities.persistent => (
            Check::warn(
                NAME,
                format!("{kind}: reachable, but it keeps credentials in one process only"),
                "use it for development only: every credbridge process has its own, lost on \
                 restart (the doctor checked its own, not the server's)",
            ),
            false,
        ),
        Ok(Ok(())) => (
            Check::ok(NAME, format!("{kind}: reachable, logged in, authorized")),
            false,
        ),
        Ok(Err(error)) => (
            Check::fail(
                NAME,
                format!("{kind} check failed: {error}"),
                fix_for(&error, settings),
            ),
            error.kind() == ErrorKind::Unavailable,
        ),
        Err(_) => (
            Check::fail(
                NAME,
                format!("{kind} did not answer within {}", seconds(timeout)),
                "check that the backend is reachable from here",
            ),
            true,
        ),
    };
    Connected {
        check,
        backend: Some(backend),
        unreachable,
    }
}

/// Creates, reads and deletes a probe credential under a reserved key
/// (`credbridge-doctor/doctor_probe_…`), cleaning up whatever step fails.
pub(super) async fn probe(backend: &dyn Backend, settings: &Settings, timeout: Duration) -> Check {
    const NAME: &str = "probe";
    let key = reserved_key(super::PROBE_TOOL, "probe");
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), "credbridge doctor probe".into());
    fields.insert("type".into(), "secret".into());
    fields.insert(
        "secret_value".into(),
        CredentialId::generate().to_string().into(),
    );
    let document = Document::new(fields);
    let step = |what: &'static str, error: Error| {
        let fix = fix_for(&error, settings);
        (what, error, fix)
    };
    let run = async {
        backend
            .put(&key, &document)
            .await
            .map_err(|error| step("create", error))?;
        let outcome = async {
            let read = backend
                .get(&key)
                .await
                .map_err(|error| step("read", error))?;
            if read != document {
                return Err((
                    "read",
                    Error::new(ErrorKind::Unexpected, "the probe read back differs"),
                    "the backend does not return what was stored: see its log".to_owned(),
                ));
            }
            backend
                .delete(&key)
                .await
                .map_err(|error| step("delete", error))?;
            match backend.get(&key).await {
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
                Ok(_) => Err((
                    "delete",
                    Error::new(ErrorKind::Unexpected, "the probe is still readable"),
                    "the backend kept a deleted credential: see its log".to_owned(),
                )),
                Err(error) => Err(step("read after delete", error)),
            }
        }
        .await;
        if outcome.is_err() {
            // Whatever failed, the probe must not stay behind.
            let _ = backend.delete(&key).await;
        }
        outcome
    };
    match tokio::time::timeout(timeout * 4, run).await {
        Ok(Ok(())) => Check::ok(
            NAME,
            format!("created, read and deleted a probe credential ({key})"),
        ),
        Ok(Err((what, error, fix))) => {
            let left = match backend.get(&key).await {
                Err(error) if error.kind() == ErrorKind::NotFound => String::new(),
                _ => format!("; the probe {key} may be left behind: delete it by hand"),
            };
            Check::fail(
                NAME,
                format!("cannot {what} a probe credential: {error}{left}"),
                fix,
            )
        }
        Err(_) => Check::fail(
            NAME,
            format!(
                "creating, reading and deleting a probe took more than {}; the probe {key} \
                 may be left behind",
                seconds(timeout * 4)
            ),
            "check the backend's latency and health",
        ),
    }
}

/// How a Vault login is kept: by logging in again, by re-reading a file, or not at all.
enum Renewal {
    LogsInAgain,
    TokenFile,
    Static,
}

fn renewal(config: &BackendConfig) -> Renewal {
    match config {
        BackendConfig::Vault(vault) => match &vault.auth {
            VaultAuth::Token(token) if token.token_file.is_some() => Renewal::TokenFile,
            VaultAuth::Token(_) => Renewal::Static,
            VaultAuth::Approle(_) | VaultAuth::Kubernetes(_) => Renewal::LogsInAgain,
        },
        _ => Renewal::LogsInAgain,
    }
}

/// The remaining lifetime of the login the backend made, against `warn_within`.
pub(super) fn login(backend: &dyn Backend, settings: &Settings, warn_within: Duration) -> Check {
    const NAME: &str = "login";
    let Some(expires_at) = backend.login_expires_at() else {
        // Only a Vault login has a lifetime credbridge knows; the AWS SDK renews whatever
        // its credential chain found (IRSA, an instance or task role) on its own.
        let message = match &settings.backend {
            BackendConfig::Aws(_) => "the AWS SDK refreshes its credentials itself",
            BackendConfig::Vault(_) => "the Vault token does not expire",
            BackendConfig::Memory(_) => "the memory backend has no login",
        };
        return Check::ok(NAME, message);
    };
    let Ok(left) = expires_at.duration_since(SystemTime::now()) else {
        return Check::fail(
            NAME,
            "the backend's login has expired",
            "give credbridge a valid Vault token, or use AppRole or Kubernetes login",
        );
    };
    let when = format!(
        "expires in {} ({})",
        human(left),
        humantime::format_rfc3339_seconds(expires_at)
    );
    match renewal(&settings.backend) {
        Renewal::LogsInAgain => Check::ok(
            NAME,
            format!("the Vault login {when}; credbridge logs in again before then"),
        ),
        Renewal::TokenFile => Check::ok(
            NAME,
            format!(
                "the Vault token {when}; credbridge renews it while Vault allows and re-reads \
                 token_file when it changes"
            ),
        ),
        Renewal::Static if left < warn_within => Check::warn(
            NAME,
            format!("the Vault token {when}"),
            "credbridge renews the token while Vault allows but cannot replace it: issue a \
             token with a longer max TTL, or use token_file (Vault Agent), AppRole or \
             Kubernetes login",
        ),
        Renewal::Static => Check::ok(NAME, format!("the Vault token {when}")),
    }
}

/// An error and its causes, outermost first: reqwest's own message rarely says why.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `3d 4h`, `12m 5s`, `800ms`: whole units, two at most.
pub(super) fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, unit) in units {
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            break;
        }
    }
    parts.join(" ")
}

pub(super) fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_have_two_units_at_most() {
        assert_eq!(human(Duration::from_millis(800)), "800ms");
        assert_eq!(human(Duration::from_secs(65)), "1m 5s");
        assert_eq!(
            human(Duration::from_secs(3 * 86_400 + 4 * 3_600 + 7)),
            "3d 4h"
        );
        assert_eq!(human(Duration::from_secs(86_400 + 30)), "1d");
        assert_eq!(human(Duration::from_secs(600)), "10m");
    }
}
