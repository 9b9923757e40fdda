//! `GatewayProcess` driven against `tests/fake-gateway.sh`, a bash stand-in that keeps
//! the real binary's CLI contract and logs what it is asked to do.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gatehouse_test_support::{EchoBackend, GatewayProcess, Signal, wait_for};

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake-gateway.sh");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn start_reads_the_bound_addresses_and_captures_output() {
    let gateway = GatewayProcess::builder(FAKE)
        .config("apis: []")
        .args(["--workers", "1"])
        .arg("--access-log=false")
        .env("FAKE_MARK", "marked")
        .start();

    assert_eq!(
        gateway.http_addr(),
        "127.0.0.1:1111".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(gateway.http_url(), "http://127.0.0.1:1111");
    assert_eq!(gateway.url("/echo?x=1"), "http://127.0.0.1:1111/echo?x=1");
    assert_eq!(gateway.admin_url(), "http://127.0.0.1:2222");
    assert!(gateway.config_path().starts_with(gateway.dir()));
    assert_eq!(
        std::fs::read_to_string(gateway.config_path()).unwrap(),
        "apis: []"
    );

    assert!(gateway.wait_for_output("access log line", WAIT));
    // Stdout and stderr are read by two threads: stderr lines the fake wrote before its
    // stdout line may still be on their way.
    for expected in [
        "--listen 127.0.0.1:0",
        "--admin-listen 127.0.0.1:0",
        "config: apis: []",
        "extra arg: --workers",
        "extra arg: --access-log=false",
        "env: NO_COLOR=1 FAKE_MARK=marked",
    ] {
        assert!(
            wait_for(
                || gateway.stderr_lines().iter().any(|line| line == expected),
                WAIT
            ),
            "no line {expected:?} in {:#?}",
            gateway.stderr_lines()
        );
    }
    assert_eq!(gateway.stdout_lines(), ["access log line"]);
}

#[test]
fn rewritten_config_is_seen_after_sighup() {
    let mut gateway = GatewayProcess::start(FAKE, "version: 1");
    gateway.rewrite_config("version: 2");
    gateway.signal(Signal::Hup);
    assert!(gateway.wait_for_output("reloaded: version: 2", WAIT));

    gateway.rewrite_config_in_place("version: 3");
    gateway.signal(Signal::Hup);
    assert!(gateway.wait_for_output("reloaded: version: 3", WAIT));
    assert!(gateway.is_running());
}

#[test]
fn sigterm_exit_is_observed_with_all_output() {
    let mut gateway = GatewayProcess::start(FAKE, "{}");
    gateway.signal(Signal::Term);
    let status = gateway.wait_exit(WAIT).expect("the fake exits on SIGTERM");
    assert!(status.success(), "{status}");
    // wait_exit waits for the output readers, so no polling is needed here.
    assert!(gateway.output_contains("draining"));
    assert!(!gateway.is_running());
}

#[test]
fn wait_watching_config_is_false_for_a_gateway_that_does_not_watch() {
    // The fake never watches its config file (it only reloads on SIGHUP).
    let gateway = GatewayProcess::start(FAKE, "{}");
    assert!(!gateway.wait_watching_config(Duration::from_millis(100)));
}

#[test]
fn wait_exit_returns_none_while_running() {
    let mut gateway = GatewayProcess::start(FAKE, "{}");
    assert_eq!(gateway.wait_exit(Duration::from_millis(100)), None);
    gateway.kill();
    assert!(!gateway.is_running());
}

#[test]
#[should_panic(expected = "already exited")]
fn signalling_an_exited_gateway_panics() {
    let mut gateway = GatewayProcess::start(FAKE, "{}");
    gateway.kill();
    gateway.signal(Signal::Hup);
}

#[test]
#[should_panic(expected = "fatal: unknown policy")]
fn early_exit_panics_with_the_gateway_stderr() {
    let _gateway = GatewayProcess::builder(FAKE)
        .args(["--fail", "unknown policy"])
        .start();
}

#[test]
#[should_panic(expected = "did not write")]
fn missing_addresses_file_panics_after_the_startup_timeout() {
    let _gateway = GatewayProcess::builder(FAKE)
        .env("FAKE_NO_ADDRESSES", "1")
        .startup_timeout(Duration::from_millis(300))
        .start();
}

#[test]
#[should_panic(expected = "cannot start gateway binary")]
fn missing_binary_panics_with_its_path() {
    let _gateway = GatewayProcess::start("/nonexistent/gatehouse", "{}");
}

#[test]
fn drop_kills_the_gateway() {
    let gateway = GatewayProcess::start(FAKE, "{}");
    let proc_dir = format!("/proc/{}", gateway.pid());
    let dir = gateway.dir().to_owned();
    assert!(Path::new(&proc_dir).exists());
    drop(gateway);
    // Killed and reaped, so the pid is gone; and the temp dir is removed.
    assert!(!Path::new(&proc_dir).exists());
    assert!(!dir.exists());
}

#[test]
fn wait_ready_polls_the_admin_readyz() {
    // An echo backend answers 200 on every path, /readyz included.
    let admin = EchoBackend::start();
    let gateway = GatewayProcess::builder(FAKE)
        .env("FAKE_ADMIN", admin.addr().to_string())
        .start();
    assert!(gateway.wait_ready(WAIT));
    assert!(admin.requests() >= 1);

    let unready = EchoBackend::builder().status(503).start();
    let gateway = GatewayProcess::builder(FAKE)
        .env("FAKE_ADMIN", unready.addr().to_string())
        .start();
    assert!(!gateway.wait_ready(Duration::from_millis(200)));
}
