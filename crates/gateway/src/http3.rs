//! HTTP/3 (QUIC) on the HTTPS listener's address, opt-in (`--http3`).
//!
//! # One endpoint per process
//!
//! The TCP listeners have one `SO_REUSEPORT` socket per worker. QUIC does not take to
//! that: the kernel spreads UDP datagrams by their 4-tuple, so a connection whose client
//! address changes (NAT rebinding, migration to another network) would land on another
//! worker's endpoint, which does not know its connection IDs, and stall until it times
//! out. So the process has one UDP socket and one quinn endpoint, and spreads the work
//! the other way round:
//!
//! - the endpoint's driver (receiving datagrams, routing them to connections) runs on a
//!   thread of its own, `gatehouse-quic`, which also installs new certificates
//!   ([`run_endpoint`]);
//! - every worker runs an accept loop on the shared endpoint ([`accept_quic`]); the
//!   worker whose loop takes a connection runs it: quinn spawns the connection's driver
//!   (its TLS, packet protection, sending) on the runtime that accepts it, and the h3
//!   connection and its requests run there too, with that worker's backend pools.
//!
//! # Certificates
//!
//! The endpoint's TLS configuration is `ServerTls::quic_config` of the configuration
//! being served. When a new configuration is stored (`GatewayState::config_swapped`, and
//! a slow poll as a safety net) and its `server_tls` is a different one, the endpoint
//! thread builds the QUIC configuration and installs it; the next handshake uses it,
//! established connections keep theirs. With no host names configured, new connections
//! are refused (`CONNECTION_REFUSED`). QUIC cannot require a client certificate per host
//! name, so host names with `requireClientCertificate` are refused over HTTP/3 (their
//! clients get no `Alt-Svc`, and stay on TCP).
//!
//! # Requests
//!
//! Every request goes through [`proxy::handle`] like HTTP/1.1 and HTTP/2 (its body is a
//! [`ClientBody::Http3`]); the response body is streamed onto the request stream as DATA
//! frames, with trailers, at the pace quinn's flow control allows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_tls::ServerTls;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::GatewayState;
use crate::handshake::{self, ConnectionTls};
use crate::proxy::body::{ClientBody, H3RequestBody, ResponseBody};
use crate::proxy::{self, ClientConn};
use crate::server::{ConnectionGuard, Limits, ServerError, Worker};
use crate::tls::requires_client_certificate;

/// How often the endpoint thread looks for new certificates even without a swap
/// notification.
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// How long a connection that has finished its requests during a drain waits for the
/// client to close it (it was sent GOAWAY) before the gateway closes it: time for the
/// last responses' data to be acknowledged, which an immediate close would discard.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Connection-wide flow-control window: the most unread request data a client may have
/// in flight on one connection (quinn's default is unbounded).
const CONNECTION_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// `Alt-Svc` lifetime advertised to clients, in seconds.
const ALT_SVC_MAX_AGE: u32 = 86_400;

/// HTTP/3 application error codes (RFC 9114, section 8.1).
const H3_NO_ERROR: quinn::VarInt = quinn::VarInt::from_u32(0x100);
const H3_REQUEST_REJECTED: quinn::VarInt = quinn::VarInt::from_u32(0x10b);

/// The h3 server connection over quinn.
type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;
type H3Resolver = h3::server::RequestResolver<h3_quinn::Connection, Bytes>;
type H3SendStream = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// The process's QUIC endpoint, bound next to the HTTPS listener.
#[derive(Debug)]
pub(crate) struct Http3 {
    /// Shared with every worker's accept loop.
    pub(crate) endpoint: quinn::Endpoint,
    /// The bound UDP address.
    pub(crate) local_addr: SocketAddr,
    /// `h3=":PORT"; ma=86400`, for responses on the HTTPS listener.
    pub(crate) alt_svc: HeaderValue,
    /// The endpoint thread; it exits once the drain is over.
    pub(crate) thread: std::thread::JoinHandle<()>,
}

impl Http3 {
    /// Binds UDP on `addr` (the HTTPS listener's bound address) and starts the endpoint
    /// thread with the certificates of the configuration being served.
    pub(crate) fn start(
        addr: SocketAddr,
        limits: &Limits,
        drain_timeout: Duration,
        state: Arc<GatewayState>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        let base = base_server_config(&state, limits)?;
        let installed = state.config.load().server_tls.clone();
        let initial = match &installed {
            Some(tls) => with_certificates(&base, tls).map_err(ServerError::Http3)?,
            None => base.clone(),
        };
        let bind_error = |source| ServerError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        socket.set_nonblocking(true).map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("gatehouse-quic")
            .build()
            .map_err(|error| ServerError::Http3(format!("cannot start its runtime: {error}")))?;
        let endpoint = {
            // quinn registers the socket and spawns its driver on the current runtime.
            let _entered = runtime.enter();
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(initial),
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .map_err(bind_error)?
        };
        let local_addr = endpoint.local_addr().map_err(bind_error)?;
        let alt_svc = HeaderValue::try_from(format!(
            "h3=\":{}\"; ma={ALT_SVC_MAX_AGE}",
            local_addr.port()
        ))
        .map_err(|error| ServerError::Http3(error.to_string()))?;
        let thread = {
            let endpoint = endpoint.clone();
            std::thread::Builder::new()
                .name("gatehouse-quic".to_owned())
                .spawn(move || {
                    runtime.block_on(run_endpoint(
                        endpoint,
                        state,
                        base,
                        installed,
                        shutdown,
                        drain_timeout,
                    ));
                })
                .map_err(|error| ServerError::Http3(format!("cannot start its thread: {error}")))?
        };
        Ok(Self {
            endpoint,
            local_addr,
            alt_svc,
            thread,
        })
    }
}

/// The endpoint's configuration without certificates (a host table with no host name,
/// which refuses every handshake), with the transport limits. Checks that the process's
/// TLS settings allow QUIC: TLS 1.3, and `TLS_AES_128_GCM_SHA256`, which protects
/// QUIC's Initial packets.
fn base_server_config(
    state: &GatewayState,
    limits: &Limits,
) -> Result<quinn::ServerConfig, ServerError> {
    let empty = ServerTls::new(Vec::new(), &[], &state.tls.server)
        .map_err(|error| ServerError::Http3(error.to_string()))?;
    let crypto = quic_crypto(&empty).map_err(ServerError::Http3)?;
    let mut config = quinn::ServerConfig::with_crypto(crypto);
    config.transport_config(Arc::new(transport_config(limits)));
    Ok(config)
}

/// `base` (transport limits, the token key for address validation, shared by every
/// configuration so that tokens survive swaps) with `tls`'s certificates.
fn with_certificates(
    base: &quinn::ServerConfig,
    tls: &ServerTls,
) -> Result<quinn::ServerConfig, String> {
    let mut config = base.clone();
    config.crypto = quic_crypto(tls)?;
    Ok(config)
}

fn quic_crypto(tls: &ServerTls) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>, String> {
    let rustls = tls.quic_config().map_err(|error| error.to_string())?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(rustls)).map_err(|_| {
        "QUIC protects its Initial packets with TLS_AES_128_GCM_SHA256, which the HTTPS listener's cipher suites (--tls-cipher-suites) leave out; add it, or turn --http3 off".to_owned()
    })?;
    Ok(Arc::new(crypto))
}

/// The [`Limits`] as QUIC transport parameters.
fn transport_config(limits: &Limits) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(limits.max_concurrent_streams));
    transport.receive_window(quinn::VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    // A connection is dead after the idle timeout without a packet; the gateway pings
    // more often than that, so a live client that waits on a slow response keeps its
    // connection. A connection idle between requests is closed by `serve_h3` instead.
    let idle = limits.header_read_timeout.max(Duration::from_secs(1));
    let idle_timeout = quinn::IdleTimeout::try_from(idle)
        .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::MAX));
    transport.max_idle_timeout(Some(idle_timeout));
    transport.keep_alive_interval(Some(idle / 3));
    transport
}

/// The endpoint thread: installs each new configuration's certificates until shutdown,
/// then refuses new connections until the open ones are gone (or the drain timeout),
/// and closes the endpoint.
async fn run_endpoint(
    endpoint: quinn::Endpoint,
    state: Arc<GatewayState>,
    base: quinn::ServerConfig,
    mut installed: Option<Arc<ServerTls>>,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) {
    let mut swaps = state.config_swapped.subscribe();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = swaps.changed() => {}
            () = tokio::time::sleep(CONFIG_POLL) => {}
        }
        let current = state.config.load().server_tls.clone();
        let Some(tls) = current else {
            // No host names: the accept loops refuse new connections; what is
            // installed stays until there is something to replace it with.
            continue;
        };
        if installed.as_ref().is_some_and(|old| Arc::ptr_eq(old, &tls)) {
            continue;
        }
        // Cheap (no key is parsed: the configuration holds them loaded), and off the
        // request path: this thread only runs the endpoint's driver.
        match with_certificates(&base, &tls) {
            Ok(config) => {
                endpoint.set_server_config(Some(config));
                tracing::debug!("HTTP/3 certificates updated");
            }
            Err(error) => {
                tracing::warn!(%error, "HTTP/3 keeps its previous certificates");
            }
        }
        installed = Some(tls);
    }
    // The workers' accept loops have stopped: refuse what arrives, as closed TCP
    // listeners do, while the open connections finish.
    let deadline = Instant::now() + drain_timeout;
    loop {
        tokio::select! {
            biased;
            () = endpoint.wait_idle() => break,
            () = tokio::time::sleep_until(deadline) => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming.refuse(),
                None => break,
            },
        }
    }
    endpoint.close(H3_NO_ERROR, b"shutting down");
    let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
}

/// A worker's accept loop on the shared endpoint, until shutdown. Connections are
/// admitted against `max_connections` before their handshake, like TCP ones.
pub(crate) async fn accept_quic(worker: &Arc<Worker>, endpoint: quinn::Endpoint) {
    loop {
        let incoming = tokio::select! {
            biased;
            () = worker.shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else {
            break;
        };
        let Some(admitted) = worker.admit() else {
            incoming.refuse();
            continue;
        };
        worker.spawn(serve_quic(worker.clone(), incoming, admitted));
    }
}

/// Why a QUIC handshake did not complete; the label of
/// `gatehouse_tls_handshake_errors_total`, as for TCP.
#[derive(Debug, thiserror::Error)]
enum QuicHandshakeError {
    #[error("TLS handshake not finished within {0:?}")]
    Timeout(Duration),
    #[error("the host name {0:?} requires a client certificate, which QUIC cannot require")]
    ClientCertificateRequired(Option<Box<str>>),
    #[error("QUIC handshake failed: {0}")]
    Failed(#[from] quinn::ConnectionError),
}

impl QuicHandshakeError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::ClientCertificateRequired(_) => "client_certificate",
            Self::Failed(quinn::ConnectionError::TransportError(error)) => {
                // Our TLS stack failed the handshake; the code carries its alert.
                match u64::from(error.code) {
                    // access_denied: rustls's answer when no host name matches the SNI.
                    0x131 => "unknown_server_name",
                    // bad_certificate, unsupported_certificate, certificate_revoked,
                    // certificate_expired, certificate_unknown, unknown_ca,
                    // decrypt_error, certificate_required
                    0x12a..=0x12e | 0x130 | 0x133 | 0x174 => "client_certificate",
                    // handshake_failure, protocol_version, insufficient_security,
                    // no_application_protocol
                    0x128 | 0x146 | 0x147 | 0x178 => "incompatible",
                    _ => "protocol",
                }
            }
            Self::Failed(
                quinn::ConnectionError::ConnectionClosed(_)
                | quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::VersionMismatch,
            ) => "protocol",
            Self::Failed(_) => "io",
        }
    }
}

/// One QUIC connection, from its handshake to its end.
async fn serve_quic(worker: Arc<Worker>, incoming: quinn::Incoming, admitted: ConnectionGuard) {
    let peer = incoming.remote_address();
    let metrics = &worker.state.metrics;
    // The certificates of the configuration being served now (the endpoint's may lag
    // a swap by a moment; decisions follow the configuration).
    let tls = worker.state.config.load().server_tls.clone();
    let Some(tls) = tls else {
        metrics.tls_handshake_failed("not_configured");
        tracing::debug!(%peer, "QUIC connection refused: no hostnames are configured for TLS");
        incoming.refuse();
        return;
    };
    let timeout = worker.limits.tls_handshake_timeout;
    let handshake = tokio::select! {
        result = tokio::time::timeout(timeout, quic_handshake(incoming, &tls)) => {
            result.unwrap_or(Err(QuicHandshakeError::Timeout(timeout)))
        }
        () = worker.shutdown.cancelled() => return,
    };
    match handshake {
        Ok((connection, negotiated)) => {
            metrics.tls_handshake(negotiated.version);
            let conn = ClientConn::with_tls(peer, negotiated);
            serve_h3(worker, connection, conn, admitted).await;
        }
        Err(error) => {
            metrics.tls_handshake_failed(error.reason());
            tracing::debug!(%peer, %error, "QUIC handshake failed");
        }
    }
}

/// Runs the handshake; refuses host names that require a client certificate.
async fn quic_handshake(
    incoming: quinn::Incoming,
    tls: &ServerTls,
) -> Result<(quinn::Connection, ConnectionTls), QuicHandshakeError> {
    let mut connecting = incoming.accept()?;
    // Ready once the ClientHello has been read: the SNI is known.
    let data = connecting.handshake_data().await?;
    let server_name = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()
        .and_then(|data| data.server_name)
        .map(Box::<str>::from);
    if requires_client_certificate(tls, server_name.as_deref()) {
        // A server-side `Connecting` always converts; closing it ends the handshake.
        if let Ok((connection, _)) = connecting.into_0rtt() {
            connection.close(
                H3_REQUEST_REJECTED,
                b"this host name requires a client certificate: use HTTPS over TCP",
            );
        }
        return Err(QuicHandshakeError::ClientCertificateRequired(server_name));
    }
    let connection = connecting.await?;
    let client_certificate = connection
        .peer_identity()
        .and_then(|identity| {
            identity
                .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|chain| handshake::client_certificate(tls, &chain));
    Ok((
        connection,
        ConnectionTls {
            server_name,
            version: "TLSv1_3",
            client_certificate,
            alt_svc: None,
        },
    ))
}

/// Requests in flight on a connection, and when the last one ended: for the idle
/// timeout, and for the drain.
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` at which the last request ended.
    last_end_ms: AtomicU64,
    epoch: Instant,
    /// Notified when `in_flight` drops to zero.
    drained: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            drained: Notify::new(),
        }
    }

    fn start(self: &Arc<Self>) -> ActivityGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        ActivityGuard(self.clone())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether a request is in flight or ended less than `window` ago.
    fn active_within(&self, window: Duration) -> bool {
        self.in_flight() > 0 || self.idle_deadline(window).is_some()
    }

    /// When the connection will have been idle for `timeout`; `None` when it has.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        let now = Instant::now();
        if self.in_flight() > 0 {
            return Some(now + timeout);
        }
        let last_end = self.epoch + Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        let deadline = last_end + timeout;
        (deadline > now).then_some(deadline)
    }
}

/// One request in flight; ends it when dropped.
struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        let elapsed = u64::try_from(activity.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.last_end_ms.store(elapsed, Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.drained.notify_one();
        }
    }
}

/// Serves the HTTP/3 connection until it ends: each request on a task of its own. Idle
/// (no request) for `header_read_timeout`, it is closed; on shutdown it gets GOAWAY,
/// finishes its requests and is closed.
async fn serve_h3(
    worker: Arc<Worker>,
    connection: quinn::Connection,
    conn: ClientConn,
    admitted: ConnectionGuard,
) {
    let _admitted = admitted;
    let peer = conn.peer;
    let conn = Arc::new(conn);
    let limits = worker.limits.clone();
    let mut builder = h3::server::builder();
    builder.max_field_section_size(u64::try_from(limits.max_header_bytes).unwrap_or(u64::MAX));
    let built = tokio::time::timeout(
        limits.tls_handshake_timeout,
        builder.build::<_, Bytes>(h3_quinn::Connection::new(connection.clone())),
    )
    .await;
    let mut h3: H3Connection = match built {
        Ok(Ok(h3)) => h3,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "HTTP/3 connection setup failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "HTTP/3 connection setup timed out");
            connection.close(H3_NO_ERROR, b"");
            return;
        }
    };
    let activity = Arc::new(Activity::new());
    let idle_timeout = limits.header_read_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    let mut idle = std::pin::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            () = worker.shutdown.cancelled(), if !closing => {
                closing = true;
                // GOAWAY: the requests already accepted (and the one racing it) are
                // served, later ones are refused with H3_REQUEST_REJECTED.
                if let Err(error) = h3.shutdown(1).await {
                    tracing::debug!(%peer, %error, "HTTP/3 GOAWAY failed");
                    break;
                }
                if activity.in_flight() == 0 {
                    break;
                }
            }
            () = activity.drained.notified(), if closing => {
                if activity.in_flight() == 0 {
                    break;
                }
            }
            () = idle.as_mut(), if !closing => {
                match activity.idle_deadline(idle_timeout) {
                    Some(deadline) => idle.as_mut().reset(deadline),
                    None => {
                        tracing::debug!(%peer, "HTTP/3 connection idle; closed");
                        connection.close(H3_NO_ERROR, b"idle");
                        return;
                    }
                }
            }
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    let guard = activity.start();
                    worker.spawn(serve_h3_request(
                        worker.clone(),
                        conn.clone(),
                        resolver,
                        connection.clone(),
                        guard,
                    ));
                }
                // The client sent GOAWAY and its requests are done.
                Ok(None) => break,
                Err(error) => {
                    if !error.is_h3_no_error() {
                        tracing::debug!(%peer, %error, "HTTP/3 connection ended with an error");
                    }
                    return;
                }
            },
        }
    }
    // A response that ended a moment ago may not be acknowledged yet, and a close
    // discards what is unsent: give the client (which has its responses, and GOAWAY) the
    // chance to close first.
    if activity.active_within(CLOSE_GRACE) {
        let _ = tokio::time::timeout(CLOSE_GRACE, connection.closed()).await;
    }
    connection.close(H3_NO_ERROR, b"");
}

/// One request: its head (under `header_read_timeout`), [`proxy::handle`], then the
/// response onto the stream.
async fn serve_h3_request(
    worker: Arc<Worker>,
    conn: Arc<ClientConn>,
    resolver: H3Resolver,
    connection: quinn::Connection,
    _activity: ActivityGuard,
) {
    let peer = conn.peer;
    let limits = &worker.limits;
    let metrics = &worker.state.metrics;
    let resolved =
        tokio::time::timeout(limits.header_read_timeout, resolver.resolve_request()).await;
    let (request, stream) = match resolved {
        Ok(Ok(resolved)) => resolved,
        Ok(Err(error)) => {
            // h3 has answered 431 to a head over `max_header_bytes`, or reset the
            // stream of a malformed one.
            if matches!(error, h3::error::StreamError::HeaderTooBig { .. }) {
                metrics.malformed_requests.inc();
            }
            tracing::debug!(%peer, %error, "HTTP/3 request refused");
            return;
        }
        Err(_) => {
            metrics.client_header_timeouts.inc();
            tracing::debug!(%peer, "client did not send an HTTP/3 request head in time");
            return;
        }
    };
    let (mut send, recv) = stream.split();
    if request.headers().len() > limits.max_headers {
        metrics.malformed_requests.inc();
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        if send.send_response(response).await.is_ok() {
            let _ = send.finish().await;
        }
        return;
    }
    let head_only = request.method() == http::Method::HEAD;
    let request = request.map(|()| ClientBody::Http3(Box::new(H3RequestBody::new(recv))));
    let response = tokio::select! {
        response = proxy::handle(&worker.state, limits, &conn, request) => response,
        // The client is gone: the exchange is dropped (logged as 499).
        _ = connection.closed() => return,
    };
    send_response(&mut send, response, head_only, peer).await;
}

/// Streams a response onto the request stream: HEADERS, DATA frames as the body
/// yields them (each send waits for quinn's flow control), trailers, end of stream. A
/// body that fails midway resets the stream, so the client cannot take a cut response
/// for a complete one.
async fn send_response(
    send: &mut H3SendStream,
    response: Response<ResponseBody>,
    head_only: bool,
    peer: SocketAddr,
) {
    let (mut parts, body) = response.into_parts();
    // Connection-specific fields are malformed in HTTP/3 (RFC 9114, section 4.2).
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
    ] {
        parts.headers.remove(name);
    }
    parts.headers.remove("keep-alive");
    parts.headers.remove("proxy-connection");
    let no_body = head_only
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if let Err(error) = send.send_response(Response::from_parts(parts, ())).await {
        tracing::debug!(%peer, %error, "HTTP/3 response head not sent");
        return;
    }
    if !no_body {
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let sent = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) if data.is_empty() => Ok(()),
                    Ok(data) => send.send_data(data).await,
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => send.send_trailers(trailers).await,
                        Err(_) => Ok(()),
                    },
                },
                Err(error) => {
                    tracing::debug!(%peer, %error, "response body failed; HTTP/3 stream reset");
                    send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                    return;
                }
            };
            if let Err(error) = sent {
                // The client reset the stream or left.
                tracing::debug!(%peer, %error, "HTTP/3 response not delivered");
                return;
            }
        }
    }
    if let Err(error) = send.finish().await {
        tracing::debug!(%peer, %error, "HTTP/3 response not finished");
    }
}
