use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gatehouse_test_support::{
    BlackholeListener, SilentBackend, http_client, refused_addr, wait_for,
};

#[test]
fn refused_addr_refuses_connections() {
    let error = TcpStream::connect(refused_addr()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn silent_backend_accepts_and_never_answers() {
    let backend = SilentBackend::start();
    let error = http_client()
        .post(backend.url())
        .body(vec![0_u8; 100_000])
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    // A response timeout, not a connect error: the connection was accepted.
    assert!(error.is_timeout(), "{error:?}");
    assert!(!error.is_connect(), "{error:?}");
    // The kernel completes the connect; the backend's thread counts it when it accepts.
    assert!(wait_for(
        || backend.connections_accepted() == 1,
        Duration::from_secs(10)
    ));
}

#[test]
fn silent_backend_tracks_open_connections() {
    let backend = SilentBackend::start();
    let mut stream = TcpStream::connect(backend.addr()).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(wait_for(
        || backend.open_connections() == 1,
        Duration::from_secs(5)
    ));
    drop(stream);
    assert!(wait_for(
        || backend.open_connections() == 0,
        Duration::from_secs(5)
    ));
}

#[test]
fn blackhole_listener_connects_time_out() {
    let blackhole = BlackholeListener::start();
    let started = Instant::now();
    let error =
        TcpStream::connect_timeout(&blackhole.addr(), Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn blackhole_listener_gives_clients_a_connect_timeout() {
    let blackhole = BlackholeListener::start();
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = client.get(blackhole.url()).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}
