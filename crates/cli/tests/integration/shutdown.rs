//! Graceful shutdown: SIGTERM lets in-flight requests finish, refuses new connections,
//! then exits.

use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let backend = EchoBackend::start();
    let mut gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let url = gateway.url("/api/slow");
    let in_flight: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                http_client()
                    .get(url)
                    .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
                    .header("x-test-delay-ms", "700")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    assert!(
        wait_for_async(|| async { backend.requests() == 8 }, SHORT).await,
        "all requests reached the backend"
    );
    gateway.signal(Signal::Term);
    for request in in_flight {
        assert_eq!(
            request.await.unwrap().unwrap(),
            200,
            "in-flight request finished"
        );
    }
    let status = gateway
        .wait_exit(Duration::from_secs(10))
        .expect("gateway exited");
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap())
            .is_err(),
        "new connections are refused"
    );
}
