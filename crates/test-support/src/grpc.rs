//! A real gRPC server and client for tests: tonic's call handling (length-prefixed
//! messages over HTTP/2, status in trailers) with raw-bytes messages, so no protobuf
//! code generation is needed.
//!
//! [`GrpcBackend`] serves h2c with prior knowledge on `127.0.0.1:0`:
//!
//! | method | behaviour |
//! |---|---|
//! | `/test.Echo/Unary` | answers the request message; `fail` answers `NOT_FOUND` ("no such thing"); `sleep:N` waits N ms first; `headers` answers the request's header names, comma-separated |
//! | `/test.Echo/Stream` | bidirectional: answers each message as it arrives, in order |
//!
//! [`grpc_client`] is tonic's client over an HTTP/2-only hyper client.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::Stream;
use http::uri::PathAndQuery;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, StreamingService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

use crate::server_thread::{ServerThread, accept_each};

/// The unary method's path.
pub const UNARY: &str = "/test.Echo/Unary";
/// The bidirectional streaming method's path.
pub const STREAM: &str = "/test.Echo/Stream";

/// Messages are their bytes, as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[derive(Clone)]
struct Unary;

impl UnaryService<Bytes> for Unary {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        Box::pin(async move {
            let names: Vec<String> = request
                .metadata()
                .keys()
                .map(|key| match key {
                    tonic::metadata::KeyRef::Ascii(key) => key.as_str().to_owned(),
                    tonic::metadata::KeyRef::Binary(key) => key.as_str().to_owned(),
                })
                .collect();
            let message = request.into_inner();
            if message.as_ref() == b"fail" {
                return Err(Status::not_found("no such thing"));
            }
            if message.as_ref() == b"headers" {
                return Ok(Response::new(Bytes::from(names.join(","))));
            }
            if let Some(millis) = message
                .strip_prefix(b"sleep:")
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.parse().ok())
            {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            Ok(Response::new(message))
        })
    }
}

type EchoStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

#[derive(Clone)]
struct Echo;

impl StreamingService<Bytes> for Echo {
    type Response = Bytes;
    type ResponseStream = EchoStream;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EchoStream>, Status>> + Send>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let stream: EchoStream = Box::pin(request.into_inner());
        Box::pin(async move { Ok(Response::new(stream)) })
    }
}

/// A gRPC server on `127.0.0.1:0` (h2c, prior knowledge); see the module
/// documentation. Shuts down when dropped.
#[derive(Debug)]
pub struct GrpcBackend {
    server: ServerThread,
    calls: Arc<AtomicU64>,
}

impl GrpcBackend {
    /// Binds and starts serving on a thread of its own.
    ///
    /// # Panics
    ///
    /// If the socket, runtime or thread cannot be created.
    #[must_use]
    pub fn start() -> Self {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let server = ServerThread::spawn("grpc-backend", move |listener, shutdown| {
            accept_loop(listener, shutdown, counted)
        });
        Self { server, calls }
    }

    /// `http://127.0.0.1:{port}`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Calls received (any method).
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    listener: TcpListener,
    shutdown: oneshot::Receiver<()>,
    calls: Arc<AtomicU64>,
) {
    accept_each(listener, shutdown, move |stream| {
        let calls = Arc::clone(&calls);
        async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    let response = match request.uri().path() {
                        UNARY => Grpc::new(BytesCodec).unary(Unary, request).await,
                        STREAM => Grpc::new(BytesCodec).streaming(Echo, request).await,
                        _ => Status::unimplemented("no such method").into_http(),
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
}

/// tonic's client, speaking HTTP/2 with prior knowledge to `origin`
/// (`http://127.0.0.1:{port}`).
///
/// # Panics
///
/// If `origin` is not a URI.
#[must_use]
pub fn grpc_client(origin: &str) -> tonic::client::Grpc<Client<HttpConnector, tonic::body::Body>> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = origin
        .parse()
        .unwrap_or_else(|error| panic!("grpc_client: {origin:?} is not a URI: {error}"));
    tonic::client::Grpc::with_origin(client, origin)
}

/// Calls [`UNARY`] with `message`.
///
/// # Errors
///
/// The call's status when it is not OK.
pub async fn unary(
    client: &mut tonic::client::Grpc<Client<HttpConnector, tonic::body::Body>>,
    request: Request<Bytes>,
) -> Result<Bytes, Status> {
    client
        .ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    client
        .unary(request, PathAndQuery::from_static(UNARY), BytesCodec)
        .await
        .map(Response::into_inner)
}

/// Opens [`STREAM`] with the messages `requests` yields; the answers as a stream.
///
/// # Errors
///
/// The call's status when it does not start.
pub async fn stream(
    client: &mut tonic::client::Grpc<Client<HttpConnector, tonic::body::Body>>,
    requests: impl Stream<Item = Bytes> + Send + 'static,
) -> Result<Streaming<Bytes>, Status> {
    client
        .ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    client
        .streaming(
            Request::new(requests),
            PathAndQuery::from_static(STREAM),
            BytesCodec,
        )
        .await
        .map(Response::into_inner)
}
