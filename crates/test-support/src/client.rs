//! The client side of a test: HTTP clients set up for loopback, and polling helpers.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`wait_for`] and [`wait_for_async`] check their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Whole-request timeout of the clients below: a hung gateway fails the test instead of
/// hanging it. Tests of longer waits build their own client.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP/1.1 client for talking to fakes and the gateway over loopback.
///
/// It ignores `HTTP_PROXY` and friends (a proxy on a CI machine must not sit between a
/// test and its gateway), pools connections, follows no redirects (tests assert on
/// `3xx` responses as sent), and gives up on a request after 30 s.
///
/// # Panics
///
/// If the client cannot be built (it has no TLS, so this does not happen in practice).
#[must_use]
pub fn http_client() -> reqwest::Client {
    base_client()
        .http1_only()
        .build()
        .unwrap_or_else(|error| panic!("test-support: cannot build HTTP client: {error}"))
}

/// Like [`http_client`], but speaks HTTP/2 over cleartext with prior knowledge (h2c), as
/// gRPC clients do.
///
/// # Panics
///
/// If the client cannot be built.
#[must_use]
pub fn h2c_client() -> reqwest::Client {
    base_client()
        .http2_prior_knowledge()
        .build()
        .unwrap_or_else(|error| panic!("test-support: cannot build h2c client: {error}"))
}

fn base_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CLIENT_TIMEOUT)
}

/// Polls `condition` every 10 ms until it returns `true` (then `true`) or `timeout`
/// passes (then `false`, after one last check).
///
/// Blocks the calling thread: in a `#[tokio::test]` on the current-thread runtime,
/// nothing else on that runtime runs meanwhile (the fakes in this crate have their own
/// threads and keep working). Use [`wait_for_async`] when the condition needs the test's
/// runtime.
///
/// ```
/// use std::time::Duration;
/// use gatehouse_test_support::wait_for;
///
/// let mut calls = 0;
/// assert!(wait_for(|| { calls += 1; calls == 3 }, Duration::from_secs(1)));
/// ```
pub fn wait_for(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Async version of [`wait_for`]: awaits `condition()` every 10 ms until it yields
/// `true` or `timeout` passes. Uses Tokio's clock, so a paused test clock pauses it too.
pub async fn wait_for_async<F, Fut>(mut condition: F, timeout: Duration) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
