//! WebSocket passthrough (APIM's WebSocket APIs): real WebSocket clients through the
//! real binary to a real WebSocket echo backend (tokio-tungstenite on both ends).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use gatehouse_test_support::pki::{CertifiedPem, TestCa};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async, client_async};

use crate::common::*;

// === the echo backend ===

/// What the backend saw of one handshake.
#[derive(Clone, Debug)]
struct Handshake {
    uri: String,
    headers: http::HeaderMap,
}

/// A WebSocket echo server on its own thread and runtime. Every connection first gets
/// a `hello` text message, then each text or binary message back as it came. A
/// handshake for a path ending in `/refuse` is refused with `403` and a body.
struct WsBackend {
    addr: SocketAddr,
    received: mpsc::Receiver<Handshake>,
    handshakes: RefCell<Vec<Handshake>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WsBackend {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// Over TLS with `certificate` (`wss://`).
    fn start_tls(certificate: &CertifiedPem) -> Self {
        Self::start_with(Some(server_tls(certificate)))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, received) = mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(_) => continue,
                        },
                    };
                    let seen = seen.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            Some(tls) => {
                                if let Ok(stream) = tls.accept(tcp).await {
                                    serve_echo(stream, seen).await;
                                }
                            }
                            None => serve_echo(tcp, seen).await,
                        }
                    });
                }
            });
        });
        Self {
            addr,
            received,
            handshakes: RefCell::default(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Every handshake so far, in order.
    fn handshakes(&self) -> Vec<Handshake> {
        let mut handshakes = self.handshakes.borrow_mut();
        handshakes.extend(self.received.try_iter());
        handshakes.clone()
    }
}

impl Drop for WsBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_echo<S>(stream: S, seen: mpsc::Sender<Handshake>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let _ = seen.send(Handshake {
            uri: request.uri().to_string(),
            headers: request.headers().clone(),
        });
        if request.uri().path().ends_with("/refuse") {
            let mut refusal = ErrorResponse::new(Some("refused by the backend".to_owned()));
            *refusal.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(refusal);
        }
        if let Some(protocol) = request.headers().get("sec-websocket-protocol") {
            let first = protocol.to_str().unwrap().split(',').next().unwrap().trim();
            response
                .headers_mut()
                .insert("sec-websocket-protocol", first.parse().unwrap());
        }
        response
            .headers_mut()
            .insert("x-backend", http::HeaderValue::from_static("ws-echo"));
        Ok(response)
    };
    let Ok(mut ws) = accept_hdr_async(stream, callback).await else {
        return;
    };
    if ws.send(Message::text("hello")).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

fn server_tls(certificate: &CertifiedPem) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

// === clients ===

type Client<S = TcpStream> = WebSocketStream<S>;

/// Opens a WebSocket to `path` on the gateway's HTTP port, with `headers`.
async fn connect(
    gateway: &GatewayProcess,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Client, tungstenite::handshake::client::Response), tungstenite::Error> {
    let addr = gateway_addr(gateway);
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    client_async(request, tcp).await
}

fn gateway_addr(gateway: &GatewayProcess) -> SocketAddr {
    gateway
        .http_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

/// The next text or binary message, within [`WAIT`].
async fn next_message<S>(client: &mut Client<S>) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no message in time")
            .expect("the connection closed")
            .expect("a WebSocket error");
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            return message;
        }
    }
}

/// Sends `message` and expects it back.
async fn echo<S>(client: &mut Client<S>, message: Message)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client.send(message.clone()).await.unwrap();
    assert_eq!(next_message(client).await, message);
}

/// Whether the connection ends (close, error or end of stream) within `timeout`.
async fn closes_within<S>(client: &mut Client<S>, timeout: Duration) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(timeout, async {
        loop {
            match client.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The gateway's access-log lines with `status`.
fn access_lines(gateway: &GatewayProcess, status: u16) -> Vec<serde_json::Value> {
    gateway
        .stdout_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["kind"] == "request" && line["status"] == status)
        .collect()
}

/// One open WebSocket API `chat` at `/chat` to `backend` (a `ws://` URL), with an
/// optional API policy, and an HTTP API `web` at `/web` to `web`.
fn websocket_config(backend: &str, policy: Option<&str>, web: &str) -> String {
    let policy = policy.map_or_else(String::new, |p| block("    policy", p, 6));
    format!(
        "apis:\n  - id: chat\n    path: chat\n    protocols: [ws, wss]\n    serviceUrl: {backend}\n    subscriptionRequired: false\n{policy}    operations:\n      - id: onHandshake\n        method: GET\n        urlTemplate: /*\n  - id: web\n    path: web\n    serviceUrl: {web}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}"
    )
}

// === tests ===

#[tokio::test(flavor = "multi_thread")]
async fn text_and_binary_messages_are_relayed_both_ways() {
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let policy = inbound_policy(
        r#"    <set-header name="X-Handshake" exists-action="override"><value>via-gateway</value></set-header>"#,
    );
    let gateway = start(&websocket_config(
        &format!("{}/socket", backend.url()),
        Some(&policy),
        &web.url(),
    ));

    let (mut client, response) = connect(
        &gateway,
        "/chat/room?id=7",
        &[("Sec-WebSocket-Protocol", "chat, superchat")],
    )
    .await
    .unwrap();
    // The backend's handshake headers reach the client (tungstenite checked the
    // Accept).
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["x-backend"], "ws-echo");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    // The backend speaks first.
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::text("ping")).await;
    echo(&mut client, Message::binary(vec![0_u8, 1, 2, 255])).await;
    // Larger than a relay buffer, one way and back.
    let large: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
    echo(&mut client, Message::binary(large)).await;
    echo(&mut client, Message::text("é".repeat(10_000))).await;

    // The handshake went through the policies and on to the backend's path.
    let handshakes = backend.handshakes();
    assert_eq!(handshakes.len(), 1);
    let seen = &handshakes[0];
    assert_eq!(seen.uri, "/socket/room?id=7");
    assert_eq!(seen.headers["x-handshake"], "via-gateway");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["sec-websocket-protocol"], "chat, superchat");

    client.close(None).await.unwrap();
    assert!(closes_within(&mut client, WAIT).await);
    drop(client);

    // Counted and logged at the close.
    let admin = gateway.admin_addr();
    wait_for_metric(
        admin,
        r#"gatehouse_websocket_closed_total{reason="normal"}"#,
        |v| v == 1.0,
        WAIT,
    )
    .await;
    wait_for_metric(admin, "gatehouse_websocket_connections", |v| v == 0.0, WAIT).await;
    let up = wait_for_metric(
        admin,
        r#"gatehouse_websocket_bytes_total{direction="client_to_backend"}"#,
        |v| v > 220_000.0,
        WAIT,
    )
    .await;
    let down = wait_for_metric(
        admin,
        r#"gatehouse_websocket_bytes_total{direction="backend_to_client"}"#,
        |v| v > 220_000.0,
        WAIT,
    )
    .await;
    wait_for_metric(
        admin,
        r#"gatehouse_requests_total{api="chat",status_class="1xx",source="backend"}"#,
        |v| v == 1.0,
        WAIT,
    )
    .await;
    assert!(wait_for(|| !access_lines(&gateway, 101).is_empty(), WAIT));
    let line = &access_lines(&gateway, 101)[0];
    assert_eq!(line["api"], "chat");
    assert_eq!(line["backendStatus"], 101);
    assert_eq!(line["bytesReceived"].as_f64(), Some(up), "{line}");
    assert_eq!(line["bytesSent"].as_f64(), Some(down), "{line}");
    assert!(line["durationMs"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_handshake_needs_a_subscription_key_like_any_request() {
    let backend = WsBackend::start();
    let gateway = start(&format!(
        "{}subscriptions:\n  - id: all\n    scope: /apis\n    primaryKey: {ALL_APIS_KEY}\n",
        websocket_config(&backend.url(), None, &backend.url().replace("ws:", "http:")).replace(
            "    subscriptionRequired: false\n    operations:\n      - id: onHandshake",
            "    operations:\n      - id: onHandshake"
        )
    ));
    match connect(&gateway, "/chat", &[]).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("missing subscription key"), "{body}");
        }
        other => panic!(
            "expected 401, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }
    match connect(&gateway, "/chat", &[("Ocp-Apim-Subscription-Key", "wrong")]).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!(
            "expected 401, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }
    assert!(
        backend.handshakes().is_empty(),
        "refused handshakes never reach the backend"
    );

    // In a header, or in the query (browsers cannot set headers on a WebSocket).
    let (mut client, _) = connect(
        &gateway,
        "/chat",
        &[("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)],
    )
    .await
    .unwrap();
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::text("with a header")).await;
    let (mut client, _) = connect(
        &gateway,
        &format!("/chat/x?subscription-key={ALL_APIS_KEY}&room=1"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::text("with a query parameter")).await;
    // The key went no further.
    let handshakes = backend.handshakes();
    assert_eq!(handshakes.len(), 2);
    assert!(
        !handshakes[0]
            .headers
            .contains_key("ocp-apim-subscription-key")
    );
    assert_eq!(handshakes[1].uri, "/x?room=1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upgrade_is_passed_through_and_the_connection_stays_http() {
    let backend = WsBackend::start();
    // A backend that does not speak WebSocket at all answers the handshake with 200.
    let plain = EchoBackend::start();
    let yaml = format!(
        "{}  - id: plain\n    path: plain\n    serviceUrl: {}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}",
        websocket_config(&backend.url(), None, &plain.url()),
        plain.url().replace("http:", "ws:")
    );
    let gateway = start(&yaml);

    match connect(&gateway, "/chat/refuse", &[]).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            // (tungstenite shows the body as it came: chunked.)
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("refused by the backend"), "{body}");
        }
        other => panic!(
            "expected 403, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }
    match connect(&gateway, "/plain/x", &[]).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 200),
        other => panic!(
            "expected 200, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }

    // The connection stays HTTP/1.1 and every request on it is checked: a smuggling
    // attempt behind the refused handshake is refused too.
    let handshake = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    for (path, status) in [
        ("/chat/refuse", "HTTP/1.1 403 Forbidden"),
        ("/plain/x", "HTTP/1.1 200 OK"),
    ] {
        let before = plain.requests();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{handshake}\r\n\
             POST /plain/smuggled HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        );
        let (text, closed) = raw(gateway_addr(&gateway), request.as_bytes());
        assert_eq!(
            status_lines(&text),
            [status, "HTTP/1.1 400 Bad Request"],
            "{path}: {text}"
        );
        assert!(
            closed,
            "{path}: the connection is closed after the refused request"
        );
        let reached = plain.requests() - before;
        assert_eq!(
            reached,
            u64::from(path == "/plain/x"),
            "{path}: the smuggled request reached no backend"
        );
    }
    // And an ordinary request after a refused handshake is served on the same
    // connection.
    let request = format!(
        "GET /chat/refuse HTTP/1.1\r\nHost: localhost\r\n{handshake}\r\n\
         GET /plain/after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let (text, closed) = raw(gateway_addr(&gateway), request.as_bytes());
    assert_eq!(
        status_lines(&text),
        ["HTTP/1.1 403 Forbidden", "HTTP/1.1 200 OK"],
        "{text}"
    );
    assert!(closed);
    let admin = gateway.admin_addr();
    wait_for_metric(admin, "gatehouse_websocket_connections", |v| v == 0.0, WAIT).await;
    assert_eq!(
        metric_value(
            &metrics_text(admin).await,
            r#"gatehouse_websocket_closed_total{reason="normal"}"#
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_to_an_http_api_stays_an_ordinary_request() {
    // APIM relays WebSockets for WebSocket APIs only (a ws:// or wss:// backend); an
    // HTTP API gets the GET without its Upgrade, as before.
    let web = EchoBackend::start();
    let gateway = start(&websocket_config(
        &format!("ws://{}", refused_addr()),
        None,
        &web.url(),
    ));
    match connect(&gateway, "/web/x", &[]).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 200);
            let echo = Echo::from_slice(response.body().as_deref().unwrap());
            assert_eq!(echo.header("upgrade"), None);
            assert_eq!(echo.header("connection"), None);
        }
        other => panic!(
            "expected 200, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed() {
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(websocket_config(&backend.url(), None, &web.url()))
        .args(["--workers", "1", "--websocket-idle-timeout", "1s"])
        .start();
    let (mut busy, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    let (mut idle, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    assert_eq!(next_message(&mut busy).await, Message::text("hello"));
    assert_eq!(next_message(&mut idle).await, Message::text("hello"));
    // Traffic keeps a connection open past the timeout…
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        echo(&mut busy, Message::text("still here")).await;
    }
    // …and silence closes it, at most two timeouts after the last byte: the idle one
    // is gone by now, the busy one soon after it stops.
    assert!(closes_within(&mut idle, Duration::from_secs(1)).await);
    assert!(closes_within(&mut busy, Duration::from_secs(5)).await);
    let admin = gateway.admin_addr();
    wait_for_metric(
        admin,
        r#"gatehouse_websocket_closed_total{reason="idle_timeout"}"#,
        |v| v == 2.0,
        WAIT,
    )
    .await;
    wait_for_metric(admin, "gatehouse_websocket_connections", |v| v == 0.0, WAIT).await;
    assert!(wait_for(|| access_lines(&gateway, 101).len() == 2, WAIT));
}

#[tokio::test(flavor = "multi_thread")]
async fn ordinary_requests_are_served_while_500_websockets_are_open() {
    const OPEN: usize = 500;
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let gateway = start(&websocket_config(&backend.url(), None, &web.url()));
    let mut clients = Vec::with_capacity(OPEN);
    for batch in 0..OPEN / 50 {
        let opened = futures_util::future::join_all((0..50).map(|i| {
            let gateway = &gateway;
            async move {
                let path = format!("/chat/{}", batch * 50 + i);
                let (mut client, _) = connect(gateway, &path, &[]).await.unwrap();
                assert_eq!(next_message(&mut client).await, Message::text("hello"));
                client
            }
        }))
        .await;
        clients.extend(opened);
    }
    let admin = gateway.admin_addr();
    wait_for_metric(
        admin,
        "gatehouse_websocket_connections",
        |v| v == OPEN as f64,
        WAIT,
    )
    .await;
    wait_for_metric(
        admin,
        "gatehouse_active_connections",
        |v| v >= OPEN as f64,
        WAIT,
    )
    .await;

    // Ordinary requests, on new connections and on one kept alive.
    let http = http_client();
    for i in 0..50 {
        let response = http
            .get(gateway.url(&format!("/web/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // The WebSockets still relay, each its own messages.
    for (i, client) in clients.iter_mut().enumerate().step_by(25) {
        echo(client, Message::text(format!("client {i}"))).await;
    }
    for client in &mut clients {
        client.close(None).await.unwrap();
    }
    drop(clients);
    wait_for_metric(admin, "gatehouse_websocket_connections", |v| v == 0.0, WAIT).await;
    wait_for_metric(
        admin,
        r#"gatehouse_websocket_closed_total{reason="normal"}"#,
        |v| v == OPEN as f64,
        WAIT,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_limit_answers_503() {
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(websocket_config(&backend.url(), None, &web.url()))
        .args(["--workers", "1", "--max-websocket-connections", "2"])
        .start();
    let (mut first, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    let (_second, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    match connect(&gateway, "/chat", &[]).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!(
            "expected 503, got {:?}",
            other.map(|(_, response)| response.status())
        ),
    }
    // Ordinary requests are not limited by it.
    let response = http_client()
        .get(gateway.url("/web/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A closed one makes room.
    first.close(None).await.unwrap();
    assert!(closes_within(&mut first, WAIT).await);
    drop(first);
    let admin = gateway.admin_addr();
    wait_for_metric(admin, "gatehouse_websocket_connections", |v| v == 1.0, WAIT).await;
    let (mut third, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    assert_eq!(next_message(&mut third).await, Message::text("hello"));
}

/// An HTTP/2 client's WebSocket (RFC 8441): extended CONNECT over h2c.
async fn h2_websocket(
    gateway: &GatewayProcess,
    path: &str,
) -> Result<Client<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>, u16> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = TcpStream::connect(gateway_addr(gateway)).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    // A first request, so the server's SETTINGS (extended CONNECT enabled) are in.
    let probe = http::Request::get(format!("http://localhost{}", "/status-0123456789abcdef"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(probe).await.unwrap().status(), 200);
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://localhost{path}"))
        .header("sec-websocket-version", "13")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let response = sender.send_request(request).await.unwrap();
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    assert!(!response.headers().contains_key("sec-websocket-accept"));
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_use_extended_connect() {
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let gateway = start(&format!(
        "{}  - id: plain\n    path: plain\n    serviceUrl: {}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}",
        websocket_config(&backend.url(), None, &web.url()),
        web.url().replace("http:", "ws:")
    ));
    let mut client = h2_websocket(&gateway, "/chat/h2").await.unwrap();
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::text("over HTTP/2")).await;
    echo(&mut client, Message::binary(vec![7_u8; 100_000])).await;
    // The backend got an HTTP/1.1 handshake, with a key of the gateway's.
    let handshakes = backend.handshakes();
    assert_eq!(handshakes[0].uri, "/h2");
    assert_eq!(handshakes[0].headers["sec-websocket-version"], "13");
    assert!(handshakes[0].headers.contains_key("sec-websocket-key"));
    client.close(None).await.unwrap();
    assert!(closes_within(&mut client, WAIT).await);
    drop(client);
    wait_for_metric(
        gateway.admin_addr(),
        r#"gatehouse_websocket_closed_total{reason="normal"}"#,
        |v| v == 1.0,
        WAIT,
    )
    .await;

    // A refusal is the backend's answer; an HTTP API refuses HTTP/2 WebSockets.
    assert_eq!(
        h2_websocket(&gateway, "/chat/refuse").await.err(),
        Some(403)
    );
    assert_eq!(h2_websocket(&gateway, "/web/x").await.err(), Some(400));
    // A backend that answers 200 without switching would open a tunnel to nothing.
    assert_eq!(h2_websocket(&gateway, "/plain/x").await.err(), Some(502));
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_clients_and_wss_backends() {
    let backend_ca = TestCa::new("Backend CA");
    let backend = WsBackend::start_tls(&backend_ca.server(&["socket.internal"]));
    let gateway_ca = TestCa::new("Gateway CA");
    let gateway_pair = gateway_ca.server(&["api.example.com"]);
    let yaml = format!(
        "backends:\n  - id: socket\n    url: wss://{}/feed\n    tls:\n      caCertificateIds: [backend-ca]\n      serverName: socket.internal\napis:\n  - id: chat\n    path: chat\n    protocols: [wss]\n    backendId: socket\n    subscriptionRequired: false\n    operations:\n      - id: onHandshake\n        method: GET\n        urlTemplate: /*\ncertificates:\n  - id: backend-ca\n    {}{}hostnames:\n  - hostname: api.example.com\n    certificateId: api\n",
        backend.addr,
        block("certificatePem", &backend_ca.cert_pem(), 6),
        certificate("api", &gateway_pair),
    );
    let gateway = start(&yaml);

    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls::pki_types::pem::PemObject as _;
        for ca in
            rustls::pki_types::CertificateDer::pem_slice_iter(gateway_ca.cert_pem().as_bytes())
        {
            roots.add(ca.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(gateway.https_addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("api.example.com".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let request = "wss://api.example.com/chat/tls"
        .into_client_request()
        .unwrap();
    let (mut client, _) = client_async(request, tls).await.unwrap();
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::text("over TLS both ways")).await;
    let handshakes = backend.handshakes();
    assert_eq!(handshakes[0].uri, "/feed/tls");
    assert_eq!(handshakes[0].headers["x-forwarded-proto"], "https");
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_work_with_http2_off() {
    // `--http2 false` serves connections with hyper's HTTP/1.1 builder alone; it
    // switches protocols too.
    let backend = WsBackend::start();
    let web = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(websocket_config(&backend.url(), None, &web.url()))
        .args(["--workers", "1", "--http2", "false"])
        .start();
    let (mut client, _) = connect(&gateway, "/chat", &[]).await.unwrap();
    assert_eq!(next_message(&mut client).await, Message::text("hello"));
    echo(&mut client, Message::binary(vec![1_u8; 50_000])).await;
}
