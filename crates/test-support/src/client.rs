//! The client side of a test: HTTP clients set up for loopback, and polling helpers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often [`wait_for`], [`wait_for_async`] and [`wait_for_metric`] check their
/// condition.
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

/// The value of `series` in a Prometheus text exposition: the number on the line that
/// starts with `series` and a space; `None` when no line does (or its value is not a
/// number).
///
/// `series` is the metric name with its labels exactly as the exposition writes them,
/// e.g. `gatehouse_tls_handshake_errors_total{reason="unknown_server_name"}`, or the bare
/// name of a metric without labels.
///
/// ```
/// use gatehouse_test_support::metric_value;
///
/// let text = "# TYPE hits counter\nhits_total{api=\"a\"} 3\nhits_total{api=\"b\"} 1\n";
/// assert_eq!(metric_value(text, r#"hits_total{api="a"}"#), Some(3.0));
/// assert_eq!(metric_value(text, "hits_total"), None);
/// ```
#[must_use]
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Polls `GET http://{admin}/metrics` every 10 ms until the value of `series` (see
/// [`metric_value`]) satisfies `condition`, and returns that value.
///
/// For metrics another task or process updates after the action a test observes (a
/// counter bumped once the connection is closed, a gauge updated by a background
/// loop): reading `/metrics` once right after the action races with that update. A
/// series that is absent, or a `/metrics` that does not answer, counts as "not yet".
///
/// # Panics
///
/// When `timeout` passes first. The message names the series, the last value seen and
/// the last `/metrics` text.
pub async fn wait_for_metric(
    admin: SocketAddr,
    series: &str,
    condition: impl Fn(f64) -> bool,
    timeout: Duration,
) -> f64 {
    let client = http_client();
    let url = format!("http://{admin}/metrics");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let text = match client.get(&url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => format!("(no answer: {error})"),
        };
        let value = metric_value(&text, series);
        if let Some(value) = value.filter(|value| condition(*value)) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series}: the condition did not hold within {timeout:?} (last value: {value:?}); \
             last GET {url}:\n{text}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
