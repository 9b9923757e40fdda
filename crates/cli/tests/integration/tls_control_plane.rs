//! TLS to and of the control plane: `gatehouse control --tls-cert-file … --tls-key-file
//! …` with a private CA, a gateway trusting that CA (`--config-service-ca-file`, or
//! `SSL_CERT_FILE`) or not, the certificate replaced while the control plane runs, and
//! the command-line client with `--ca-file`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_test_support::pki::{CertifiedPem, TestCa, Validity};
use gatehouse_tls::certificate::{CertificateDetails, root_store};
use gatehouse_tls::client::ClientTls;
use gatehouse_tls::rustls;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::*;

const GATEWAY: &str = "edge";
const KEY: &str = "tls-subscription-key-0001";
const LONG: Duration = Duration::from_secs(20);

/// A private CA, its bundle file, and the control plane's certificate and key files.
struct Pki {
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let pki = Self {
            ca: TestCa::new("Gatehouse control plane test CA"),
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.ca_file(), pki.ca.cert_pem()).unwrap();
        pki.install(&pki.ca.server(&["localhost", "127.0.0.1"]));
        pki
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Replaces the certificate and key files, each atomically (write, then rename).
    fn install(&self, pem: &CertifiedPem) {
        for (path, text) in [
            (self.key_file(), &pem.key_pem),
            (self.cert_file(), &pem.cert_pem),
        ] {
            let temp = self.dir.path().join("incoming.tmp");
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(&temp, path).unwrap();
        }
    }

    /// A rustls client configuration trusting only this CA; a new one each time, so no
    /// TLS session is resumed.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        ClientTls {
            roots: Some(Arc::new(root_store([self.ca.cert_pem().as_str()]).unwrap())),
            alpn: vec![b"http/1.1".to_vec()],
            ..ClientTls::default()
        }
        .build()
        .unwrap()
    }

    /// reqwest trusting this CA.
    fn http_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&self.client_config()))
            .no_proxy()
            .build()
            .unwrap()
    }
}

/// `gatehouse control` over HTTPS on 127.0.0.1:0; killed on drop.
struct TlsControl {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    admin_token: String,
    client: reqwest::Client,
}

impl TlsControl {
    fn start(pki: &Pki) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bound = dir.path().join("bound.json");
        let mut child = control_command(&dir, pki)
            .arg("--bound-addresses-file")
            .arg(&bound)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("control.log")).unwrap())
            .spawn()
            .unwrap();
        let log = dir.path().join("control.log");
        let value = wait_bound_addresses(&mut child, &bound, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        let mut control = Self {
            child,
            addr: value["http"].as_str().unwrap().parse().unwrap(),
            dir,
            admin_token: String::new(),
            client: pki.http_client(),
        };
        control.admin_token = std::fs::read_to_string(control.token_file())
            .unwrap()
            .trim()
            .to_owned();
        control
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("control.log")).unwrap_or_default()
    }

    /// Waits (up to [`LONG`]) for a line of its log containing `needle`.
    fn wait_log(&self, needle: &str) -> bool {
        wait_for(|| self.log().contains(needle), LONG)
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("data/admin-token")
    }

    /// By host name: the certificate names `localhost` and `127.0.0.1`.
    fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    async fn put(&self, path: &str, body: Value) {
        let response = self
            .client
            .put(format!("{}{path}", self.url()))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "PUT {path}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The API `hello` answering `greeting`, the gateway serving it, a subscription,
    /// and a token for the gateway.
    async fn seed(&self, greeting: &str) -> String {
        self.put(
            "/apis/hello",
            json!({
                "path": "hello",
                "subscriptionRequired": true,
                "operations": [{
                    "id": "greet",
                    "method": "GET",
                    "urlTemplate": "/{name}",
                    "policy": format!(
                        "<policies><inbound><base /><return-response><set-status code=\"200\" reason=\"OK\" /><set-body>{greeting}</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"
                    ),
                }],
            }),
        )
        .await;
        self.put(
            &format!("/gateways/{GATEWAY}"),
            json!({ "apis": ["hello"] }),
        )
        .await;
        self.put(
            "/subscriptions/demo",
            json!({ "scope": "/apis", "primaryKey": KEY }),
        )
        .await;
        let expiry = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + Duration::from_secs(2 * 86_400),
        );
        let answer: Value = self
            .client
            .post(format!("{}/gateways/{GATEWAY}/generate-token", self.url()))
            .bearer_auth(&self.admin_token)
            .json(&json!({ "keyType": "primary", "expiry": expiry.to_string() }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"].as_str().unwrap().to_owned()
    }

    /// Opens a TLS connection (a new client, no session resumption); returns it and
    /// the serial number of the certificate served.
    async fn connect(
        &self,
        pki: &Pki,
    ) -> (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        String,
    ) {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(pki.client_config())
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
        let serial = CertificateDetails::from_der(&leaf).unwrap().serial_number;
        (stream, serial)
    }
}

impl Drop for TlsControl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- control plane log ---\n{}", self.log());
        }
    }
}

/// `gatehouse control` with the PKI's files, a data directory in `dir`, port 0.
fn control_command(dir: &tempfile::TempDir, pki: &Pki) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["--log-format", "text", "control", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--tls-cert-file")
        .arg(pki.cert_file())
        .arg("--tls-key-file")
        .arg(pki.key_file())
        .env("NO_COLOR", "1")
        .env_remove("GATEHOUSE_TLS_CERT_FILE")
        .env_remove("GATEHOUSE_TLS_KEY_FILE");
    command
}

/// `GET /healthz` over HTTP/1.1 on an open connection, keeping it open.
async fn healthz(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let read = tokio::time::timeout(SHORT, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            read > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A `gatehouse gateway` in control-plane mode; killed on drop.
struct Gateway {
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
    dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts a gateway on `endpoint` with `token`, extra arguments and environment.
    fn start(endpoint: &str, token: &str, extra: &[&str], env: &[(&str, &Path)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bound = dir.path().join("bound.json");
        let mut command = Command::new(BIN);
        command
            .args(["--log-format", "text", "gateway"])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--https-listen", "127.0.0.1:0"])
            .args(["--workers", "1", "--access-log=false"])
            .args(["--config-service-backoff-max", "1s"])
            .arg("--config-backup-dir")
            .arg(dir.path())
            .arg("--bound-addresses-file")
            .arg(&bound)
            .args(extra)
            .env("config.service.endpoint", endpoint)
            .env("config.service.auth", token)
            .env("NO_COLOR", "1")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("GATEHOUSE_CONFIG")
            .env_remove("GATEHOUSE_CONFIG_SERVICE_CA_FILE")
            .env_remove("SSL_CERT_DIR");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
            .spawn()
            .unwrap();
        let mut child = child;
        let log = dir.path().join("gateway.log");
        let value = wait_bound_addresses(&mut child, &bound, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        Self {
            child,
            http: value["http"].as_str().unwrap().parse().unwrap(),
            admin: value["admin"].as_str().unwrap().parse().unwrap(),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Waits (up to [`LONG`]) until its log satisfies `condition`.
    fn wait_log(&self, condition: impl Fn(&str) -> bool) -> bool {
        wait_for(|| condition(&self.log()), LONG)
    }

    async fn hello(&self) -> (u16, String) {
        get_with_key(&format!("http://{}/hello/x", self.http), KEY).await
    }

    async fn wait_greeting(&self, greeting: &str) -> bool {
        wait_for_async(
            || async { self.hello().await == (200, greeting.to_owned()) },
            LONG,
        )
        .await
    }

    /// The value of `gatehouse_config_sync_errors_total{reason="<reason>"}` (0 when
    /// absent), read once: for asserting what has not happened.
    async fn sync_errors(&self, reason: &str) -> f64 {
        let text = metrics_text(self.admin).await;
        metric_value(&text, &sync_errors_series(reason)).unwrap_or(0.0)
    }

    /// Waits (up to [`LONG`]) until at least `count` sync errors of `reason` were counted:
    /// the sync loop counts them on its own task.
    async fn wait_sync_errors(&self, reason: &str, count: f64) {
        wait_for_metric(
            self.admin,
            &sync_errors_series(reason),
            |n| n >= count,
            LONG,
        )
        .await;
    }

    async fn readyz(&self) -> u16 {
        http_client()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

fn sync_errors_series(reason: &str) -> String {
    format!("gatehouse_config_sync_errors_total{{reason=\"{reason}\"}}")
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gateway log ---\n{}", self.log());
        }
    }
}

/// The CLI against `control`, with extra arguments.
fn cli(control: &TlsControl, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--server", &control.url(), "--token-file"])
        .arg(control.token_file())
        .args(args)
        .env_remove("GATEHOUSE_CA_FILE")
        .env_remove("GATEHOUSE_CONTEXT")
        .env_remove("SSL_CERT_DIR")
        .env("HOME", control.dir.path())
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap()
}

// === tests ===

#[tokio::test]
async fn a_gateway_trusting_the_private_ca_syncs_over_https() {
    let pki = Pki::new();
    let control = TlsControl::start(&pki);
    assert!(control.wait_log("serving HTTPS"), "{}", control.log());
    let token = control.seed("hello over TLS").await;
    let ca_file = pki.ca_file();
    let gateway = Gateway::start(
        &control.url(),
        &token,
        &["--config-service-ca-file", ca_file.to_str().unwrap()],
        &[],
    );
    assert!(
        gateway.wait_greeting("hello over TLS").await,
        "{}",
        gateway.log()
    );
    // The change stream works over TLS too.
    control
        .put(
            "/named-values/unused",
            json!({ "name": "unused", "value": "x" }),
        )
        .await;
    assert_eq!(gateway.sync_errors("tls").await, 0.0);

    // The same CA through the environment (a CA bundle mounted into the pod and named
    // by SSL_CERT_FILE) works without the flag.
    let by_env = Gateway::start(&control.url(), &token, &[], &[("SSL_CERT_FILE", &ca_file)]);
    assert!(
        by_env.wait_greeting("hello over TLS").await,
        "{}",
        by_env.log()
    );
}

#[tokio::test]
async fn a_gateway_that_does_not_trust_the_ca_logs_a_tls_error_and_keeps_trying() {
    let pki = Pki::new();
    let control = TlsControl::start(&pki);
    let token = control.seed("hello").await;
    // The system's CA certificates, made deterministic: a bundle of another CA.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    std::fs::write(&other_ca, TestCa::new("Someone else's CA").cert_pem()).unwrap();
    let gateway = Gateway::start(&control.url(), &token, &[], &[("SSL_CERT_FILE", &other_ca)]);
    // Keeps trying: a second error counted.
    gateway.wait_sync_errors("tls", 2.0).await;
    assert!(
        gateway.wait_log(|log| {
            (log.contains("reason=\"tls\"") || log.contains("reason=tls"))
                && log.contains("UnknownIssuer")
                && log.contains("--config-service-ca-file")
        }),
        "{}",
        gateway.log()
    );
    assert_eq!(gateway.sync_errors("connect").await, 0.0);
    assert_eq!(gateway.readyz().await, 503, "nothing to serve yet");
    assert_eq!(gateway.hello().await.0, 404);
}

#[tokio::test]
async fn the_control_planes_certificate_is_replaced_while_it_runs() {
    let pki = Pki::new();
    let control = TlsControl::start(&pki);
    let (mut open, first) = control.connect(&pki).await;
    assert!(healthz(&mut open).await.starts_with("HTTP/1.1 200"));

    // A second certificate from the same CA, another common name.
    let second = pki.ca.server(&["127.0.0.1", "localhost"]);
    pki.install(&second);
    assert!(
        wait_for_async(|| async { control.connect(&pki).await.1 != first }, LONG).await,
        "new connections still get the first certificate\n{}",
        control.log()
    );
    let (mut fresh, now) = control.connect(&pki).await;
    let subject =
        CertificateDetails::from_der(&fresh.get_ref().1.peer_certificates().unwrap()[0].clone())
            .unwrap()
            .subject;
    assert!(subject.contains("CN=127.0.0.1"), "{subject}");
    assert!(healthz(&mut fresh).await.starts_with("HTTP/1.1 200"));
    assert!(
        healthz(&mut open).await.starts_with("HTTP/1.1 200"),
        "the connection opened before the change keeps working"
    );
    assert!(
        control.wait_log("TLS certificate reloaded"),
        "{}",
        control.log()
    );

    // A broken replacement is refused; the last good certificate keeps serving.
    std::fs::write(pki.cert_file(), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    assert!(
        control.wait_log("TLS certificate not reloaded"),
        "{}",
        control.log()
    );
    assert_eq!(control.connect(&pki).await.1, now);
    let (mut after, _) = control.connect(&pki).await;
    assert!(healthz(&mut after).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_cli_talks_to_an_https_control_plane_with_its_ca_file() {
    let pki = Pki::new();
    let control = TlsControl::start(&pki);
    let ca_file = pki.ca_file();
    let ca_file = ca_file.to_str().unwrap();
    let output = cli(
        &control,
        &["--ca-file", ca_file, "get", "apis", "-o", "json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["count"], 0);

    // From a context file.
    let context = control.dir.path().join("context.yaml");
    std::fs::write(&context, format!("caFile: {ca_file}\n")).unwrap();
    let output = cli(
        &control,
        &["--context", context.to_str().unwrap(), "get", "apis"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Without it, the CLI says what is wrong and what to do.
    let other = control.dir.path().join("other-ca.pem");
    std::fs::write(&other, TestCa::new("Someone else's CA").cert_pem()).unwrap();
    let output = Command::new(BIN)
        .args(["--server", &control.url(), "--token-file"])
        .arg(control.token_file())
        .args(["get", "apis"])
        .env_remove("GATEHOUSE_CA_FILE")
        .env_remove("GATEHOUSE_CONTEXT")
        .env_remove("SSL_CERT_DIR")
        .env("HOME", control.dir.path())
        .env("SSL_CERT_FILE", &other)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("UnknownIssuer") && stderr.contains("--ca-file"),
        "{stderr}"
    );
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_naming_the_file() {
    let pki = Pki::new();
    let run = |command: &mut Command| {
        let output = command.output().unwrap();
        assert!(
            !output.status.success(),
            "the control plane should not start"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let dir = tempfile::tempdir().unwrap();

    // Only one of the two.
    let stderr = run(Command::new(BIN)
        .args(["control", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--tls-cert-file")
        .arg(pki.cert_file())
        .env_remove("GATEHOUSE_TLS_KEY_FILE"));
    assert!(stderr.contains("--tls-key-file"), "{stderr}");

    // The key of another certificate.
    pki.install(&CertifiedPem {
        cert_pem: pki.ca.server(&["localhost"]).cert_pem,
        key_pem: pki.ca.server(&["localhost"]).key_pem,
    });
    let stderr = run(&mut control_command(&dir, &pki));
    assert!(stderr.contains("does not match"), "{stderr}");
    assert!(
        stderr.contains(&pki.key_file().display().to_string()),
        "{stderr}"
    );

    // Expired.
    pki.install(
        &pki.ca
            .server_with_validity(&["localhost"], Validity::Expired),
    );
    let stderr = run(&mut control_command(&dir, &pki));
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(
        stderr.contains(&pki.cert_file().display().to_string()),
        "{stderr}"
    );

    // Missing.
    std::fs::remove_file(pki.key_file()).unwrap();
    let stderr = run(&mut control_command(&dir, &pki));
    assert!(
        stderr.contains(&pki.key_file().display().to_string()),
        "{stderr}"
    );
}
