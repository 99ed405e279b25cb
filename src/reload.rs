//! Token reloading: on SIGHUP and whenever a token file changes, the token list is read
//! again, entry by entry, while credbridge serves. (TLS files reload in [`crate::tls`].)

use std::sync::Arc;
use std::time::Duration;

use crate::app::SettingsSource;
use crate::auth::{ReloadOutcome, TokenSources, TokenStore};
use crate::metrics::Metrics;
use crate::watch::{ticker, WatchedFiles};

/// SIGHUP, registered now: once it is, a SIGHUP is never met by the default action (which
/// ends the process). `None` where there is no SIGHUP.
pub fn hangup() -> Option<Hangup> {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    return None;
}

#[cfg(unix)]
pub type Hangup = tokio::signal::unix::Signal;
/// Elsewhere there is no SIGHUP; token files are still watched.
#[cfg(not(unix))]
pub type Hangup = NoSignal;
#[cfg(not(unix))]
pub struct NoSignal;
#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

/// What a token reload needs: where the list lives, what it was read from, and where to
/// report how the reload went.
pub struct TokenReloader {
    pub tokens: TokenStore,
    pub sources: TokenSources,
    pub files: WatchedFiles,
    pub source: SettingsSource,
    pub metrics: Option<Arc<Metrics>>,
}

/// Reloads the token list on SIGHUP and whenever a token file changes, entry by entry
/// ([`TokenSources::reload`]). Every outcome is logged, counted in the metrics and shown by
/// `/readyz`.
pub async fn reload_tokens(
    reloader: TokenReloader,
    interval: Duration,
    mut hangup: Option<Hangup>,
) {
    let TokenReloader {
        tokens,
        mut sources,
        mut files,
        source,
        metrics,
    } = reloader;
    let mut ticks = ticker(interval);
    loop {
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = ticks.tick() => {
                if !files.changed() {
                    continue;
                }
                "a token file changed"
            }
            _ = signalled => "SIGHUP",
        };
        let source = Arc::clone(&source);
        let mut working = sources.clone();
        let reloaded = tokio::task::spawn_blocking(move || {
            let reloaded = working.reload(source());
            (working, reloaded)
        })
        .await;
        let reloaded = match reloaded {
            Ok((working, reloaded)) => {
                sources = working;
                reloaded
            }
            Err(error) => {
                tracing::error!(%error, "token reload task failed");
                continue;
            }
        };
        tokens.apply(&reloaded);
        files.replace(reloaded.authenticator.files().to_vec());
        if let Some(metrics) = &metrics {
            metrics.token_reloaded(reloaded.outcome);
        }
        let outcome = reloaded.outcome.as_str();
        let scopes = reloaded.authenticator.scopes().len();
        let mut problems = reloaded.problems.iter();
        if reloaded.outcome == ReloadOutcome::Failed {
            if let Some(error) = problems.next() {
                tracing::error!(
                    reason,
                    %error,
                    "the configuration cannot be loaded: the tokens in force stay, each read \
                     again from its own source"
                );
            }
        }
        for error in problems {
            tracing::warn!(reason, %error, "a token entry is left out");
        }
        if reloaded.authenticator.is_empty() {
            tracing::warn!(
                reason,
                outcome,
                "no token is in force: every credential request is refused until one is configured"
            );
        } else if reloaded.outcome == ReloadOutcome::Applied {
            tracing::info!(reason, outcome, scopes, "tokens reloaded");
        } else {
            tracing::warn!(reason, outcome, scopes, "tokens reloaded in part");
        }
    }
}
