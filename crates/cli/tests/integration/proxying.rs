//! The proxy itself: headers, streaming, pooling, HTTP/2, backend failures.

use std::time::{Duration, Instant};

use crate::common::*;
use gatehouse_test_support::{BlackholeListener, SilentBackend};

#[tokio::test]
async fn forwarded_headers_are_set_and_hop_by_hop_headers_removed() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "1")
        .header("x-forwarded-for", "203.0.113.9")
        .header("proxy-authorization", "Basic Zm9v")
        .header("x-kept", "yes")
        .send()
        .await
        .unwrap();
    let echo = echo(response).await;
    assert_eq!(
        echo.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert!(
        echo.header("x-forwarded-host")
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(echo.header("x-secret-hop").is_none());
    assert!(echo.header("proxy-authorization").is_none());
    assert_eq!(echo.header("x-kept"), Some("yes"));
    let backend_authority = backend.url().trim_start_matches("http://").to_owned();
    assert_eq!(
        echo.header("host"),
        Some(backend_authority.as_str()),
        "Host is the backend's"
    );
}

#[tokio::test]
async fn backend_connections_are_pooled_and_reused() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    for _ in 0..20 {
        assert_eq!(get(&gateway, "/api/x").await.status(), 200);
    }
    assert_eq!(backend.requests(), 20);
    assert_eq!(
        backend.connections_accepted(),
        1,
        "sequential requests reuse one pooled connection"
    );
}

#[tokio::test]
async fn large_bodies_stream_both_ways_without_buffering() {
    let backend = EchoBackend::start();
    // Over the default body limit (100 MiB): `0` turns it off.
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), ANY_OPERATION, None))
        .args(["--workers", "1", "--max-request-body-bytes", "0"])
        .start();
    const SIZE: u64 = 256 * 1024 * 1024;
    // Upload: a generated stream, never held in memory by the test either.
    let chunk = bytes::Bytes::from(vec![b'u'; 64 * 1024]);
    let chunks = SIZE / chunk.len() as u64;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let response = http_client()
        .post(gateway.url("/api/upload"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(echo(response).await.body_bytes, SIZE);
    // Download.
    let mut response = get(&gateway, &format!("/api/bytes/{SIZE}?chunked=true")).await;
    assert_eq!(response.status(), 200);
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, SIZE);
    let peak_kib = peak_rss_kib(gateway.pid());
    assert!(
        peak_kib < 96 * 1024,
        "gateway peak RSS {peak_kib} KiB: bodies must stream, not buffer"
    );
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_refused_backend_is_a_502_with_a_reason_in_the_log() {
    let gateway = start(&config(
        "api",
        &format!("http://{}", refused_addr()),
        ANY_OPERATION,
        None,
    ));
    let (status, message) = error_body(get(&gateway, "/api/x").await).await;
    assert_eq!(status, 502);
    assert_eq!(message, "The backend service could not be reached.");
    assert!(
        gateway.wait_for_output("backend_connect", SHORT),
        "{:?}",
        gateway.stderr_lines()
    );
}

#[tokio::test]
async fn a_slow_backend_is_a_504_after_the_response_timeout() {
    let backend = SilentBackend::start();
    let yaml = format!(
        "backends:\n  - id: slow\n    url: {}\n    responseTimeout: 300ms\n{}",
        backend.url(),
        config("api", "http://unused", ANY_OPERATION, None)
            .replace("    serviceUrl: http://unused\n", "    backendId: slow\n")
    );
    let gateway = start(&yaml);
    let started = Instant::now();
    let (status, _) = error_body(get(&gateway, "/api/x").await).await;
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(gateway.wait_for_output("backend_timeout", SHORT));
}

#[tokio::test]
async fn a_backend_that_never_accepts_is_a_504_after_the_connect_timeout() {
    let backend = BlackholeListener::start();
    let yaml = format!(
        "backends:\n  - id: hole\n    url: {}\n    connectTimeout: 200ms\n{}",
        backend.url(),
        config("api", "http://unused", ANY_OPERATION, None)
            .replace("    serviceUrl: http://unused\n", "    backendId: hole\n")
    );
    let gateway = start(&yaml);
    let (status, _) = error_body(get(&gateway, "/api/x").await).await;
    assert_eq!(status, 504);
}

#[tokio::test]
async fn http2_cleartext_clients_are_served() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let response = h2c_client()
        .get(gateway.url("/api/h2"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let echo = echo(response).await;
    assert_eq!(echo.path, "/h2");
    assert!(gateway.wait_for_output("\"protocol\":\"HTTP/2\"", SHORT));
}

#[tokio::test]
async fn forward_request_http_version_2_uses_h2c_with_prior_knowledge() {
    let backend = EchoBackend::start();
    for (version, expected) in [("1", "HTTP/1.1"), ("2", "HTTP/2.0"), ("2or1", "HTTP/1.1")] {
        let policy = format!(
            "<policies><backend><forward-request http-version=\"{version}\"/></backend></policies>"
        );
        let gateway = start(&config("api", &backend.url(), ANY_OPERATION, Some(&policy)));
        // Cleartext has nothing to negotiate with: `2or1` is HTTP/1.1 there.
        let echo = echo(get(&gateway, "/api/x").await).await;
        assert_eq!(echo.http_version, expected, "http-version={version}");
    }
}
