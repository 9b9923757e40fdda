//! Request limits: header size and count (431), body size (413).

use crate::common::*;

fn limited(backend: &str) -> GatewayProcess {
    GatewayProcess::builder(BIN)
        .config(config("api", backend, ANY_OPERATION, None))
        .args([
            "--workers",
            "1",
            "--max-header-bytes",
            "8192",
            "--max-headers",
            "20",
            "--max-request-body-bytes",
            "1000",
        ])
        .start()
}

/// Sends a raw HTTP/1.1 request and returns the status line of the answer.
fn raw_status_line(gateway: &GatewayProcess, extra_headers: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(gateway.http_url().trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(SHORT)).unwrap();
    let request = format!(
        "GET /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\n{extra_headers}Connection: close\r\n\r\n"
    );
    // The gateway may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let backend = EchoBackend::start();
    let gateway = limited(&backend.url());
    let big = format!("X-Big: {}\r\n", "a".repeat(16 * 1024));
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (too_big, too_many, fine) = tokio::task::spawn_blocking(move || {
        (
            raw_status_line(&gateway, &big),
            raw_status_line(&gateway, &many),
            raw_status_line(&gateway, ""),
        )
    })
    .await
    .unwrap();
    assert!(too_big.starts_with("HTTP/1.1 431"), "{too_big}");
    assert!(too_many.starts_with("HTTP/1.1 431"), "{too_many}");
    assert!(
        fine.starts_with("HTTP/1.1 200"),
        "the gateway keeps serving: {fine}"
    );
    assert_eq!(backend.requests(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let backend = EchoBackend::start();
    let gateway = limited(&backend.url());
    let client = http_client();
    let response = client
        .post(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .body(vec![b'x'; 5000])
        .send()
        .await
        .unwrap();
    let (status, _) = error_body(response).await;
    assert_eq!(status, 413, "declared length over the limit");
    assert_eq!(
        backend.requests(),
        0,
        "rejected before contacting the backend"
    );

    // Chunked (no declared length): cut off while streaming.
    let chunks = futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 500]))),
    );
    let response = client
        .post(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let response = client
        .post(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .body(vec![b'x'; 900])
        .send()
        .await
        .unwrap();
    assert_eq!(echo(response).await.body_bytes, 900);
}
