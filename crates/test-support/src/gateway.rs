//! [`GatewayProcess`]: the real `gatehouse gateway` binary, run as a child process.
//!
//! The binary's contract this relies on: it takes `--config FILE`, `--listen ADDR`,
//! `--admin-listen ADDR` and `--bound-addresses-file PATH`, and once both listeners are
//! bound it writes PATH (atomically) as `{"http":"127.0.0.1:PORT","admin":"127.0.0.1:PORT"}`.
//! It reloads on `SIGHUP` and when the config file changes, and drains on `SIGTERM`.
//!
//! Integration tests pass the binary's path with `env!("CARGO_BIN_EXE_gatehouse")`, so
//! Cargo builds it before the test.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;
use tokio::sync::watch;

use crate::client::wait_for;

const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the output readers to reach end-of-file once the child exited.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Lines of captured output printed when a test panics while the gateway runs.
const PANIC_TAIL_LINES: usize = 200;
const CONFIG_FILE: &str = "gateway.yaml";
const ADDRESSES_FILE: &str = "bound-addresses.json";

/// A Unix signal to send to the gateway with [`GatewayProcess::signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGHUP`: reload the configuration.
    Hup,
    /// `SIGTERM`: drain in-flight requests, then exit.
    Term,
    /// `SIGINT`: what Ctrl-C sends.
    Int,
    /// `SIGKILL`: die at once. [`GatewayProcess::kill`] also reaps the process.
    Kill,
}

impl Signal {
    /// The name `kill -s` takes.
    const fn name(self) -> &'static str {
        match self {
            Self::Hup => "HUP",
            Self::Term => "TERM",
            Self::Int => "INT",
            Self::Kill => "KILL",
        }
    }
}

// === impl GatewayBuilder ===

/// How to start a [`GatewayProcess`]; [`GatewayProcess::builder`] makes one.
#[derive(Debug, Clone)]
#[must_use = "call .start() to run the gateway"]
pub struct GatewayBuilder {
    binary: PathBuf,
    config: String,
    /// Whether `--config` is passed (not for a gateway fed by another source).
    use_config: bool,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    startup_timeout: Duration,
}

impl GatewayBuilder {
    /// The configuration YAML written to the config file before start. Default: an
    /// empty document (`{}`), a gateway serving nothing.
    pub fn config(mut self, yaml: impl Into<String>) -> Self {
        self.config = yaml.into();
        self
    }

    /// Starts the gateway without `--config`: its configuration comes from another
    /// source the environment names (the control plane, Kubernetes Ingresses).
    pub const fn no_config(mut self) -> Self {
        self.use_config = false;
        self
    }

    /// Adds one argument after the standard ones, e.g. `--access-log=false`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments after the standard ones, e.g. `["--workers", "1"]`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child (e.g. `RUST_LOG`). The child inherits
    /// the test's environment, plus `NO_COLOR=1` and `RUST_BACKTRACE=1` unless set here.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// How long to wait for the bound-addresses file (default 30 s).
    pub const fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Writes the config to a new temporary directory, starts the binary and waits
    /// until it has written its bound addresses.
    ///
    /// # Panics
    ///
    /// If the binary cannot be started, exits before binding, or does not write the
    /// addresses file within the startup timeout. The message includes its output.
    pub fn start(self) -> GatewayProcess {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-test-")
            .tempdir()
            .unwrap_or_else(|error| panic!("test-support: cannot create a temp dir: {error}"));
        let config_path = dir.path().join(CONFIG_FILE);
        let addresses_path = dir.path().join(ADDRESSES_FILE);
        write_file(&config_path, &self.config);

        let mut command = Command::new(&self.binary);
        command.arg("gateway");
        if self.use_config {
            command.arg("--config").arg(&config_path);
        }
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .arg("--bound-addresses-file")
            .arg(&addresses_path)
            .args(&self.args)
            // Plain text in captured logs, so tests can grep them.
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "test-support: cannot start gateway binary {}: {error}",
                self.binary.display()
            )
        });
        let stdout = capture::<ChildStdout>(child.stdout.take(), "gateway-stdout");
        let stderr = capture::<ChildStderr>(child.stderr.take(), "gateway-stderr");

        let mut gateway = GatewayProcess {
            child,
            exit_status: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            https_addr: None,
            http3_addr: None,
            config_path,
            stdout,
            stderr,
            dir,
        };
        // From here on a panic drops `gateway`, which kills the child.
        let started = Instant::now();
        loop {
            if let Some(addresses) = read_addresses(&addresses_path) {
                gateway.http_addr = addresses.http;
                gateway.admin_addr = addresses.admin;
                gateway.https_addr = addresses.https;
                gateway.http3_addr = addresses.http3;
                return gateway;
            }
            if let Some(status) = gateway.try_wait() {
                gateway.wait_output_closed();
                panic!(
                    "gatehouse gateway exited ({status}) before writing {}\n{}",
                    addresses_path.display(),
                    gateway.output_report(usize::MAX)
                );
            }
            if started.elapsed() > self.startup_timeout {
                // Killed first so the output is complete and `Drop` does not repeat it.
                gateway.kill();
                gateway.wait_output_closed();
                panic!(
                    "gatehouse gateway did not write {} within {:?}\n{}",
                    addresses_path.display(),
                    self.startup_timeout,
                    gateway.output_report(usize::MAX)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The JSON written to `--bound-addresses-file`. Unknown fields are ignored, so the
/// gateway may add listeners without breaking tests.
#[derive(Debug, Deserialize)]
struct BoundAddresses {
    http: SocketAddr,
    admin: SocketAddr,
    #[serde(default)]
    https: Option<SocketAddr>,
    #[serde(default)]
    http3: Option<SocketAddr>,
}

/// `None` while the file is missing or incomplete.
fn read_addresses(path: &Path) -> Option<BoundAddresses> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_file(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|error| panic!("test-support: cannot write {}: {error}", path.display()));
}

/// Reads `pipe` line by line on a thread into a shared, growing list of lines. The
/// sender is dropped at end-of-file, which [`GatewayProcess::wait_output_closed`] sees.
fn capture<P: Read + Send + 'static>(pipe: Option<P>, name: &str) -> watch::Receiver<Vec<String>> {
    let (lines, receiver) = watch::channel(Vec::new());
    let Some(pipe) = pipe else {
        return receiver;
    };
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']).to_owned();
                        lines.send_modify(|lines| lines.push(text));
                    }
                }
            }
        })
        .unwrap_or_else(|error| panic!("test-support: cannot spawn thread {name}: {error}"));
    receiver
}

// === impl GatewayProcess ===

/// The real gateway binary running as a child process on `127.0.0.1` ports chosen by
/// the kernel, with its configuration in a temporary directory.
///
/// Its stdout and stderr are captured line by line for tests to grep; when a test
/// panics while the gateway runs, the last lines of both are printed. Dropping it kills
/// the child (`SIGKILL`) and removes the directory.
///
/// ```no_run
/// use gatehouse_test_support::{EchoBackend, GatewayProcess, Signal};
///
/// let backend = EchoBackend::start();
/// let yaml = format!(
///     "apis:\n- id: echo\n  path: echo\n  serviceUrl: {}\n  subscriptionRequired: false\n  \
///      operations:\n  - id: all\n    method: '*'\n    urlTemplate: /*\n",
///     backend.url()
/// );
/// // In an integration test of the `gatehouse` package: env!("CARGO_BIN_EXE_gatehouse").
/// let binary = "target/debug/gatehouse";
/// let mut gateway = GatewayProcess::builder(binary)
///     .config(yaml)
///     .arg("--access-log=false")
///     .start();
/// // ... send requests to gateway.url("/echo/hello") ...
/// gateway.signal(Signal::Term);
/// assert!(gateway.wait_exit(std::time::Duration::from_secs(10)).is_some());
/// ```
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    /// Set once the child has been reaped, so its pid is never signalled again (it may
    /// belong to another process by then).
    exit_status: Option<ExitStatus>,
    http_addr: SocketAddr,
    admin_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    http3_addr: Option<SocketAddr>,
    config_path: PathBuf,
    stdout: watch::Receiver<Vec<String>>,
    stderr: watch::Receiver<Vec<String>>,
    /// Last field: removed after the child is dead (fields drop in order).
    dir: TempDir,
}

impl GatewayProcess {
    /// Starts `binary` serving `config_yaml`, with no extra arguments; see
    /// [`GatewayBuilder::start`].
    ///
    /// # Panics
    ///
    /// As [`GatewayBuilder::start`].
    #[must_use]
    pub fn start(binary: impl AsRef<Path>, config_yaml: &str) -> Self {
        Self::builder(binary).config(config_yaml).start()
    }

    /// A builder for extra arguments, environment or startup timeout.
    pub fn builder(binary: impl AsRef<Path>) -> GatewayBuilder {
        GatewayBuilder {
            binary: binary.as_ref().to_owned(),
            config: "{}\n".to_owned(),
            use_config: true,
            args: Vec::new(),
            envs: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }

    /// The data-plane listener's address.
    #[must_use]
    pub const fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `http://127.0.0.1:{port}` of the data-plane listener, no trailing slash.
    #[must_use]
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `http_url()` followed by `path_and_query` (which starts with `/`).
    #[must_use]
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.http_addr)
    }

    /// The HTTPS listener's address.
    ///
    /// # Panics
    ///
    /// If the gateway did not report one.
    #[must_use]
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
            .unwrap_or_else(|| panic!("the gateway reported no HTTPS listener"))
    }

    /// The HTTP/3 (QUIC, UDP) address, when the gateway runs with `--http3 true`.
    ///
    /// # Panics
    ///
    /// If the gateway did not report one.
    #[must_use]
    pub fn http3_addr(&self) -> SocketAddr {
        self.http3_addr
            .unwrap_or_else(|| panic!("the gateway reported no HTTP/3 listener"))
    }

    /// Whether the gateway reported an HTTP/3 address.
    #[must_use]
    pub const fn has_http3(&self) -> bool {
        self.http3_addr.is_some()
    }

    /// The admin listener's address (`/healthz`, `/readyz`, `/metrics`).
    #[must_use]
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// `http://127.0.0.1:{port}` of the admin listener, no trailing slash.
    #[must_use]
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// The config file the gateway was started with.
    #[must_use]
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temporary directory holding the config; put extra files here.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The child's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replaces the config file atomically: writes a sibling file and renames it over
    /// the old one, so the gateway never reads half a file. A file watcher sees a rename
    /// into the directory, not a write to the file (watch the directory to catch it).
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    pub fn rewrite_config(&self, yaml: &str) {
        let staging = self.dir.path().join(format!("{CONFIG_FILE}.tmp"));
        write_file(&staging, yaml);
        std::fs::rename(&staging, &self.config_path).unwrap_or_else(|error| {
            panic!(
                "test-support: cannot rename {} to {}: {error}",
                staging.display(),
                self.config_path.display()
            )
        });
    }

    /// Truncates and rewrites the config file in place, as an editor or `echo > file`
    /// does: the watcher may see an empty or partial file first and must cope.
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    pub fn rewrite_config_in_place(&self, yaml: &str) {
        write_file(&self.config_path, yaml);
    }

    /// Sends `signal` to the gateway (with the shell's `kill`, as this crate forbids
    /// `unsafe`).
    ///
    /// # Panics
    ///
    /// If the gateway has already exited (the pid may belong to someone else by now),
    /// or `kill` fails.
    pub fn signal(&mut self, signal: Signal) {
        if let Some(status) = self.try_wait() {
            panic!(
                "cannot send SIG{} to the gateway: it already exited ({status})\n{}",
                signal.name(),
                self.output_report(PANIC_TAIL_LINES)
            );
        }
        let pid = self.child.id().to_string();
        let status = Command::new("sh")
            .args(["-c", r#"kill -s "$0" "$1""#, signal.name(), &pid])
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|error| panic!("test-support: cannot run sh -c kill: {error}"));
        assert!(
            status.success(),
            "kill -s {} {pid} failed ({status})",
            signal.name()
        );
    }

    /// Waits up to `timeout` for the gateway to exit and returns its status, or `None`
    /// if it is still running. After an exit it also waits (briefly) until all of its
    /// output has been captured.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_for(
            || {
                status = self.try_wait();
                status.is_some()
            },
            timeout,
        );
        if status.is_some() {
            self.wait_output_closed();
        }
        status
    }

    /// Whether the gateway is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Kills the gateway (`SIGKILL`) and reaps it; does nothing if it already exited.
    pub fn kill(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        // Errors mean it exited meanwhile; `wait` below reaps it either way.
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.exit_status = Some(status);
        }
    }

    /// Polls `GET /readyz` on the admin listener until it answers 200 or `timeout`
    /// passes; returns whether it did.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        wait_for(
            || http_status(self.admin_addr, "/readyz") == Some(200),
            timeout,
        )
    }

    /// Waits up to `timeout` until the gateway watches the directory of its config file,
    /// and returns whether it does.
    ///
    /// The gateway writes its bound addresses (which [`GatewayBuilder::start`] waits for)
    /// once its listeners are bound, and only then starts watching the config file: a
    /// file rewritten right after start can go unseen. Tests that rewrite the file and
    /// expect a reload call this first.
    ///
    /// Linux only: it looks for an inotify watch on the directory's inode in
    /// `/proc/<pid>/fdinfo`.
    #[must_use]
    pub fn wait_watching_config(&self, timeout: Duration) -> bool {
        let Ok(directory) = std::fs::metadata(self.dir.path()) else {
            return false;
        };
        // fdinfo lines of an inotify descriptor: `inotify wd:1 ino:1a2b sdev:… mask:…`.
        let watch = format!(" ino:{:x} ", directory.ino());
        let fdinfo = PathBuf::from(format!("/proc/{}/fdinfo", self.child.id()));
        wait_for(
            || {
                std::fs::read_dir(&fdinfo).is_ok_and(|entries| {
                    entries.flatten().any(|entry| {
                        std::fs::read_to_string(entry.path()).is_ok_and(|info| {
                            info.lines()
                                .any(|line| line.starts_with("inotify ") && line.contains(&watch))
                        })
                    })
                })
            },
            timeout,
        )
    }

    /// Captured stdout lines so far, without line endings.
    #[must_use]
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.borrow().clone()
    }

    /// Captured stderr lines so far, without line endings.
    #[must_use]
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.borrow().clone()
    }

    /// Whether any captured line of stdout or stderr contains `needle`.
    #[must_use]
    pub fn output_contains(&self, needle: &str) -> bool {
        let found = |lines: &watch::Receiver<Vec<String>>| {
            lines.borrow().iter().any(|line| line.contains(needle))
        };
        found(&self.stderr) || found(&self.stdout)
    }

    /// Waits up to `timeout` for a line of stdout or stderr containing `needle`.
    #[must_use]
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        wait_for(|| self.output_contains(needle), timeout)
    }

    /// Reaps the child if it exited, remembering the status.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            self.exit_status = self.child.try_wait().ok().flatten();
        }
        self.exit_status
    }

    /// Waits (bounded) until both output readers reached end-of-file.
    fn wait_output_closed(&self) {
        let closed = |lines: &watch::Receiver<Vec<String>>| lines.has_changed().is_err();
        wait_for(
            || closed(&self.stdout) && closed(&self.stderr),
            OUTPUT_DRAIN_TIMEOUT,
        );
    }

    /// The last `max_lines` of stderr and stdout, for panic messages.
    fn output_report(&self, max_lines: usize) -> String {
        let tail = |lines: &watch::Receiver<Vec<String>>| {
            let lines = lines.borrow();
            let skip = lines.len().saturating_sub(max_lines);
            let mut text = String::new();
            if skip > 0 {
                text.push_str(&format!("  ... {skip} earlier lines\n"));
            }
            for line in lines.iter().skip(skip) {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
            text
        };
        format!(
            "--- gateway stderr ---\n{}--- gateway stdout ---\n{}--- end ---",
            tail(&self.stderr),
            tail(&self.stdout)
        )
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let was_running = self.is_running();
        self.kill();
        if std::thread::panicking() && was_running {
            // The test failed while the gateway ran: its logs usually say why.
            eprintln!(
                "gateway (pid {}) killed after a panic\n{}",
                self.child.id(),
                self.output_report(PANIC_TAIL_LINES)
            );
        }
    }
}

/// `GET path` over a fresh HTTP/1.1 connection; the status code, or `None` on any error.
/// Blocking and minimal, so readiness checks need no runtime.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // "HTTP/1.1 200" is 12 bytes.
    let mut head = [0_u8; 12];
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) => return None,
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let head = std::str::from_utf8(&head).ok()?;
    head.strip_prefix("HTTP/1.")?.get(2..)?.parse().ok()
}
