//! Request hardening of the data listener, tested with raw bytes over TCP (and raw
//! HTTP/2 frames) against the real binary: request smuggling, slow clients, connection
//! limits, HTTP/2 reset floods. Each test says what hyper (the HTTP library) does by
//! itself and what the gateway adds; docs/operations.md ("Hardening") lists the limits.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;

/// The gateway's answer on one connection, read until it closed or went quiet.
#[derive(Debug)]
struct Answer {
    /// Everything the gateway sent.
    bytes: Vec<u8>,
    /// The gateway closed the connection (EOF or reset) rather than go quiet.
    closed: bool,
    /// From the last byte written to the close (or to giving up).
    elapsed: Duration,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn status_line(&self) -> String {
        self.text().lines().next().unwrap_or_default().to_owned()
    }

    /// A response header's value (name in lower case), from the first response.
    fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// hyper's own refusal: 400, empty body, connection closed.
    #[track_caller]
    fn assert_hyper_400(&self, case: &str) {
        assert_eq!(
            self.status_line(),
            "HTTP/1.1 400 Bad Request",
            "{case}: {self:?}"
        );
        assert_eq!(
            self.header("connection").as_deref(),
            Some("close"),
            "{case}"
        );
        assert_eq!(
            self.header("content-length").as_deref(),
            Some("0"),
            "{case}"
        );
        assert_eq!(self.body(), "", "{case}");
        assert!(self.closed, "{case}: the connection stays open");
    }
}

/// Sends `request` on a new connection, then reads until the gateway closes it or sends
/// nothing for `quiet`.
fn exchange(addr: SocketAddr, request: &[u8], quiet: Duration) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    send_and_read(&mut stream, request, quiet)
}

fn send_and_read(stream: &mut TcpStream, request: &[u8], quiet: Duration) -> Answer {
    // The gateway may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request);
    let sent = Instant::now();
    let (bytes, closed) = read_answer(stream, quiet);
    Answer {
        bytes,
        closed,
        elapsed: sent.elapsed(),
    }
}

/// A request head up to (without) the framing headers and the blank line.
fn head(method: &str) -> String {
    format!(
        "{method} /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\n"
    )
}

fn gateway(backend: &EchoBackend, extra: &[&str]) -> GatewayProcess {
    GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), ANY_OPERATION, None))
        .args(["--workers", "1"])
        .args(extra)
        .start()
}

/// Waits (up to [`WAIT`]) until the value of a metric satisfies `condition`, and returns
/// it. The gateway counts closed and refused connections on the connection's task, which
/// may still run after the client saw the close.
fn wait_metric(gateway: &GatewayProcess, series: &str, condition: impl Fn(f64) -> bool) -> f64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(wait_for_metric(
            gateway.admin_addr(),
            series,
            condition,
            WAIT,
        ))
}

/// A well-formed request still goes through: the gateway kept serving.
#[track_caller]
fn assert_still_serving(gateway: &GatewayProcess) {
    let request = format!("{}Connection: close\r\n\r\n", head("GET"));
    let answer = exchange(gateway.http_addr(), request.as_bytes(), SHORT);
    assert_eq!(answer.status_line(), "HTTP/1.1 200 OK", "{answer:?}");
}

const QUIET: Duration = Duration::from_secs(3);

#[test]
fn content_length_with_transfer_encoding_is_refused_with_400_and_a_close() {
    // hyper accepts this (RFC 9112 §6.1 allows it): it frames the body by
    // Transfer-Encoding, drops the Content-Length header before the service sees the
    // request, and closes the connection after the response. The service cannot tell,
    // so the gateway's framing check (`gatehouse_gateway::proxy::framing`) spots both
    // headers in the byte stream and makes hyper's parser refuse the head: hyper's own
    // 400, the connection closed, nothing forwarded.
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &[]);
    for (framing, body) in [
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        ("transfer-encoding: chunked\r\ncontent-length: 0\r\n", ""),
        ("Content-Length: 0\nTransfer-Encoding: chunked\n", "\n"),
    ] {
        let request = format!("{}{framing}\r\n{body}", head("POST"));
        let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
        answer.assert_hyper_400(framing);
    }
    // After a valid request on the same connection too (a body that looks like a head
    // with both headers is not mistaken for one).
    let smuggled = format!(
        "{}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        head("GET")
    );
    let request = format!(
        "{}Content-Length: {}\r\n\r\n{smuggled}{smuggled}",
        head("POST"),
        smuggled.len()
    );
    let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
    let text = answer.text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\"bodyBytes\":"), "{text}");
    assert!(text.contains("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(answer.closed);
    assert_eq!(
        backend.requests(),
        1,
        "only the valid request was forwarded"
    );
    wait_metric(&gateway, "gatehouse_malformed_requests_total", |n| n >= 4.0);
    assert_still_serving(&gateway);
}

#[test]
fn different_content_lengths_are_refused_with_400() {
    // hyper refuses these itself (400, connection closed); equal repeated values are
    // accepted as one (RFC 9110 §8.6).
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &[]);
    for framing in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: -5\r\n",
        "Content-Length: 5x\r\n",
    ] {
        let request = format!("{}{framing}\r\nhello!", head("POST"));
        let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
        answer.assert_hyper_400(framing);
    }
    assert_eq!(backend.requests(), 0);
    assert_still_serving(&gateway);
}

#[test]
fn transfer_codings_other_than_exactly_chunked_are_refused_with_400() {
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &[]);
    // A final coding other than `chunked`, or Transfer-Encoding in HTTP/1.0: hyper
    // refuses the head itself (400, empty body, connection closed).
    for framing in [
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: \r\n",
    ] {
        let request = format!("{}{framing}\r\n5\r\nhello\r\n0\r\n\r\n", head("POST"));
        let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
        answer.assert_hyper_400(framing);
    }
    let request = format!(
        "POST /api/x HTTP/1.0\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    exchange(gateway.http_addr(), request.as_bytes(), QUIET).assert_hyper_400("HTTP/1.0");

    // `chunked` last but not alone: hyper accepts and de-chunks it; the backend would
    // get a body still gzip-coded without being told (Transfer-Encoding is hop-by-hop),
    // or a doubly chunked one. The gateway refuses it: its own JSON 400, with
    // `Connection: close` so hyper closes the connection after it.
    for framing in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let request = format!("{}{framing}\r\n5\r\nhello\r\n0\r\n\r\n", head("POST"));
        let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
        assert_eq!(
            answer.status_line(),
            "HTTP/1.1 400 Bad Request",
            "{framing}: {answer:?}"
        );
        assert_eq!(
            answer.header("connection").as_deref(),
            Some("close"),
            "{framing}"
        );
        assert_eq!(
            answer.body(),
            r#"{"statusCode":400,"message":"Transfer-Encoding must be exactly `chunked`."}"#,
            "{framing}"
        );
        assert!(answer.closed, "{framing}: the connection stays open");
    }
    assert_eq!(backend.requests(), 0);

    // Exactly `chunked` (any case, with spaces) is fine.
    let request = format!(
        "{}Transfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        head("POST")
    );
    let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
    assert_eq!(answer.status_line(), "HTTP/1.1 200 OK", "{answer:?}");
    assert!(answer.body().contains("\"bodyBytes\":5"), "{answer:?}");
}

#[test]
fn obs_fold_and_invalid_header_bytes_are_refused_with_400() {
    // All refused by hyper's parser (httparse) itself: 400, connection closed. Nothing
    // added by the gateway, but a regression here (a hyper option turned on, a parser
    // change) would let a request through that a backend may read differently.
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &[]);
    for (case, line) in [
        ("obs-fold (space)", "X-A: one\r\n two\r\n"),
        ("obs-fold (tab)", "X-A: one\r\n\ttwo\r\n"),
        (
            "obs-fold continuing Transfer-Encoding",
            "Transfer-Encoding: gzip,\r\n chunked\r\n",
        ),
        ("NUL in a value", "X-A: a\0b\r\n"),
        ("bare CR in a value", "X-A: a\rb\r\n"),
        ("DEL in a value", "X-A: a\x7fb\r\n"),
        ("space before the colon", "X-A : a\r\n"),
        (
            "space before the colon of Content-Length",
            "Content-Length : 5\r\n",
        ),
        ("parenthesis in a name", "X(A): a\r\n"),
        ("slash in a name", "X/A: a\r\n"),
        ("empty name", ": a\r\n"),
        ("no colon", "X-A a\r\n"),
    ] {
        let request = format!("{}{line}Content-Length: 0\r\n\r\n", head("GET"));
        let answer = exchange(gateway.http_addr(), request.as_bytes(), QUIET);
        answer.assert_hyper_400(case);
    }
    assert_eq!(backend.requests(), 0);
    assert_still_serving(&gateway);
}

#[test]
fn a_stalled_request_head_is_disconnected_after_the_header_read_timeout() {
    // hyper's `header_read_timeout` (--header-read-timeout): it runs from when hyper
    // starts waiting for a head, so it also closes a connection idle between requests.
    // On expiry hyper closes the connection without an answer (no 408); the gateway
    // counts it.
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &["--header-read-timeout", "1s"]);
    let half = b"GET /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subs";
    let answer = exchange(gateway.http_addr(), half, SHORT);
    assert!(answer.closed, "still open after {:?}", answer.elapsed);
    assert_eq!(answer.text(), "", "hyper closes without an answer");
    assert!(
        answer.elapsed >= Duration::from_millis(900) && answer.elapsed < Duration::from_secs(4),
        "closed after {:?}",
        answer.elapsed
    );

    // Idle after a complete exchange: closed after the same timeout.
    let mut stream = TcpStream::connect(gateway.http_addr()).unwrap();
    let request = format!("{}\r\n", head("GET"));
    let first = send_and_read(&mut stream, request.as_bytes(), Duration::from_millis(500));
    assert!(first.text().starts_with("HTTP/1.1 200 OK"), "{first:?}");
    assert!(!first.closed);
    let idle = send_and_read(&mut stream, b"", SHORT);
    assert!(idle.closed && idle.bytes.is_empty(), "{idle:?}");

    assert_eq!(backend.requests(), 1);
    wait_metric(
        &gateway,
        r#"gatehouse_client_timeouts_total{phase="header"}"#,
        |n| n == 2.0,
    );
}

#[test]
fn a_stalled_request_body_gets_408_and_the_backend_request_is_aborted() {
    // hyper has no body timeout. The gateway's request-body wrapper waits at most
    // --body-read-timeout for each piece of the body: on expiry the backend exchange
    // fails (hyper's client closes the backend connection) and the client gets 408 with
    // `Connection: close`.
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &["--body-read-timeout", "1s"]);
    let request = format!("{}Content-Length: 10\r\n\r\nhello", head("POST"));
    let answer = exchange(gateway.http_addr(), request.as_bytes(), SHORT);
    assert_eq!(
        answer.status_line(),
        "HTTP/1.1 408 Request Timeout",
        "{answer:?}"
    );
    assert_eq!(answer.header("connection").as_deref(), Some("close"));
    assert_eq!(
        answer.body(),
        r#"{"statusCode":408,"message":"The request body was not received in time."}"#
    );
    assert!(answer.closed, "{answer:?}");
    assert!(
        answer.elapsed >= Duration::from_millis(900) && answer.elapsed < Duration::from_secs(4),
        "answered after {:?}",
        answer.elapsed
    );
    // The backend got the head, then its connection was closed mid-body.
    assert_eq!(backend.requests(), 1);
    assert!(
        wait_for(|| backend.open_connections() == 0, SHORT),
        "the backend connection stays open"
    );
    wait_metric(
        &gateway,
        r#"gatehouse_client_timeouts_total{phase="body"}"#,
        |n| n == 1.0,
    );

    // A body that keeps coming, slower than the timeout overall but never pausing that
    // long, goes through.
    let mut stream = TcpStream::connect(gateway.http_addr()).unwrap();
    let request = format!(
        "{}Content-Length: 4\r\nConnection: close\r\n\r\n",
        head("POST")
    );
    stream.write_all(request.as_bytes()).unwrap();
    // The pauses are the slow client under test, not synchronisation: each under the
    // 1 s timeout, together over it.
    for byte in [b"a", b"b", b"c"] {
        std::thread::sleep(Duration::from_millis(500));
        stream.write_all(byte).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let answer = send_and_read(&mut stream, b"d", SHORT);
    assert_eq!(answer.status_line(), "HTTP/1.1 200 OK", "{answer:?}");
    assert!(answer.body().contains("\"bodyBytes\":4"), "{answer:?}");
}

#[test]
fn connections_over_the_limit_are_closed_unanswered() {
    // Not in hyper: the gateway counts open connections across all workers (two here)
    // and closes the ones over --max-connections right after accept.
    let backend = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), ANY_OPERATION, None))
        .args(["--workers", "2", "--max-connections", "2"])
        .start();
    let keep_alive = format!("{}\r\n", head("GET"));
    let quiet = Duration::from_millis(300);
    let mut first = TcpStream::connect(gateway.http_addr()).unwrap();
    let mut second = TcpStream::connect(gateway.http_addr()).unwrap();
    for stream in [&mut first, &mut second] {
        let answer = send_and_read(stream, keep_alive.as_bytes(), quiet);
        assert!(answer.text().starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        assert!(!answer.closed);
    }

    // The third: accepted by the kernel, then closed by the gateway without a byte.
    let third = exchange(gateway.http_addr(), keep_alive.as_bytes(), SHORT);
    assert!(third.closed, "{third:?}");
    assert_eq!(third.text(), "");
    assert!(third.elapsed < Duration::from_secs(1), "{third:?}");
    wait_metric(&gateway, "gatehouse_connections_rejected_total", |n| {
        n == 1.0
    });
    wait_metric(&gateway, "gatehouse_active_connections", |n| n == 2.0);
    assert!(gateway.wait_for_output("connection limit reached", WAIT));

    // The open ones keep working; once one closes, a new connection is served.
    let answer = send_and_read(&mut first, keep_alive.as_bytes(), quiet);
    assert!(answer.text().starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    drop(second);
    let served = wait_for(
        || {
            let request = format!("{}Connection: close\r\n\r\n", head("GET"));
            exchange(gateway.http_addr(), request.as_bytes(), quiet)
                .text()
                .starts_with("HTTP/1.1 200 OK")
        },
        SHORT,
    );
    assert!(served, "no connection served after one closed");
}

#[test]
fn an_http2_rapid_reset_flood_gets_goaway_enhance_your_calm() {
    // Rapid reset (CVE-2023-44487): a client opens streams and resets them at once, so
    // they never count against max_concurrent_streams. hyper's HTTP/2 (the h2 crate)
    // counts streams the client reset before the server took them up; past the limit
    // (--http2-max-pending-accept-reset-streams, 20 by default, set explicitly by the
    // gateway) it sends GOAWAY ENHANCE_YOUR_CALM and closes the connection.
    //
    // The frames are written by hand: each HEADERS right behind by its RST_STREAM, the
    // whole burst in one write, as attack tools send it. (An HTTP/2 client library
    // queues the HEADERS of every stream before the first reset, and keeps writing
    // after the server closed, so what the server answered is lost to a broken pipe.)
    let backend = EchoBackend::start();
    let gateway = gateway(&backend, &[]);
    let streams = 100_u32;
    let mut burst = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    burst.extend(h2_frame(H2_SETTINGS, 0, 0, &[]));
    // HPACK, static table only: `:method: GET`, `:scheme: http`, then `:path` and
    // `:authority` as literals without indexing.
    let mut block = vec![0x82, 0x86, 0x04, 24];
    block.extend_from_slice(b"/status-0123456789abcdef");
    block.extend_from_slice(&[0x01, 9]);
    block.extend_from_slice(b"localhost");
    for index in 0..streams {
        let stream = 2 * index + 1;
        let end_stream_and_headers = 0x1 | 0x4;
        burst.extend(h2_frame(H2_HEADERS, end_stream_and_headers, stream, &block));
        burst.extend(h2_frame(H2_RST_STREAM, 0, stream, &H2_CANCEL.to_be_bytes()));
    }
    let started = Instant::now();
    let answer = exchange(gateway.http_addr(), &burst, SHORT);
    assert!(
        answer.closed,
        "the server kept the connection open: {answer:?}"
    );
    assert!(started.elapsed() < SHORT);
    let goaway = h2_frames(&answer.bytes)
        .into_iter()
        .find(|(kind, _, _)| *kind == H2_GOAWAY)
        .map(|(_, _, payload)| payload)
        .expect("no GOAWAY");
    let last_stream = u32::from_be_bytes(goaway[0..4].try_into().unwrap());
    let code = u32::from_be_bytes(goaway[4..8].try_into().unwrap());
    assert_eq!(code, H2_ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(&goaway[8..], b"too_many_resets");
    assert!(
        last_stream < 2 * streams - 1,
        "the server read the whole burst (last stream {last_stream})"
    );

    // Other connections are served, over HTTP/2 too.
    assert_still_serving(&gateway);
    let response = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            h2c_client()
                .get(gateway.url("/api/x"))
                .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
                .send()
                .await
        })
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
}

const H2_HEADERS: u8 = 0x1;
const H2_RST_STREAM: u8 = 0x3;
const H2_SETTINGS: u8 = 0x4;
const H2_GOAWAY: u8 = 0x7;
const H2_CANCEL: u32 = 0x8;
const H2_ENHANCE_YOUR_CALM: u32 = 0xb;

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = Vec::with_capacity(9 + payload.len());
    frame.extend_from_slice(&length[1..]);
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The frames in what a server sent: (type, stream id, payload).
fn h2_frames(mut bytes: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let Some(payload) = bytes.get(9..9 + length) else {
            break;
        };
        let stream = u32::from_be_bytes(bytes[5..9].try_into().unwrap()) & 0x7fff_ffff;
        frames.push((bytes[3], stream, payload.to_vec()));
        bytes = &bytes[9 + length..];
    }
    frames
}
