//! [`EchoBackend`]: a real HTTP/1.1 + h2c server that answers with a JSON echo of the
//! request, for tests that need to see what the gateway forwarded. Its behaviours are
//! documented on the type.
//!
//! It does not do TLS, HTTP/1.1 `Upgrade: h2c`, or WebSockets.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::server_thread::{ServerThread, accept_each};

/// Request header: milliseconds to wait before sending the response head.
pub const HEADER_DELAY_MS: &str = "x-test-delay-ms";
/// Request header: the status code to answer with.
pub const HEADER_STATUS: &str = "x-test-status";
/// Request header: answer with the request body itself (up to 1 MiB, its
/// `Content-Type` kept) instead of the JSON echo, to see what body the gateway sent.
pub const HEADER_MIRROR: &str = "x-test-mirror";
/// Response header carrying the backend's name, when [`EchoBackendBuilder::name`] set one.
pub const HEADER_BACKEND_NAME: &str = "x-backend-name";

const DEFAULT_CHUNK_SIZE: usize = 16 * 1024;
const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// Where `/bytes/{n}` chunks are sliced from: streaming costs no allocation.
static FILLER: [u8; MAX_CHUNK_SIZE] = [b'x'; MAX_CHUNK_SIZE];

type Body = UnsyncBoxBody<Bytes, Infallible>;

// === impl Echo ===

/// The JSON body an [`EchoBackend`] answers with: what it received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Echo {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// Raw query string without `?`; empty when there is none.
    pub query: String,
    /// Request headers by lower-case name. Repeated headers are joined with `", "`, in
    /// the order received.
    pub headers: BTreeMap<String, String>,
    /// Number of body bytes received.
    pub body_bytes: u64,
    /// `HTTP/1.1` or `HTTP/2.0` (HTTP/1.0 requests show `HTTP/1.0`).
    pub http_version: String,
}

impl Echo {
    /// Parses an echo body.
    ///
    /// # Panics
    ///
    /// If `body` is not an echo, with the body in the message: a test that expected the
    /// backend's echo got something else (often the gateway's own error response).
    #[must_use]
    pub fn from_slice(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_else(|error| {
            panic!(
                "expected an echo from EchoBackend ({error}), got: {}",
                String::from_utf8_lossy(body)
            )
        })
    }

    /// The value of header `name` (any case), if the backend received it.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

// === impl EchoBackendBuilder ===

/// Which HTTP versions an [`EchoBackend`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    Both,
    Http1Only,
    Http2Only,
}

/// Settings for an [`EchoBackend`]; [`EchoBackend::builder`] makes one.
#[derive(Debug, Clone)]
#[must_use = "call .start() to run the backend"]
pub struct EchoBackendBuilder {
    name: Option<String>,
    response_delay: Duration,
    status: StatusCode,
    versions: Versions,
}

impl EchoBackendBuilder {
    /// Names the backend: every response carries `x-backend-name: {name}`, so a test
    /// with several backends can tell which one answered.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Waits this long before every response head (a slow backend, for response
    /// timeouts). The `x-test-delay-ms` header overrides it per request.
    pub const fn response_delay(mut self, delay: Duration) -> Self {
        self.response_delay = delay;
        self
    }

    /// Answers every request with this status (default 200). The `x-test-status` header
    /// overrides it per request.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid status code (100 to 999).
    pub fn status(mut self, status: u16) -> Self {
        self.status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("EchoBackend: invalid status code {status}"));
        self
    }

    /// Accepts HTTP/1.x only (h2c prior-knowledge connections fail).
    pub const fn http1_only(mut self) -> Self {
        self.versions = Versions::Http1Only;
        self
    }

    /// Accepts h2c with prior knowledge only (HTTP/1.x connections fail).
    pub const fn http2_only(mut self) -> Self {
        self.versions = Versions::Http2Only;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on a thread of its own.
    ///
    /// # Panics
    ///
    /// If the socket, runtime or thread cannot be created.
    pub fn start(self) -> EchoBackend {
        let stats = Arc::new(Stats::default());
        let name = self.name.as_deref().map(|name| {
            HeaderValue::from_str(name)
                .unwrap_or_else(|_| panic!("EchoBackend: name {name:?} is not a header value"))
        });
        let settings = Arc::new(Settings {
            name,
            response_delay: self.response_delay,
            status: self.status,
            stats: Arc::clone(&stats),
        });
        let mut http = auto::Builder::new(TokioExecutor::new());
        http = match self.versions {
            Versions::Both => http,
            Versions::Http1Only => http.http1_only(),
            Versions::Http2Only => http.http2_only(),
        };
        let server = ServerThread::spawn("echo-backend", move |listener, shutdown| {
            accept_loop(listener, shutdown, Arc::new(http), settings)
        });
        EchoBackend { server, stats }
    }
}

// === impl EchoBackend ===

/// A real HTTP/1.1 + h2c server on `127.0.0.1:0` answering a JSON [`Echo`] of each
/// request.
///
/// # Behaviours
///
/// Chosen per request, so one backend serves a whole test:
///
/// | Request | Effect |
/// |---|---|
/// | header `x-test-delay-ms: N` | sleeps N ms after reading the request body, before the response head |
/// | header `x-test-status: N` | answers with status N (the body is still the echo) |
/// | `GET /bytes/{n}` | streams `n` bytes of `x` instead of the echo (see below) |
/// | header `x-test-mirror` | answers with the request body itself (up to 1 MiB) and its `Content-Type` |
/// | any body | read as a stream and counted, never buffered: `bodyBytes` in the echo |
///
/// `/bytes/{n}` takes optional query parameters: `chunk_size` (default 16384, at most
/// 65536), `chunk_delay_ms` (pause before each chunk after the first, default 0) and
/// `chunked=true` (omit `Content-Length`, so HTTP/1.1 uses chunked encoding). The chunks
/// come from a static buffer, so a large `n` costs no memory.
///
/// Builder settings ([`EchoBackendBuilder::response_delay`],
/// [`EchoBackendBuilder::status`]) give every request a default; the headers override it.
///
/// It counts requests and connections so tests can assert pooling and keep-alive. It
/// shuts down when dropped, closing every open connection.
///
/// ```no_run
/// # async fn demo() {
/// use gatehouse_test_support::{Echo, EchoBackend, http_client};
///
/// let backend = EchoBackend::start();
/// let response = http_client()
///     .get(format!("{}/users?id=1", backend.url()))
///     .send()
///     .await
///     .unwrap();
/// let echo = Echo::from_slice(&response.bytes().await.unwrap());
/// assert_eq!(echo.path, "/users");
/// assert_eq!(backend.requests(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct EchoBackend {
    server: ServerThread,
    stats: Arc<Stats>,
}

impl EchoBackend {
    /// Starts a backend with default settings: status 200, no delay, HTTP/1.1 and h2c.
    ///
    /// # Panics
    ///
    /// If the socket, runtime or thread cannot be created.
    #[must_use]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A builder for a backend with non-default settings.
    pub fn builder() -> EchoBackendBuilder {
        EchoBackendBuilder {
            name: None,
            response_delay: Duration::ZERO,
            status: StatusCode::OK,
            versions: Versions::Both,
        }
    }

    /// The address it listens on.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:{port}`, without a trailing slash (what a `serviceUrl` wants).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Requests received so far, counted when the request head arrives (so a request the
    /// client gave up on still counts).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far. With a pooling client, stays at 1 across sequential
    /// requests.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.stats.connections_accepted.load(Ordering::SeqCst)
    }

    /// Connections open right now (accepted and not yet closed by either side).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.stats.open_connections.load(Ordering::SeqCst)
    }
}

/// Counters shared between the server thread and the test.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    connections_accepted: AtomicU64,
    open_connections: AtomicUsize,
}

/// Decrements `open_connections` when a connection task ends, however it ends.
struct OpenConnection(Arc<Stats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Settings {
    name: Option<HeaderValue>,
    response_delay: Duration,
    status: StatusCode,
    stats: Arc<Stats>,
}

async fn accept_loop(
    listener: TcpListener,
    shutdown: oneshot::Receiver<()>,
    http: Arc<auto::Builder<TokioExecutor>>,
    settings: Arc<Settings>,
) {
    accept_each(listener, shutdown, move |stream| {
        settings
            .stats
            .connections_accepted
            .fetch_add(1, Ordering::SeqCst);
        settings
            .stats
            .open_connections
            .fetch_add(1, Ordering::SeqCst);
        let open = OpenConnection(Arc::clone(&settings.stats));
        let http = Arc::clone(&http);
        let settings = Arc::clone(&settings);
        async move {
            let _open = open;
            let service = service_fn(move |request| handle(Arc::clone(&settings), request));
            // A connection error (client reset, protocol error) only ends this connection.
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        }
    })
    .await;
}

async fn handle(
    settings: Arc<Settings>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    settings.stats.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = match respond(&settings, request).await {
        Ok(response) => response,
        Err(message) => text_response(StatusCode::BAD_REQUEST, message),
    };
    if let Some(name) = &settings.name {
        response
            .headers_mut()
            .insert(HEADER_BACKEND_NAME, name.clone());
    }
    Ok(response)
}

/// Builds the response; `Err` is a message for a 400 (a bad `x-test-*` value).
async fn respond(
    settings: &Settings,
    request: Request<Incoming>,
) -> Result<Response<Body>, String> {
    let delay = match request.headers().get(HEADER_DELAY_MS) {
        Some(value) => Duration::from_millis(parse_header(value, HEADER_DELAY_MS)?),
        None => settings.response_delay,
    };
    let status = match request.headers().get(HEADER_STATUS) {
        Some(value) => StatusCode::from_u16(parse_header(value, HEADER_STATUS)?)
            .map_err(|_| format!("{HEADER_STATUS} is not a status code"))?,
        None => settings.status,
    };
    let bytes = request
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .map(|count| {
            count
                .parse::<u64>()
                .map_err(|_| format!("/bytes/{{n}}: {count:?} is not a byte count"))
        })
        .transpose()?;

    let (parts, mut body) = request.into_parts();
    let mirror = parts.headers.contains_key(HEADER_MIRROR);
    // Counted frame by frame and dropped: an upload of any size costs no memory (a
    // mirrored body is kept, up to 1 MiB).
    let mut body_bytes = 0_u64;
    let mut mirrored = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| format!("reading the request body failed: {error}"))?;
        if let Some(data) = frame.data_ref() {
            body_bytes += data.len() as u64;
            if mirror && mirrored.len() + data.len() <= 1 << 20 {
                mirrored.extend_from_slice(data);
            }
        }
    }

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut response = match bytes {
        Some(count) => stream_bytes(count, parts.uri.query().unwrap_or(""))?,
        None if mirror => {
            let mut response = Response::new(Full::new(Bytes::from(mirrored)).boxed_unsync());
            if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            response
        }
        None => echo_response(&parts, body_bytes),
    };
    *response.status_mut() = status;
    Ok(response)
}

fn parse_header<T: std::str::FromStr>(value: &HeaderValue, name: &str) -> Result<T, String> {
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| format!("{name}: {value:?} is not a number"))
}

fn echo_response(parts: &http::request::Parts, body_bytes: u64) -> Response<Body> {
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let echo = Echo {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body_bytes,
        http_version: format!("{:?}", parts.version),
    };
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(&echo).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(json)).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `/bytes/{count}`: `count` bytes of `x`, produced chunk by chunk as the client reads.
fn stream_bytes(count: u64, query: &str) -> Result<Response<Body>, String> {
    let mut chunk_size = DEFAULT_CHUNK_SIZE;
    let mut chunk_delay = Duration::ZERO;
    let mut chunked = false;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let invalid = || format!("/bytes/{{n}}: invalid query parameter {pair:?}");
        match key {
            "chunk_size" => {
                chunk_size = value.parse().map_err(|_| invalid())?;
                if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
                    return Err(format!("chunk_size must be 1 to {MAX_CHUNK_SIZE}"));
                }
            }
            "chunk_delay_ms" => {
                chunk_delay = Duration::from_millis(value.parse().map_err(|_| invalid())?);
            }
            "chunked" => chunked = value.parse().map_err(|_| invalid())?,
            _ => return Err(invalid()),
        }
    }

    let chunk_size = chunk_size as u64;
    let stream = futures_util::stream::unfold(0_u64, move |sent| async move {
        if sent >= count {
            return None;
        }
        if sent > 0 && !chunk_delay.is_zero() {
            tokio::time::sleep(chunk_delay).await;
        }
        let len = (count - sent).min(chunk_size);
        // `len <= MAX_CHUNK_SIZE`, so the cast and the slice are in range.
        let data = Bytes::from_static(&FILLER[..len as usize]);
        Some((Ok::<_, Infallible>(Frame::data(data)), sent + len))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if !chunked {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    }
    Ok(response)
}

fn text_response(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
