use std::time::{Duration, Instant};

use gatehouse_test_support::{metric_value, wait_for, wait_for_async};

#[test]
fn wait_for_returns_true_as_soon_as_the_condition_holds() {
    let mut calls = 0;
    assert!(wait_for(
        || {
            calls += 1;
            calls == 3
        },
        Duration::from_secs(5)
    ));
    assert_eq!(calls, 3);
}

#[test]
fn wait_for_gives_up_after_the_timeout() {
    let started = Instant::now();
    assert!(!wait_for(|| false, Duration::from_millis(100)));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn wait_for_async_awaits_the_condition() {
    let mut calls = 0;
    assert!(
        wait_for_async(
            || {
                calls += 1;
                let done = calls == 2;
                async move { done }
            },
            Duration::from_secs(5)
        )
        .await
    );
    assert!(!wait_for_async(|| async { false }, Duration::from_millis(50)).await);
}

#[test]
fn metric_value_matches_the_whole_series_only() {
    let text = "# HELP requests Requests.\n# TYPE requests counter\n\
                requests_total_other 7\n\
                requests_total{api=\"a\",status=\"2xx\"} 3\n\
                requests_total 5 1700000000000\n";
    assert_eq!(
        metric_value(text, "requests_total"),
        Some(5.0),
        "timestamp ignored"
    );
    assert_eq!(
        metric_value(text, r#"requests_total{api="a",status="2xx"}"#),
        Some(3.0)
    );
    assert_eq!(metric_value(text, r#"requests_total{api="a"}"#), None);
    assert_eq!(metric_value(text, "requests"), None);
}
