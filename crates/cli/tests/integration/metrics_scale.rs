//! Metrics at scale: series exist for the APIs that had traffic, not for every API
//! configured, and go away with the APIs a reload removes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gatehouse_test_support::{EchoBackend, GatewayProcess, http_client};

use crate::common::{BIN, metrics_text};

/// One open API per id, at `/<id>`, any method and path, forwarding to `backend`.
fn apis(backend: &str, ids: impl IntoIterator<Item = String>) -> String {
    let mut yaml = String::from("apis:\n");
    for id in ids {
        yaml.push_str(&format!(
            "  - id: {id}\n    path: {id}\n    serviceUrl: {backend}\n    subscriptionRequired: false\n    operations: [{{ id: any, method: \"*\", urlTemplate: \"/*\" }}]\n"
        ));
    }
    yaml
}

fn start(yaml: &str, args: &[&str]) -> GatewayProcess {
    GatewayProcess::builder(BIN)
        .config(yaml)
        .args(["--workers", "2", "--access-log", "false"])
        .args(args)
        // Compiling 10,000 APIs takes a few seconds in a debug build.
        .startup_timeout(Duration::from_secs(120))
        .start()
}

async fn status(gateway: &GatewayProcess, path: &str) -> u16 {
    http_client()
        .get(gateway.url(path))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16())
}

/// The `api` label values of `gatehouse_requests_total`.
fn apis_with_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("gatehouse_requests_total{api=\""))
        .filter_map(|rest| rest.split_once('"'))
        .map(|(api, _)| api.to_owned())
        .collect()
}

/// The value of the series starting with `prefix` (metric name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `condition` holds (requests are counted as their exchange ends, just
/// after the client has the response), and returns that scrape.
async fn scrape_until(gateway: &GatewayProcess, condition: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_text(gateway.admin_addr()).await;
        if condition(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "condition never held; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ten_thousand_apis_scrape_only_those_with_traffic() {
    let backend = EchoBackend::start();
    let gateway = start(
        &apis(&backend.url(), (0..10_000).map(|i| format!("api-{i}"))),
        &[],
    );
    let before = metrics_text(gateway.admin_addr()).await;
    assert!(
        apis_with_series(&before).is_empty(),
        "no series before traffic:\n{before}"
    );

    let used = ["api-7", "api-4242", "api-9999"];
    for api in used {
        for _ in 0..3 {
            assert_eq!(status(&gateway, &format!("/{api}/x")).await, 200);
        }
    }
    let expected: BTreeSet<String> = used.iter().map(|api| (*api).to_owned()).collect();
    let text = scrape_until(&gateway, |text| {
        used.iter().all(|api| {
            value(
                text,
                &format!(
                    r#"gatehouse_requests_total{{api="{api}",status_class="2xx",source="backend"}}"#
                ),
            ) == Some(3.0)
        })
    })
    .await;
    assert_eq!(apis_with_series(&text), expected, "{text}");
    assert!(
        text.len() < 200 * 1024,
        "/metrics is {} bytes at 10,000 APIs",
        text.len()
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_count{api="api-4242"} 3"#),
        "{text}"
    );
    assert!(!text.contains("operation="), "per API by default:\n{text}");
}

#[tokio::test]
async fn a_reload_drops_the_series_of_removed_apis_and_keeps_the_others() {
    let backend = EchoBackend::start();
    let ids = |names: &[&str]| {
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>()
    };
    let gateway = start(&apis(&backend.url(), ids(&["keep", "gone", "idle"])), &[]);
    for path in ["/keep/a", "/keep/b", "/gone/a"] {
        assert_eq!(status(&gateway, path).await, 200);
    }
    assert_eq!(status(&gateway, "/nowhere").await, 404);
    let text = scrape_until(&gateway, |text| {
        value(
            text,
            r#"gatehouse_requests_total{api="keep",status_class="2xx",source="backend"}"#,
        ) == Some(2.0)
            && text.contains(r#"api="gone""#)
            && text.contains(
                r#"gatehouse_requests_total{api="-",status_class="4xx",source="gateway"} 1"#,
            )
    })
    .await;
    assert!(!text.contains(r#"api="idle""#), "{text}");

    gateway.rewrite_config(&apis(&backend.url(), ids(&["added", "idle", "keep"])));
    // Waiting on the revision, not on requests: those would count too.
    scrape_until(&gateway, |text| {
        value(text, "gatehouse_config_revision") == Some(2.0)
    })
    .await;
    assert_eq!(status(&gateway, "/added/x").await, 200);
    assert_eq!(status(&gateway, "/gone/a").await, 404);
    assert_eq!(status(&gateway, "/keep/c").await, 200);
    let text = scrape_until(&gateway, |text| {
        !text.contains(r#"api="gone""#)
            && value(
                text,
                r#"gatehouse_requests_total{api="keep",status_class="2xx",source="backend"}"#,
            ) == Some(3.0)
    })
    .await;
    // `keep` carried on from 2; `added` had a request; `idle` never did; the 404 for
    // `/gone/a` counts under `-` (no API matched).
    assert_eq!(
        apis_with_series(&text),
        ["-", "added", "keep"].map(str::to_owned).into(),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_requests_total{api="-",status_class="4xx",source="gateway"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_request_duration_seconds_count{api="keep"} 3"#),
        "{text}"
    );
    assert!(!text.contains(r#"api="idle""#), "{text}");
}

#[tokio::test]
async fn per_operation_labels_are_opt_in() {
    let backend = EchoBackend::start();
    let gateway = start(
        &apis(&backend.url(), ["one".to_owned(), "two".to_owned()]),
        &["--metrics-per-operation"],
    );
    assert_eq!(status(&gateway, "/one/x").await, 200);
    let text = scrape_until(&gateway, |text| {
        text.contains(r#"gatehouse_requests_total{api="one",operation="any",status_class="2xx",source="backend"} 1"#)
    })
    .await;
    assert_eq!(apis_with_series(&text), ["one".to_owned()].into(), "{text}");
}
