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
//! counters.
//!
//! # Shutdown
//!
//! [`Gateway::shutdown`] drains in steps: `/readyz` starts failing, every worker stops
//! accepting (its listener is closed, so new connections are refused), open connections
//! finish their in-flight requests (HTTP/1.1 closes after the current response, HTTP/2
//! sends GOAWAY), and after `drain_timeout` whatever is left is cut.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::GatewayState;
use crate::proxy;

/// Limits applied to every client connection and request.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line + headers) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Most headers in one request; more gets 431.
    pub max_headers: usize,
    /// Largest request body in bytes; larger gets 413. `None`: no limit (bodies stream,
    /// so size costs no memory).
    pub max_request_body_bytes: Option<u64>,
    /// Time allowed for a client to send the request head.
    pub header_read_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_request_body_bytes: None,
            header_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 256,
        }
    }
}

/// Listener and process settings of the data plane.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Data-plane HTTP address (HTTP/1.1 and h2c).
    pub listen: SocketAddr,
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
    shutdown: CancellationToken,
    workers: Vec<std::thread::JoinHandle<()>>,
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
        let shutdown = CancellationToken::new();
        let mut handles = Vec::with_capacity(workers);
        for (index, listener) in listeners.into_iter().enumerate() {
            let state = state.clone();
            let shutdown = shutdown.clone();
            let limits = settings.limits.clone();
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
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                serve(listener, state, limits, shutdown, drain_timeout).await;
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
        tracing::info!(addr = %local_addr, workers, "data plane listening (HTTP/1.1 and h2c)");
        Ok(Self {
            local_addr,
            shutdown,
            workers: handles,
            state,
        })
    }

    /// The bound data-plane address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Drains and stops every worker; returns when all have exited.
    pub async fn shutdown(self) {
        self.state.readiness.set_draining();
        self.shutdown.cancel();
        let workers = self.workers;
        // Joining blocks; keep it off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
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

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
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
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

async fn serve(
    listener: TcpListener,
    state: Arc<GatewayState>,
    limits: Limits,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) {
    let builder = connection_builder(&limits);
    let graceful = GracefulShutdown::new();
    // This worker's access-log lines are batched per thread; hand them over regularly.
    let flusher = {
        let state = state.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { state.access_log.flush_periodically(stop).await })
    };
    let limits = Arc::new(limits);
    loop {
        let accepted = tokio::select! {
            // Shutdown first, so a flood of connections cannot delay the drain.
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gauge = state.metrics.active_connections.clone();
        let state = state.clone();
        let limits = limits.clone();
        let conn = Arc::new(proxy::ClientConn::new(peer));
        let service = service_fn(move |request| {
            let state = state.clone();
            let limits = limits.clone();
            let conn = conn.clone();
            async move { Ok::<_, Infallible>(proxy::handle(&state, &limits, &conn, request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        gauge.inc();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, error = %error, "client connection ended with an error");
            }
            gauge.dec();
        });
    }
    // Closing the listener here makes new connections fail fast while we drain.
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain_timeout) => {
            tracing::warn!(?drain_timeout, "drain timeout reached; closing remaining connections");
        }
    }
    let _ = flusher.await;
    // Lines of requests that finished during the drain.
    state.access_log.flush_thread();
}
