//! Start-up: from checked settings to a running server.
//!
//! [`App::build`] makes the backend (one client, one login), the authenticator and the
//! router; [`App::serve`] runs them on a listener the caller binds, so tests serve on port 0
//! in-process exactly as `main` serves on the configured address.

use std::future::Future;
use std::sync::Arc;

use credbridge_adapters::{Backend, SecretText};
use tokio::net::TcpListener;

use crate::api::{router, AppState};
use crate::auth::{generate_token, Authenticator};
use crate::config::{ConfigError, Settings};

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
}

/// A configured, not yet serving, credbridge.
pub struct App {
    router: axum::Router,
    backend: Arc<dyn Backend>,
    auth: Arc<Authenticator>,
    /// Set when no token was configured and one was made for this run.
    generated_token: Option<SecretText>,
}

impl App {
    /// Builds the backend described by `settings`, then the app around it.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        if settings.backend.persistent() && Authenticator::from_settings(settings)?.is_empty() {
            return Err(StartupError::NoToken(settings.backend.kind()));
        }
        let backend = settings
            .backend
            .build()
            .await
            .map_err(|source| StartupError::Backend {
                kind: settings.backend.kind(),
                source,
            })?;
        Self::with_backend(settings, backend)
    }

    /// The app around a backend the caller made (tests inject doubles this way).
    pub fn with_backend(
        settings: &Settings,
        backend: Arc<dyn Backend>,
    ) -> Result<Self, StartupError> {
        let mut auth = Authenticator::from_settings(settings)?;
        let mut generated_token = None;
        if auth.is_empty() {
            let info = backend.info();
            if info.capabilities.persistent {
                return Err(StartupError::NoToken(info.kind));
            }
            let token = generate_token();
            auth = Authenticator::single(&token);
            generated_token = Some(token);
        }
        let auth = Arc::new(auth);
        let state = AppState {
            backend: Arc::clone(&backend),
            auth: Arc::clone(&auth),
            max_body_bytes: settings.http.max_body_bytes,
        };
        Ok(Self {
            router: router(state, &settings.base_path, settings.http.request_timeout),
            backend,
            auth,
            generated_token,
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The token made for this run, when none was configured (memory backend only).
    pub fn generated_token(&self) -> Option<&SecretText> {
        self.generated_token.as_ref()
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
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
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
