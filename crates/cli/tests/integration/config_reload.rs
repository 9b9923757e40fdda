//! Loading and reloading configuration: bad files are rejected with their location and
//! never replace a good one.

use std::process::Command;

use crate::common::*;

fn run_with_config(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let output = Command::new(BIN)
        .args(["--log-format", "text", "gateway", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--https-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_yaml_error_stops_the_start_with_file_line_and_column() {
    let (ok, stderr) = run_with_config("apis:\n  - id: a\n    pathh: x\n");
    assert!(!ok);
    assert!(stderr.contains("gateway.yaml:3:"), "{stderr}");
    assert!(stderr.contains("pathh"), "{stderr}");
}

#[test]
fn a_policy_error_names_the_policy_line_and_column() {
    let yaml = "apis:\n  - id: a\n    path: a\n    serviceUrl: http://127.0.0.1:1\n    policy: |\n      <policies>\n        <inbound>\n          <rate-limit calls=\"5\" />\n        </inbound>\n      </policies>\n    operations: [{ id: o, method: GET, urlTemplate: / }]\n";
    let (ok, stderr) = run_with_config(yaml);
    assert!(!ok);
    assert!(stderr.contains("apis[a].policy"), "{stderr}");
    assert!(stderr.contains(":3:"), "line 3 of the policy: {stderr}");
    assert!(stderr.contains("rate-limit"), "{stderr}");
}

#[test]
fn a_gateways_section_is_refused_by_a_file_configured_gateway() {
    // It assigns APIs to a control plane's gateways; here it would be ignored.
    let (ok, stderr) = run_with_config("gateways:\n  - id: edge\n");
    assert!(!ok);
    assert!(
        stderr.contains("gateways: assigns APIs to the gateways of a control plane"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_policy_attribute_is_rejected() {
    let yaml = "policy: |\n  <policies><inbound><set-header name=\"a\" exist-action=\"override\"><value>1</value></set-header></inbound></policies>\n";
    let (ok, stderr) = run_with_config(yaml);
    assert!(!ok);
    assert!(stderr.contains("exist-action"), "{stderr}");
}

#[tokio::test]
async fn a_changed_file_is_reloaded_and_a_bad_one_keeps_the_old_config() {
    let backend = EchoBackend::start();
    let v1 = config("v1", &backend.url(), ANY_OPERATION, None);
    let mut gateway = start(&v1);
    wait_watching_config(&gateway);
    assert_eq!(get(&gateway, "/v1/x").await.status(), 200);

    // A good change is picked up from the file watcher.
    gateway.rewrite_config(&config("v2", &backend.url(), ANY_OPERATION, None));
    assert!(
        wait_for_async(
            || async { get(&gateway, "/v2/x").await.status() == 200 },
            SHORT
        )
        .await,
        "new config served"
    );
    assert_eq!(get(&gateway, "/v1/x").await.status(), 404);

    // A bad change is rejected; v2 keeps serving.
    gateway.rewrite_config("apis: [ this is not valid");
    assert!(gateway.wait_for_output("configuration rejected", WAIT));
    assert_eq!(get(&gateway, "/v2/x").await.status(), 200);
    // The reload task counts the error, logged or not yet.
    wait_for_metric(
        gateway.admin_addr(),
        r#"gatehouse_config_reload_errors_total{reason="parse"}"#,
        |n| n == 1.0,
        WAIT,
    )
    .await;
    wait_for_metric(
        gateway.admin_addr(),
        "gatehouse_config_revision",
        |revision| revision == 2.0,
        WAIT,
    )
    .await;

    // SIGHUP reloads too.
    gateway.rewrite_config_in_place(&config("v3", &backend.url(), ANY_OPERATION, None));
    gateway.signal(Signal::Hup);
    assert!(
        wait_for_async(
            || async { get(&gateway, "/v3/x").await.status() == 200 },
            SHORT
        )
        .await
    );
}

#[test]
fn kubernetes_ingress_cannot_be_mixed_with_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, "{}").unwrap();
    let with_file = Command::new(BIN)
        .args(["--log-format", "text", "gateway", "--config"])
        .arg(&path)
        .env("k8s.ingress.enabled", "true")
        .output()
        .unwrap();
    assert!(!with_file.status.success());
    assert!(String::from_utf8_lossy(&with_file.stderr).contains("not both"));
}
