//! The listener: accepts connections, plain or TLS, and serves HTTP/1.1 on them with hyper,
//! bounded in number and in time, so that clients that connect and then stall cannot hold
//! the service's file descriptors.
//!
//! - At most `http.max_connections` connections are open at once, TLS handshakes included.
//!   Beyond that, connections are not accepted: they wait in the kernel's listen backlog
//!   (holding no file descriptor of this process) until one closes, so a burst of clients
//!   is served late rather than refused. When the cap is reached, idle kept-alive
//!   connections are closed first, to make room.
//! - A TLS client has `tls.handshake_timeout` to finish its handshake.
//! - A request's head must be complete within `http.header_read_timeout` of the connection
//!   opening (after the handshake), or of the first byte of a later request on a kept-alive
//!   connection; it may be at most `http.max_header_bytes` long (431 beyond).
//! - Between requests, a connection may stay idle for `http.idle_timeout`; that time starts
//!   when a response is ready, so it also bounds a client that stops reading its response.
//! - While a request is being handled, `http.request_timeout` bounds it (in the router).
//!
//! hyper's own header timer also runs while a kept-alive connection waits for its next
//! request, so on its own it cannot tell a slow head from an idle connection (a short
//! header timeout would close kept-alive connections under reverse proxies that reuse
//! them). [`ConnectionClock`] enforces each timeout; hyper's timer stays as a backstop at
//! their sum.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::ClientAddr;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::tls::SharedTlsConfig;

/// File descriptors kept for everything but client connections: the listener, the
/// runtime, logs, token and certificate files.
const RESERVED_FDS: u64 = 64;

/// The bounds on every connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub handshake_timeout: Duration,
}

impl ConnectionLimits {
    pub fn new(settings: &Settings) -> Self {
        Self {
            header_read_timeout: settings.http.header_read_timeout,
            idle_timeout: settings.http.idle_timeout,
            max_connections: settings.http.max_connections,
            max_header_bytes: settings.http.max_header_bytes,
            handshake_timeout: settings.tls.handshake_timeout,
        }
    }
}

/// How many connections can really be open at once: `configured`, unless the process's
/// open-file limit is lower. Each client connection may need a backend connection too, so
/// it gets half of what the limit leaves after a reserve.
pub fn connection_cap(configured: usize) -> usize {
    match open_file_limit() {
        Some(limit) => {
            let room =
                usize::try_from(limit.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        None => configured,
    }
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Raises the soft open-file limit to the hard one, as servers do at start-up: the default
/// soft limit (often 1024) is kept low for programs that use `select`, which credbridge
/// does not. Returns the limit in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited; a hard limit of "unlimited" is not a value the soft one can take.
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            limit.current = Some(maximum);
            if let Err(error) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(%error, "cannot raise the open-file limit");
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

/// What every connection task shares.
struct Shared {
    router: Router,
    http: http1::Builder,
    limits: ConnectionLimits,
    tls: Option<SharedTlsConfig>,
    metrics: Option<Arc<Metrics>>,
    /// Notified when every slot is taken: idle connections then close to make room.
    pressure: Notify,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting and
/// waits for open connections to finish their requests (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    tls: Option<SharedTlsConfig>,
    router: Router,
    limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        // A backstop only: see the module documentation.
        .header_read_timeout(limits.header_read_timeout + limits.idle_timeout)
        .max_header_size(limits.max_header_bytes);
    let cap = connection_cap(limits.max_connections);
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            serving = cap,
            open_file_limit = open_file_limit(),
            "http.max_connections is above what the open-file limit allows; raise the limit \
             (ulimit -n, or the container's nofile) to serve more connections at once"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let shared = Arc::new(Shared {
        router,
        http,
        limits,
        tls,
        metrics,
        pressure: Notify::new(),
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shared.pressure.notify_waiters();
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        // The semaphore is never closed.
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::error!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            Arc::clone(&shared),
            stream,
            peer,
            slot,
            graceful.watcher(),
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One connection, from accept to close, holding its slot throughout.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    watcher: Watcher,
) {
    let _open = shared.metrics.as_ref().map(Metrics::connection_opened);
    match &shared.tls {
        None => http(&shared, stream, peer, watcher).await,
        // Boxed: a TLS connection's state is large, and plain connections (a sidecar on
        // loopback) should not carry room for it in every task.
        Some(config) => Box::pin(tls(&shared, config, stream, peer, watcher)).await,
    }
}

async fn tls(
    shared: &Shared,
    config: &SharedTlsConfig,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
) {
    let acceptor = TlsAcceptor::from(config.load_full());
    match tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => http(shared, stream, peer, watcher).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake refused"),
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            shared.closed("tls_handshake_timeout");
        }
    }
}

impl Shared {
    fn closed(&self, reason: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.connection_closed(reason);
        }
    }
}

/// HTTP/1.1 on an open (and, with TLS, handshaken) connection.
async fn http<I>(shared: &Shared, io: I, peer: SocketAddr, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(ConnectionClock::new());
    let io = TokioIo::new(Clocked {
        inner: io,
        clock: Arc::clone(&clock),
    });
    let router = shared.router.clone();
    let request_clock = Arc::clone(&clock);
    let service = service_fn(move |mut request: Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo(ClientAddr(peer)));
        let handling = request_clock.handling();
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            drop(handling);
            response
        }
    });
    let mut connection = pin!(watcher.watch(shared.http.serve_connection(io, service)));
    loop {
        let deadline = clock.deadline(&shared.limits);
        let pressure = shared.pressure.notified();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection closed on an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if let Some(reason) = clock.expired(&shared.limits, Instant::now()) {
                    tracing::debug!(%peer, reason, "closing the connection");
                    shared.closed(reason);
                    return;
                }
            }
            () = pressure => {
                if clock.is_idle() {
                    tracing::debug!(%peer, "closing an idle connection to make room");
                    shared.closed("reclaimed");
                    return;
                }
            }
        }
    }
}

/// Where a connection is in its life, and since when: the state is one word, written and
/// read by the connection's own task only (its I/O, its requests and its watchdog are all
/// polled there), so relaxed atomics suffice.
struct ConnectionClock {
    origin: Instant,
    /// The phase in the top two bits; milliseconds since `origin` below.
    state: AtomicU64,
}

/// Waiting for a request's head to complete, since the connection opened or since the
/// first byte of the request arrived.
const READING_HEAD: u64 = 0;
/// A request is being handled; `http.request_timeout` bounds it.
const HANDLING: u64 = 1 << 62;
/// Between requests: since the last response was ready.
const IDLE: u64 = 2 << 62;
const PHASE: u64 = 3 << 62;

impl ConnectionClock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            state: AtomicU64::new(READING_HEAD),
        }
    }

    fn since_origin(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
            & !PHASE
    }

    fn set(&self, phase: u64) {
        let now = self.since_origin(Instant::now());
        self.state.store(phase | now, Ordering::Relaxed);
    }

    /// Bytes arrived: on an idle connection, a new request's head has begun.
    fn read(&self) {
        if self.state.load(Ordering::Relaxed) & PHASE == IDLE {
            self.set(READING_HEAD);
        }
    }

    /// A request is being handled until the returned guard is dropped.
    fn handling(self: &Arc<Self>) -> Handling {
        self.set(HANDLING);
        Handling(Arc::clone(self))
    }

    fn is_idle(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PHASE == IDLE
    }

    /// The phase's timeout and when it started; `None` while handling a request.
    fn phase_deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        let state = self.state.load(Ordering::Relaxed);
        let since = self.origin + Duration::from_millis(state & !PHASE);
        match state & PHASE {
            READING_HEAD => Some((since + limits.header_read_timeout, "header_read_timeout")),
            IDLE => Some((since + limits.idle_timeout, "idle_timeout")),
            _ => None,
        }
    }

    /// When to look again: the current phase's deadline, or, while a request is handled,
    /// after the shorter timeout (the request may end any time before).
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        match self.phase_deadline(limits) {
            Some((deadline, _)) => deadline,
            None => Instant::now() + limits.header_read_timeout.min(limits.idle_timeout),
        }
    }

    /// The timeout that has run out at `now`, if any.
    fn expired(&self, limits: &ConnectionLimits, now: Instant) -> Option<&'static str> {
        self.phase_deadline(limits)
            .filter(|(deadline, _)| *deadline <= now)
            .map(|(_, reason)| reason)
    }
}

/// A request in progress on a connection; when it ends, the connection is idle.
struct Handling(Arc<ConnectionClock>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.set(IDLE);
    }
}

/// A connection's I/O, telling its clock when bytes arrive.
struct Clocked<I> {
    inner: I,
    clock: Arc<ConnectionClock>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Clocked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Clocked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10,
            max_header_bytes: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_own_timeout() {
        let limits = limits();
        let clock = Arc::new(ConnectionClock::new());
        let opened = Instant::now();
        // A fresh connection must send its head within the header timeout.
        assert_eq!(clock.deadline(&limits), opened + limits.header_read_timeout);
        assert_eq!(
            clock.expired(&limits, opened + limits.header_read_timeout),
            Some("header_read_timeout")
        );

        // While a request is handled, no connection timeout applies.
        let handling = clock.handling();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(clock.expired(&limits, Instant::now()), None);

        // Once its response is ready, the connection is idle: the idle timeout applies,
        // not the header timeout.
        drop(handling);
        let idle_since = Instant::now();
        assert!(clock.is_idle());
        assert_eq!(
            clock.expired(&limits, idle_since + limits.header_read_timeout * 2),
            None
        );
        assert_eq!(
            clock.expired(&limits, idle_since + limits.idle_timeout),
            Some("idle_timeout")
        );

        // The first byte of the next request starts its header timeout.
        tokio::time::advance(Duration::from_secs(20)).await;
        clock.read();
        let head_since = Instant::now();
        assert!(!clock.is_idle());
        assert_eq!(
            clock.deadline(&limits),
            head_since + limits.header_read_timeout
        );
        // More bytes of the same head do not restart it.
        tokio::time::advance(Duration::from_secs(1)).await;
        clock.read();
        assert_eq!(
            clock.deadline(&limits),
            head_since + limits.header_read_timeout
        );
    }

    #[test]
    fn the_cap_never_exceeds_what_the_open_file_limit_allows() {
        let cap = connection_cap(usize::MAX);
        if let Some(limit) = open_file_limit() {
            assert!(
                (cap as u64) < limit,
                "{cap} connections with {limit} descriptors"
            );
        }
        assert_eq!(connection_cap(1), 1);
    }
}
