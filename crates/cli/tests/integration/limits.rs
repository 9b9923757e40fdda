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

#[tokio::test]
async fn oversized_headers_get_431() {
    let backend = EchoBackend::start();
    let gateway = limited(&backend.url());
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-big", "a".repeat(16 * 1024))
        .send()
        .await;
    // hyper answers 431 and closes; some clients see the close first.
    if let Ok(response) = response {
        assert_eq!(response.status(), 431);
    }
    let mut request = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY);
    for i in 0..40 {
        request = request.header(format!("x-h{i}"), "v");
    }
    if let Ok(response) = request.send().await {
        assert_eq!(response.status(), 431);
    }
    assert_eq!(backend.requests(), 0);
    // The gateway is still serving.
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
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
