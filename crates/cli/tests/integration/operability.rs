//! Health endpoints, metrics and access logs.

use crate::common::*;

#[tokio::test]
async fn the_apim_health_path_answers_on_the_data_port() {
    let gateway = start("{}");
    let response = http_client()
        .get(gateway.url("/status-0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let admin = gateway.admin_url();
    let client = http_client();
    assert_eq!(
        client
            .get(format!("{admin}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    get(&gateway, "/api/x").await;
    get(&gateway, "/nope").await;
    // A request is counted once its response ends, which may be after the client has
    // the response.
    for series in [
        r#"gatehouse_requests_total{api="api",status_class="2xx",source="backend"}"#,
        r#"gatehouse_requests_total{api="-",status_class="4xx",source="gateway"}"#,
        r#"gatehouse_request_duration_seconds_bucket{le="+Inf",api="api"}"#,
        r#"gatehouse_backend_duration_seconds_count{api="api"}"#,
        "gatehouse_config_revision",
    ] {
        wait_for_metric(gateway.admin_addr(), series, |n| n == 1.0, WAIT).await;
    }
    wait_for_metric(
        gateway.admin_addr(),
        "gatehouse_active_connections",
        |_| true,
        WAIT,
    )
    .await;
}

#[tokio::test]
async fn each_request_writes_one_json_access_log_line() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    get(&gateway, "/api/logged?secret=1").await;
    assert!(wait_for(
        || gateway
            .stdout_lines()
            .iter()
            .any(|l| l.contains("\"kind\":\"request\"")),
        WAIT
    ));
    let line = gateway
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains("\"kind\":\"request\""))
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["method"], "GET");
    assert_eq!(
        entry["path"], "/api/logged",
        "no query string: it may carry keys"
    );
    assert_eq!(entry["api"], "api");
    assert_eq!(entry["operation"], "any");
    assert_eq!(entry["subscription"], "all");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["backendStatus"], 200);
    assert!(entry["requestId"].as_str().unwrap().len() == 36);
    assert!(entry["durationMs"].as_f64().unwrap() > 0.0);
    assert!(entry["backendDurationMs"].as_f64().is_some());
    assert!(entry["bytesSent"].as_u64().unwrap() > 0);
    assert_eq!(entry["source"], "backend");
    assert_eq!(entry["errorReason"], serde_json::Value::Null);
    // Milliseconds with at most three decimals, not binary noise.
    for field in ["\"durationMs\":", "\"backendDurationMs\":"] {
        let number: String = line[line.find(field).unwrap() + field.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let decimals = number.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{field} {number} in {line}");
    }
}

#[tokio::test]
async fn a_policy_answer_is_not_an_error_and_is_counted_apart_from_the_backends() {
    // Issue 11, item 5: `return-response` was logged as `errorReason: policy_response`,
    // and /metrics could not tell the gateway's 429 from a backend's.
    let backend = EchoBackend::start();
    let operations = "      - id: limited\n        method: GET\n        urlTemplate: /limited\n      - id: any\n        method: '*'\n        urlTemplate: /*\n";
    let mut yaml = config("api", &backend.url(), operations, None);
    yaml = yaml.replace(
        "      - id: limited\n        method: GET\n        urlTemplate: /limited\n",
        "      - id: limited\n        method: GET\n        urlTemplate: /limited\n        policy: |\n          <policies><inbound><return-response><set-status code=\"429\" reason=\"Slow down\" /></return-response></inbound></policies>\n",
    );
    let gateway = start(&yaml);
    assert_eq!(get(&gateway, "/api/limited").await.status(), 429);
    let backend_429 = http_client()
        .get(gateway.url("/api/other"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-test-status", "429")
        .send()
        .await
        .unwrap();
    assert_eq!(backend_429.status(), 429);
    for series in [
        r#"gatehouse_requests_total{api="api",status_class="4xx",source="policy"}"#,
        r#"gatehouse_requests_total{api="api",status_class="4xx",source="backend"}"#,
    ] {
        wait_for_metric(gateway.admin_addr(), series, |n| n == 1.0, WAIT).await;
    }
    assert!(wait_for(
        || gateway
            .stdout_lines()
            .iter()
            .filter(|l| l.contains("\"kind\":\"request\""))
            .count()
            == 2,
        WAIT
    ));
    let entries: Vec<serde_json::Value> = gateway
        .stdout_lines()
        .iter()
        .filter(|l| l.contains("\"kind\":\"request\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let limited = entries
        .iter()
        .find(|e| e["path"] == "/api/limited")
        .unwrap();
    assert_eq!(limited["source"], "policy");
    assert_eq!(limited["errorReason"], serde_json::Value::Null, "{limited}");
    assert_eq!(limited["backendStatus"], serde_json::Value::Null);
    let relayed = entries.iter().find(|e| e["path"] == "/api/other").unwrap();
    assert_eq!(relayed["source"], "backend");
}
