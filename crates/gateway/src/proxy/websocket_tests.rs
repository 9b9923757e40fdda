use http::{Method, Request, Version};

use super::*;

fn parts(version: Version, method: Method, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut request = Request::builder()
        .method(method)
        .version(version)
        .uri("/chat");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

const HANDSHAKE: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("sec-websocket-version", "13"),
];

#[test]
fn an_http1_handshake_needs_every_part() {
    let mut valid = parts(Version::HTTP_11, Method::GET, &HANDSHAKE);
    assert_eq!(Handshake::detect(&mut valid), Some(Handshake::Http1));
    // Tokens in lists and in any case, as browsers and proxies send them.
    let mut lists = parts(
        Version::HTTP_11,
        Method::GET,
        &[
            ("connection", "keep-alive, UPGRADE"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", " 13 "),
        ],
    );
    assert_eq!(Handshake::detect(&mut lists), Some(Handshake::Http1));
    for missing in HANDSHAKE {
        let headers: Vec<_> = HANDSHAKE.into_iter().filter(|h| *h != missing).collect();
        let mut request = parts(Version::HTTP_11, Method::GET, &headers);
        assert_eq!(Handshake::detect(&mut request), None, "without {missing:?}");
    }
    for (name, value) in [
        ("upgrade", "h2c"),
        ("connection", "keep-alive"),
        ("sec-websocket-version", "8"),
        ("sec-websocket-key", "c2hvcnQ="),
        ("sec-websocket-key", "not base64!"),
    ] {
        let headers: Vec<_> = HANDSHAKE
            .iter()
            .map(|&(n, v)| if n == name { (n, value) } else { (n, v) })
            .collect();
        let mut request = parts(Version::HTTP_11, Method::GET, &headers);
        assert_eq!(Handshake::detect(&mut request), None, "{name}: {value}");
    }
    let mut post = parts(Version::HTTP_11, Method::POST, &HANDSHAKE);
    assert_eq!(Handshake::detect(&mut post), None);
    let mut http10 = parts(Version::HTTP_10, Method::GET, &HANDSHAKE);
    assert_eq!(Handshake::detect(&mut http10), None);
}

#[test]
fn an_http2_handshake_is_an_extended_connect_routed_as_get() {
    let mut request = parts(
        Version::HTTP_2,
        Method::CONNECT,
        &[("sec-websocket-version", "13")],
    );
    request
        .extensions
        .insert(hyper::ext::Protocol::from_static("websocket"));
    assert_eq!(Handshake::detect(&mut request), Some(Handshake::Http2));
    assert_eq!(request.method, Method::GET);

    let mut other = parts(Version::HTTP_2, Method::CONNECT, &[]);
    other
        .extensions
        .insert(hyper::ext::Protocol::from_static("connect-udp"));
    assert_eq!(Handshake::detect(&mut other), None);
    assert_eq!(other.method, Method::CONNECT);
    let mut plain_connect = parts(Version::HTTP_2, Method::CONNECT, &[]);
    assert_eq!(Handshake::detect(&mut plain_connect), None);
    // The HTTP/1.1 form over HTTP/2 is not a handshake (HTTP/2 has no Upgrade).
    let mut upgrade = parts(Version::HTTP_2, Method::GET, &HANDSHAKE[1..]);
    assert_eq!(Handshake::detect(&mut upgrade), None);
}

#[test]
fn accept_value_is_rfc_6455s() {
    // RFC 6455 §1.3's example.
    assert_eq!(
        accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn websocket_apis_are_those_with_ws_backends() {
    let config = gatehouse_model::Configuration::load(
        "t.yaml",
        "backends:\n  - id: socket\n    url: WSS://socket.internal/feed\n  - id: web\n    url: http://web.internal\napis:\n  - id: direct\n    path: a\n    serviceUrl: ws://127.0.0.1:9000\n  - id: named\n    path: b\n    backendId: socket\n  - id: http\n    path: c\n    serviceUrl: http://127.0.0.1:9000\n  - id: named-http\n    path: d\n    backendId: web\n  - id: none\n    path: e\n",
    )
    .unwrap();
    let websocket: Vec<bool> = config
        .apis
        .iter()
        .map(|api| is_websocket_api(&config, api))
        .collect();
    assert_eq!(websocket, [true, true, false, false, false]);

    let mut url = url::Url::parse("wss://socket.internal/feed").unwrap();
    to_http_scheme(&mut url);
    assert_eq!(url.as_str(), "https://socket.internal/feed");
    let mut url = url::Url::parse("ws://socket.internal:8080/").unwrap();
    to_http_scheme(&mut url);
    assert_eq!(url.as_str(), "http://socket.internal:8080/");
}

#[test]
fn the_limit_counts_places_until_they_are_dropped() {
    let mut registry = Registry::default();
    let metrics = WebSocketMetrics::register(&mut registry);
    let first = metrics.acquire(2).unwrap();
    let second = metrics.acquire(2).unwrap();
    assert!(metrics.acquire(2).is_none(), "two of two are open");
    drop(first);
    let third = metrics.acquire(2);
    assert!(third.is_some());
    drop((second, third));
    // 0: no limit of its own.
    let many: Vec<_> = (0..100).filter_map(|_| metrics.acquire(0)).collect();
    assert_eq!(many.len(), 100);
}

/// Runs [`pump`] between two in-memory connections; returns the proxy-facing ends'
/// peers (the client's and the backend's side) and the relay's outcome with the bytes
/// it moved up and down.
fn relay_between(
    idle_timeout: Duration,
) -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<(Close, u64, u64)>,
) {
    let (mut client_side, client) = tokio::io::duplex(64 * 1024);
    let (mut backend_side, backend) = tokio::io::duplex(64 * 1024);
    let relay = tokio::spawn(async move {
        let traffic = Traffic::default();
        let mut registry = Registry::default();
        let metrics = WebSocketMetrics::register(&mut registry);
        let close = pump(
            &mut client_side,
            &mut backend_side,
            &traffic,
            idle_timeout,
            &metrics,
        )
        .await;
        (close, traffic.up.total(), traffic.down.total())
    });
    (client, backend, relay)
}

#[tokio::test(start_paused = true)]
async fn the_relay_copies_both_ways_and_passes_the_close_on() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut client, mut backend, relay) = relay_between(Duration::from_secs(60));
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0; 5];
    backend.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    backend.write_all(b"world!").await.unwrap();
    let mut buf = [0; 6];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"world!");
    // The client closes: the backend sees the end, and closes too.
    drop(client);
    assert_eq!(backend.read(&mut buf).await.unwrap(), 0);
    drop(backend);
    let (close, up, down) = relay.await.unwrap();
    assert_eq!((close, up, down), (Close::Normal, 5, 6));
}

#[tokio::test(start_paused = true)]
async fn a_side_that_does_not_close_after_the_other_is_closed_after_the_linger() {
    use tokio::io::AsyncReadExt as _;
    let (client, mut backend, relay) = relay_between(Duration::from_secs(600));
    let started = Instant::now();
    drop(client);
    let mut buf = [0; 1];
    assert_eq!(backend.read(&mut buf).await.unwrap(), 0);
    // The backend keeps its side open: the relay ends anyway.
    let (close, _, _) = relay.await.unwrap();
    assert_eq!(close, Close::Normal);
    let waited = started.elapsed();
    assert!(
        waited >= CLOSE_LINGER && waited < CLOSE_LINGER * 2,
        "{waited:?}"
    );
    drop(backend);
}

#[tokio::test(start_paused = true)]
async fn silence_closes_after_the_idle_timeout_and_traffic_keeps_it_open() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let idle = Duration::from_secs(3);
    let (mut client, mut backend, relay) = relay_between(idle);
    let started = Instant::now();
    // A byte a second keeps it open well past the timeout.
    let mut buf = [0; 1];
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        client.write_all(b"x").await.unwrap();
        backend.read_exact(&mut buf).await.unwrap();
    }
    assert!(!relay.is_finished());
    let quiet = Instant::now();
    let (close, up, _) = relay.await.unwrap();
    assert_eq!((close, up), (Close::IdleTimeout, 10));
    let waited = quiet.elapsed();
    assert!(waited >= idle && waited <= idle * 2, "{waited:?}");
    assert!(started.elapsed() > Duration::from_secs(10));
    // Both sides were closed.
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    assert_eq!(backend.read(&mut buf).await.unwrap(), 0);
}
