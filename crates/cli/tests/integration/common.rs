//! Shared helpers: start a gateway from a YAML snippet, make requests.

use std::time::Duration;

pub(crate) use gatehouse_test_support::{
    Echo, EchoBackend, GatewayProcess, Signal, h2c_client, http_client, refused_addr, wait_for,
    wait_for_async,
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A subscription key valid for every API in the configs built by [`config`].
pub(crate) const ALL_APIS_KEY: &str = "all-apis-key-0001";

/// Starts a gateway on `yaml`, one worker, JSON logs.
pub(crate) fn start(yaml: &str) -> GatewayProcess {
    GatewayProcess::builder(BIN)
        .config(yaml)
        .args(["--workers", "1"])
        .start()
}

/// A configuration with one API `api` at `path` forwarding to `backend`, with the given
/// operations block (YAML, already indented for `operations:`) and an API policy, plus
/// an all-APIs subscription with [`ALL_APIS_KEY`].
pub(crate) fn config(
    path: &str,
    backend: &str,
    operations: &str,
    api_policy: Option<&str>,
) -> String {
    let policy = api_policy.map_or_else(String::new, |p| {
        format!("    policy: |\n{}\n", indent(p, 6))
    });
    format!(
        "apis:\n  - id: api\n    path: {path}\n    serviceUrl: {backend}\n{policy}    operations:\n{operations}\nsubscriptions:\n  - id: all\n    scope: /apis\n    primaryKey: {ALL_APIS_KEY}\n"
    )
}

/// Operations block matching everything.
pub(crate) const ANY_OPERATION: &str =
    "      - id: any\n        method: \"*\"\n        urlTemplate: /*\n";

/// Indents every line of `text` by `spaces`.
pub(crate) fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A policy document with `inbound` content and `<base/>` everywhere else.
pub(crate) fn inbound_policy(inbound: &str) -> String {
    format!(
        "<policies>\n  <inbound>\n    <base />\n{inbound}\n  </inbound>\n  <backend><base /></backend>\n  <outbound><base /></outbound>\n  <on-error><base /></on-error>\n</policies>"
    )
}

/// GET with the all-APIs key.
pub(crate) async fn get(gateway: &GatewayProcess, path: &str) -> reqwest::Response {
    http_client()
        .get(gateway.url(path))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap()
}

/// Parses an echo from a response, asserting 200 first.
pub(crate) async fn echo(response: reqwest::Response) -> Echo {
    let status = response.status();
    let body = response.bytes().await.unwrap();
    assert_eq!(status, 200, "body: {}", String::from_utf8_lossy(&body));
    Echo::from_slice(&body)
}

/// The JSON error body `{statusCode, message}` of a gateway error response.
pub(crate) async fn error_body(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["statusCode"], status, "{body}");
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The gateway's `/metrics` text.
pub(crate) async fn metrics_text(gateway: &GatewayProcess) -> String {
    http_client()
        .get(format!("{}/metrics", gateway.admin_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) const SHORT: Duration = Duration::from_secs(5);
