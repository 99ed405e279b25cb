//! What readiness rests on: the backend check that `/readyz` and the connection test share,
//! and the token list's reload status that `/readyz` reports.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credbridge_adapters::{Backend, Error as BackendError};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::auth::{ReloadOutcome, TokenStore};

/// The backend's `check()`, called at most once per interval however many callers ask:
/// `/readyz` answers anyone without a token, and on AWS each check is a `ListSecrets` call
/// against an account-wide quota, so probe traffic must not multiply into backend calls.
/// Callers that arrive while a check runs wait for its result (single flight); success and
/// failure alike are then reused for the interval.
pub struct SharedCheck {
    backend: Arc<dyn Backend>,
    interval: Duration,
    last: Mutex<Option<(Instant, CheckResult)>>,
}

/// A check's outcome, shared by every caller that gets it.
pub type CheckResult = Result<(), Arc<BackendError>>;

impl SharedCheck {
    pub const INTERVAL: Duration = Duration::from_secs(1);

    pub fn new(backend: Arc<dyn Backend>, interval: Duration) -> Self {
        Self {
            backend,
            interval,
            last: Mutex::new(None),
        }
    }

    /// The backend's check result, at most `interval` old.
    pub async fn check(&self) -> CheckResult {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < self.interval {
                return result.clone();
            }
        }
        let result = self.backend.check().await.map_err(Arc::new);
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

/// How the token list's last reload went. Informational: a failed reload does not make
/// the service unready, since the tokens in force still answer.
#[derive(Debug, Serialize)]
pub struct TokenStatus {
    /// `applied`, `partial` or `failed`; `null` before the first reload.
    last_reload: Option<&'static str>,
    /// When, as RFC 3339.
    last_reload_at: Option<String>,
    /// True when the last reload did not apply in full.
    reload_failing: bool,
}

impl TokenStatus {
    pub fn of(tokens: &TokenStore) -> Self {
        let last = tokens.last_reload();
        Self {
            last_reload: last.map(|(outcome, _)| outcome.as_str()),
            last_reload_at: last.map(|(_, at)| rfc3339(at)),
            reload_failing: last.is_some_and(|(outcome, _)| outcome != ReloadOutcome::Applied),
        }
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use credbridge_adapters::{
        BackendInfo, Capabilities, CredentialId, Document, ErrorKind, Key, ReferenceTarget,
        ReferencedEntry, Scope,
    };

    use super::*;

    /// Counts checks; each takes 100 ms and fails while `failing` is set.
    #[derive(Default)]
    struct CountingBackend {
        checks: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Backend for CountingBackend {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "counting",
                capabilities: Capabilities {
                    persistent: false,
                    shared: false,
                },
            }
        }
        async fn put(&self, _: &Key, _: &Document) -> credbridge_adapters::Result<()> {
            unreachable!("only checks are called")
        }
        async fn get(&self, _: &Key) -> credbridge_adapters::Result<Document> {
            unreachable!("only checks are called")
        }
        async fn delete(&self, _: &Key) -> credbridge_adapters::Result<()> {
            unreachable!("only checks are called")
        }
        async fn list(&self, _: &Scope) -> credbridge_adapters::Result<Vec<CredentialId>> {
            unreachable!("only checks are called")
        }
        async fn check(&self) -> credbridge_adapters::Result<()> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.failing.load(Ordering::SeqCst) {
                Err(BackendError::new(ErrorKind::Unavailable, "scripted"))
            } else {
                Ok(())
            }
        }
        fn owns(&self, _: &ReferenceTarget) -> bool {
            unreachable!("only checks are called")
        }
        async fn read_reference(
            &self,
            _: &ReferenceTarget,
        ) -> credbridge_adapters::Result<ReferencedEntry> {
            unreachable!("only checks are called")
        }
    }

    // Paused time: every caller is queued before the first check's 100 ms elapse, and the
    // interval is measured exactly, so the counts below do not depend on the machine.
    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_check_and_its_result_is_reused_for_the_interval() {
        let backend = Arc::new(CountingBackend::default());
        let shared = Arc::new(SharedCheck::new(backend.clone(), SharedCheck::INTERVAL));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { shared.check().await })
            })
            .collect();
        for caller in callers {
            assert!(caller.await.unwrap().is_ok());
        }
        assert_eq!(backend.checks.load(Ordering::SeqCst), 1);

        // A failure is shared and reused the same way.
        tokio::time::advance(SharedCheck::INTERVAL).await;
        backend.failing.store(true, Ordering::SeqCst);
        assert!(shared.check().await.is_err());
        tokio::time::advance(SharedCheck::INTERVAL / 2).await;
        backend.failing.store(false, Ordering::SeqCst);
        let reused = shared.check().await.unwrap_err();
        assert_eq!(reused.kind(), ErrorKind::Unavailable);
        assert_eq!(backend.checks.load(Ordering::SeqCst), 2);

        tokio::time::advance(SharedCheck::INTERVAL).await;
        assert!(shared.check().await.is_ok());
        assert_eq!(backend.checks.load(Ordering::SeqCst), 3);
    }
}
