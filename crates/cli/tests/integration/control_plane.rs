//! `gatehouse control` and the command-line client, as separate processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::common::*;

/// `gatehouse control` on 127.0.0.1:0 with a fresh data directory; killed on drop.
struct ControlProcess {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl ControlProcess {
    fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// `gatehouse control` with more arguments and environment variables.
    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addresses = dir.path().join("bound.json");
        let mut child = control_command(dir.path(), args, env)
            .arg("--bound-addresses-file")
            .arg(&addresses)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let value = wait_bound_addresses(&mut child, &addresses, String::new);
        let url = format!("http://{}", value["http"].as_str().unwrap());
        Self { child, url, dir }
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("data").join("admin-token")
    }

    /// Runs the CLI against this control plane.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--server", &self.url, "--token-file"])
            .arg(self.token_file())
            .args(args)
            .output()
            .unwrap()
    }
}

/// `gatehouse control` on 127.0.0.1:0 with its data directory under `dir`.
fn control_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "--log-format",
            "text",
            "control",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .args(args)
        .env_remove("GATEHOUSE_ENCRYPTION_KEY")
        .env_remove("GATEHOUSE_ADMIN_TOKEN")
        .envs(env.iter().copied());
    command
}

impl Drop for ControlProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway.yaml")
}

#[test]
fn the_admin_token_is_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let control = ControlProcess::start();
    let mode = std::fs::metadata(control.token_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn apply_is_idempotent_and_reports_what_changed() {
    let control = ControlProcess::start();
    let example = example();
    let example = example.to_str().unwrap();
    let first = stdout(&control.cli(&["apply", "-f", example]));
    assert!(first.contains("apis/echo created"), "{first}");
    assert!(first.contains("subscriptions/demo created"), "{first}");
    let second = stdout(&control.cli(&["apply", "-f", example]));
    assert!(
        second.contains("0 created, 1 updated, 10 unchanged"),
        "{second}"
    );
    assert!(second.contains("apis/echo unchanged"), "{second}");
    assert!(second.contains("subscriptions/demo unchanged"), "{second}");
    // Secret named values cannot be read back, so they are always re-applied.
    assert!(
        second.contains("named-values/backend-token updated"),
        "{second}"
    );

    let shown = stdout(&control.cli(&["get", "apis", "echo", "-o", "json"]));
    let api: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(api["path"], "echo");
}

#[test]
fn server_errors_are_shown_as_the_server_said_them() {
    let control = ControlProcess::start();
    let output = control.cli(&["get", "api", "missing"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("`missing` does not exist"),
        "{stderr}"
    );
}

#[test]
fn gateway_tokens_come_out_in_apims_format() {
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, "gateways:\n  - id: edge\n    location: eu\n").unwrap();
    stdout(&control.cli(&["apply", "-f", file.to_str().unwrap()]));
    let token = stdout(&control.cli(&["gateway", "token", "edge", "--expiry", "7d"]));
    let token = token.trim();
    assert!(token.starts_with("GatewayKey edge&"), "{token}");
    assert_eq!(token.split('&').count(), 3);
    let too_long = control.cli(&["gateway", "token", "edge", "--expiry", "40d"]);
    assert!(!too_long.status.success(), "tokens live at most 30 days");
    // Without a public URL the control plane cannot say where gateways reach it.
    let refused = control.cli(&["gateway", "deployment-yaml", "edge"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--public-url"), "{stderr}");
    let status = stdout(&control.cli(&["gateway", "status", "edge", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["nodes"], 0);
}

#[test]
fn a_context_file_names_the_server_and_the_token() {
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context.yaml");
    std::fs::write(
        &context,
        format!(
            "server: {}\ntokenFile: {}\n",
            control.url,
            control.token_file().display()
        ),
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["--context"])
        .arg(&context)
        .args(["get", "apis", "-o", "json"])
        .env_remove("GATEHOUSE_SERVER")
        .env_remove("GATEHOUSE_TOKEN")
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listed["count"], 0);
    std::fs::write(&context, "server: x\nunknown: 1\n").unwrap();
    let bad = Command::new(BIN)
        .args(["--context"])
        .arg(&context)
        .args(["get", "apis"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown"),
        "unknown fields in a context file are errors"
    );
}

#[test]
fn client_verbs_end_quietly_on_a_closed_pipe_and_print_one_error_line() {
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, "gateways:\n  - id: edge\n    location: eu\n").unwrap();
    stdout(&control.cli(&["apply", "-f", file.to_str().unwrap()]));
    // `gatehouse get gateways | head -0`: the reader is gone before the first write.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(BIN)
        .args(["--server", &control.url, "--token-file"])
        .arg(control.token_file())
        .args(["get", "gateways", "-o", "yaml"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert_eq!(stderr, "", "nothing to say about a closed pipe");

    // A failing verb: one human line, no JSON log line.
    let failed = control.cli(&["gateway", "token", "nowhere", "--expiry", "7d"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
}

#[test]
fn deployment_yaml_points_at_the_public_url_and_keeps_the_token_off_stdout() {
    let control =
        ControlProcess::start_with(&["--public-url", "https://control.example.com/"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, "gateways:\n  - id: edge\n").unwrap();
    stdout(&control.cli(&["apply", "-f", file.to_str().unwrap()]));
    let output = control.cli(&["gateway", "deployment-yaml", "edge"]);
    let manifest = stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        manifest.contains("config.service.endpoint: \"https://control.example.com\""),
        "{manifest}"
    );
    assert!(
        !manifest.contains(&control.url),
        "not the address the CLI used"
    );
    assert!(
        !manifest.contains("GatewayKey") && !manifest.contains("kubectl create secret"),
        "no credential in the file: {manifest}"
    );
    assert!(manifest.contains("kind: PodDisruptionBudget"), "{manifest}");
    assert!(
        stderr.contains("kubectl create secret generic edge-token")
            && stderr.contains("GatewayKey edge&"),
        "{stderr}"
    );

    // Names that would leave their collection stay one path segment.
    let delete = control.cli(&["delete", "gateway", "../apis/x"]);
    assert!(!delete.status.success());
    let stderr = String::from_utf8_lossy(&delete.stderr);
    assert!(stderr.contains("`../apis/x` does not exist"), "{stderr}");
    let dots = control.cli(&["delete", "gateway", ".."]);
    assert!(!dots.status.success());
    assert!(String::from_utf8_lossy(&dots.stderr).contains("not only dots"));
}

#[test]
fn a_cli_name_cannot_reach_another_collection() {
    // Issue 10, item 7: `delete api ../named-values/victim` once deleted the named value.
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "namedValues:\n  - name: victim\n    value: v\n").unwrap();
    stdout(&control.cli(&["apply", "-f", file.to_str().unwrap()]));
    let delete = control.cli(&["delete", "api", "../named-values/victim"]);
    assert!(!delete.status.success());
    let listed = stdout(&control.cli(&["get", "named-values", "-o", "json"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["count"], 1, "the named value is still there");
}

#[test]
fn two_replicas_on_one_postgresql_share_the_admin_token_and_the_encryption_key() {
    // Issue 10, item 5: the admin token and the key check live in the database.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(gatehouse_test_support::postgres::TestDatabase::create())
    else {
        return;
    };
    const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    const TOKEN: &str = "shared-admin-token-0123456789";
    let shared = [
        ("GATEHOUSE_ENCRYPTION_KEY", KEY),
        ("GATEHOUSE_ADMIN_TOKEN", TOKEN),
    ];
    let args = ["--database-url", db.url.as_str()];
    let first = ControlProcess::start_with(&args, &shared);
    let second = ControlProcess::start_with(&args, &shared);
    let cli = |control: &ControlProcess, args: &[&str]| {
        Command::new(BIN)
            .args(["--server", &control.url, "--token", TOKEN])
            .args(args)
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "namedValues:\n  - name: secret\n    value: hunter2\n    secret: true\ngateways:\n  - id: edge\n",
    )
    .unwrap();
    stdout(&cli(&first, &["apply", "-f", file.to_str().unwrap()]));
    // The second replica takes the same token, opens what the first sealed, and
    // accepts gateway tokens the first signed.
    let listed = stdout(&cli(&second, &["get", "named-values", "-o", "json"]));
    assert!(listed.contains("\"secret\""), "{listed}");
    let token = stdout(&cli(
        &first,
        &["gateway", "token", "edge", "--expiry", "1d"],
    ));
    let snapshot = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/v2/gateways/edge/snapshot", second.url))
            .header("Authorization", token.trim())
            .send()
            .await
            .unwrap()
    });
    assert_eq!(snapshot.status(), 200);
    let body = runtime.block_on(snapshot.text()).unwrap();
    assert!(
        body.contains("hunter2"),
        "the gateway gets the opened secret"
    );

    // A replica with another key refuses to start, saying why.
    let other = tempfile::tempdir().unwrap();
    let wrong_key = control_command(
        other.path(),
        &args,
        &[
            (
                "GATEHOUSE_ENCRYPTION_KEY",
                "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=",
            ),
            ("GATEHOUSE_ADMIN_TOKEN", TOKEN),
        ],
    )
    .output()
    .unwrap();
    assert!(!wrong_key.status.success());
    let stderr = String::from_utf8_lossy(&wrong_key.stderr);
    assert!(
        stderr.contains("encryption key") && stderr.contains("GATEHOUSE_ENCRYPTION_KEY"),
        "{stderr}"
    );
    // So does one given another admin token.
    let wrong_token = control_command(
        other.path(),
        &args,
        &[
            ("GATEHOUSE_ENCRYPTION_KEY", KEY),
            ("GATEHOUSE_ADMIN_TOKEN", "another"),
        ],
    )
    .output()
    .unwrap();
    assert!(!wrong_token.status.success());
    assert!(String::from_utf8_lossy(&wrong_token.stderr).contains("admin token"));
}

#[test]
fn apply_and_get_say_when_no_gateway_serves_an_api() {
    // Issue 11, item 2: a new API answers 404 everywhere until a gateway serves it.
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.yaml");
    std::fs::write(
        &file,
        "apis:\n  - id: lonely\n    path: lonely\n    serviceUrl: http://127.0.0.1:9\n    operations:\n      - id: any\n        method: GET\n        urlTemplate: /*\n",
    )
    .unwrap();
    let applied = control.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(applied.status.success());
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(
        stderr.contains("note: no gateway serves API `lonely`"),
        "{stderr}"
    );
    let listed = control.cli(&["get", "apis"]);
    assert!(String::from_utf8_lossy(&listed.stderr).contains("`lonely`"));

    // Issue 11, item 3: a file holding only `gateways:` may name APIs the server has;
    // one the server lacks too is still refused, naming the file.
    std::fs::write(
        &file,
        "gateways:\n  - id: edge\n    apis: [lonely, missing]\n",
    )
    .unwrap();
    let refused = control.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("api.yaml")
            && stderr.contains("unknown API `missing`")
            && !stderr.contains("`lonely`"),
        "{stderr}"
    );
    std::fs::write(&file, "gateways:\n  - id: edge\n    apis: [lonely]\n").unwrap();
    stdout(&control.cli(&["apply", "-f", file.to_str().unwrap()]));
    let listed = control.cli(&["get", "api", "lonely"]);
    assert_eq!(String::from_utf8_lossy(&listed.stderr), "", "served now");
}

/// Whether `gatehouse gateway --config` starts with `yaml` (listens) or refuses it.
fn gateway_loads(yaml: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.yaml");
    std::fs::write(&config, yaml).unwrap();
    let bound = dir.path().join("bound.json");
    let mut child = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--https-listen", "127.0.0.1:0", "--workers", "1"])
        .arg("--bound-addresses-file")
        .arg(&bound)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let loaded = loop {
        if bound.exists() {
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "neither started nor failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    loaded
}

#[test]
fn the_cli_the_control_plane_and_the_gateway_give_the_same_verdict() {
    // Issue 12: one reader and one compiler, whoever asks.
    let control = ControlProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        (
            "accepted",
            "<policies><inbound><set-header name=\"a\" exists-action=\"override\"><value>1</value></set-header></inbound></policies>",
            true,
        ),
        (
            "unknown policy",
            "<policies><inbound><frobnicate /></inbound></policies>",
            false,
        ),
        (
            "unsupported",
            "<policies><inbound><validate-azure-ad-token tenant-id=\"contoso\" /></inbound></policies>",
            false,
        ),
        (
            "wrong section",
            "<policies><outbound><forward-request /></outbound></policies>",
            false,
        ),
        (
            "missing attribute",
            "<policies><inbound><rate-limit calls=\"5\" /></inbound></policies>",
            false,
        ),
        (
            "expression",
            "<policies><inbound><set-header name=\"a\" exists-action=\"override\"><value>@(context.Variables.GetValueOrDefault(\"x\", \"\"))</value></set-header></inbound></policies>",
            true,
        ),
        (
            "choose",
            "<policies><inbound><choose><when condition=\"@(context.Request.Method == \"GET\")\"><set-variable name=\"get\" value=\"yes\" /></when></choose></inbound></policies>",
            true,
        ),
        (
            "a mapped Azure-only policy",
            "<policies><inbound><log-to-eventhub logger-id=\"audit\">hello</log-to-eventhub></inbound></policies>",
            true,
        ),
        (
            "unsupported expression",
            "<policies><inbound><set-variable name=\"t\" value=\"@(context.Workspace.Id)\" /></inbound></policies>",
            false,
        ),
        (
            "forbidden expression",
            "<policies><inbound><set-variable name=\"t\" value=\"@(System.IO.File.ReadAllText(\"/etc/passwd\"))\" /></inbound></policies>",
            false,
        ),
    ];
    for (name, document, accepted) in documents {
        let xml = dir.path().join("policy.xml");
        std::fs::write(&xml, document).unwrap();
        let checked = Command::new(BIN)
            .args(["policy", "check"])
            .arg(&xml)
            .output()
            .unwrap();
        let yaml = format!("policy: |\n  {document}\n");
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let applied = control.cli(&["apply", "-f", file.to_str().unwrap()]);
        let verdicts = (
            checked.status.success(),
            applied.status.success(),
            gateway_loads(&yaml),
        );
        assert_eq!(
            verdicts,
            (accepted, accepted, accepted),
            "{name}: (policy check, control plane, gateway)\n{}\n{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&applied.stderr)
        );
    }
}
