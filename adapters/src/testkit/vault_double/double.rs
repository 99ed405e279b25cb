//! The double's handle: where it listens, and the controls tests use to make it fail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::http::{router, Shared};
use super::state::{KubernetesRole, State};

/// A Vault server for tests, in-process on a loopback port, on the runtime that started
/// it: KV v2 at `secret/` and a root token that never expires, as `vault server -dev`.
pub struct VaultDouble {
    address: SocketAddr,
    shared: Arc<Shared>,
    listening: Mutex<Option<Listening>>,
    root_token: String,
}

struct Listening {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl VaultDouble {
    pub async fn start() -> Self {
        let mut state = State::default();
        let root_token = state.issue(None, false, "token");
        let shared = Arc::new(Shared::new(state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let double = Self {
            address,
            shared,
            listening: Mutex::new(None),
            root_token,
        };
        double.listen(listener);
        double
    }

    fn listen(&self, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let router = router(Arc::clone(&self.shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        *self.lock_listening() = Some(Listening { stop, task });
    }

    fn lock_listening(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listening
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// `http://127.0.0.1:<port>`, as `VAULT_ADDR`.
    pub fn address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A token that never expires.
    pub fn root_token(&self) -> String {
        self.root_token.clone()
    }

    /// Stops listening: new connections are refused and idle ones are closed, as when
    /// Vault's process is gone. Requests in flight are answered first.
    pub async fn stop(&self) {
        let listening = self.lock_listening().take();
        if let Some(Listening { stop, task }) = listening {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn resume(&self) {
        if self.lock_listening().is_some() {
            return;
        }
        // The port was ours a moment ago; the kernel may hold it briefly.
        for _ in 0..50 {
            if let Ok(listener) = std::net::TcpListener::bind(self.address) {
                self.listen(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the Vault double could not listen on {} again",
            self.address
        );
    }

    /// Answers every request only after `delay` (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay() = delay;
    }

    /// Enables Kubernetes auth at `mount` (if needed) with `role`, accepting `jwt` and
    /// issuing renewable tokens of `ttl`, renewable up to ten times that.
    pub fn add_kubernetes_role(&self, mount: &str, role: &str, jwt: &str, ttl: Duration) {
        self.shared.state().kubernetes.insert(
            (mount.to_owned(), role.to_owned()),
            KubernetesRole {
                jwt: jwt.to_owned(),
                ttl,
            },
        );
    }

    /// Ends every token issued by logins at `auth_mount` now, before its TTL: what a
    /// Vault restored from a backup, or a lease revoked by the expiration manager,
    /// leaves a client with.
    pub fn expire_logins(&self, auth_mount: &str) {
        let now = Instant::now();
        for token in self.shared.state().tokens.values_mut() {
            if token.issuer == auth_mount {
                token.expires_at = Some(now);
            }
        }
    }

    /// Successful logins at `auth_mount` so far.
    pub fn logins(&self, auth_mount: &str) -> usize {
        self.shared
            .state()
            .logins
            .get(auth_mount)
            .copied()
            .unwrap_or(0)
    }

    /// Successful `renew-self` calls so far.
    pub fn renewals(&self) -> usize {
        self.shared.state().renewals
    }
}
