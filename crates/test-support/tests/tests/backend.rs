use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_test_support::{
    Echo, EchoBackend, HEADER_BACKEND_NAME, HEADER_DELAY_MS, HEADER_STATUS, h2c_client,
    http_client, wait_for_async,
};

async fn echo_of(response: reqwest::Response) -> Echo {
    Echo::from_slice(&response.bytes().await.unwrap())
}

#[tokio::test]
async fn echo_reports_method_path_query_headers_and_body_size() {
    let backend = EchoBackend::start();
    let response = http_client()
        .post(format!("{}/orders/42?expand=items&x=1", backend.url()))
        .header("x-custom", "one")
        .body(vec![7_u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let echo = echo_of(response).await;

    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/orders/42");
    assert_eq!(echo.query, "expand=items&x=1");
    assert_eq!(echo.header("X-Custom"), Some("one"));
    assert_eq!(echo.header("content-length"), Some("1000"));
    assert_eq!(echo.body_bytes, 1000);
    assert_eq!(echo.http_version, "HTTP/1.1");
    assert_eq!(backend.requests(), 1);
}

#[tokio::test]
async fn echo_uses_the_documented_json_field_names() {
    let backend = EchoBackend::start();
    let response = http_client().get(backend.url()).send().await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    for field in [
        "method",
        "path",
        "query",
        "headers",
        "bodyBytes",
        "httpVersion",
    ] {
        assert!(
            json.get(field).is_some(),
            "echo lacks field {field}: {json}"
        );
    }
    assert_eq!(json["query"], "");
    assert_eq!(json["path"], "/");
}

#[tokio::test]
async fn repeated_request_headers_are_joined_in_order() {
    let backend = EchoBackend::start();
    let response = http_client()
        .get(backend.url())
        .header("x-multi", "a")
        .header("x-multi", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(echo_of(response).await.header("x-multi"), Some("a, b"));
}

#[tokio::test]
async fn h2c_requests_are_served_and_reported_as_http2() {
    let backend = EchoBackend::start();
    let response = h2c_client()
        .get(format!("{}/grpc", backend.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(echo_of(response).await.http_version, "HTTP/2.0");
}

#[tokio::test]
async fn http1_only_backend_refuses_h2c() {
    let backend = EchoBackend::builder().http1_only().start();
    assert!(h2c_client().get(backend.url()).send().await.is_err());
    assert!(http_client().get(backend.url()).send().await.is_ok());
}

#[tokio::test]
async fn status_header_overrides_the_builder_status() {
    let backend = EchoBackend::builder().status(503).start();
    let client = http_client();
    let default = client.get(backend.url()).send().await.unwrap();
    assert_eq!(default.status(), 503);
    let chosen = client
        .get(backend.url())
        .header(HEADER_STATUS, "418")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 418);
    // The body is still the echo, so a test can check what was forwarded.
    assert_eq!(echo_of(chosen).await.header(HEADER_STATUS), Some("418"));
}

#[tokio::test]
async fn invalid_test_header_is_answered_with_400() {
    let backend = EchoBackend::start();
    let response = http_client()
        .get(backend.url())
        .header(HEADER_DELAY_MS, "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(HEADER_DELAY_MS));
}

#[tokio::test]
async fn delay_header_delays_the_response_head() {
    let backend = EchoBackend::start();
    let started = Instant::now();
    let response = http_client()
        .get(backend.url())
        .header(HEADER_DELAY_MS, "300")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn response_delay_makes_a_client_time_out_but_still_counts_the_request() {
    let backend = EchoBackend::builder()
        .response_delay(Duration::from_secs(5))
        .start();
    let error = http_client()
        .get(backend.url())
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(backend.requests(), 1);

    // The header overrides the builder's delay.
    let fast = http_client()
        .get(backend.url())
        .header(HEADER_DELAY_MS, "0")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(fast.status(), 200);
}

#[tokio::test]
async fn bytes_path_streams_exactly_n_bytes_with_content_length() {
    let backend = EchoBackend::start();
    let response = http_client()
        .get(format!("{}/bytes/1000001", backend.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(1_000_001));
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), 1_000_001);
    assert!(body.iter().all(|&byte| byte == b'x'));
}

#[tokio::test]
async fn bytes_path_can_stream_chunked_with_pauses() {
    let backend = EchoBackend::start();
    let started = Instant::now();
    let mut response = http_client()
        .get(format!(
            "{}/bytes/5000?chunk_size=1000&chunk_delay_ms=50&chunked=true",
            backend.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut received = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, 5000);
    // Four pauses between five chunks.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn bytes_path_with_bad_count_is_answered_with_400() {
    let backend = EchoBackend::start();
    for path in [
        "/bytes/many",
        "/bytes/10?chunk_size=0",
        "/bytes/10?colour=red",
    ] {
        let response = http_client()
            .get(format!("{}{path}", backend.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
}

#[tokio::test]
async fn streamed_upload_is_counted_in_full() {
    let backend = EchoBackend::start();
    const CHUNKS: usize = 160;
    const CHUNK: usize = 64 * 1024;
    let chunks = futures_util::stream::iter(
        (0..CHUNKS).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&[1_u8; CHUNK]))),
    );
    let response = http_client()
        .put(format!("{}/upload", backend.url()))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let echo = echo_of(response).await;
    assert_eq!(echo.body_bytes, (CHUNKS * CHUNK) as u64);
    // No Content-Length: it arrived chunked, as a proxy streaming an upload sends it.
    assert_eq!(echo.header("transfer-encoding"), Some("chunked"));
}

#[tokio::test]
async fn keep_alive_client_reuses_one_connection_and_counts_requests() {
    let backend = EchoBackend::start();
    let client = http_client();
    for _ in 0..5 {
        let response = client.get(backend.url()).send().await.unwrap();
        response.bytes().await.unwrap();
    }
    assert_eq!(backend.requests(), 5);
    assert_eq!(backend.connections_accepted(), 1);
    assert_eq!(backend.open_connections(), 1);

    drop(client);
    // Async wait: the client's connection task runs on this test's runtime and must get
    // to run to close the socket.
    assert!(
        wait_for_async(
            || async { backend.open_connections() == 0 },
            Duration::from_secs(5)
        )
        .await,
        "connection still open after the client was dropped"
    );
    assert_eq!(backend.connections_accepted(), 1);
}

#[tokio::test]
async fn named_backend_says_who_answered() {
    let backend = EchoBackend::builder().name("blue").start();
    let response = http_client().get(backend.url()).send().await.unwrap();
    assert_eq!(response.headers()[HEADER_BACKEND_NAME], "blue");
}

#[test]
fn dropping_the_backend_closes_open_connections() {
    let backend = EchoBackend::start();
    let mut stream = TcpStream::connect(backend.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut buffer = [0_u8; 4096];
    let read = stream.read(&mut buffer).unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    assert_eq!(backend.open_connections(), 1);

    drop(backend);
    // End-of-file, not a timeout: the kept-alive connection was closed.
    assert_eq!(stream.read(&mut buffer).unwrap(), 0);
}
