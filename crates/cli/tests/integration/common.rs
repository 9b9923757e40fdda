//! Shared helpers: start a gateway from a YAML snippet, make requests.

use std::time::Duration;

use gatehouse_test_support::pki::{CertifiedPem, TestCa};

pub(crate) use gatehouse_test_support::{
    Echo, EchoBackend, GatewayProcess, Signal, h2c_client, http_client, metric_value, refused_addr,
    wait_for, wait_for_async, wait_for_metric,
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Waits (up to 30 s) for `child`, started with `--bound-addresses-file bound`, to write
/// its bound addresses, and returns them. Panics with `log()` when the child exits first
/// or takes longer.
pub(crate) fn wait_bound_addresses(
    child: &mut std::process::Child,
    bound: &std::path::Path,
    log: impl Fn() -> String,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = std::fs::read_to_string(bound)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        {
            return value;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process exited ({status}) before listening:\n{}", log());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process did not start:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `gateway` watches its config file, before a test rewrites it: the gateway
/// writes its bound addresses (which starting it waits for) before it starts watching,
/// so a rewrite right after start could go unseen.
#[track_caller]
pub(crate) fn wait_watching_config(gateway: &GatewayProcess) {
    assert!(
        gateway.wait_watching_config(WAIT),
        "the gateway does not watch {}",
        gateway.config_path().display()
    );
}

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

/// `GET url` with a subscription key: status and body; `(0, "")` when nothing answered.
pub(crate) async fn get_with_key(url: &str, key: &str) -> (u16, String) {
    match http_client()
        .get(url)
        .header("Ocp-Apim-Subscription-Key", key)
        .send()
        .await
    {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

pub(crate) const SHORT: Duration = Duration::from_secs(5);

/// The deadline for state another task or process updates after the action a test
/// takes (metrics, log lines, files): generous, so a loaded machine does not fail the
/// test, while the happy path returns as soon as the condition holds.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

// === TLS configurations ===

/// `key: |` followed by `text` indented by `spaces`.
pub(crate) fn block(key: &str, text: &str, spaces: usize) -> String {
    format!("{key}: |\n{}\n", indent(text.trim_end(), spaces))
}

/// A certificate entity (YAML list item under `certificates:`).
pub(crate) fn certificate(id: &str, pair: &CertifiedPem) -> String {
    format!(
        "  - id: {id}\n    {}    {}",
        block("certificatePem", &pair.cert_pem, 6),
        block("privateKeyPem", &pair.key_pem, 6)
    )
}

/// A CA certificate entity trusted for client certificates.
pub(crate) fn client_ca(id: &str, ca: &TestCa) -> String {
    format!(
        "  - id: {id}\n    clientCa: true\n    {}",
        block("certificatePem", &ca.cert_pem(), 6)
    )
}

/// One API `api` at `/` forwarding to `backend` (any method, any path), open (no
/// subscription), with an optional API policy.
pub(crate) fn open_api(backend: &str, policy: Option<&str>) -> String {
    let policy = policy.map_or_else(String::new, |p| block("    policy", p, 6));
    format!(
        "apis:\n  - id: api\n    path: \"\"\n    serviceUrl: {backend}\n    subscriptionRequired: false\n{policy}    operations:\n{ANY_OPERATION}"
    )
}

/// `open_api` plus `api.example.com` served with `pair`.
pub(crate) fn api_with_certificate(backend: &str, pair: &CertifiedPem) -> String {
    format!(
        "{}certificates:\n{}hostnames:\n  - hostname: api.example.com\n    certificateId: api\n",
        open_api(backend, None),
        certificate("api", pair),
    )
}

/// The serial number of a DER certificate (uppercase hex).
pub(crate) fn serial(der: &[u8]) -> String {
    gatehouse_tls::certificate::CertificateDetails::from_der(der)
        .unwrap()
        .serial_number
}

/// Sends `request` on a new TCP connection and returns everything the gateway sent
/// back, read until it closed the connection (`true`) or stayed quiet for a second
/// (`false`). For the exact bytes of smuggling and framing probes.
pub(crate) fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (String, bool) {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    // The gateway may answer and close before reading everything.
    let _ = stream.write_all(request);
    let (bytes, closed) = read_answer(&mut stream, Duration::from_secs(1));
    (String::from_utf8_lossy(&bytes).into_owned(), closed)
}

/// Reads what the gateway sends on `stream` until it closes the connection (`true`; a
/// reset counts) or sends nothing for `quiet` (`false`).
pub(crate) fn read_answer(stream: &mut std::net::TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    use std::io::{ErrorKind, Read as _};
    stream.set_read_timeout(Some(quiet)).unwrap();
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 8192];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(read) => bytes.extend_from_slice(&buffer[..read]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // A reset is a close too.
            Err(_) => break true,
        }
    };
    (bytes, closed)
}

/// The status lines of every HTTP/1.1 response in `text`, in order (a body need not
/// end with a line break, so a status line may follow one directly).
pub(crate) fn status_lines(text: &str) -> Vec<&str> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text[at..].split("\r\n").next())
        .collect()
}

/// The text of `GET http://{admin}/metrics`, read once (for a state that has settled;
/// otherwise use [`wait_for_metric`]).
pub(crate) async fn metrics_text(admin: std::net::SocketAddr) -> String {
    http_client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
