//! The listener: accepts connections, plain or TLS, and serves HTTP/1.1 on them with hyper,
//! bounded in number and in time, so that clients that connect and then stall cannot hold
//! the service's file descriptors.
//!
//! - At most `http.max_connections` connections are open at once, TLS handshakes included.
//!   Beyond that, one more is accepted and waits for a slot; the others wait in the
//!   kernel's listen backlog (holding no file descriptor of this process), so a burst of
//!   clients is served late rather than refused.
//! - While a connection waits for a slot, open connections that can give theirs up without
//!   losing a request are closed to make room ([`OpenConnections::reclaim`]): every idle
//!   kept-alive one, every one that has spent over [`HEAD_GRACE`] on its TLS handshake or
//!   request head, and failing those the one that has spent longest on them. Otherwise
//!   clients that connect and send half a request (and nothing more) would hold every slot
//!   until the header timeout, and a valid client would wait behind all of them in the
//!   backlog. A request being handled is never cut short.
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

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// runtime, logs, token and certificate files, the one connection accepted beyond the cap.
const RESERVED_FDS: u64 = 64;
/// Time a connection may spend on its TLS handshake and request head before it is among the
/// first closed to make room at the cap: a client that sends its request at once needs a
/// few round trips, one that trickles it out is not worth a waiting client's slot.
const HEAD_GRACE: Duration = Duration::from_secs(1);
/// While a connection waits for a slot, how often to look again for one to close (the
/// connections asked may have started a request meanwhile, or none could be asked).
const RECLAIM_INTERVAL: Duration = Duration::from_millis(50);

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
    open: OpenConnections,
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
        open: OpenConnections::default(),
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    'serving: loop {
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
        // Accepted before a slot is free, so that connections are closed to make room only
        // when one is really waiting.
        let slot = loop {
            if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                break slot;
            }
            shared.open.reclaim(Instant::now());
            tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => break slot,
                    // The semaphore is never closed.
                    Err(_) => break 'serving,
                },
                () = tokio::time::sleep(RECLAIM_INTERVAL) => {}
                () = &mut shutdown => break 'serving,
            }
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
    let clock = Arc::new(ConnectionClock::new());
    let _registered = shared.open.register(&clock);
    match &shared.tls {
        None => http(&shared, stream, peer, watcher, clock).await,
        // Boxed: a TLS connection's state is large, and plain connections (a sidecar on
        // loopback) should not carry room for it in every task.
        Some(config) => Box::pin(tls(&shared, config, stream, peer, watcher, clock)).await,
    }
}

async fn tls(
    shared: &Shared,
    config: &SharedTlsConfig,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    clock: Arc<ConnectionClock>,
) {
    let acceptor = TlsAcceptor::from(config.load_full());
    let handshake = tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(stream));
    let handshake = tokio::select! {
        handshake = handshake => handshake,
        () = clock.reclaimed() => {
            tracing::debug!(%peer, "closing a TLS handshake to make room");
            shared.closed("reclaimed");
            return;
        }
    };
    match handshake {
        Ok(Ok(stream)) => http(shared, stream, peer, watcher, clock).await,
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
async fn http<I>(
    shared: &Shared,
    io: I,
    peer: SocketAddr,
    watcher: Watcher,
    clock: Arc<ConnectionClock>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The header timeout starts once the connection is open, TLS handshake included.
    clock.set(READING_HEAD);
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
            () = clock.reclaimed() => {
                tracing::debug!(%peer, "closing a connection to make room");
                shared.closed("reclaimed");
                return;
            }
        }
    }
}

/// The open connections, so that a connection waiting for a slot can have others make
/// room.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    clocks: Mutex<HashMap<u64, Arc<ConnectionClock>>>,
}

impl OpenConnections {
    /// Counts `clock`'s connection as open until the returned guard is dropped.
    fn register(&self, clock: &Arc<ConnectionClock>) -> Registered<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::clone(clock));
        Registered { open: self, id }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionClock>>> {
        self.clocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the connections that can give up their slot without losing a request to close:
    /// every idle one, and every one that has spent [`HEAD_GRACE`] or more on its TLS
    /// handshake or request head by `now`; when there is none, the one that has spent
    /// longest on them. Connections handling a request are left alone. Returns how many
    /// were asked; each closes only if it still can when it gets the word.
    fn reclaim(&self, now: Instant) -> usize {
        let open = self.lock();
        let mut asked = 0;
        let mut oldest: Option<(Instant, &ConnectionClock)> = None;
        for clock in open.values() {
            match clock.phase() {
                (IDLE, _) => {
                    clock.reclaim();
                    asked += 1;
                }
                (READING_HEAD, since) if now.saturating_duration_since(since) >= HEAD_GRACE => {
                    clock.reclaim();
                    asked += 1;
                }
                (READING_HEAD, since) if oldest.is_none_or(|(oldest, _)| since < oldest) => {
                    oldest = Some((since, clock));
                }
                _ => {}
            }
        }
        match oldest {
            Some((_, clock)) if asked == 0 => {
                clock.reclaim();
                1
            }
            _ => asked,
        }
    }
}

/// An open connection's place in [`OpenConnections`].
struct Registered<'a> {
    open: &'a OpenConnections,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

/// Where a connection is in its life, and since when: the state is one word, written by
/// the connection's own task only (its I/O, its requests and its watchdog are all polled
/// there), so relaxed atomics suffice. The accept loop reads it to choose which connections
/// to ask to make room; a stale read only asks one that then declines.
struct ConnectionClock {
    origin: Instant,
    /// The phase in the top two bits; milliseconds since `origin` below.
    state: AtomicU64,
    /// Told by the accept loop when this connection should close to make room.
    reclaim: Notify,
}

/// Waiting for a request's head to complete, since the connection opened (its TLS
/// handshake included, then since the handshake), or since the first byte of a later
/// request arrived.
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
            reclaim: Notify::new(),
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

    /// The phase, and when it began.
    fn phase(&self) -> (u64, Instant) {
        let state = self.state.load(Ordering::Relaxed);
        (
            state & PHASE,
            self.origin + Duration::from_millis(state & !PHASE),
        )
    }

    /// Whether closing the connection now loses no request: it is idle, or still waiting
    /// for a request's head.
    fn can_make_room(&self) -> bool {
        matches!(self.phase(), (IDLE | READING_HEAD, _))
    }

    /// Asks the connection to close to make room.
    fn reclaim(&self) {
        self.reclaim.notify_one();
    }

    /// Completes when the connection has been asked to close to make room and still can.
    async fn reclaimed(&self) {
        loop {
            self.reclaim.notified().await;
            if self.can_make_room() {
                return;
            }
        }
    }

    /// The phase's timeout and when it started; `None` while handling a request.
    fn phase_deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        match self.phase() {
            (READING_HEAD, since) => {
                Some((since + limits.header_read_timeout, "header_read_timeout"))
            }
            (IDLE, since) => Some((since + limits.idle_timeout, "idle_timeout")),
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
        assert_eq!(clock.phase().0, IDLE);
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
        assert_eq!(clock.phase().0, READING_HEAD);
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

    /// Whether `clock` has been asked to make room (and forgets that it was).
    fn asked(clock: &ConnectionClock) -> bool {
        use futures_util::FutureExt;
        clock.reclaim.notified().now_or_never().is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_idle_connections_and_slow_heads_make_room_and_requests_never_do() {
        let open = OpenConnections::default();
        let busy = Arc::new(ConnectionClock::new());
        let _registered = open.register(&busy);
        let _request = busy.handling();
        // Only a request in progress: nothing can make room.
        assert_eq!(open.reclaim(Instant::now()), 0);
        assert!(!asked(&busy));

        // Two heads within the grace: the one begun first makes room, alone.
        let first = Arc::new(ConnectionClock::new());
        let first_open = open.register(&first);
        tokio::time::advance(Duration::from_millis(300)).await;
        let second = Arc::new(ConnectionClock::new());
        let second_open = open.register(&second);
        assert_eq!(open.reclaim(Instant::now()), 1);
        assert!(asked(&first) && !asked(&second) && !asked(&busy));

        // Past the grace, every slow head makes room; so does every idle connection.
        tokio::time::advance(HEAD_GRACE).await;
        let idle = Arc::new(ConnectionClock::new());
        let idle_open = open.register(&idle);
        drop(idle.handling());
        assert_eq!(open.reclaim(Instant::now()), 3);
        assert!(asked(&first) && asked(&second) && asked(&idle) && !asked(&busy));

        // A closed connection is no longer among them.
        drop((first_open, second_open, idle_open));
        assert_eq!(open.reclaim(Instant::now()), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_asked_to_make_room_declines_while_it_handles_a_request() {
        let clock = Arc::new(ConnectionClock::new());
        let request = clock.handling();
        clock.reclaim();
        let declined = tokio::time::timeout(Duration::from_secs(1), clock.reclaimed()).await;
        assert!(declined.is_err(), "closed in the middle of a request");
        // Once its response is ready, it is idle: asked again, it closes.
        drop(request);
        clock.reclaim();
        tokio::time::timeout(Duration::from_secs(1), clock.reclaimed())
            .await
            .expect("an idle connection makes room");
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
