use super::*;
use crate::metrics::ResponseSource;

use std::time::Duration;

use crate::series::SeriesKey;

#[test]
fn request_series_count_by_status_class() {
    let metrics = Metrics::with_options(MetricsOptions {
        per_operation: true,
        ..MetricsOptions::default()
    });
    let op = metrics
        .series()
        .series(SeriesKey::operation(&"echo".into(), &"get".into()));
    op.record_request(200, ResponseSource::Backend, Duration::from_millis(3));
    op.record_request(204, ResponseSource::Backend, Duration::from_millis(3));
    op.record_request(503, ResponseSource::Backend, Duration::from_millis(3));
    op.record_backend(Duration::from_millis(2));
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="echo",operation="get",status_class="2xx",source="backend"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="echo",operation="get",status_class="5xx",source="backend"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_count{api="echo"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_backend_duration_seconds_count{api="echo"} 1"#),
        "{text}"
    );
}

#[test]
fn request_series_are_per_api_by_default() {
    let metrics = Metrics::new();
    let api = metrics
        .series()
        .series(SeriesKey::api(&"echo".into(), false));
    api.record_request(200, ResponseSource::Backend, Duration::from_millis(3));
    let none = metrics.series().series(SeriesKey::no_api(false));
    none.record_request(404, ResponseSource::Gateway, Duration::from_millis(1));
    api.record_request(429, ResponseSource::Policy, Duration::from_millis(1));
    api.record_request(429, ResponseSource::Backend, Duration::from_millis(1));
    let text = metrics.encode().unwrap();
    for needle in [
        r#"gatehouse_requests_total{api="echo",status_class="2xx",source="backend"} 1"#,
        r#"gatehouse_requests_total{api="-",status_class="4xx",source="gateway"} 1"#,
        // A rate limit's 429 is told apart from the backend's.
        r#"gatehouse_requests_total{api="echo",status_class="4xx",source="policy"} 1"#,
        r#"gatehouse_requests_total{api="echo",status_class="4xx",source="backend"} 1"#,
        r#"gatehouse_request_duration_seconds_count{api="-"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("operation="), "{text}");
    assert!(
        !text.contains(r#"status_class="5xx""#),
        "what did not happen is left out: {text}"
    );
}

#[test]
fn without_traffic_there_are_no_request_families() {
    let metrics = Metrics::new();
    let text = metrics.encode().unwrap();
    assert!(!text.contains("gatehouse_requests"), "{text}");
    assert!(!text.contains("duration_seconds"), "{text}");
    assert!(text.contains("gatehouse_in_flight_requests 0"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn histogram_buckets_are_cumulative_in_the_exposition() {
    let metrics = Metrics::new();
    let op = metrics.series().series(SeriesKey::api(&"a".into(), false));
    op.record_request(200, ResponseSource::Backend, Duration::from_micros(100)); // <= 0.5 ms
    op.record_request(200, ResponseSource::Backend, Duration::from_millis(20)); // <= 25 ms
    op.record_request(200, ResponseSource::Backend, Duration::from_secs(120)); // +Inf only
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_bucket{le="0.0005",api="a"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_bucket{le="0.025",api="a"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_bucket{le="60.0",api="a"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_bucket{le="+Inf",api="a"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_sum{api="a"} 120.0201"#),
        "{text}"
    );
}

#[test]
fn config_errors_are_counted_by_reason() {
    let metrics = Metrics::new();
    metrics.config_error(ConfigErrorReason::Policy);
    metrics.config_error(ConfigErrorReason::Policy);
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"gatehouse_config_reload_errors_total{reason="policy"} 2"#),
        "{text}"
    );
}

#[test]
fn sync_errors_are_counted_by_reason_and_start_at_zero() {
    let metrics = Metrics::new();
    metrics.init_config_sync_errors();
    metrics.config_sync_error(SyncErrorReason::Status4xxAuth);
    metrics.config_sync_error(SyncErrorReason::Status4xxAuth);
    metrics.token_expiry_timestamp_seconds.set(1_767_322_800);
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"gatehouse_config_sync_errors_total{reason="status_4xx_auth"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_config_sync_errors_total{reason="connect"} 0"#),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_token_expiry_timestamp_seconds 1767322800"),
        "{text}"
    );
}
