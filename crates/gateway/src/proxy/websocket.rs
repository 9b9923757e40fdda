//! WebSocket passthrough: APIM's "WebSocket APIs".
//!
//! # Which requests
//!
//! An API is a WebSocket API when its backend URL (`serviceUrl`, or the URL of the
//! backend `backendId` names) is `ws://` or `wss://`, as APIM's WebSocket APIs are
//! declared by their "WebSocket URL". On such an API a valid WebSocket handshake is
//! relayed:
//!
//! - HTTP/1.1 (RFC 6455 §4.1): `GET`, `Connection: upgrade`, `Upgrade: websocket`,
//!   a `Sec-WebSocket-Key` of 16 bytes in base64, `Sec-WebSocket-Version: 13`;
//! - HTTP/2 (RFC 8441): extended `CONNECT` with `:protocol websocket`. It is routed,
//!   checked and forwarded as the `GET` it stands for (a WebSocket API's handshake
//!   operation is a `GET`, APIM's `onHandshake`), and the backend gets an HTTP/1.1
//!   handshake with a key of the gateway's (RFC 8441 has none), whose answer the
//!   gateway checks itself.
//!
//! Anything else is an ordinary request: a plain `GET` to a WebSocket API is forwarded
//! as one (the backend answers it), and an upgrade to an API whose backend is
//! `http://`/`https://` has its `Upgrade` removed like any hop-by-hop header, as
//! before (APIM relays WebSockets only for WebSocket APIs). An HTTP/2 WebSocket
//! handshake to an API that is not a WebSocket API is refused (400): unlike HTTP/1.1
//! there is no ordinary request to fall back on.
//!
//! # The handshake
//!
//! The handshake is a request like any other: routing, the subscription key, inbound
//! and backend policies (a policy may refuse it, or add headers the backend sees),
//! then the forward, with `Upgrade: websocket` and `Connection: Upgrade` put back after
//! the hop-by-hop headers were removed (`Sec-WebSocket-*` are end-to-end and kept),
//! always over HTTP/1.1. When the backend answers `101 Switching Protocols` (and the
//! outbound policies leave it a 101), the client gets the 101 with the backend's
//! handshake headers (`Sec-WebSocket-Accept`, `-Protocol`, `-Extensions`, cookies…);
//! an HTTP/2 client gets `200` without `Sec-WebSocket-Accept`. Any other answer of the
//! backend is passed through as an ordinary response, and the client's connection
//! stays HTTP/1.1 with every framing check ([`super::framing`]).
//!
//! # The relay
//!
//! Once both sides have switched, bytes are copied both ways with a bounded buffer per
//! direction ([`RELAY_BUFFER_BYTES`]), frames untouched (extensions such as
//! permessage-deflate are the two ends' business). The connection closes when either
//! side closes (the other gets the close passed on), on an I/O error, or when no byte
//! has moved either way for [`Limits::websocket_idle_timeout`]: both sockets are then
//! closed, without a Close frame. Relays run on the worker's task tracker and keep
//! their client connection counted against `--max-connections`, so the drain on
//! shutdown waits for them up to `--drain-timeout`, then cuts them.
//!
//! # Accounting
//!
//! The handshake is counted as a request when it is answered (status 101, the handshake's
//! duration); `gatehouse_websocket_connections` then counts the open relay, and
//! `gatehouse_websocket_bytes_total{direction}` its bytes as they move (added every
//! [`METRICS_FLUSH_INTERVAL`] and at the close). The access-log line is written when the
//! connection closes: status 101, `bytesReceived` and `bytesSent` the bytes relayed from
//! and to the client after the handshake, `durationMs` the whole connection. Policies'
//! `limit-concurrency` permits are held, and `quota-by-key` bandwidth is charged, until
//! then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha1::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::error::ProxyError;
use super::framing::SwitchOff;
use super::{ClientConn, Exchange};
use crate::GatewayState;
use crate::compiled::CompiledApi;
use crate::server::{ConnectionGuard, Limits};

/// Buffer of each relay direction: what one read takes in at most. tokio's default for
/// `copy_bidirectional`; two per connection.
pub const RELAY_BUFFER_BYTES: usize = 8 * 1024;

/// How often a long relay adds its bytes to `gatehouse_websocket_bytes_total` (it
/// always does at its close).
pub const METRICS_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// `Sec-WebSocket-Key`.
static SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
/// `Sec-WebSocket-Version`.
static SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
/// `Sec-WebSocket-Accept`.
static SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// RFC 6455 §1.3: appended to the key before hashing it into `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether `api` is a WebSocket API: its backend URL is `ws://` or `wss://`.
pub(crate) fn is_websocket_api(
    config: &gatehouse_model::Configuration,
    api: &gatehouse_model::Api,
) -> bool {
    let url = match (&api.service_url, &api.backend_id) {
        (Some(url), _) => Some(url.as_str()),
        (None, Some(id)) => config
            .backends
            .iter()
            .find(|backend| backend.id == *id)
            .map(|backend| backend.url.as_str()),
        (None, None) => None,
    };
    url.is_some_and(|url| {
        url.split_once("://").is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss")
        })
    })
}

/// Turns a `ws://` URL into `http://` and `wss://` into `https://` (a WebSocket
/// backend's handshake is an HTTP/1.1 request); other URLs are left alone.
pub(crate) fn to_http_scheme(url: &mut url::Url) {
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return,
    };
    // Both are special schemes with the same default ports: this cannot fail.
    let _ = url.set_scheme(scheme);
}

/// A WebSocket opening handshake, by how the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// HTTP/1.1 `GET` with `Upgrade: websocket` (RFC 6455).
    Http1,
    /// HTTP/2 extended `CONNECT` with `:protocol websocket` (RFC 8441).
    Http2,
}

impl Handshake {
    /// Whether the request is a valid WebSocket handshake (see the module
    /// documentation). An HTTP/2 one becomes the `GET` it stands for, before routing.
    pub fn detect(parts: &mut http::request::Parts) -> Option<Self> {
        match parts.version {
            Version::HTTP_11
                if parts.method == Method::GET && is_http1_handshake(&parts.headers) =>
            {
                Some(Self::Http1)
            }
            Version::HTTP_2
                if parts.method == Method::CONNECT
                    && parts
                        .extensions
                        .get::<hyper::ext::Protocol>()
                        .is_some_and(|protocol| {
                            protocol.as_str().eq_ignore_ascii_case("websocket")
                        }) =>
            {
                parts.method = Method::GET;
                Some(Self::Http2)
            }
            _ => None,
        }
    }
}

/// RFC 6455 §4.2.1, for a `GET` over HTTP/1.1.
fn is_http1_handshake(headers: &HeaderMap) -> bool {
    // `Upgrade` first: most requests have none, so one failed lookup ends it.
    has_token(headers, &header::UPGRADE, "websocket")
        && has_token(headers, &header::CONNECTION, "upgrade")
        && headers
            .get(&SEC_WEBSOCKET_VERSION)
            .is_some_and(|version| version.as_bytes().trim_ascii() == b"13")
        && headers.get(&SEC_WEBSOCKET_KEY).is_some_and(|key| {
            base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes().trim_ascii())
                .is_ok_and(|nonce| nonce.len() == 16)
        })
}

/// Whether a comma-separated header (all its lines) lists `token`, in any case.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
#[must_use]
pub fn accept_value(key: &[u8]) -> String {
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// A WebSocket handshake on its way to the backend: what the response path needs to
/// switch both connections once the backend accepts. Dropping it (the backend refused,
/// a policy answered) gives back its place under `--max-websocket-connections`.
pub(super) struct Relay {
    kind: Handshake,
    /// Resolves to the client's connection once the 101 (HTTP/2: the 200) is sent.
    client: OnUpgrade,
    /// HTTP/2: the key the gateway sent the backend, whose answer it checks.
    key: Option<HeaderValue>,
    slot: Slot,
}

impl Relay {
    /// Right before the forward, once the handshake went through routing, the
    /// subscription check and the inbound and backend policies: takes a place under
    /// `--max-websocket-connections` (503 over it), takes the client's side of the
    /// upgrade, and puts back the headers a handshake needs (`Upgrade`, `Connection`,
    /// the HTTP/2 key) into the backend request, which goes over HTTP/1.1.
    ///
    /// `None`: the API is not a WebSocket API and an HTTP/1.1 handshake is forwarded
    /// as the ordinary `GET` it also is.
    pub(super) fn prepare(
        kind: Handshake,
        state: &GatewayState,
        api: &CompiledApi,
        limits: &Limits,
        extensions: &mut http::Extensions,
        request: &mut gatehouse_policy::RequestState,
    ) -> Result<Option<Self>, ProxyError> {
        if !api.websocket {
            return match kind {
                Handshake::Http1 => Ok(None),
                Handshake::Http2 => Err(ProxyError::WebSocketNotEnabled {
                    api: api.id.to_string(),
                }),
            };
        }
        // hyper's side of the client's upgrade: there whenever the connection can
        // switch (always, as the gateway serves connections with upgrades).
        let Some(client) = extensions.remove::<OnUpgrade>() else {
            return Ok(None);
        };
        let slot = state
            .metrics
            .websocket
            .acquire(limits.max_websocket_connections)
            .ok_or(ProxyError::WebSocketLimit {
                limit: limits.max_websocket_connections,
            })?;
        let headers = &mut request.headers;
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let key = match kind {
            Handshake::Http1 => None,
            Handshake::Http2 => {
                let nonce: [u8; 16] = rand::random();
                let key =
                    HeaderValue::try_from(base64::engine::general_purpose::STANDARD.encode(nonce))
                        .ok();
                if let Some(key) = &key {
                    headers.insert(SEC_WEBSOCKET_KEY.clone(), key.clone());
                }
                key
            }
        };
        // Upgrades are HTTP/1.1's (RFC 8441 to backends is not supported).
        request.forward.http_version = gatehouse_policy::HttpVersion::Http1;
        Ok(Some(Self {
            kind,
            client,
            key,
            slot,
        }))
    }

    /// After the outbound policies: when the backend answered 101 and the response to
    /// the client is still a 101, makes it the client's handshake answer (HTTP/2: a
    /// 200), turns the connection's framing check off, and leaves the relay with
    /// `exchange` to start once the answer is on its way. `false`: the response is an
    /// ordinary one and the handshake is over (`self` is dropped).
    ///
    /// # Errors
    ///
    /// [`ProxyError::BackendProtocol`] when an HTTP/2 client's backend answered with a
    /// `Sec-WebSocket-Accept` that does not match the gateway's key, or with a 2xx
    /// (which would tell the client its tunnel is open) instead of a 101.
    pub(super) fn switch(
        self,
        response: &mut http::response::Parts,
        conn: &Arc<ClientConn>,
        limits: &Limits,
        exchange: &mut Exchange,
    ) -> Result<bool, ProxyError> {
        let backend = (exchange.backend_status == Some(101)
            && response.status == StatusCode::SWITCHING_PROTOCOLS)
            .then(|| response.extensions.remove::<OnUpgrade>())
            .flatten();
        let Some(backend) = backend else {
            // To an HTTP/2 client a 2xx would mean the tunnel is open: a backend that
            // answers the handshake with one without switching is not a WebSocket
            // server.
            if self.kind == Handshake::Http2 && response.status.is_success() {
                return Err(ProxyError::BackendProtocol {
                    backend: format!(
                        "of API {} (WebSocket handshake)",
                        exchange.api.as_deref().unwrap_or_default()
                    ),
                    source: format!(
                        "the backend answered the WebSocket handshake with {} instead of 101",
                        response.status.as_u16()
                    )
                    .into(),
                });
            }
            return Ok(false);
        };
        let headers = &mut response.headers;
        // No body, nor anything describing one, in a 101 or a CONNECT's 2xx.
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        match self.kind {
            Handshake::Http1 => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                response.version = Version::HTTP_11;
            }
            Handshake::Http2 => {
                let accept = headers.remove(&SEC_WEBSOCKET_ACCEPT);
                let expected = self.key.as_ref().map(|key| accept_value(key.as_bytes()));
                if accept.is_none_or(|accept| {
                    Some(accept.as_bytes()) != expected.as_deref().map(str::as_bytes)
                }) {
                    return Err(ProxyError::BackendProtocol {
                        backend: format!(
                            "of API {} (WebSocket handshake)",
                            exchange.api.as_deref().unwrap_or_default()
                        ),
                        source:
                            "the backend's Sec-WebSocket-Accept does not match the key it was sent"
                                .into(),
                    });
                }
                response.status = StatusCode::OK;
                response.version = Version::HTTP_2;
            }
        }
        // From the 101 on, the client's bytes are WebSocket frames, not requests.
        conn.upgrades.switch.switch_off();
        exchange.websocket = Upgrade::Switching(Box::new(Session {
            client: self.client,
            backend,
            slot: self.slot,
            conn: conn.clone(),
            idle_timeout: limits.websocket_idle_timeout,
        }));
        Ok(true)
    }
}

/// Where an exchange is with a WebSocket upgrade.
#[derive(Default)]
pub(super) enum Upgrade {
    /// None: an ordinary request.
    #[default]
    None,
    /// The backend switched; the client's answer is being sent.
    Switching(Box<Session>),
    /// The relay runs: the handshake was counted when it started (the exchange's `Drop`
    /// only settles and logs).
    Relaying,
}

impl Upgrade {
    /// Whether the handshake was already counted (see [`Upgrade::Relaying`]).
    pub(super) const fn is_relaying(&self) -> bool {
        matches!(self, Self::Relaying)
    }
}

/// Both sides of a switched WebSocket, until the relay starts.
pub(super) struct Session {
    client: OnUpgrade,
    backend: OnUpgrade,
    slot: Slot,
    /// Holds the client connection's place under `--max-connections` (the HTTP/1.1
    /// connection task ends at the upgrade) and its worker's task tracker.
    conn: Arc<ClientConn>,
    idle_timeout: Duration,
}

/// Counts the handshake (its response is final), and starts the relay of `exchange`
/// on the connection's worker. Called as the response leaves the request path.
pub(super) fn start(mut exchange: Exchange, session: Session) {
    exchange.websocket = Upgrade::Relaying;
    let status = exchange.status.map_or(101, |status| status.as_u16());
    exchange.metrics.record_request(
        &exchange._config,
        status,
        exchange.source(),
        exchange.started.elapsed(),
    );
    exchange.state.metrics.in_flight_requests.dec();
    let tasks = session.conn.upgrades.tasks.clone();
    let relay = relay(exchange, session);
    match tasks {
        Some(tasks) => drop(tasks.spawn(relay)),
        None => drop(tokio::spawn(relay)),
    }
}

/// Why a relay ended; the `reason` of `gatehouse_websocket_closed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// Either side closed its connection (the close was passed on to the other).
    Normal,
    /// No byte moved for `--websocket-idle-timeout`.
    IdleTimeout,
    /// A read or write failed (a reset), or a side never finished switching.
    Error,
}

impl Close {
    const ALL: [Self; 3] = [Self::Normal, Self::IdleTimeout, Self::Error];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::IdleTimeout => "idle_timeout",
            Self::Error => "error",
        }
    }
}

async fn relay(mut exchange: Exchange, session: Session) {
    let Session {
        client,
        backend,
        slot,
        conn,
        idle_timeout,
    } = session;
    let metrics = exchange.state.clone();
    let metrics = &metrics.metrics.websocket;
    let switched =
        tokio::time::timeout(idle_timeout, async { tokio::try_join!(client, backend) }).await;
    let close = match switched {
        Ok(Ok((client, backend))) => {
            metrics.connections.inc();
            let traffic = Traffic::default();
            let close = pump(
                &mut TokioIo::new(client),
                &mut TokioIo::new(backend),
                &traffic,
                idle_timeout,
                metrics,
            )
            .await;
            metrics.connections.dec();
            exchange
                .bytes_received
                .store(traffic.up.total(), Ordering::Relaxed);
            exchange.bytes_sent = traffic.down.total();
            close
        }
        Ok(Err(error)) => {
            tracing::debug!(peer = %conn.peer, %error, "WebSocket upgrade failed");
            Close::Error
        }
        Err(_) => Close::Error,
    };
    metrics.closed(close);
    if close == Close::IdleTimeout {
        tracing::debug!(peer = %conn.peer, ?idle_timeout, "WebSocket connection idle; closed");
    }
    exchange.complete = close != Close::Error;
    // The exchange's `Drop` settles quotas, releases permits and writes the log line;
    // then the slot and the connection (its place under `--max-connections`) go.
    drop(exchange);
    drop(slot);
    drop(conn);
}

/// Bytes moved one way, and when the last ones did.
#[derive(Default)]
struct Direction {
    bytes: AtomicU64,
    /// Already added to `gatehouse_websocket_bytes_total`.
    flushed: AtomicU64,
}

impl Direction {
    fn total(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The bytes not yet counted in the metric.
    fn unflushed(&self) -> u64 {
        let total = self.total();
        total - self.flushed.swap(total, Ordering::Relaxed)
    }
}

/// Both directions of one relay: `up` from the client to the backend, `down` back.
#[derive(Default)]
struct Traffic {
    up: Direction,
    down: Direction,
}

impl Traffic {
    fn moved(&self) -> u64 {
        self.up.total() + self.down.total()
    }

    fn flush(&self, metrics: &WebSocketMetrics) {
        metrics.client_to_backend.inc_by(self.up.unflushed());
        metrics.backend_to_client.inc_by(self.down.unflushed());
    }
}

/// Copies both ways until both sides are closed (or one is, and the other does not
/// follow within [`CLOSE_LINGER`]), one fails, or nothing moves for `idle_timeout`.
async fn pump<C, B>(
    client: &mut C,
    backend: &mut B,
    traffic: &Traffic,
    idle_timeout: Duration,
    metrics: &WebSocketMetrics,
) -> Close
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Half::new();
    let mut down = Half::new();
    let mut seen = traffic.moved();
    let mut idle_since = Instant::now();
    let mut linger: Option<Instant> = None;
    let close = loop {
        let mut wake = (idle_since + idle_timeout).min(Instant::now() + METRICS_FLUSH_INTERVAL);
        if let Some(linger) = linger {
            wake = wake.min(linger);
        }
        // Ready when a direction has just finished (or failed).
        let step = std::future::poll_fn(|cx| {
            let up = up.poll_copy(cx, &mut *client, &mut *backend, &traffic.up);
            let down = down.poll_copy(cx, &mut *backend, &mut *client, &traffic.down);
            match (up, down) {
                (Poll::Ready(Err(error)), _) | (_, Poll::Ready(Err(error))) => {
                    Poll::Ready(Err(error))
                }
                (Poll::Ready(Ok(())), _) | (_, Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
                (Poll::Pending, Poll::Pending) => Poll::Pending,
            }
        });
        tokio::select! {
            result = step => match result {
                Err(_) => break Close::Error,
                Ok(()) if up.done && down.done => break Close::Normal,
                // One side closed (and the other was told): the other gets a moment
                // to finish its part of the closing handshake.
                Ok(()) => linger = Some(Instant::now() + CLOSE_LINGER),
            },
            () = tokio::time::sleep_until(wake) => {
                traffic.flush(metrics);
                if linger.is_some_and(|linger| linger <= Instant::now()) {
                    break Close::Normal;
                }
                let moved = traffic.moved();
                if moved != seen {
                    // Activity is noticed at the next wake-up (at most
                    // `min(idle_timeout, METRICS_FLUSH_INTERVAL)` later), so an idle
                    // connection is closed that much after the timeout at most.
                    seen = moved;
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= idle_timeout {
                    break Close::IdleTimeout;
                }
            }
        }
    };
    traffic.flush(metrics);
    close
}

/// How long a relay waits, once one side has closed, for the other to close too (the
/// rest of a closing handshake) before it closes it.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// One direction of a relay: reads into its buffer, writes it all out, and once the
/// reader is at its end, shuts the writer down (the close passed on).
struct Half {
    buf: Box<[u8]>,
    /// What is left to write: `buf[pos..cap]`.
    pos: usize,
    cap: usize,
    eof: bool,
    /// Written since the last flush.
    need_flush: bool,
    /// The reader ended and the writer is shut down.
    done: bool,
}

impl Half {
    fn new() -> Self {
        Self {
            buf: vec![0; RELAY_BUFFER_BYTES].into_boxed_slice(),
            pos: 0,
            cap: 0,
            eof: false,
            need_flush: false,
            done: false,
        }
    }

    /// Moves what it can from `reader` to `writer`: `Ready(Ok)` once, when the reader
    /// has ended and everything was written and the writer shut down; `Pending` ever
    /// after.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        moved: &Direction,
    ) -> Poll<std::io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        use std::pin::Pin;
        if self.done {
            return Poll::Pending;
        }
        loop {
            if self.pos == self.cap && !self.eof {
                let mut buf = ReadBuf::new(&mut self.buf);
                match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        let read = buf.filled().len();
                        if read == 0 {
                            self.eof = true;
                        } else {
                            self.pos = 0;
                            self.cap = read;
                            moved.bytes.fetch_add(read as u64, Ordering::Relaxed);
                        }
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => {
                        // Nothing more to read now: what was written goes out.
                        if self.need_flush {
                            std::task::ready!(Pin::new(&mut *writer).poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.cap {
                let written = std::task::ready!(
                    Pin::new(&mut *writer).poll_write(cx, &self.buf[self.pos..self.cap])
                )?;
                if written == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                self.pos += written;
                self.need_flush = true;
            }
            if self.eof {
                std::task::ready!(Pin::new(&mut *writer).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// What a client connection lends the WebSocket relays started on it.
#[derive(Debug, Default)]
pub struct ConnectionUpgrades {
    /// Turns the connection's framing check off when it switches protocols.
    pub(crate) switch: SwitchOff,
    /// The worker's task tracker, which relays run on so the drain waits for them.
    tasks: Option<TaskTracker>,
    /// The connection's place under `--max-connections`, held as long as the
    /// connection (and so any relay on it) is.
    admitted: Option<ConnectionGuard>,
}

impl ConnectionUpgrades {
    /// Hands the connection's admission and the worker's task tracker to whatever
    /// outlives the HTTP connection on it (a relay).
    pub(crate) fn attach(&mut self, admitted: ConnectionGuard, tasks: TaskTracker) {
        self.admitted = Some(admitted);
        self.tasks = Some(tasks);
    }
}

/// Labels of `gatehouse_websocket_bytes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// Labels of `gatehouse_websocket_closed_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    reason: &'static str,
}

/// The WebSocket metrics, and the count behind `--max-websocket-connections`.
#[derive(Debug)]
pub struct WebSocketMetrics {
    /// `gatehouse_websocket_connections`: relays running.
    pub connections: Gauge,
    /// `gatehouse_websocket_bytes_total{direction="client_to_backend"}`.
    client_to_backend: Counter,
    /// `gatehouse_websocket_bytes_total{direction="backend_to_client"}`.
    backend_to_client: Counter,
    /// `gatehouse_websocket_closed_total{reason}`, in [`Close::ALL`]'s order.
    closed: [Counter; 3],
    /// Handshakes being forwarded plus relays running, across workers.
    open: Arc<AtomicUsize>,
}

impl WebSocketMetrics {
    /// Creates and registers the families.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "WebSocket connections being relayed",
            connections.clone(),
        );
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "websocket_bytes",
            "Bytes relayed on WebSocket connections after the handshake, by direction",
            bytes.clone(),
        );
        let direction = |direction| bytes.get_or_create(&DirectionLabels { direction }).clone();
        let client_to_backend = direction("client_to_backend");
        let backend_to_client = direction("backend_to_client");
        let closed_family = Family::<CloseLabels, Counter>::default();
        registry.register(
            "websocket_closed",
            "WebSocket connections closed, by reason: normal (either side closed), idle_timeout, error",
            closed_family.clone(),
        );
        let closed = Close::ALL.map(|close| {
            closed_family
                .get_or_create(&CloseLabels {
                    reason: close.as_str(),
                })
                .clone()
        });
        Self {
            connections,
            client_to_backend,
            backend_to_client,
            closed,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn closed(&self, close: Close) {
        let index = Close::ALL.iter().position(|c| *c == close).unwrap_or(0);
        self.closed[index].inc();
    }

    /// A place for one more WebSocket, unless `max` (not 0) are open.
    fn acquire(&self, max: usize) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (max == 0 || open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(self.open.clone()))
    }
}

/// One place under `--max-websocket-connections`, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[path = "websocket_tests.rs"]
mod tests;
