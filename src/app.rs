//! Start-up: from checked settings to a running server.
//!
//! [`App::build`] makes the backend (one client, one login), the token list, the limits,
//! the audit log, the metrics and the router; [`App::serve`] runs them on a listener the
//! caller binds, so tests serve on port 0 in-process exactly as `main` serves on the
//! configured address. Background duties (token and certificate reloads, pruning of rate
//! limit state) live exactly as long as `serve`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use credbridge_adapters::{Backend, BackendInfo, SecretText};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::api::{router, AppState, AppStateInner, ClientAddresses, Routes, SharedCheck};
use crate::audit::AuditLog;
use crate::auth::{generate_token, Authenticator, TokenSources, TokenStore};
use crate::config::{ConfigError, Settings, TlsSettings};
use crate::limits::RateLimits;
use crate::metrics::{MeteredBackend, Metrics};
use crate::references::{Allowlist, References};
use crate::reload::{self, reload_tokens, TokenReloader};
use crate::server::{self, ConnectionLimits};
use crate::tls::{self, SharedTlsConfig};
use crate::watch::WatchedFiles;

/// Why credbridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("backend '{kind}': {source}")]
    Backend {
        kind: &'static str,
        source: credbridge_adapters::Error,
    },
    #[error(
        "no token is configured, and the '{0}' backend stores real credentials: \
         set CREDBRIDGE_TOKEN, `token`, or [[auth.tokens]] (only the memory backend \
         runs with a generated token)"
    )]
    NoToken(&'static str),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Audit(String),
}

/// Reads the configuration again, for reloads: from the same file and environment in
/// production, from a fixed value in tests.
pub type SettingsSource = Arc<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// A configured, not yet serving, credbridge.
pub struct App {
    router: axum::Router,
    backend: Arc<dyn Backend>,
    tokens: TokenStore,
    limits: Option<Arc<RateLimits>>,
    tls: Option<(TlsSettings, SharedTlsConfig)>,
    connection_limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
    source: SettingsSource,
    /// The token entries in force, which reloads start from.
    token_sources: TokenSources,
    /// The token files as they were when read, so a change made before serving starts is
    /// still seen.
    token_files: WatchedFiles,
    reload_interval: Duration,
    /// Set when no token was configured and one was made for this run.
    generated_token: Option<SecretText>,
}

impl App {
    /// Builds the backend described by `settings`, then the app around it.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        // Tokens (and token files) are read once, before connecting, so a token-less
        // persistent backend is refused without being touched.
        let tokens = tokens_for(
            settings.backend.info(),
            Authenticator::from_settings(settings)?,
        )?;
        let backend = settings
            .backend
            .build()
            .await
            .map_err(|source| StartupError::Backend {
                kind: settings.backend.kind(),
                source,
            })?;
        Self::assemble(settings, backend, tokens)
    }

    /// The app around a backend the caller made (tests inject doubles this way).
    pub fn with_backend(
        settings: &Settings,
        backend: Arc<dyn Backend>,
    ) -> Result<Self, StartupError> {
        let tokens = tokens_for(backend.info(), Authenticator::from_settings(settings)?)?;
        Self::assemble(settings, backend, tokens)
    }

    fn assemble(
        settings: &Settings,
        backend: Arc<dyn Backend>,
        (auth, generated_token): (Authenticator, Option<SecretText>),
    ) -> Result<Self, StartupError> {
        let tokens = TokenStore::new(auth);
        // With metrics off, nothing is counted: neither requests nor backend calls pay for it.
        let metrics = settings.metrics.enabled.then(|| Arc::new(Metrics::new()));
        let served_backend: Arc<dyn Backend> = match &metrics {
            Some(metrics) => Arc::new(MeteredBackend::new(
                Arc::clone(&backend),
                Arc::clone(metrics),
            )),
            None => Arc::clone(&backend),
        };
        let references = References::new(
            Allowlist::from_settings(&settings.references)?,
            Arc::clone(&served_backend),
            metrics.clone(),
        );
        let limits = RateLimits::new(&settings.rate_limit).map(Arc::new);
        let audit =
            AuditLog::open(&settings.audit, metrics.clone()).map_err(StartupError::Audit)?;
        let tls = if settings.tls.enabled() {
            let config = tls::load(&settings.tls).map_err(StartupError::Tls)?;
            Some((
                settings.tls.clone(),
                Arc::new(ArcSwap::from_pointee(config)),
            ))
        } else {
            None
        };
        let state = AppState::from(AppStateInner {
            clients: ClientAddresses::new(&settings.http)?,
            readiness: SharedCheck::new(Arc::clone(&served_backend), SharedCheck::INTERVAL),
            backend: served_backend,
            tokens: tokens.clone(),
            limits: limits.clone(),
            audit,
            metrics: metrics.clone(),
            metrics_auth: settings.metrics.token.as_ref().map(Authenticator::single),
            routes: Routes::new(&settings.base_path),
            max_body_bytes: settings.http.max_body_bytes,
            request_timeout: settings.http.request_timeout,
            references,
        });
        let fixed = settings.clone();
        let token_files = WatchedFiles::new(tokens.current().files().to_vec());
        Ok(Self {
            router: router(state),
            backend,
            tokens,
            limits,
            tls,
            connection_limits: ConnectionLimits::new(settings),
            metrics,
            source: Arc::new(move || Ok(fixed.clone())),
            token_sources: TokenSources::new(settings, generated_token.clone()),
            token_files,
            reload_interval: settings.auth.reload_interval,
            generated_token,
        })
    }

    /// Where token reloads read the configuration from (default: the settings given).
    pub fn reload_from(mut self, source: SettingsSource) -> Self {
        self.source = source;
        self
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The token list in force.
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// The token made for this run, when none was configured (memory backend only).
    pub fn generated_token(&self) -> Option<&SecretText> {
        self.generated_token.as_ref()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Aborted when `serve` returns, so nothing outlives the server.
        let mut background = JoinSet::new();
        // Registered before serving starts, so a SIGHUP sent once the server answers is
        // never met by the default action (which ends the process).
        let hangup = reload::hangup();
        background.spawn(reload_tokens(
            TokenReloader {
                tokens: self.tokens.clone(),
                sources: self.token_sources,
                files: self.token_files,
                source: Arc::clone(&self.source),
                metrics: self.metrics.clone(),
            },
            self.reload_interval,
            hangup,
        ));
        if let Some(limits) = self.limits.clone() {
            background.spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(60));
                loop {
                    ticks.tick().await;
                    limits.prune();
                }
            });
        }
        let tls = self.tls.map(|(settings, config)| {
            background.spawn(tls::watch(settings, Arc::clone(&config)));
            config
        });
        server::serve(
            listener,
            tls,
            self.router,
            self.connection_limits,
            self.metrics,
            shutdown,
        )
        .await
    }
}

/// Refuses to run a persistent backend without a configured token: it holds real
/// credentials, which a token made for one run (development only) must not guard.
pub fn require_token(info: BackendInfo, auth: &Authenticator) -> Result<(), StartupError> {
    if auth.is_empty() && info.capabilities.persistent {
        return Err(StartupError::NoToken(info.kind));
    }
    Ok(())
}

/// The token list to serve with, and the token made for this run when none is configured
/// and the backend is not persistent (development only: see [`require_token`]).
fn tokens_for(
    info: BackendInfo,
    auth: Authenticator,
) -> Result<(Authenticator, Option<SecretText>), StartupError> {
    require_token(info, &auth)?;
    if !auth.is_empty() {
        return Ok((auth, None));
    }
    let token = generate_token();
    Ok((Authenticator::single(&token), Some(token)))
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C received; finishing in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received; finishing in-flight requests"),
    }
}
