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
        let dir = tempfile::tempdir().unwrap();
        let addresses = dir.path().join("bound.json");
        let mut child = Command::new(BIN)
            .args([
                "--log-format",
                "text",
                "control",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
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
    let yaml = stdout(&control.cli(&["gateway", "deployment-yaml", "edge"]));
    assert!(
        yaml.contains("kubectl create secret generic edge-token"),
        "{yaml}"
    );
    assert!(yaml.contains("kind: Deployment"), "{yaml}");
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
    // `gatehouse gateway deployment-yaml edge | head -0`: the reader is gone before the
    // first write.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(BIN)
        .args(["--server", &control.url, "--token-file"])
        .arg(control.token_file())
        .args(["gateway", "deployment-yaml", "edge"])
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
