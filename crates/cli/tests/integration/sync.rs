//! Control-plane mode: `gatehouse control` and `gatehouse gateway` with
//! `config.service.endpoint` / `config.service.auth`, as separate processes talking
//! over loopback: the Configuration API v2, the configuration backup, fail-static,
//! token rotation and the heartbeat.
//!
//! The gateway here is started by hand rather than with `GatewayProcess`, which always
//! passes `--config` (file mode); its diagnostic log goes to a file the test reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gatehouse_model::token::GatewayToken;
use serde_json::{Value, json};

use crate::common::*;

const GATEWAY: &str = "edge";
const KEY: &str = "sync-subscription-key-0001";
const LONG: Duration = Duration::from_secs(20);

// === control plane ===

/// `gatehouse control` on loopback; its data directory (and port) survive a restart.
struct Control {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    admin_token: String,
    starts: u32,
}

impl Control {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut control = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            admin_token: String::new(),
            starts: 0,
        };
        control.spawn();
        control.admin_token = std::fs::read_to_string(control.dir.path().join("data/admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        control
    }

    /// Starts the process on `self.addr` (port 0 the first time).
    fn spawn(&mut self) {
        self.starts += 1;
        let bound = self.dir.path().join(format!("bound-{}.json", self.starts));
        let log_path = self.dir.path().join(format!("control-{}.log", self.starts));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(BIN)
            .args(["--log-format", "text", "control", "--listen"])
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--bound-addresses-file")
            .arg(&bound)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let value = wait_bound_addresses(&mut child, &bound, || {
            std::fs::read_to_string(&log_path).unwrap_or_default()
        });
        self.child = Some(child);
        self.addr = value["http"].as_str().unwrap().parse().unwrap();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log of its current (or last) process.
    fn log(&self) -> String {
        let path = self.dir.path().join(format!("control-{}.log", self.starts));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Starts it again on the same port, with the same data.
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = http_client()
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str, body: Value) {
        let (status, answer) = self.call(reqwest::Method::PUT, path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "PUT {path}: {status} {answer}"
        );
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {answer}"
        );
        answer
    }

    /// A token for the gateway, valid for `valid_for`.
    async fn token(&self, valid_for: Duration) -> String {
        let expiry = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + valid_for);
        let answer = self
            .post(
                &format!("/gateways/{GATEWAY}/generate-token"),
                json!({ "keyType": "primary", "expiry": expiry.to_string() }),
            )
            .await;
        answer["value"].as_str().unwrap().to_owned()
    }

    async fn status(&self) -> Value {
        let (status, answer) = self
            .call(
                reqwest::Method::GET,
                &format!("/gateways/{GATEWAY}/status"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// The API `hello` at path `hello`, answering `greeting` from a policy, assigned to
    /// the gateway, and a subscription to every API with [`KEY`].
    async fn seed(&self, greeting: &str) {
        self.put("/apis/hello", hello_api(greeting)).await;
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
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.kill();
    }
}

fn hello_api(greeting: &str) -> Value {
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
    })
}

// === gateway ===

/// A gateway's directory (backup, logs), kept across restarts of its process.
struct GatewayHome {
    dir: tempfile::TempDir,
    starts: std::cell::Cell<u32>,
    /// More environment variables for every start.
    env: Vec<(String, String)>,
}

impl GatewayHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        Self {
            dir,
            starts: std::cell::Cell::new(0),
            env: Vec::new(),
        }
    }

    fn backup_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("backup")
            .join(format!("gatehouse-{GATEWAY}.snapshot.json"))
    }

    /// Starts `gatehouse gateway` in control-plane mode, settings in APIM's dotted
    /// environment variables, and waits until it listens.
    fn start(&self, endpoint: &str, auth: &str) -> SyncGateway {
        self.start_with(endpoint, auth, &[])
    }

    /// As [`GatewayHome::start`], with extra arguments.
    fn start_with(&self, endpoint: &str, auth: &str, extra: &[&str]) -> SyncGateway {
        let start = self.starts.get() + 1;
        self.starts.set(start);
        let bound = self.dir.path().join(format!("bound-{start}.json"));
        let log = self.dir.path().join(format!("gateway-{start}.log"));
        let child = Command::new(BIN)
            .args(["--log-format", "text", "gateway"])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--https-listen", "127.0.0.1:0"])
            .args(["--workers", "1", "--access-log=false"])
            .args([
                "--heartbeat-interval",
                "1s",
                "--config-service-backoff-max",
                "1s",
            ])
            .arg("--config-backup-dir")
            .arg(self.dir.path().join("backup"))
            .arg("--bound-addresses-file")
            .arg(&bound)
            .args(extra)
            .env("config.service.endpoint", endpoint)
            .env("config.service.auth", auth)
            .env_remove("NO_COLOR")
            .env("no_proxy", "127.0.0.1,localhost")
            // No system CA certificates: an https backend without its own CA cannot be
            // served (what `a_change_the_gateway_cannot_compile…` relies on).
            .env(
                "SSL_CERT_FILE",
                self.dir.path().join("no-such-ca-bundle.pem"),
            )
            .env("SSL_CERT_DIR", self.dir.path().join("no-such-ca-dir"))
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env_remove("GATEHOUSE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut child = child;
        let value = wait_bound_addresses(&mut child, &bound, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        SyncGateway {
            child,
            http: value["http"].as_str().unwrap().parse().unwrap(),
            https: value["https"].as_str().unwrap().parse().unwrap(),
            admin: value["admin"].as_str().unwrap().parse().unwrap(),
            log,
        }
    }
}

/// A `gatehouse gateway` process in control-plane mode; killed on drop.
struct SyncGateway {
    child: Child,
    http: SocketAddr,
    https: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl SyncGateway {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_log(&self, needle: &str) -> bool {
        wait_for_async(|| async { self.log().contains(needle) }, LONG).await
    }

    /// `GET /hello/{name}` with the subscription key: status and body.
    async fn hello(&self, name: &str) -> (u16, String) {
        get_with_key(&format!("http://{}/hello/{name}", self.http), KEY).await
    }

    /// Waits until `/hello/x` answers `greeting`.
    async fn wait_greeting(&self, greeting: &str) -> bool {
        wait_for_async(
            || async { self.hello("x").await == (200, greeting.to_owned()) },
            LONG,
        )
        .await
    }

    async fn readyz(&self) -> u16 {
        http_client()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Waits (up to [`LONG`]) until the value of a metric satisfies `condition`, and
    /// returns it: the sync loop and the token watcher update metrics on their own tasks.
    async fn wait_metric(&self, series: &str, condition: impl Fn(f64) -> bool) -> f64 {
        wait_for_metric(self.admin, series, condition, LONG).await
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SyncGateway {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- gateway log {} ---\n{}", self.log.display(), self.log());
        }
    }
}

/// A gateway instance as `gateway status` shows it, once it reports `predicate`.
async fn wait_instance(control: &Control, predicate: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let status = control.status().await;
        if let Some(instance) = status["instances"]
            .as_array()
            .and_then(|list| list.iter().find(|i| predicate(i)))
        {
            return instance.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no instance matched; last status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Control plane seeded with `hello v1`, a token, and a gateway serving it.
async fn running(home: &GatewayHome) -> (Control, String, SyncGateway) {
    let control = Control::start();
    control.seed("hello v1").await;
    let token = control.token(Duration::from_secs(2 * 86_400)).await;
    let gateway = home.start(&control.url(), &token);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    (control, token, gateway)
}

// === tests ===

#[tokio::test]
async fn a_gateway_serves_what_the_control_plane_holds_and_keeps_serving_when_it_dies() {
    let home = GatewayHome::new();
    let (mut control, _token, gateway) = running(&home).await;
    assert_eq!(gateway.readyz().await, 200);

    // Long-polled: the update arrives without waiting for a poll interval.
    control.put("/apis/hello", hello_api("hello v2")).await;
    assert!(gateway.wait_greeting("hello v2").await, "{}", gateway.log());
    let current = control.status().await["currentRevision"].as_u64().unwrap();
    let instance = wait_instance(&control, |i| i["appliedRevision"] == current).await;
    assert_eq!(instance["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(instance["lastError"], Value::Null);

    control.kill();
    assert!(
        gateway.wait_log("cannot reach the control plane").await,
        "{}",
        gateway.log()
    );
    // Keeps serving over time (the pauses are the "over time", not synchronisation).
    for _ in 0..5 {
        assert_eq!(gateway.hello("x").await, (200, "hello v2".to_owned()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gateway.readyz().await, 200, "fail-static: still ready");
    gateway
        .wait_metric(
            r#"gatehouse_config_sync_errors_total{reason="connect"}"#,
            |n| n >= 1.0,
        )
        .await;
    gateway
        .wait_metric("gatehouse_config_revision", |r| r == current as f64)
        .await;
}

/// `context.Deployment` is the gateway's own entity: its id, and its `location` as the
/// region, following an edit of the location.
#[tokio::test]
async fn policies_read_the_gateways_id_and_location_as_context_deployment() {
    let home = GatewayHome::new();
    let (control, _token, gateway) = running(&home).await;
    control
        .put(
            "/apis/hello",
            hello_api("@(context.Deployment.GatewayId + \"@\" + context.Deployment.Region)"),
        )
        .await;
    assert!(
        gateway.wait_greeting(&format!("{GATEWAY}@")).await,
        "{}",
        gateway.log()
    );
    control
        .put(
            &format!("/gateways/{GATEWAY}"),
            json!({ "apis": ["hello"], "location": "eu-west" }),
        )
        .await;
    assert!(
        gateway.wait_greeting(&format!("{GATEWAY}@eu-west")).await,
        "{}",
        gateway.log()
    );
}

/// Seed 002's hybrid mode, step by step: the cloud adds `/hello`, an Ingress adds
/// `/hello` and wins; after a restart the Ingress is read first and the cloud's snapshot
/// wins; Ingress routes are never in the backup.
#[tokio::test]
async fn hybrid_mode_follows_the_seeds_users_sequence() {
    let kube = gatehouse_test_support::kube_api::FakeKubeApi::start();
    kube.apply(
        "services",
        json!({"metadata": {"namespace": "shop", "name": "users"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
    );
    let mut home = GatewayHome::new();
    let kubeconfig = crate::ingress::kubeconfig(home.dir.path(), &kube.url());
    home.env = vec![
        ("k8s.ingress.enabled".to_owned(), "true".to_owned()),
        ("k8s.ingress.namespace".to_owned(), "shop".to_owned()),
        ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
        // kube-rs wants trusted CA certificates even for a plain-HTTP API server.
        (
            "SSL_CERT_FILE".to_owned(),
            "/etc/ssl/certs/ca-certificates.crt".to_owned(),
        ),
    ];
    let mut control = Control::start();
    control.seed("hello v1").await;
    let token = control.token(Duration::from_secs(2 * 86_400)).await;
    let gateway = home.start(&control.url(), &token);
    // 1. The cloud's /hello is served.
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert_eq!(gateway.readyz().await, 200);
    let orders = |gateway: &SyncGateway| {
        let url = format!("http://{}/orders/1", gateway.http);
        async move {
            http_client()
                .get(url)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }
    };
    assert_eq!(orders(&gateway).await, 404);

    // 2. An Ingress adds /hello (and /orders): it overwrites the cloud's API. Its
    // Service's cluster address does not resolve here, so the backend answers 502/504.
    let path = |path: &str| {
        json!({"path": path, "pathType": "Prefix",
               "backend": {"service": {"name": "users", "port": {"name": "http"}}}})
    };
    let ingress = json!({
        "metadata": {"namespace": "shop", "name": "users",
            "annotations": {"kubernetes.io/ingress.class": "azure-api-management/gateway"}},
        "spec": {"rules": [{"http": {"paths": [path("/hello"), path("/orders")]}}]},
    });
    kube.apply("ingresses", ingress.clone());
    let routed = |code: u16| code == 502 || code == 504;
    assert!(
        wait_for_async(|| async { routed(gateway.hello("x").await.0) }, LONG).await,
        "the Ingress's /hello wins: {}",
        gateway.log()
    );
    assert!(routed(orders(&gateway).await));

    // 3. A later change from the cloud wins /hello back: last one wins.
    control.put("/apis/hello", hello_api("hello v2")).await;
    assert!(gateway.wait_greeting("hello v2").await, "{}", gateway.log());
    control.put("/apis/hello", hello_api("hello v1")).await;
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    // The Ingress's /hello moves to another Service: a change, so it wins again.
    kube.apply(
        "services",
        json!({"metadata": {"namespace": "shop", "name": "accounts"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
    );
    let mut changed = ingress.clone();
    changed["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        json!("accounts");
    kube.apply("ingresses", changed);
    assert!(
        wait_for_async(|| async { routed(gateway.hello("x").await.0) }, LONG).await,
        "a change of the Ingress wins /hello again: {}",
        gateway.log()
    );
    let current = control.status().await["currentRevision"].as_u64().unwrap();
    wait_instance(&control, |i| i["appliedRevision"] == current).await;

    // 4. The pod restarts: the Ingress is loaded first, then the cloud's configuration
    // overwrites /hello.
    drop(gateway);
    let gateway = home.start(&control.url(), &token);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert!(
        wait_for_async(|| async { routed(orders(&gateway).await) }, LONG).await,
        "the Ingress's other route is served"
    );

    // 5. The Ingress goes and the control plane is down: the backup holds only the
    // cloud's configuration.
    kube.delete("ingresses", "shop", "users");
    drop(gateway);
    control.kill();
    let gateway = home.start(&control.url(), &token);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert_eq!(
        orders(&gateway).await,
        404,
        "Ingress routes are not in the backup"
    );
}

#[tokio::test]
async fn sigterm_stops_a_control_plane_gateway_promptly() {
    // Regression: the sync loop once held its own shutdown token and kept a stopped
    // gateway alive, retrying the control plane forever.
    let home = GatewayHome::new();
    let (control, _token, mut gateway) = running(&home).await;
    wait_instance(&control, |_| true).await;
    let pid = gateway.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    assert!(
        wait_for_async(
            || {
                status = gateway.child.try_wait().unwrap();
                let exited = status.is_some();
                async move { exited }
            },
            WAIT
        )
        .await,
        "still running {WAIT:?} after SIGTERM\n{}",
        gateway.log()
    );
    let status = status.unwrap();
    assert!(status.success(), "{status:?}\n{}", gateway.log());
    // It said goodbye: the control plane no longer counts it, without waiting for its
    // heartbeats to time out.
    assert!(gateway.log().contains("said goodbye"), "{}", gateway.log());
    // `--log-format text` into a file: no terminal colours in it.
    assert!(!gateway.log().contains('\u{1b}'), "{}", gateway.log());
    assert_eq!(control.status().await["nodes"], 0);
}

#[tokio::test]
async fn a_certificate_that_expires_while_gateways_run_blocks_nothing_else() {
    // Issue 10, item 2: once expired, it used to make every gateway refuse every later
    // revision, and a new gateway served nothing.
    use gatehouse_test_support::pki::{TestCa, Validity};
    use gatehouse_test_support::tls_client::TlsClient;
    let home = GatewayHome::new();
    let control = Control::start();
    control.seed("hello v1").await;
    let ca = TestCa::new("Expiry CA");
    let expires_at = std::time::SystemTime::now() + Duration::from_secs(3);
    let site = ca.server_with_validity(&["api.example.com"], Validity::Until(expires_at));
    control
        .put(
            "/certificates/site",
            json!({"certificatePem": site.cert_pem, "privateKeyPem": site.key_pem}),
        )
        .await;
    control
        .put(
            "/hostnames/api.example.com",
            json!({"certificateId": "site", "defaultSslBinding": true}),
        )
        .await;
    let token = control.token(Duration::from_secs(86_400)).await;
    let gateway = home.start(&control.url(), &token);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    let client = TlsClient::trusting(&ca.cert_pem());
    assert!(
        client
            .get(gateway.https, "api.example.com", "/hello/x")
            .await
            .is_ok()
    );

    // The subject of this test is the passing of time: wait until it has expired.
    let left = expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(1500)).await;

    control.put("/apis/hello", hello_api("hello v2")).await;
    assert!(
        gateway.wait_greeting("hello v2").await,
        "an unrelated change must still arrive\n{}",
        gateway.log()
    );
    let refused = client
        .get(gateway.https, "api.example.com", "/hello/x")
        .await
        .unwrap_err();
    assert!(refused.to_lowercase().contains("expired"), "{refused}");
    assert!(gateway.log().contains("has expired and is still presented"));

    // A gateway started now serves everything too.
    let fresh_home = GatewayHome::new();
    let fresh = fresh_home.start(&control.url(), &token);
    assert!(fresh.wait_greeting("hello v2").await, "{}", fresh.log());

    let status = control.status().await;
    let warning = &status["certificateWarnings"][0];
    assert_eq!(warning["certificateId"], "site", "{status}");
    assert_eq!(warning["expired"], true);
    assert_eq!(warning["hostnames"], json!(["api.example.com"]));
}

#[tokio::test]
async fn sigterm_stops_the_control_plane_within_two_seconds_with_gateways_long_polling() {
    // Issue 11, item 6: it used to wait ~30 s for the long-polls, saying nothing.
    let home = GatewayHome::new();
    let (mut control, _token, gateway) = running(&home).await;
    wait_instance(&control, |_| true).await;
    // The gateway is parked in a change request (30 s wait) by now; give it the moment
    // to send it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = control.child.take().unwrap();
    let started = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < WAIT,
            "still running {WAIT:?} after SIGTERM\n{}",
            control.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{}", control.log());
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}\n{}",
        control.log()
    );
    let log = control.log();
    assert!(
        log.contains("answering the waiting change requests")
            && log.contains("waiting_change_requests=1"),
        "{log}"
    );
    // The gateway keeps serving and says it lost the control plane.
    assert_eq!(gateway.hello("x").await.0, 200);
}

#[tokio::test]
async fn a_restarted_gateway_serves_its_backup_while_the_control_plane_is_down() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = GatewayHome::new();
    let (mut control, token, mut gateway) = running(&home).await;
    assert!(
        wait_for_async(|| async { home.backup_file().exists() }, LONG).await,
        "no backup written"
    );
    let mode = std::fs::metadata(home.backup_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the backup holds subscription keys");
    // Sealed: nothing of the configuration is readable on disk.
    let text = std::fs::read_to_string(home.backup_file()).unwrap();
    assert!(!text.contains("hello v1"), "{text}");
    // A token made later (a rotation): the backup stays sealed under the first one.
    let rotated = control.token(Duration::from_secs(3 * 86_400)).await;
    gateway.kill();
    control.kill();

    let refused = home.start(&control.url(), &rotated);
    assert!(
        refused
            .wait_log("does not open with this gateway's token")
            .await,
        "{}",
        refused.log()
    );
    assert_eq!(refused.readyz().await, 503, "nothing served from it");
    drop(refused);

    let gateway = home.start(&control.url(), &token);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert_eq!(gateway.readyz().await, 200);
    assert!(
        gateway.wait_log("serving the configuration backup").await,
        "{}",
        gateway.log()
    );
}

#[tokio::test]
async fn a_backup_sealed_with_a_given_key_survives_a_token_rotation() {
    const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let home = GatewayHome::new();
    let mut control = Control::start();
    control.seed("hello v1").await;
    let token = control.token(Duration::from_secs(2 * 86_400)).await;
    let rotated = control.token(Duration::from_secs(3 * 86_400)).await;
    let mut gateway = home.start_with(&control.url(), &token, &["--config-backup-key", KEY]);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert!(wait_for_async(|| async { home.backup_file().exists() }, LONG).await);
    gateway.kill();
    control.kill();

    let gateway = home.start_with(&control.url(), &rotated, &["--config-backup-key", KEY]);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert!(
        gateway.wait_log("serving the configuration backup").await,
        "{}",
        gateway.log()
    );
}

#[tokio::test]
async fn a_corrupt_backup_is_refused_with_its_reason_and_nothing_is_half_loaded() {
    let home = GatewayHome::new();
    let (mut control, token, mut gateway) = running(&home).await;
    assert!(wait_for_async(|| async { home.backup_file().exists() }, LONG).await);
    gateway.kill();
    control.kill();
    let bytes = std::fs::read(home.backup_file()).unwrap();
    std::fs::write(home.backup_file(), &bytes[..bytes.len() / 2]).unwrap();

    let gateway = home.start(&control.url(), &token);
    assert!(
        gateway.wait_log("corrupt or truncated").await,
        "{}",
        gateway.log()
    );
    assert!(
        gateway
            .log()
            .contains(&home.backup_file().display().to_string())
    );
    assert_eq!(gateway.readyz().await, 503, "nothing loaded: not ready");
    assert_eq!(gateway.hello("x").await.0, 404, "nothing half-loaded");
    gateway
        .wait_metric(
            r#"gatehouse_config_sync_errors_total{reason="backup"}"#,
            |n| n >= 1.0,
        )
        .await;

    // Once the control plane answers, the gateway serves and rewrites a good backup.
    control.restart();
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert_eq!(gateway.readyz().await, 200);
    assert!(
        wait_for_async(
            || async {
                std::fs::read(home.backup_file())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .is_some()
            },
            LONG
        )
        .await,
        "the backup is rewritten whole"
    );
}

#[tokio::test]
async fn an_expired_token_keeps_the_backup_serving_and_shows_in_log_and_metrics() {
    // A given backup key, so the backup opens whatever token the gateway restarts with
    // (derived from the token, it would open only with the one that wrote it).
    const KEY: [&str; 2] = [
        "--config-backup-key",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    ];
    let home = GatewayHome::new();
    let control = Control::start();
    control.seed("hello v1").await;
    let token = control.token(Duration::from_secs(2 * 86_400)).await;
    let mut gateway = home.start_with(&control.url(), &token, &KEY);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert!(wait_for_async(|| async { home.backup_file().exists() }, LONG).await);
    gateway.kill();

    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let expired = GatewayToken::sign(GATEWAY, b"some-old-key", now - 3600).unwrap();
    let gateway = home.start_with(&control.url(), &expired.to_string(), &KEY);
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());
    assert!(
        gateway.wait_log("refused the gateway token").await,
        "{}",
        gateway.log()
    );
    assert!(
        gateway.wait_log("the gateway token has expired").await,
        "{}",
        gateway.log()
    );
    assert!(
        !gateway.log().contains(expired.signature()),
        "the token is never logged"
    );
    gateway
        .wait_metric(
            r#"gatehouse_config_sync_errors_total{reason="status_4xx_auth"}"#,
            |n| n >= 1.0,
        )
        .await;
    gateway
        .wait_metric("gatehouse_token_expiry_timestamp_seconds", |expiry| {
            expiry == expired.expiry_unix() as f64
        })
        .await;
    assert_eq!(gateway.readyz().await, 200);
}

/// Writes `token` into a Kubernetes-style Secret volume at `dir`: the file `value` is
/// a symlink through `..data`, which is swapped atomically to a new directory.
fn write_secret(dir: &Path, generation: u32, token: &str) {
    let target = format!("..{generation}");
    std::fs::create_dir_all(dir.join(&target)).unwrap();
    std::fs::write(dir.join(&target).join("value"), token).unwrap();
    let staging = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(&target, &staging).unwrap();
    std::fs::rename(&staging, dir.join("..data")).unwrap();
    if !dir.join("value").exists() {
        std::os::unix::fs::symlink("..data/value", dir.join("value")).unwrap();
    }
}

#[tokio::test]
async fn a_rotated_token_file_is_used_from_the_next_request_on() {
    let home = GatewayHome::new();
    let control = Control::start();
    control.seed("hello v1").await;
    let secret = home.dir.path().join("secret");
    write_secret(
        &secret,
        1,
        &control.token(Duration::from_secs(2 * 86_400)).await,
    );
    let gateway = home.start(&control.url(), secret.join("value").to_str().unwrap());
    assert!(gateway.wait_greeting("hello v1").await, "{}", gateway.log());

    // Revoke the token in use: every later request of the gateway is refused.
    control
        .post(
            &format!("/gateways/{GATEWAY}/regenerate-key"),
            json!({ "keyType": "primary" }),
        )
        .await;
    control.put("/apis/hello", hello_api("hello v2")).await;
    control.put("/apis/hello", hello_api("hello v3")).await;
    assert!(
        gateway.wait_log("refused the gateway token").await,
        "{}",
        gateway.log()
    );

    let fresh = control.token(Duration::from_secs(3 * 86_400)).await;
    let fresh_expiry = GatewayToken::parse(&fresh).unwrap().expiry_unix();
    write_secret(&secret, 2, &fresh);
    assert!(gateway.wait_greeting("hello v3").await, "{}", gateway.log());
    assert!(
        gateway.wait_log("gateway token file changed").await,
        "{}",
        gateway.log()
    );
    let fresh_expiry_text = gatehouse_tls::certificate::rfc3339(fresh_expiry);
    wait_instance(&control, |i| i["tokenExpiry"] == fresh_expiry_text.as_str()).await;
    gateway
        .wait_metric("gatehouse_token_expiry_timestamp_seconds", |expiry| {
            expiry == fresh_expiry as f64
        })
        .await;
}

#[tokio::test]
async fn a_burst_of_changes_converges_to_the_final_revision() {
    let home = GatewayHome::new();
    let (control, _token, gateway) = running(&home).await;
    for i in 0..240 {
        if i % 2 == 0 {
            control
                .put(
                    &format!("/named-values/burst-{i}"),
                    json!({ "value": format!("value {i}") }),
                )
                .await;
        } else {
            control
                .put("/apis/hello", hello_api(&format!("burst {i}")))
                .await;
        }
    }
    let current = control.status().await["currentRevision"].as_u64().unwrap();
    assert!(current >= 240, "{current}");
    assert!(
        gateway.wait_greeting("burst 239").await,
        "{}",
        gateway.log()
    );
    gateway
        .wait_metric("gatehouse_config_revision", |r| r == current as f64)
        .await;
    wait_instance(&control, |i| i["appliedRevision"] == current).await;
}

#[tokio::test]
async fn a_change_the_gateway_cannot_compile_keeps_the_old_configuration_and_reaches_gateway_status()
 {
    let home = GatewayHome::new();
    let (control, _token, gateway) = running(&home).await;

    // The control plane accepts an https backend trusting the system's CAs; this
    // gateway has none (SSL_CERT_FILE points nowhere), so it cannot compile the
    // configuration.
    control
        .put(
            "/backends/secure",
            json!({ "url": "https://backend.example" }),
        )
        .await;
    let mut broken = hello_api("hello v2");
    broken["backendId"] = json!("secure");
    control.put("/apis/hello", broken).await;
    assert!(
        gateway.wait_log("cannot be served").await,
        "{}",
        gateway.log()
    );
    assert_eq!(gateway.hello("x").await, (200, "hello v1".to_owned()));
    let instance = wait_instance(&control, |i| {
        i["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("trusted CA certificates"))
    })
    .await;
    assert!(instance["revisionLag"].as_u64().unwrap() >= 1, "{instance}");
    gateway
        .wait_metric(
            r#"gatehouse_config_sync_errors_total{reason="compile"}"#,
            |n| n >= 1.0,
        )
        .await;

    // The next changes fix it: the gateway converges and the error clears.
    control.put("/apis/hello", hello_api("hello v3")).await;
    let (status, answer) = control
        .call(reqwest::Method::DELETE, "/backends/secure", None)
        .await;
    assert!((200..300).contains(&status), "{status} {answer}");
    assert!(gateway.wait_greeting("hello v3").await, "{}", gateway.log());
    wait_instance(&control, |i| {
        i["lastError"].is_null() && i["revisionLag"] == 0
    })
    .await;
}

#[test]
fn a_file_and_a_control_plane_together_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, "{}\n").unwrap();
    let output = Command::new(BIN)
        .args(["--log-format", "text", "gateway", "--config"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--https-listen", "127.0.0.1:0"])
        .env("config.service.endpoint", "http://127.0.0.1:1")
        .env("config.service.auth", "GatewayKey edge&209901010000&AAAA")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not both"), "{stderr}");
}

/// Runs `gatehouse dev` on port 0 with `data` as its data directory; returns the
/// process, its bound addresses and the subscription key from its banner.
async fn start_dev(data: &Path, run: u32) -> (Child, Value, String, PathBuf) {
    let bound = data.join(format!("bound-{run}.json"));
    let stdout = data.join(format!("dev-{run}.out"));
    let child = Command::new(BIN)
        .args(["--log-format", "text", "dev"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--https-listen", "127.0.0.1:0"])
        .args(["--control-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--bound-addresses-file")
        .arg(&bound)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(data.join(format!("dev-{run}.log"))).unwrap())
        .spawn()
        .unwrap();
    let banner = || std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        wait_for_async(|| async { banner().contains("curl -H") }, LONG).await,
        "no banner: {}\n{}",
        banner(),
        std::fs::read_to_string(data.join(format!("dev-{run}.log"))).unwrap_or_default()
    );
    let addresses: Value = serde_json::from_str(&std::fs::read_to_string(&bound).unwrap()).unwrap();
    let text = banner();
    let key = text
        .split("Ocp-Apim-Subscription-Key: ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    (child, addresses, key, stdout)
}

#[tokio::test]
async fn gatehouse_dev_serves_its_sample_api_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (mut child, addresses, key, stdout) = start_dev(&data, 1).await;
    let banner = std::fs::read_to_string(&stdout).unwrap();
    let gateway = addresses["http"].as_str().unwrap();
    assert!(
        banner.contains(&format!(
            "curl -H 'Ocp-Apim-Subscription-Key: {key}' http://{gateway}/hello/world"
        )),
        "{banner}"
    );
    assert!(banner.contains("admin-token"), "{banner}");
    assert!(
        banner.contains(&format!(
            "Web portal      http://{}/portal/",
            addresses["control"].as_str().unwrap()
        )),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "http://{}",
            addresses["control"].as_str().unwrap()
        )),
        "{banner}"
    );
    let call = |key: String| async move {
        let response = http_client()
            .get(format!("http://{gateway}/hello/world"))
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, body) = call(key.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello from Gatehouse"), "{body}");

    // Issue 11, item 2: what you apply to `gatehouse dev` is served, at once.
    let file = dir.path().join("more.yaml");
    std::fs::write(
        &file,
        "apis:\n  - id: more\n    path: more\n    serviceUrl: http://127.0.0.1:9\n    subscriptionRequired: false\n    policy: |\n      <policies><inbound><return-response><set-status code=\"200\" reason=\"OK\" /><set-body>more, applied</set-body></return-response></inbound></policies>\n    operations:\n      - id: any\n        method: GET\n        urlTemplate: /*\n",
    )
    .unwrap();
    let applied = Command::new(BIN)
        .args([
            "--server",
            &format!("http://{}", addresses["control"].as_str().unwrap()),
        ])
        .arg("--token-file")
        .arg(data.join("admin-token"))
        .args(["apply", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{stderr}");
    assert!(!stderr.contains("no gateway serves"), "{stderr}");
    let served = wait_for_async(
        || async {
            let response = http_client()
                .get(format!("http://{gateway}/more/x"))
                .send()
                .await
                .unwrap();
            response.status() == 200 && response.text().await.unwrap() == "more, applied"
        },
        LONG,
    )
    .await;
    assert!(served, "the applied API is not served by the dev gateway");
    let _ = child.kill();
    let _ = child.wait();

    // Created idempotently: a second start keeps the same entities and key.
    let (mut child, addresses, second_key, _) = start_dev(&data, 2).await;
    assert_eq!(second_key, key);
    let gateway = addresses["http"].as_str().unwrap();
    let response = http_client()
        .get(format!("http://{gateway}/hello/world"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}

// === a scripted control plane ===

/// What [`FakeControl`] answers to snapshot requests; changes always get `410 Gone`,
/// so the gateway keeps asking for snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
enum Script {
    /// A valid snapshot serving `fake v1`.
    ValidV1,
    /// `200` with a body that is not JSON.
    Garbage,
    /// A snapshot whose checksum does not match.
    BadChecksum,
    /// `503` with an error body.
    Unavailable,
    /// A valid snapshot, three seconds late.
    Slow,
    /// A valid snapshot serving `fake v2`.
    ValidV2,
}

/// A control plane that answers what the test scripts, to see the gateway cope with
/// what a real one would not send.
struct FakeControl {
    addr: SocketAddr,
    script: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeControl {
    fn start() -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(AtomicUsize::new(Script::ValidV1 as usize));
        let stop = Arc::new(AtomicBool::new(false));
        let (script_in, stop_in) = (script.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop_in.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let script = script_in.load(Ordering::Relaxed);
                        std::thread::spawn(move || fake_answer(stream, script));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { addr, script, stop }
    }

    fn set(&self, script: Script) {
        self.script
            .store(script as usize, std::sync::atomic::Ordering::Relaxed);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeControl {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn fake_snapshot(revision: u64, greeting: &str, checksum: Option<&str>) -> String {
    let mut config = gatehouse_model::Configuration::default();
    let mut api = hello_api(greeting);
    api["id"] = json!("hello");
    config.apis.push(serde_json::from_value(api).unwrap());
    config.subscriptions.push(
        serde_json::from_value(json!({ "id": "demo", "scope": "/apis", "primaryKey": KEY }))
            .unwrap(),
    );
    let mut snapshot = gatehouse_model::Snapshot::new(revision, GATEWAY, config);
    if let Some(checksum) = checksum {
        snapshot.checksum = checksum.to_owned();
    }
    serde_json::to_string(&snapshot).unwrap()
}

/// Reads one request and answers it as scripted, then closes the connection.
fn fake_answer(mut stream: std::net::TcpStream, script: usize) {
    use std::io::{Read as _, Write as _};
    stream.set_nonblocking(false).unwrap();
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    let head_end = loop {
        let Ok(read) = stream.read(&mut buffer) else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let (status, body) = if path.contains("/heartbeat") {
        ("204 No Content", String::new())
    } else if path.contains("/changes") {
        (
            "410 Gone",
            r#"{"error":{"code":"Gone","message":"compacted"}}"#.to_owned(),
        )
    } else if script == Script::ValidV1 as usize {
        ("200 OK", fake_snapshot(5, "fake v1", None))
    } else if script == Script::Garbage as usize {
        ("200 OK", "<html>this is not JSON</html>".to_owned())
    } else if script == Script::BadChecksum as usize {
        ("200 OK", fake_snapshot(6, "tampered", Some("00")))
    } else if script == Script::Unavailable as usize {
        (
            "503 Service Unavailable",
            r#"{"error":{"code":"Unavailable","message":"the database is down"}}"#.to_owned(),
        )
    } else if script == Script::Slow as usize {
        // The slow control plane under test: later than the gateway's 1 s timeout.
        std::thread::sleep(Duration::from_secs(3));
        ("200 OK", fake_snapshot(7, "too late", None))
    } else {
        ("200 OK", fake_snapshot(9, "fake v2", None))
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[tokio::test]
async fn garbage_checksum_errors_5xx_and_a_slow_control_plane_never_replace_the_last_good_configuration()
 {
    let fake = FakeControl::start();
    let home = GatewayHome::new();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let token = GatewayToken::sign(GATEWAY, b"fake-key", now + 86_400)
        .unwrap()
        .to_string();
    let gateway = home.start_with(&fake.url(), &token, &["--config-service-timeout", "1s"]);
    assert!(gateway.wait_greeting("fake v1").await, "{}", gateway.log());

    let cases = [
        (
            Script::Garbage,
            "bad_response",
            "not what the Configuration API v2 sends",
        ),
        (Script::BadChecksum, "checksum", "checksum"),
        (Script::Unavailable, "status_5xx", "the database is down"),
        (Script::Slow, "timeout", "did not answer in time"),
    ];
    for (script, reason, message) in cases {
        fake.set(script);
        let series = format!(r#"gatehouse_config_sync_errors_total{{reason="{reason}"}}"#);
        gateway.wait_metric(&series, |n| n >= 1.0).await;
        assert!(
            gateway.wait_log(message).await,
            "{script:?}: {}",
            gateway.log()
        );
        assert_eq!(
            gateway.hello("x").await,
            (200, "fake v1".to_owned()),
            "{script:?}: the last good configuration serves"
        );
        assert_eq!(gateway.readyz().await, 200, "{script:?}");
    }
    gateway
        .wait_metric(
            r#"gatehouse_config_sync_errors_total{reason="gone"}"#,
            |n| n >= 1.0,
        )
        .await;

    fake.set(Script::ValidV2);
    assert!(gateway.wait_greeting("fake v2").await, "{}", gateway.log());
}
