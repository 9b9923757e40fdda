use super::*;
use crate::metrics::ResponseSource;

use crate::metrics::MetricsOptions;
use crate::tls::TlsSettings;

/// APIs `ids`, each at `/<id>` with operations `get` and `post`.
fn yaml(ids: &[&str]) -> String {
    let mut text = String::from("apis:\n");
    for id in ids {
        text.push_str(&format!(
            "  - id: {id}\n    path: {id}\n    serviceUrl: http://127.0.0.1:1\n    subscriptionRequired: false\n    operations:\n      - {{ id: get, method: GET, urlTemplate: / }}\n      - {{ id: post, method: POST, urlTemplate: / }}\n"
        ));
    }
    text
}

fn build(metrics: &Metrics, ids: &[&str]) -> CompiledConfig {
    let config = Configuration::load("test.yaml", &yaml(ids)).unwrap();
    CompiledConfig::build(&config, "test.yaml", 1, metrics, &TlsSettings::default()).unwrap()
}

fn api(config: &CompiledConfig, id: &str) -> usize {
    config.apis.iter().position(|api| &*api.id == id).unwrap()
}

/// A request on operation `op` of API `id` (`None`: it matched no operation), 200.
fn request(config: &CompiledConfig, id: &str, op: Option<usize>) {
    let a = api(config, id);
    let target = op.map_or(OperationMetrics::api(a), |o| {
        OperationMetrics::operation(a, o)
    });
    target.record_request(
        config,
        200,
        ResponseSource::Backend,
        Duration::from_millis(1),
    );
}

fn scrape(metrics: &Metrics) -> String {
    metrics.encode().unwrap()
}

#[test]
fn series_appear_with_an_apis_first_request_only() {
    let metrics = Metrics::new();
    let config = build(&metrics, &["a", "b", "c"]);
    assert!(
        metrics.series().is_empty(),
        "nothing is created at compile time"
    );
    assert!(!scrape(&metrics).contains("gatehouse_requests_total"));

    request(&config, "b", Some(0));
    request(&config, "b", Some(1));
    request(&config, "b", None);
    OperationMetrics::unmatched().record_request(
        &config,
        404,
        ResponseSource::Backend,
        Duration::ZERO,
    );
    let text = scrape(&metrics);
    assert!(
        text.contains(r#"gatehouse_requests_total{api="b",status_class="2xx",source="backend"} 3"#),
        "per API by default, whatever the operation:\n{text}"
    );
    assert!(
        text.contains(r#"gatehouse_requests_total{api="-",status_class="4xx",source="backend"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"api="a""#), "{text}");
    assert!(!text.contains(r#"api="c""#), "{text}");
    assert!(!text.contains("operation="), "{text}");
    // Every operation of the API shares its series.
    let b = &config.apis[api(&config, "b")];
    assert!(b.series.get().is_some());
    assert!(b.operations.iter().all(|op| op.series.get().is_none()));
}

#[test]
fn per_operation_series_are_opt_in() {
    let metrics = Metrics::with_options(MetricsOptions {
        per_operation: true,
        ..MetricsOptions::default()
    });
    let config = build(&metrics, &["a", "b"]);
    request(&config, "a", Some(1));
    request(&config, "a", None);
    let text = scrape(&metrics);
    for needle in [
        r#"gatehouse_requests_total{api="a",operation="post",status_class="2xx",source="backend"} 1"#,
        r#"gatehouse_requests_total{api="a",operation="-",status_class="2xx",source="backend"} 1"#,
        r#"gatehouse_request_duration_seconds_count{api="a"} 2"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(r#"operation="get""#), "{text}");
    assert!(!text.contains(r#"api="b""#), "{text}");
}

#[test]
fn a_reload_keeps_the_series_of_remaining_apis_and_drops_those_of_removed_ones() {
    let metrics = Metrics::new();
    let old = build(&metrics, &["keep", "gone", "idle"]);
    request(&old, "keep", Some(0));
    request(&old, "keep", Some(0));
    request(&old, "gone", Some(0));
    OperationMetrics::unmatched().record_request(
        &old,
        404,
        ResponseSource::Backend,
        Duration::ZERO,
    );

    // The new configuration moves `keep` to another index and adds `new`.
    let new = build(&metrics, &["new", "idle", "keep"]);
    drop(old);
    let text = scrape(&metrics);
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="keep",status_class="2xx",source="backend"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_requests_total{api="-",status_class="4xx",source="backend"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"api="gone""#), "{text}");
    assert!(!text.contains(r#"api="idle""#), "{text}");
    assert!(!text.contains(r#"api="new""#), "{text}");

    request(&new, "keep", Some(1));
    request(&new, "new", Some(0));
    let text = scrape(&metrics);
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="keep",status_class="2xx",source="backend"} 3"#
        ),
        "counters carry on across the reload:\n{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_count{api="keep"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"gatehouse_requests_total{api="new",status_class="2xx",source="backend"} 1"#
        ),
        "{text}"
    );
    assert_eq!(metrics.series().len(), 3, "keep, new, -");
}

#[test]
fn series_a_served_configuration_creates_after_the_next_is_built_are_adopted_at_the_swap() {
    let metrics = Metrics::new();
    let old = build(&metrics, &["a", "b"]);
    let new = build(&metrics, &["a", "b"]);
    // First traffic for `a`, on the old configuration, after the new one was built.
    request(&old, "a", Some(0));
    new.adopt_series();
    drop(old);
    request(&new, "a", Some(0));
    assert!(
        scrape(&metrics)
            .contains(r#"gatehouse_requests_total{api="a",status_class="2xx",source="backend"} 2"#),
        "{}",
        scrape(&metrics)
    );
}

#[test]
fn a_series_lives_while_a_request_holds_the_old_configuration() {
    let metrics = Metrics::new();
    let old = Arc::new(build(&metrics, &["gone"]));
    request(&old, "gone", Some(0));
    let in_flight = old.clone();
    let new = build(&metrics, &["other"]);
    drop(old);
    assert!(scrape(&metrics).contains(r#"api="gone""#));
    drop(in_flight);
    assert!(!scrape(&metrics).contains(r#"api="gone""#));
    drop(new);
}

#[test]
fn ten_thousand_apis_with_traffic_on_ten_scrape_small() {
    let metrics = Metrics::new();
    let ids: Vec<String> = (0..10_000).map(|i| format!("api-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let config = build(&metrics, &refs);
    for id in refs.iter().step_by(1000) {
        request(&config, id, Some(0));
    }
    let text = scrape(&metrics);
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    // One series per API with traffic: its one (source, status class).
    assert_eq!(
        text.matches("gatehouse_requests_total{").count(),
        10,
        "{text}"
    );
}
