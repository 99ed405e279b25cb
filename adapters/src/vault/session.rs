//! The Vault token credbridge sends: obtained once, shared by every request, kept alive.
//!
//! A [`Session`] holds the current [`Login`] behind a lock that is only ever taken for
//! the length of an `Arc` clone, so requests never wait on each other or on a login. A
//! background task renews the token before its lease runs out, and logs in again when
//! renewal is no longer possible (the token is not renewable, or its max TTL is near).
//! When Vault answers 403 anyway (the token was revoked or expired early),
//! [`Session::recover`] asks Vault whether the token itself is dead and, only then, logs
//! in again once for all the requests that saw the 403.
//!
//! This is the outbound login, credbridge's identity towards Vault; the tokens Skyvern
//! presents to credbridge are the service's `auth` module.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;
use vaultrs::error::ClientError;

use super::client::Http;
use super::error::{classify, kind, Request};
use crate::{Error, ErrorKind, Result, SecretText};

/// How to get a token.
pub(crate) enum Method {
    /// A token handed to credbridge (config or `VAULT_TOKEN`): nothing to log in with.
    Static(SecretText),
    /// A token in a file that something else (Vault Agent, an operator) rewrites.
    TokenFile(PathBuf),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretSource,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt_path: PathBuf,
    },
}

/// A secret given inline or read from a file at every use (so it can be rotated).
pub(crate) enum SecretSource {
    Value(SecretText),
    File(PathBuf),
}

impl SecretSource {
    async fn read(&self, key: &'static str) -> Result<SecretText> {
        match self {
            SecretSource::Value(value) => Ok(value.clone()),
            SecretSource::File(path) => read_secret_file(path, key).await,
        }
    }
}

async fn read_secret_file(path: &PathBuf, key: &'static str) -> Result<SecretText> {
    let text = tokio::fs::read_to_string(path).await.map_err(|error| {
        Error::invalid_setting(key, "cannot read the file it names")
            .with_context("path", path.display())
            .with_source(error)
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(
            Error::invalid_setting(key, "names an empty file").with_context("path", path.display())
        );
    }
    Ok(SecretText::new(text))
}

/// A Vault token travels in an HTTP header: refuse one that cannot, rather than let the
/// client library panic building the request.
pub(crate) fn check_token_text(token: &SecretText, key: &'static str) -> Result<()> {
    if token.is_empty() {
        Err(Error::invalid_setting(key, "the Vault token is empty"))
    } else if token.expose().bytes().all(|byte| byte.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::invalid_setting(
            key,
            "a Vault token may contain only printable ASCII characters without spaces",
        ))
    }
}

/// Capped exponential backoff with jitter, for retrying Vault until it answers: many
/// replicas restarted together do not retry in step.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// How long to wait before the next attempt: a random point in the upper half of the
    /// current step, which then doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(Self::CAP);
        let mut random = [0u8; 4];
        let fraction = match getrandom::fill(&mut random) {
            Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        step.mul_f64(0.5 + fraction / 2.0)
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Method {
    fn can_log_in(&self) -> bool {
        matches!(self, Method::AppRole { .. } | Method::Kubernetes { .. })
    }

    /// The method's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Static(_) => "token",
            Method::TokenFile(_) => "token_file",
            Method::AppRole { .. } => "approle",
            Method::Kubernetes { .. } => "kubernetes",
        }
    }
}

impl Login {
    /// When this token expires, for the login-expiry metric.
    pub fn expires_at(&self) -> Option<std::time::SystemTime> {
        self.lease.expires_at()
    }
}

/// One token and what Vault said about its lifetime.
pub(crate) struct Login {
    pub token: SecretText,
    /// Counts logins, so that many requests denied with the same token log in once.
    pub generation: u64,
    lease: Lease,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    /// When Vault granted (or last renewed) the lease.
    since: Instant,
    /// `None`: the token never expires (a root token, a TTL of 0).
    ttl: Option<Duration>,
    renewable: bool,
    /// The TTL granted at login: a renewal that grants much less means the max TTL is near.
    first_ttl: Option<Duration>,
}

impl Lease {
    fn new(ttl_seconds: u64, renewable: bool) -> Self {
        let ttl = (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds));
        Self {
            since: Instant::now(),
            ttl,
            renewable,
            first_ttl: ttl,
        }
    }

    /// When to act: two thirds into the lease, leaving a third of it for retries.
    fn refresh_at(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.since + ttl * 2 / 3)
    }

    /// When the token expires, on the wall clock; `None` when it never does.
    fn expires_at(&self) -> Option<std::time::SystemTime> {
        let left = (self.since + self.ttl?).saturating_duration_since(Instant::now());
        Some(std::time::SystemTime::now() + left)
    }

    /// Renewal can still extend the token meaningfully.
    fn worth_renewing(&self) -> bool {
        match (self.ttl, self.first_ttl) {
            (Some(ttl), Some(first)) => self.renewable && ttl * 2 > first,
            _ => false,
        }
    }
}

/// The current login, shared by every request.
pub(crate) struct Session {
    http: Arc<Http>,
    method: Method,
    current: RwLock<Arc<Login>>,
    /// Serializes re-logins only; requests never take it on their way to Vault.
    relogin: tokio::sync::Mutex<()>,
}

/// How often a token file is checked for a new token.
const TOKEN_FILE_POLL: Duration = Duration::from_secs(2);

impl Session {
    /// Takes over a first login made by [`obtain`] and keeps its token alive in a
    /// background task that ends when the session is dropped.
    pub fn start(http: Arc<Http>, method: Method, first: Obtained) -> Arc<Self> {
        let Obtained { token, lease } = first;
        let session = Arc::new(Self {
            http,
            method,
            current: RwLock::new(Arc::new(Login {
                token,
                generation: 1,
                lease,
            })),
            relogin: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(keep_alive(Arc::downgrade(&session)));
        session
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// The token to send now.
    pub fn current(&self) -> Arc<Login> {
        // A poisoned lock only means a panic while swapping an `Arc`; the value is whole.
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    fn install(&self, token: SecretText, lease: Lease, generation: u64) -> Arc<Login> {
        let login = Arc::new(Login {
            token,
            generation,
            lease,
        });
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::clone(&login);
        login
    }

    /// After Vault answered 403 to a request made with `denied`: returns `true` when a new
    /// token is in place (retry the request once), `false` when the 403 stands (the token
    /// is valid; its policy does not allow the path).
    pub async fn recover(&self, denied: &Login) -> Result<bool> {
        let _one_at_a_time = self.relogin.lock().await;
        let current = self.current();
        if current.generation != denied.generation {
            // Another request already logged in again while this one waited.
            return Ok(true);
        }
        // A 403 says "permission denied" both for a dead token and for a path outside the
        // policy; lookup-self tells them apart without reading Vault's message.
        match vaultrs::token::lookup_self(&self.http.conn(current.token.expose())).await {
            Ok(_) => return Ok(false),
            Err(error) if kind(&error, Request::Other) == ErrorKind::PermissionDenied => {}
            Err(error) => return Err(classify(error, Request::Other, "look up the token")),
        }
        tracing::info!(
            method = self.method.name(),
            "the Vault token is no longer valid"
        );
        match &self.method {
            Method::Static(_) => Ok(false),
            Method::TokenFile(path) => {
                let token = read_secret_file(path, "backend.auth.token_file").await?;
                if token == current.token {
                    return Ok(false);
                }
                let lease = lookup_lease(&self.http, &token).await?;
                self.install(token, lease, current.generation + 1);
                Ok(true)
            }
            Method::AppRole { .. } | Method::Kubernetes { .. } => {
                let Obtained { token, lease } = obtain(&self.http, &self.method).await?;
                self.install(token, lease, current.generation + 1);
                Ok(true)
            }
        }
    }

    /// One step of the keep-alive task: renew, log in again, or re-read the token file.
    async fn refresh(&self) -> Result<()> {
        let _one_at_a_time = self.relogin.lock().await;
        let current = self.current();
        match &self.method {
            Method::TokenFile(path) => self.reread(path, &current).await,
            _ => self.renew_or_login(&current).await,
        }
    }

    async fn renew_or_login(&self, current: &Login) -> Result<()> {
        let Some(due) = current.lease.refresh_at() else {
            return Ok(());
        };
        if Instant::now() < due {
            return Ok(());
        }
        if current.lease.worth_renewing() {
            let conn = self.http.conn(current.token.expose());
            match vaultrs::token::renew_self(&conn, None).await {
                Ok(auth) => {
                    let mut lease = Lease::new(auth.lease_duration, auth.renewable);
                    lease.first_ttl = current.lease.first_ttl;
                    tracing::debug!(
                        method = self.method.name(),
                        ttl_seconds = auth.lease_duration,
                        "renewed the Vault token"
                    );
                    // A renewal capped by the max TTL (to 0 when it is reached) will not
                    // be worth repeating: log in again now, while this token still works.
                    if !self.method.can_log_in() || lease.worth_renewing() {
                        self.install(current.token.clone(), lease, current.generation);
                        return Ok(());
                    }
                }
                Err(error) if is_unavailable(&error) => {
                    return Err(classify(error, Request::Other, "renew the token"));
                }
                // Any other answer means this token cannot be renewed: log in again, or,
                // for a token credbridge was given, stop trying to renew it.
                Err(_) if !self.method.can_log_in() => {
                    let mut lease = current.lease;
                    lease.renewable = false;
                    self.install(current.token.clone(), lease, current.generation);
                    return Ok(());
                }
                Err(_) => {}
            }
        }
        if self.method.can_log_in() {
            let Obtained { token, lease } = obtain(&self.http, &self.method).await?;
            self.install(token, lease, current.generation + 1);
            tracing::info!(method = self.method.name(), "logged in to Vault again");
        }
        Ok(())
    }

    async fn reread(&self, path: &PathBuf, current: &Login) -> Result<()> {
        let token = read_secret_file(path, "backend.auth.token_file").await?;
        if token != current.token {
            let lease = lookup_lease(&self.http, &token).await?;
            self.install(token, lease, current.generation + 1);
            tracing::info!("read a new Vault token from the token file");
        }
        Ok(())
    }

    fn next_wake(&self) -> Duration {
        let current = self.current();
        let renewal = current
            .lease
            .refresh_at()
            .filter(|_| current.lease.worth_renewing() || self.method.can_log_in())
            .map(|at| at.saturating_duration_since(Instant::now()));
        let wake = match (&self.method, renewal) {
            (Method::TokenFile(_), Some(renewal)) => renewal.min(TOKEN_FILE_POLL),
            (Method::TokenFile(_), None) => TOKEN_FILE_POLL,
            (_, Some(renewal)) => renewal,
            // Nothing to renew: look again later in case a login changes that.
            (_, None) => Duration::from_secs(60),
        };
        wake.max(Duration::from_millis(200))
    }
}

/// The keep-alive task: holds the session weakly, so dropping the backend stops it.
async fn keep_alive(session: Weak<Session>) {
    let mut wait = match session.upgrade() {
        Some(session) => session.next_wake(),
        None => return,
    };
    let mut backoff = Backoff::new();
    loop {
        tokio::time::sleep(wait).await;
        let Some(session) = session.upgrade() else {
            return;
        };
        wait = match session.refresh().await {
            Ok(()) => {
                backoff.reset();
                session.next_wake()
            }
            Err(error) => {
                let retry = backoff.next_delay();
                let method = session.method.name();
                if error.kind() == ErrorKind::Unavailable {
                    tracing::warn!(method, %error, ?retry, "cannot refresh the Vault token; retrying");
                } else {
                    tracing::error!(method, %error, ?retry, "Vault refused to refresh credbridge's token; retrying");
                }
                retry
            }
        };
    }
}

fn is_unavailable(error: &ClientError) -> bool {
    kind(error, Request::Other) == ErrorKind::Unavailable
}

/// A token and its lease, as a login (or a lookup of a given token) returned them.
pub(crate) struct Obtained {
    token: SecretText,
    lease: Lease,
}

impl Obtained {
    pub fn token(&self) -> &SecretText {
        &self.token
    }
}

/// Logs in with `method`, or reads the token it names; returns the token and its lease.
pub(crate) async fn obtain(http: &Arc<Http>, method: &Method) -> Result<Obtained> {
    let anonymous = http.conn("");
    let auth = match method {
        Method::Static(token) => {
            let lease = lookup_lease(http, token).await?;
            return Ok(Obtained {
                token: token.clone(),
                lease,
            });
        }
        Method::TokenFile(path) => {
            let token = read_secret_file(path, "backend.auth.token_file").await?;
            let lease = lookup_lease(http, &token).await?;
            return Ok(Obtained { token, lease });
        }
        Method::AppRole {
            mount,
            role_id,
            secret_id,
        } => {
            let secret_id = secret_id.read("backend.auth.secret_id_file").await?;
            vaultrs::auth::approle::login(&anonymous, mount, role_id, secret_id.expose())
                .await
                .map_err(|error| classify(error, Request::Login, "log in with AppRole"))?
        }
        Method::Kubernetes {
            mount,
            role,
            jwt_path,
        } => {
            let jwt = read_secret_file(jwt_path, "backend.auth.jwt_path").await?;
            vaultrs::auth::kubernetes::login(&anonymous, mount, role, jwt.expose())
                .await
                .map_err(|error| classify(error, Request::Login, "log in with Kubernetes"))?
        }
    };
    tracing::info!(
        method = method.name(),
        ttl_seconds = auth.lease_duration,
        "logged in to Vault"
    );
    Ok(Obtained {
        token: SecretText::new(auth.client_token),
        lease: Lease::new(auth.lease_duration, auth.renewable),
    })
}

/// Asks Vault about a token it was given (not one it issued to credbridge by login).
async fn lookup_lease(http: &Arc<Http>, token: &SecretText) -> Result<Lease> {
    check_token_text(token, "backend.auth.token")?;
    let info = vaultrs::token::lookup_self(&http.conn(token.expose()))
        .await
        .map_err(|error| classify(error, Request::Other, "look up the token"))?;
    Ok(Lease::new(info.ttl, info.renewable.unwrap_or(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_refreshed_two_thirds_in() {
        let lease = Lease::new(30, true);
        assert_eq!(
            lease.refresh_at(),
            Some(lease.since + Duration::from_secs(20))
        );
        assert!(lease.worth_renewing());
    }

    #[test]
    fn a_token_without_ttl_is_never_refreshed() {
        let lease = Lease::new(0, false);
        assert_eq!(lease.refresh_at(), None);
        assert!(!lease.worth_renewing());
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new();
        let mut step = Backoff::FIRST;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for a step of {step:?}"
            );
            step = (step * 2).min(Backoff::CAP);
        }
        assert!(backoff.next_delay() <= Backoff::CAP);
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::FIRST);
    }

    #[test]
    fn a_token_that_cannot_travel_in_a_header_is_refused() {
        assert!(check_token_text(&SecretText::new("s.abc-DEF_123.x"), "auth.token").is_ok());
        for bad in ["", "two words", "tab\there", "line\nbreak", "é"] {
            assert!(
                check_token_text(&SecretText::new(bad), "auth.token").is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_renewal_capped_near_max_ttl_is_not_worth_repeating() {
        let mut lease = Lease::new(2, true);
        lease.first_ttl = Some(Duration::from_secs(30));
        assert!(!lease.worth_renewing());
        assert!(!Lease::new(30, false).worth_renewing());
    }
}
