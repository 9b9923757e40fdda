//! The web portal in a real headless Chromium, driven over WebDriver (chromedriver on
//! loopback, `fantoccini`): sign in, create a gateway, read its token and manifest on
//! the Deployment page, run a real `gatehouse gateway` with that token and watch the
//! overview count it (1 node, then 0 once it stops, by htmx polling, without reloads),
//! type a policy with a typo and see the error at its line, sign out. Every page is
//! checked with axe-core (serious and critical violations fail) and saved as a
//! screenshot under `target/portal-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash .ci/run` installs them).
//! Without them the test says so and passes, except under `CI=true`, where it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::*;

const LONG: Duration = Duration::from_secs(30);
const GATEWAY: &str = "browser-gw";
/// axe-core, vendored from the npm registry with its licence.
const AXE: &str = include_str!("../fixtures/axe/axe.min.js");

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of `name` on PATH, if any.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// A free loopback port (for programs that must be told their port up front).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + LONG;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where screenshots go: `target/portal-screenshots/` beside the binary's profile dir.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("portal-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser session and what the test checks on every page.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(LONG)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on {}: {e}", self.base))
    }

    async fn value(&self, css: &str) -> String {
        self.find(css).await.prop("value").await.unwrap().unwrap()
    }

    /// Saves a screenshot and fails on axe-core's serious or critical violations.
    async fn check(&self, name: &str) {
        // The whole page: the window grows to the document's height for the shot.
        let (width, height) = self.client.get_window_size().await.unwrap();
        let (width, height) = (
            u32::try_from(width).unwrap(),
            u32::try_from(height).unwrap(),
        );
        let full = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .unwrap()
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .unwrap_or(height);
        self.client
            .set_window_size(width, (full + 150).clamp(height, 6000))
            .await
            .unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(width, height).await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        self.client.execute(AXE, vec![]).await.unwrap();
        let violations = self
            .client
            .execute_async(
                r"const done = arguments[arguments.length - 1];
                  axe.run(document, { resultTypes: ['violations'] }).then(
                    (result) => done(result.violations
                      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                      .map((v) => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                        + v.nodes.map((n) => n.target.join(' ')).join(', '))),
                    (error) => done(['axe failed: ' + error]));",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<String> = serde_json::from_value(violations).unwrap();
        assert!(
            violations.is_empty(),
            "{name}: accessibility violations:\n{}",
            violations.join("\n")
        );
    }

    /// Waits until the element `css` holds `text`.
    async fn wait_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + LONG;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.text().await.unwrap_or_default().contains(text)
            {
                return;
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("`{css}` never showed `{text}`:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `gatehouse control` on a loopback port it is told (its public URL must name it).
fn start_control(dir: &Path) -> (Process, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log_path = dir.join("control.log");
    let bound = dir.join("control-bound.json");
    let mut child = Command::new(BIN)
        .args(["--log-format", "text", "control", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--public-url", &url])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--bound-addresses-file")
        .arg(&bound)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_bound_addresses(&mut child, &bound, || {
        std::fs::read_to_string(&log_path).unwrap_or_default()
    });
    (Process(child), url)
}

/// Runs the `gatehouse gateway` command line the Deployment page shows, as a shell
/// would (its `gatehouse` replaced by this build's binary, test ports and directories
/// added): the page's command itself is what starts the gateway.
fn start_gateway(dir: &Path, page_command: &str) -> Process {
    let prefix = page_command
        .strip_suffix("gatehouse gateway")
        .unwrap_or_else(|| panic!("unexpected command line: {page_command}"));
    let log = dir.join("gateway.log");
    let bound = dir.join("gateway-bound.json");
    let script = format!(
        "exec {prefix}'{BIN}' --log-format text gateway --listen 127.0.0.1:0 \
         --admin-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --workers 1 \
         --heartbeat-interval 1s --config-backup-dir '{}' --bound-addresses-file '{}'",
        dir.display(),
        bound.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("GATEHOUSE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_bound_addresses(&mut child, &bound, || {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    Process(child)
}

/// chromedriver on a loopback port, and a headless Chromium session through it.
async fn start_browser(driver: &Path, dir: &Path) -> (Process, Client) {
    let port = free_port();
    let log = dir.join("chromedriver.log");
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_listening(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "chromedriver",
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    let mut options = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            format!("--user-data-dir={}", dir.join("chromium").display()),
        ],
    });
    if let Some(binary) = which("chromium") {
        options["binary"] = Value::String(binary.display().to_string());
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot start a Chromium session: {e}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    (process, client)
}

async fn management(base: &str, token: &str, path: &str, body: Value) {
    let response = http_client()
        .put(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.status()
    );
}

const POLICY: &str = "<policies>
  <inbound>
    <base />
    <set-header name=\"x-portal\" exists-action=\"override\"><value>yes</value></set-header>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error><base /></on-error>
</policies>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_deploys_a_gateway_watches_it_and_checks_a_policy_in_a_real_browser() {
    let Some(driver) = which("chromedriver") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromedriver is not installed: CI must run the portal's browser tests (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: the portal's browser test needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
        );
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_control, base) = start_control(dir.path());
    let admin = std::fs::read_to_string(dir.path().join("data/admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    management(
        &base,
        &admin,
        "/apis/hello",
        json!({"path": "hello", "serviceUrl": "http://127.0.0.1:9", "policy": POLICY,
               "operations": [{"id": "greet", "method": "GET", "urlTemplate": "/{name}"}]}),
    )
    .await;
    management(
        &base,
        &admin,
        "/products/starter",
        json!({"apis": ["hello"]}),
    )
    .await;
    management(
        &base,
        &admin,
        "/subscriptions/demo",
        json!({"scope": "/products/starter"}),
    )
    .await;
    management(
        &base,
        &admin,
        "/named-values/secret-one",
        json!({"value": "s3cret", "secret": true}),
    )
    .await;
    let (_driver, client) = start_browser(&driver, dir.path()).await;
    let browser = Browser {
        client,
        base: base.clone(),
        shots: screenshot_dir(),
    };

    // Not signed in: every page leads to the sign-in form.
    browser.goto("/portal/gateways").await;
    assert_eq!(browser.path().await, "/portal/sign-in");
    browser.check("01-sign-in").await;
    browser
        .find("#token")
        .await
        .send_keys("wrong")
        .await
        .unwrap();
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text(".error", "not the admin token").await;
    browser
        .find("#token")
        .await
        .send_keys(&admin)
        .await
        .unwrap();
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text("h1", "Gateways").await;
    assert_eq!(browser.path().await, "/portal/gateways");
    browser.check("02-gateways-empty").await;

    // Create a gateway serving `hello`.
    browser
        .find("a[href='/portal/gateways/new']")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#id").await.send_keys(GATEWAY).await.unwrap();
    browser
        .find("#location")
        .await
        .send_keys("test lab")
        .await
        .unwrap();
    browser
        .find("input[name=apis][value=hello]")
        .await
        .click()
        .await
        .unwrap();
    browser.check("03-gateway-new").await;
    browser
        .find("main button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text("h1", &format!("Gateway {GATEWAY}")).await;
    browser.wait_text("#nodes", "0 nodes connected").await;
    browser.check("04-gateway-overview-0-nodes").await;

    // Deployment: the token and the manifest.
    browser
        .find(&format!("a[href='/portal/gateways/{GATEWAY}/deployment']"))
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text("h1", "Deploy gateway").await;
    let token = browser.value("#token").await;
    let manifest = browser.value("#manifest").await;
    assert!(
        token.starts_with(&format!("GatewayKey {GATEWAY}&")),
        "{token}"
    );
    assert!(manifest.contains(&format!("name: {GATEWAY}")), "{manifest}");
    assert!(manifest.contains(&format!("config.service.endpoint: \"{base}\"")));
    assert!(
        browser
            .value("#secret-command")
            .await
            .starts_with(&format!("kubectl create secret generic {GATEWAY}-token"))
    );
    let gateway_command = browser.value("#gateway-command").await;
    assert!(gateway_command.contains(&token), "{gateway_command}");
    browser.check("05-gateway-deployment").await;
    // The copy button runs (the page's script is allowed by its CSP): it copies, or
    // selects the text when the browser refuses the clipboard.
    browser
        .find("button[data-copy=token]")
        .await
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        let live = browser
            .client
            .execute(
                "return document.getElementById('live').textContent;",
                vec![],
            )
            .await
            .unwrap();
        if live.as_str().is_some_and(|text| !text.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the copy button did nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Regenerating the secondary key asks first, then says what it did.
    browser
        .find("form[data-confirm*=secondary] button")
        .await
        .click()
        .await
        .unwrap();
    let question = browser.client.get_alert_text().await.unwrap();
    assert!(question.contains("secondary key"), "{question}");
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_text(".notice", "Secondary key regenerated")
        .await;
    assert_eq!(browser.value("#key").await, "secondary");

    // A real gateway with that token: the overview counts it, live.
    browser.goto(&format!("/portal/gateways/{GATEWAY}")).await;
    let gateway_dir = tempfile::tempdir().unwrap();
    let mut gateway = start_gateway(gateway_dir.path(), &gateway_command);
    browser.wait_text("#nodes", "1 node connected").await;
    browser.wait_text("#instances", "up to date").await;
    browser.check("06-gateway-overview-1-node").await;
    // A graceful stop says goodbye: the count drops without waiting for a timeout.
    let pid = gateway.0.id().to_string();
    let stopped = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(stopped.success());
    browser.wait_text("#nodes", "0 nodes connected").await;
    let _ = gateway.0.wait();
    browser.goto("/portal/gateways").await;
    browser.check("07-gateways").await;

    // The API and its policy editor: a typo is reported at its line as you type.
    browser.goto("/portal/apis").await;
    browser.check("08-apis").await;
    browser.goto("/portal/apis/hello").await;
    browser.check("09-api").await;
    browser.goto("/portal/policy?api=hello").await;
    browser.wait_text("#check", "No problems found.").await;
    let editor = browser.find("#policy").await;
    editor.clear().await.unwrap();
    editor
        .send_keys(&POLICY.replace("set-header", "set-haeder"))
        .await
        .unwrap();
    browser.wait_text("#check .error", "Line 4, column").await;
    browser.wait_text("#check .error", "set-haeder").await;
    browser.check("10-policy-typo").await;

    for (path, name) in [
        ("/portal/products", "11-products"),
        ("/portal/products/new", "11-product-new"),
        ("/portal/subscriptions", "12-subscriptions"),
        ("/portal/subscriptions/new", "12-subscription-new"),
        ("/portal/named-values", "13-named-values"),
        (
            "/portal/named-values/secret-one/edit",
            "13-named-value-edit",
        ),
        ("/portal/certificates", "14-certificates"),
    ] {
        browser.goto(path).await;
        browser.check(name).await;
        let source = browser.client.source().await.unwrap();
        assert!(!source.contains("s3cret"), "{path} shows a secret");
    }

    // Subscription keys appear when asked for.
    browser.goto("/portal/subscriptions").await;
    browser
        .find("form[action='/portal/subscriptions/demo/keys'] button")
        .await
        .click()
        .await
        .unwrap();
    let key = browser.value("#primary-demo").await;
    assert!(key.len() >= 32, "{key}");
    browser.check("12-subscription-keys").await;

    // A narrow screen (a phone): the same pages, reflowed.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.goto(&format!("/portal/gateways/{GATEWAY}")).await;
    browser.check("15-narrow-gateway").await;
    browser
        .goto(&format!("/portal/gateways/{GATEWAY}/deployment"))
        .await;
    browser.check("16-narrow-deployment").await;

    // Sign out: the pages need signing in again.
    browser
        .find(".sign-out button")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text("h1", "Sign in").await;
    browser
        .goto(&format!("/portal/gateways/{GATEWAY}/deployment"))
        .await;
    assert_eq!(browser.path().await, "/portal/sign-in");

    // A session that ends while the overview polls: the whole page goes to sign-in
    // (htmx follows the 401's HX-Redirect), not a fragment of it.
    browser
        .find("#token")
        .await
        .send_keys(&admin)
        .await
        .unwrap();
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_text("h1", "Gateways").await;
    browser.goto(&format!("/portal/gateways/{GATEWAY}")).await;
    browser.wait_text("#nodes", "0 nodes connected").await;
    browser
        .client
        .delete_cookie("gatehouse_portal")
        .await
        .unwrap();
    browser.wait_text("h1", "Sign in").await;
    assert_eq!(browser.path().await, "/portal/sign-in");
    browser.client.close().await.unwrap();
    eprintln!(
        "portal browser test: {:.1} s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshot_dir().display()
    );
}
