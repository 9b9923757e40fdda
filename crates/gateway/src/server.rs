//! Data-plane listeners and workers.
//!
//! # Workers
//!
//! Like nginx, the gateway runs N workers (default: one per available core). Each worker
//! is an OS thread with a current-thread tokio runtime, its own `SO_REUSEPORT` listener
//! on the data address (the kernel spreads new connections across them), and its own
//! backend connection pools (see [`crate::proxy::client`]). A connection lives on one
//! core from accept to close: no work stealing, no cross-core pool locks. What workers
//! share is read-mostly: the configuration behind an `ArcSwap`, atomics for metrics and
//! counters, and the count of open connections against [`Limits::max_connections`].
//!
//! # Connections
//!
//! Each listener of a worker has an accept loop (`accept_tcp`, `accept_tls`), which does
//! two things per connection: `Worker::admit` (the connection limit; over it the socket
//! is closed at once, unanswered), then `Worker::serve_connection` on a task of its own.
//! `serve_connection` is generic over the transport, so the TLS listener runs the same
//! code after its handshake ([`crate::handshake`]): framing checks
//! ([`crate::proxy::framing`]), HTTP/1.1 or HTTP/2 with the [`Limits`], the request
//! path, graceful shutdown, and accounting. The TLS loop admits before the handshake (a
//! handshake costs more than anything else a client can make the gateway do) and runs
//! the handshake and the connection in one task started with `Worker::spawn`, so the
//! drain waits for it too.
//!
//! With `http3`, the process also has one QUIC endpoint on the HTTPS address (UDP), and
//! every worker an accept loop on it: see [`crate::http3`] for why one endpoint rather
//! than one per worker. HTTPS (TCP) responses then carry `Alt-Svc`, decided per
//! connection at its handshake.
//!
//! # Shutdown
//!
//! [`Gateway::shutdown`] drains in steps: `/readyz` starts failing, every worker stops
//! accepting (its listener is closed, so new connections are refused), open connections
//! finish their in-flight requests (HTTP/1.1 closes after the current response, HTTP/2
//! sends GOAWAY, HTTP/3 too), and after `drain_timeout` whatever is left is cut.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::GatewayState;
use crate::handshake;
use crate::http3::{self, Http3};
use crate::proxy;
use crate::proxy::body::ClientBody;
use crate::proxy::framing::FramingCheck;
use crate::tls::requires_client_certificate;

/// The default request body limit: 100 MiB. Bodies stream, so the limit is not about
/// memory; it bounds what one request can make a backend take in, and is what a
/// production gateway should have unless an API needs more (`--max-request-body-bytes
/// 0` turns it off).
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 100 * 1024 * 1024;

/// Limits applied to every client connection and request. docs/operations.md
/// ("Hardening") says what a client sees when it crosses each one.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line + headers) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Largest request body `forward-request buffer-request-body="true"` reads into
    /// memory; larger gets 413.
    pub max_buffered_body_bytes: u64,
    /// Longest request line (HTTP/1.1: method, target and version; HTTP/2 and HTTP/3:
    /// the `:path`) in bytes; longer gets 414.
    pub max_request_line_bytes: usize,
    /// Most headers in one request; more gets 431.
    pub max_headers: usize,
    /// Largest request body in bytes; larger gets 413. `None`: no limit (bodies stream,
    /// so size costs no memory). Default 100 MiB.
    pub max_request_body_bytes: Option<u64>,
    /// Time allowed for a client to send a request head (HTTP/1.1), counted from when
    /// the gateway starts waiting for one: a connection idle between requests is closed
    /// after it too. On expiry hyper closes the connection without an answer.
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body (and for its first one, from
    /// when the gateway starts sending the body to the backend). On expiry the client
    /// gets 408 if its response has not started, or its connection (HTTP/2: stream) is
    /// cut, and the backend request is aborted.
    pub body_read_timeout: Duration,
    /// Open client connections across all workers; a connection over it is accepted and
    /// closed at once, unanswered.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection; for HTTP/3, concurrent request
    /// (bidirectional) streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2: streams a client may open and reset before the gateway has taken them
    /// up, per connection; one more and the connection gets GOAWAY
    /// (`ENHANCE_YOUR_CALM`) and is closed. The "rapid reset" defence (CVE-2023-44487).
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2: streams the gateway may reset because the client broke the protocol on
    /// them, per connection; one more and the connection gets GOAWAY
    /// (`ENHANCE_YOUR_CALM`). Stops a client from making the gateway reset streams for
    /// it to dodge the limit above (RUSTSEC-2024-0003, "MadeYouReset").
    pub http2_max_local_error_reset_streams: usize,
    /// Time a client has to complete the TLS handshake on the HTTPS listener; on expiry
    /// the connection is closed.
    pub tls_handshake_timeout: Duration,
    /// Whether HTTP/2 is served (h2c with prior knowledge, `h2` by ALPN). Off: HTTP/1.1
    /// only.
    pub http2: bool,
    /// A relayed WebSocket connection with no byte moving either way for this long is
    /// closed (see [`crate::proxy::websocket`]).
    pub websocket_idle_timeout: Duration,
    /// WebSocket connections (handshakes being forwarded and relays) across all
    /// workers; over it a handshake gets 503. 0: no limit of its own (they count
    /// against `max_connections` like any connection either way).
    pub max_websocket_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_request_line_bytes: 16 * 1024,
            max_buffered_body_bytes: 4 * 1024 * 1024,
            max_headers: 100,
            max_request_body_bytes: Some(DEFAULT_MAX_REQUEST_BODY_BYTES),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_concurrent_streams: 256,
            // The h2 crate's and hyper's own defaults, set explicitly so they are
            // documented and cannot change under us with a dependency update.
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            http2: true,
            websocket_idle_timeout: Duration::from_secs(300),
            max_websocket_connections: 0,
        }
    }
}

/// Listener and process settings of the data plane.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Data-plane HTTP address (HTTP/1.1 and h2c).
    pub listen: SocketAddr,
    /// Data-plane HTTPS address (TLS with the configuration's certificates), if any.
    pub https_listen: Option<SocketAddr>,
    /// Serve HTTP/3 (QUIC, UDP) on the HTTPS listener's bound address, and advertise it
    /// with `Alt-Svc` on HTTPS responses. Needs `https_listen`.
    pub http3: bool,
    /// Worker threads.
    pub workers: NonZeroUsize,
    /// Per-connection and per-request limits.
    pub limits: Limits,
    /// How long in-flight requests get to finish on shutdown.
    pub drain_timeout: Duration,
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP/3 cannot be served with these settings (TLS 1.3 and `TLS_AES_128_GCM_SHA256`
    /// are needed, and an HTTPS address).
    #[error("cannot serve HTTP/3: {0}")]
    Http3(String),
    /// A worker thread or its runtime could not be created.
    #[error("cannot start worker {index}: {source}")]
    Worker {
        /// Worker number.
        index: usize,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The running data plane.
#[derive(Debug)]
pub struct Gateway {
    local_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    http3_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// The QUIC endpoint's thread, joined after the workers.
    http3_thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<GatewayState>,
}

impl Gateway {
    /// Binds the data listeners and starts the workers. Returns once every listener is
    /// bound, so a bind error is reported here and the bound address is known.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] or [`ServerError::Worker`].
    pub fn start(settings: &ServerSettings, state: Arc<GatewayState>) -> Result<Self, ServerError> {
        let workers = settings.workers.get();
        let first = bind(settings.listen, workers > 1)?;
        let local_addr = first.local_addr().map_err(|source| ServerError::Bind {
            addr: settings.listen,
            source,
        })?;
        let mut listeners = vec![first];
        // With port 0 the first bind picks the port; the others join it.
        for _ in 1..workers {
            listeners.push(bind(local_addr, true)?);
        }
        let mut https_addr = None;
        let mut https_listeners: Vec<Option<std::net::TcpListener>> =
            (0..workers).map(|_| None).collect();
        if let Some(addr) = settings.https_listen {
            let first = bind(addr, workers > 1)?;
            let bound = first
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            https_addr = Some(bound);
            https_listeners[0] = Some(first);
            for slot in https_listeners.iter_mut().skip(1) {
                *slot = Some(bind(bound, true)?);
            }
        }
        let shutdown = CancellationToken::new();
        let http3 = if settings.http3 {
            let addr = https_addr.ok_or_else(|| {
                ServerError::Http3("HTTP/3 is served on the HTTPS address; there is none".into())
            })?;
            Some(Http3::start(
                addr,
                &settings.limits,
                settings.drain_timeout,
                state.clone(),
                shutdown.clone(),
            )?)
        } else {
            None
        };
        let http3_addr = http3.as_ref().map(|http3| http3.local_addr);
        let alt_svc = http3.as_ref().map(|http3| http3.alt_svc.clone());
        let endpoint = http3.as_ref().map(|http3| http3.endpoint.clone());
        // One count for the whole process: the limit is on file descriptors and memory,
        // which workers share.
        let connections = Arc::new(ConnectionLimit::new(
            settings.limits.max_connections,
            &state,
        ));
        let limits = Arc::new(settings.limits.clone());
        let builder = connection_builder(&settings.limits);
        let http1 = http1_builder(&settings.limits);
        let mut handles = Vec::with_capacity(workers);
        for (index, (listener, https_listener)) in
            listeners.into_iter().zip(https_listeners).enumerate()
        {
            let worker = Arc::new(Worker {
                state: state.clone(),
                limits: limits.clone(),
                builder: builder.clone(),
                http1: http1.clone(),
                connections: connections.clone(),
                shutdown: shutdown.clone(),
                tasks: TaskTracker::new(),
                alt_svc: alt_svc.clone(),
            });
            let endpoint = endpoint.clone();
            let drain_timeout = settings.drain_timeout;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("gatehouse-worker-{index}"))
                .build()
                .map_err(|source| ServerError::Worker { index, source })?;
            let handle = std::thread::Builder::new()
                .name(format!("gatehouse-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let https = match https_listener.map(TcpListener::from_std).transpose() {
                            Ok(https) => https,
                            Err(error) => {
                                tracing::error!(worker = index, %error, "cannot register HTTPS listener");
                                return;
                            }
                        };
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                run_worker(worker, listener, https, endpoint, drain_timeout).await;
                            }
                            Err(error) => {
                                tracing::error!(worker = index, %error, "cannot register listener");
                            }
                        }
                    });
                })
                .map_err(|source| ServerError::Worker { index, source })?;
            handles.push(handle);
        }
        let protocols = if settings.limits.http2 {
            "HTTP/1.1 and h2c"
        } else {
            "HTTP/1.1"
        };
        tracing::info!(addr = %local_addr, workers, "data plane listening ({protocols})");
        if let Some(addr) = https_addr {
            tracing::info!(%addr, workers, "data plane listening (HTTPS)");
        }
        if let Some(addr) = http3_addr {
            tracing::info!(%addr, workers, "data plane listening (HTTP/3, QUIC)");
        }
        Ok(Self {
            local_addr,
            https_addr,
            http3_addr,
            shutdown,
            workers: handles,
            http3_thread: http3.map(|http3| http3.thread),
            state,
        })
    }

    /// The bound data-plane address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound HTTPS address, if the gateway listens for TLS.
    #[must_use]
    pub const fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The bound HTTP/3 (UDP) address, if the gateway serves HTTP/3.
    #[must_use]
    pub const fn http3_addr(&self) -> Option<SocketAddr> {
        self.http3_addr
    }

    /// Drains and stops every worker; returns when all have exited.
    pub async fn shutdown(self) {
        self.state.readiness.set_draining();
        self.shutdown.cancel();
        let workers = self.workers;
        let http3 = self.http3_thread;
        // Joining blocks; keep it off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
            if let Some(http3) = http3 {
                let _ = http3.join();
            }
        })
        .await;
    }
}

fn bind(addr: SocketAddr, reuse_port: bool) -> Result<std::net::TcpListener, ServerError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let error = |source| ServerError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(error)?;
    socket.set_reuse_address(true).map_err(error)?;
    if reuse_port {
        socket.set_reuse_port(true).map_err(error)?;
    }
    socket.set_tcp_nodelay(true).map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    socket.bind(&addr.into()).map_err(error)?;
    socket.listen(4096).map_err(error)?;
    Ok(socket.into())
}

/// HTTP/1.1 alone (`--http2 false`), with the same settings as the auto builder's
/// HTTP/1.1 half: hyper-util's auto builder reads an HTTP/2 preface even when told
/// `http1_only` once upgrades are on (WebSockets), so that mode uses hyper's own.
fn http1_builder(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
}

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !limits.http2 {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
        .keep_alive_interval(Duration::from_secs(30))
        // WebSockets over HTTP/2 (RFC 8441 extended CONNECT; `proxy::websocket`).
        .enable_connect_protocol();
    builder
}

/// The open client connections of the process, against `max_connections`.
#[derive(Debug)]
struct ConnectionLimit {
    max: usize,
    open: AtomicUsize,
    /// `gatehouse_active_connections`.
    gauge: prometheus_client::metrics::gauge::Gauge,
    /// `gatehouse_connections_rejected_total`.
    rejected: prometheus_client::metrics::counter::Counter,
    /// Rejections since the last warning.
    rejected_unlogged: AtomicU64,
    /// No warning before this many milliseconds after `epoch`.
    next_warning_ms: AtomicU64,
    epoch: std::time::Instant,
}

/// How often at most the "connection limit reached" warning is logged.
const REJECTION_WARNING_INTERVAL: Duration = Duration::from_secs(1);

impl ConnectionLimit {
    fn new(max: usize, state: &GatewayState) -> Self {
        Self {
            max,
            open: AtomicUsize::new(0),
            gauge: state.metrics.active_connections.clone(),
            rejected: state.metrics.connections_rejected.clone(),
            rejected_unlogged: AtomicU64::new(0),
            next_warning_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    /// Counts a new connection in, or refuses it (counted, and logged at most once a
    /// second) when `max` are open.
    fn try_acquire(self: &Arc<Self>) -> Option<ConnectionGuard> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if admitted {
            self.gauge.inc();
            return Some(ConnectionGuard(self.clone()));
        }
        self.rejected.inc();
        self.rejected_unlogged.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_warning_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(REJECTION_WARNING_INTERVAL.as_millis()).unwrap_or(1000);
        // One worker wins the slot; the others stay quiet until the next one.
        if now >= next
            && self
                .next_warning_ms
                .compare_exchange(next, now + interval, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let rejected = self.rejected_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                limit = self.max,
                rejected,
                "connection limit reached: closing new client connections (--max-connections)"
            );
        }
        None
    }
}

/// One open client connection, counted against [`Limits::max_connections`] and in
/// `gatehouse_active_connections` until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<ConnectionLimit>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.gauge.dec();
    }
}

/// What serving a client connection needs, shared by a worker's accept loops and the
/// connection tasks they spawn; see the module documentation.
pub(crate) struct Worker {
    pub(crate) state: Arc<GatewayState>,
    pub(crate) limits: Arc<Limits>,
    builder: auto::Builder<TokioExecutor>,
    /// Used instead of `builder` when HTTP/2 is off (see [`http1_builder`]).
    http1: hyper::server::conn::http1::Builder,
    connections: Arc<ConnectionLimit>,
    /// Cancelled when the gateway shuts down: accept loops stop, connections drain.
    pub(crate) shutdown: CancellationToken,
    /// The worker's connection tasks, waited for (up to `drain_timeout`) on shutdown.
    tasks: TaskTracker,
    /// `Alt-Svc` for HTTPS connections, when HTTP/3 is served.
    alt_svc: Option<HeaderValue>,
}

impl Worker {
    /// Counts a just-accepted connection against [`Limits::max_connections`]. `None`
    /// when the limit is reached: the caller drops the socket, which closes it
    /// unanswered.
    pub(crate) fn admit(&self) -> Option<ConnectionGuard> {
        self.connections.try_acquire()
    }

    /// Runs a connection's task (a TLS handshake followed by
    /// [`serve_connection`](Self::serve_connection), say) so the drain on shutdown
    /// waits for it.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.tasks.spawn(task));
    }

    /// Serves one admitted client connection, whatever its transport, until it closes:
    /// HTTP/1.1 or HTTP/2 with prior knowledge, every request through
    /// [`proxy::handle`] with `conn` (what is known about the connection: its peer, and
    /// whatever a TLS listener learnt in its handshake, `Alt-Svc` included, added to
    /// every response). On shutdown it finishes its
    /// in-flight requests (HTTP/1.1 closes after the current response, HTTP/2 sends
    /// GOAWAY). `admitted` is held to the end, and past it by a WebSocket relay the
    /// connection was upgraded to.
    pub(crate) async fn serve_connection<I>(
        self: Arc<Self>,
        io: I,
        mut conn: proxy::ClientConn,
        admitted: ConnectionGuard,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = conn.peer;
        // A WebSocket relay outlives the HTTP/1.1 connection it upgrades: it keeps the
        // connection's admission and runs on this worker's tracker (`proxy::websocket`).
        conn.upgrades.attach(admitted, self.tasks.clone());
        let switch = conn.upgrades.switch.clone();
        let conn = Arc::new(conn);
        let state = self.state.clone();
        let limits = self.limits.clone();
        let service = service_fn(move |request| {
            let state = state.clone();
            let limits = limits.clone();
            let conn = conn.clone();
            async move {
                let request = request.map(ClientBody::Hyper);
                let mut response = proxy::handle(&state, &limits, &conn, request).await;
                if let Some(alt_svc) = conn.tls.as_ref().and_then(|tls| tls.alt_svc.as_ref()) {
                    response
                        .headers_mut()
                        .insert(header::ALT_SVC, alt_svc.clone());
                }
                Ok::<_, Infallible>(response)
            }
        });
        let io = TokioIo::new(
            FramingCheck::new(io, self.limits.max_request_line_bytes).with_switch_off(switch),
        );
        // With upgrades: a WebSocket handshake the backend accepts switches protocols.
        let result = if self.limits.http2 {
            let connection = self.builder.serve_connection_with_upgrades(io, service);
            until_shutdown(connection, &self.shutdown, |c| c.graceful_shutdown()).await
        } else {
            let connection = self.http1.serve_connection(io, service).with_upgrades();
            until_shutdown(connection, &self.shutdown, |c| c.graceful_shutdown()).await
        };
        if let Err(error) = result {
            self.connection_failed(peer, &*error);
        }
    }

    /// Counts and logs why a connection ended with an error. Most are clients going away
    /// (debug); a slow head and a refused one are counted.
    fn connection_failed(&self, peer: SocketAddr, error: &(dyn std::error::Error + 'static)) {
        let metrics = &self.state.metrics;
        if let Some(error) = error.downcast_ref::<hyper::Error>() {
            if error.is_timeout() {
                // hyper's only server-side timeout: `header_read_timeout`.
                metrics.client_header_timeouts.inc();
                tracing::debug!(%peer, "client did not send a request head in time; connection closed");
                return;
            }
            if error.is_parse() {
                // hyper has answered 400, 414 or 431 and closes the connection.
                metrics.malformed_requests.inc();
                tracing::debug!(%peer, %error, "malformed request refused; connection closed");
                return;
            }
        }
        tracing::debug!(%peer, %error, "client connection ended with an error");
    }

    /// Lets the connections finish (they saw `shutdown` too), for at most
    /// `drain_timeout`; what is left is cut when the worker's runtime is dropped.
    async fn drain(&self, drain_timeout: Duration) {
        self.tasks.close();
        tokio::select! {
            () = self.tasks.wait() => {}
            () = tokio::time::sleep(drain_timeout) => {
                tracing::warn!(?drain_timeout, "drain timeout reached; closing remaining connections");
            }
        }
    }
}

/// Runs a client connection to its end; on shutdown, `graceful` asks it to finish its
/// in-flight requests first.
async fn until_shutdown<C, E>(
    connection: C,
    shutdown: &CancellationToken,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            graceful(connection.as_mut());
            connection.await
        }
    };
    result.map_err(Into::into)
}

/// A worker's life: its accept loops until shutdown, then the drain.
async fn run_worker(
    worker: Arc<Worker>,
    listener: TcpListener,
    https: Option<TcpListener>,
    http3: Option<quinn::Endpoint>,
    drain_timeout: Duration,
) {
    let state = worker.state.clone();
    // This worker's access-log lines are batched per thread; hand them over regularly.
    let flusher = {
        let state = state.clone();
        let stop = worker.shutdown.clone();
        tokio::spawn(async move { state.access_log.flush_periodically(stop).await })
    };
    // One accept loop per listener; all end on shutdown.
    let https = async {
        if let Some(https) = https {
            accept_tls(&worker, https).await;
        }
    };
    let http3 = async {
        if let Some(endpoint) = http3 {
            http3::accept_quic(&worker, endpoint).await;
        }
    };
    tokio::join!(accept_tcp(&worker, listener), https, http3);
    worker.drain(drain_timeout).await;
    let _ = flusher.await;
    // Lines of requests that finished during the drain.
    state.access_log.flush_thread();
}

/// Accepts on `listener` until shutdown. Each connection is counted against the
/// connection limit (over it, the socket is dropped: closed at once, unanswered) and
/// handed to `serve`, which starts its task.
async fn accept_loop(
    worker: &Arc<Worker>,
    listener: TcpListener,
    listener_name: &'static str,
    serve: impl Fn(&Arc<Worker>, TcpStream, SocketAddr, ConnectionGuard),
) {
    loop {
        let accepted = tokio::select! {
            // Shutdown first, so a flood of connections cannot delay the drain.
            biased;
            () = worker.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(listener = listener_name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(admitted) = worker.admit() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        serve(worker, stream, peer, admitted);
    }
    // Closing the listener here makes new connections fail fast while we drain.
    drop(listener);
}

/// The plain-TCP accept loop (HTTP/1.1 and h2c), until shutdown.
async fn accept_tcp(worker: &Arc<Worker>, listener: TcpListener) {
    accept_loop(
        worker,
        listener,
        "http",
        |worker, stream, peer, admitted| {
            let conn = proxy::ClientConn::new(peer);
            worker.spawn(worker.clone().serve_connection(stream, conn, admitted));
        },
    )
    .await;
}

/// The HTTPS accept loop, until shutdown. Each connection is admitted before its
/// handshake (a handshake costs more than anything else a client can make the gateway
/// do), then handshakes and is served on one task.
async fn accept_tls(worker: &Arc<Worker>, listener: TcpListener) {
    accept_loop(
        worker,
        listener,
        "https",
        |worker, stream, peer, admitted| {
            worker.spawn(serve_tls(worker.clone(), stream, peer, admitted));
        },
    )
    .await;
}

/// Runs the TLS handshake of an admitted HTTPS connection, then serves it.
async fn serve_tls(
    worker: Arc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: ConnectionGuard,
) {
    // The certificates of the configuration being served now; a swap applies to the
    // next handshake.
    let tls = worker.state.config.load().server_tls.clone();
    let timeout = worker.limits.tls_handshake_timeout;
    let handshake = tokio::select! {
        result = handshake::accept(stream, tls.as_ref(), timeout) => result,
        () = worker.shutdown.cancelled() => return,
    };
    match handshake {
        Ok((stream, mut negotiated)) => {
            worker.state.metrics.tls_handshake(negotiated.version);
            // HTTP/3 is offered unless the host name requires a client certificate,
            // which QUIC cannot require.
            if let (Some(alt_svc), Some(tls)) = (&worker.alt_svc, &tls)
                && !requires_client_certificate(tls, negotiated.server_name.as_deref())
            {
                negotiated.alt_svc = Some(alt_svc.clone());
            }
            let conn = proxy::ClientConn::with_tls(peer, negotiated);
            worker.serve_connection(stream, conn, admitted).await;
        }
        Err(error) => {
            worker.state.metrics.tls_handshake_failed(error.reason());
            tracing::debug!(%peer, %error, "TLS handshake failed");
        }
    }
}
