use super::*;

#[test]
fn operation_handles_count_by_status_class() {
    let metrics = Metrics::new();
    let op = metrics.operation("echo", "get");
    op.record_request(200, Duration::from_millis(3));
    op.record_request(204, Duration::from_millis(3));
    op.record_request(503, Duration::from_millis(3));
    op.record_backend(Duration::from_millis(2));
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="echo",operation="get",status_class="2xx"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="echo",operation="get",status_class="5xx"} 1"#
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
fn histogram_buckets_are_cumulative_in_the_exposition() {
    let metrics = Metrics::new();
    let op = metrics.operation("a", "b");
    op.record_request(200, Duration::from_micros(100)); // <= 0.5 ms
    op.record_request(200, Duration::from_millis(20)); // <= 25 ms
    op.record_request(200, Duration::from_secs(120)); // +Inf only
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
