//! `gatehouse dev`: a control plane and a gateway in one process, for trying Gatehouse
//! on a laptop.
//!
//! The control plane is the real one (`gatehouse control`, SQLite under
//! `./.gatehouse/`); the gateway is the real one in control-plane mode, connected to it
//! over loopback through the Configuration API v2 with a token generated at start. At
//! start, through the management API, it creates (only if missing, so a restart keeps
//! what the user changed) a sample API `hello` that answers from a `return-response`
//! policy (no backend needed), a gateway `dev` serving it, and a subscription `dev`; then
//! it prints where everything is and a `curl` command that gets an answer.

// Printing the banner is this command's job.
#![allow(clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_gateway::GatewayState;
use gatehouse_sync::{AuthSetting, Endpoint, SyncSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::control_cmd::ControlPlane;
use crate::gateway_cmd::{self, GatewayArgs, Listening, Source};

/// Id of the gateway entity `dev` runs as, and of its subscription.
const DEV_ID: &str = "dev";
/// Id and path of the sample API.
const SAMPLE_API: &str = "hello";
/// How long the gateway's token is valid (tokens live at most 30 days).
const TOKEN_LIFETIME: Duration = Duration::from_secs(29 * 24 * 60 * 60);
/// How long to wait for the gateway's first configuration before printing anyway.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of `gatehouse dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Gateway data-plane address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Gateway HTTPS address (serves the configuration's hostnames; none in the sample).
    #[arg(long, default_value = "127.0.0.1:8081")]
    https_listen: SocketAddr,

    /// Gateway admin address (/healthz, /readyz, /metrics).
    #[arg(long, default_value = "127.0.0.1:8082")]
    admin_listen: SocketAddr,

    /// Control plane address (management API and Configuration API v2).
    #[arg(long, default_value = "127.0.0.1:8090")]
    control_listen: SocketAddr,

    /// Where the SQLite database, the admin token and the gateway's configuration
    /// backup live.
    #[arg(long, default_value = "./.gatehouse")]
    data_dir: PathBuf,

    /// Once listening, write `{"http", "admin", "control"}` as JSON to this file (for
    /// tests and scripts that start it on port 0).
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,
}

pub(crate) fn run(args: &DevArgs) -> anyhow::Result<()> {
    let backup_dir = args.data_dir.join("backup");
    let gateway_args = GatewayArgs::from_args([
        "--listen".to_owned(),
        args.listen.to_string(),
        "--https-listen".to_owned(),
        args.https_listen.to_string(),
        "--admin-listen".to_owned(),
        args.admin_listen.to_string(),
        "--config-backup-dir".to_owned(),
        backup_dir.display().to_string(),
    ])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gatehouse-dev")
        .build()
        .context("cannot start the runtime")?;
    let (state, writer) = gateway_cmd::new_state(&gateway_args)?;
    let result = runtime.block_on(serve(args, &gateway_args, backup_dir, state));
    drop(runtime);
    if let Some(writer) = writer {
        writer.join();
    }
    result
}

async fn serve(
    args: &DevArgs,
    gateway_args: &GatewayArgs,
    backup_dir: PathBuf,
    state: Arc<GatewayState>,
) -> anyhow::Result<()> {
    let control = ControlPlane::open(
        &args.data_dir,
        None,
        None,
        // What you apply is served: new APIs join the dev gateway.
        gatehouse_control::ControlSettings {
            assign_new_apis_to: Some(DEV_ID.to_owned()),
            ..gatehouse_control::ControlSettings::default()
        },
        args.control_listen,
    )
    .await?;
    // Deployment manifests and the portal's Deployment page point gateways here.
    let public_url = format!("http://{}", display_addr(control.addr));
    let control = control.default_public_url(public_url);
    let control_addr = control.addr;
    let admin_token_file = control.admin_token_file.clone();
    let stop_control = CancellationToken::new();
    let control_task = tokio::spawn(control.serve(stop_control.clone()));

    // The gateway reaches the control plane over loopback, whatever it is bound to.
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, control_addr.port()));
    let management = Management::new(loopback, &admin_token_file).await?;
    let sample = management.seed().await?;

    tokio::fs::create_dir_all(&backup_dir)
        .await
        .with_context(|| format!("cannot create {}", backup_dir.display()))?;
    let endpoint = Endpoint::parse(&format!("http://{loopback}"))?;
    let mut settings = SyncSettings::new(endpoint, AuthSetting::parse(&sample.token)?);
    settings.backup_dir = Some(backup_dir);
    let source = Source::ControlPlane(Box::new(settings));

    let shutdown = CancellationToken::new();
    let gateway_cmd::Signals {
        hangups,
        task: signal_task,
    } = gateway_cmd::spawn_signal_handler(shutdown.clone())?;
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
    let gateway = {
        let state = state.clone();
        async move {
            gateway_cmd::serve(
                gateway_args,
                source,
                state,
                shutdown,
                hangups,
                Some(listening_tx),
            )
            .await
        }
    };
    let announce = async {
        let Ok(listening) = listening_rx.await else {
            return Ok(());
        };
        if let Some(path) = &args.bound_addresses_file {
            crate::write_bound_addresses(
                path,
                &json!({
                    "http": listening.http.to_string(),
                    "admin": listening.admin.to_string(),
                    "control": control_addr.to_string(),
                }),
            )
            .await?;
        }
        let ready = wait_ready(&state).await;
        print_banner(&listening, control_addr, &admin_token_file, &sample, ready);
        Ok::<_, anyhow::Error>(())
    };
    let (served, announced) = tokio::join!(gateway, announce);
    signal_task.abort();
    stop_control.cancel();
    let _ = control_task.await;
    served.and(announced)
}

/// Waits (bounded) until the gateway serves its first configuration.
async fn wait_ready(state: &GatewayState) -> bool {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if state.readiness.pending().is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn print_banner(
    listening: &Listening,
    control: SocketAddr,
    admin_token_file: &std::path::Path,
    sample: &Sample,
    ready: bool,
) {
    let gateway = format!("http://{}", display_addr(listening.http));
    let control = format!("http://{}", display_addr(control));
    let key = &sample.subscription_key;
    println!();
    println!("Gatehouse dev is running.");
    println!();
    println!(
        "  Management API  {control}   (admin token in {})",
        admin_token_file.display()
    );
    println!("  Web portal      {control}/portal/   (sign in with the admin token)");
    println!("  Gateway         {gateway}");
    println!(
        "  Gateway admin   http://{}   (/healthz, /readyz, /metrics)",
        display_addr(listening.admin)
    );
    println!("  Subscription    `{DEV_ID}`, key {key}");
    println!();
    if !ready {
        println!("  (the gateway has not loaded its configuration yet; see the log)");
    }
    println!("Try it:");
    println!();
    println!("  curl -H 'Ocp-Apim-Subscription-Key: {key}' {gateway}/{SAMPLE_API}/world");
    println!();
    // The CLI reads ./.gatehouse/admin-token unless told otherwise.
    let token_file = if admin_token_file == std::path::Path::new("./.gatehouse/admin-token") {
        String::new()
    } else {
        format!(" --token-file {}", admin_token_file.display())
    };
    println!("Manage it:");
    println!();
    println!("  gatehouse --server {control}{token_file} get apis");
    println!("  gatehouse --server {control}{token_file} apply -f examples/gateway.yaml");
    println!("  gatehouse --server {control}{token_file} gateway status {DEV_ID}");
    println!();
    println!("  APIs you create are served by the `{DEV_ID}` gateway at once.");
    println!("  (`gatehouse` not found? `cargo install --path crates/cli --locked`, or use");
    println!("  target/release/gatehouse.)");
    println!();
}

/// `0.0.0.0:8080` is not something to curl: show loopback instead.
fn display_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    }
}

/// What `gatehouse dev` set up.
struct Sample {
    subscription_key: String,
    token: String,
}

/// The management API of the in-process control plane, over loopback.
struct Management {
    http: reqwest::Client,
    base: String,
    admin_token: String,
}

impl Management {
    async fn new(addr: SocketAddr, admin_token_file: &std::path::Path) -> anyhow::Result<Self> {
        let admin_token = tokio::fs::read_to_string(admin_token_file)
            .await
            .with_context(|| format!("cannot read {}", admin_token_file.display()))?
            .trim()
            .to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
            admin_token,
        })
    }

    /// Creates what is missing of the sample, and a token for the gateway.
    async fn seed(&self) -> anyhow::Result<Sample> {
        self.create(&format!("/apis/{SAMPLE_API}"), sample_api())
            .await?;
        self.create(
            &format!("/gateways/{DEV_ID}"),
            json!({
                "displayName": "gatehouse dev",
                "description": "The gateway of `gatehouse dev`",
                "apis": [SAMPLE_API],
            }),
        )
        .await?;
        self.create(
            &format!("/subscriptions/{DEV_ID}"),
            json!({ "displayName": "gatehouse dev", "scope": format!("/apis/{SAMPLE_API}") }),
        )
        .await?;
        let secrets = self
            .post(&format!("/subscriptions/{DEV_ID}/list-secrets"), json!({}))
            .await?;
        let subscription_key = secrets["primaryKey"]
            .as_str()
            .context("the control plane listed no primary key for subscription `dev`")?
            .to_owned();
        let expiry =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now() + TOKEN_LIFETIME);
        let token = self
            .post(
                &format!("/gateways/{DEV_ID}/generate-token"),
                json!({ "keyType": "primary", "expiry": expiry.to_string() }),
            )
            .await?["value"]
            .as_str()
            .context("the control plane generated no token")?
            .to_owned();
        Ok(Sample {
            subscription_key,
            token,
        })
    }

    /// `PUT` with `If-None-Match: *`: creates the entity unless it exists (then leaves
    /// it as the user made it).
    async fn create(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
            .header(reqwest::header::IF_NONE_MATCH, "*")
            .json(&body)
            .send()
            .await
            .with_context(|| format!("PUT {path}"))?;
        match response.status() {
            status if status.is_success() => {
                tracing::info!(path, "created the sample entity");
                Ok(())
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => Ok(()),
            status => {
                let text = response.text().await.unwrap_or_default();
                anyhow::bail!("PUT {path}: {status}: {text}")
            }
        }
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("POST {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path}: not JSON: {text}"))
    }
}

/// The sample API: `GET /hello/{name}` answered by the gateway itself.
fn sample_api() -> Value {
    json!({
        "displayName": "Hello (answered by the gateway, no backend needed)",
        "path": SAMPLE_API,
        "subscriptionRequired": true,
        "operations": [{
            "id": "greet",
            "method": "GET",
            "urlTemplate": "/{name}",
            "policy": concat!(
                "<policies>\n",
                "  <inbound>\n",
                "    <base />\n",
                "    <return-response>\n",
                "      <set-status code=\"200\" reason=\"OK\" />\n",
                "      <set-header name=\"Content-Type\" exists-action=\"override\">\n",
                "        <value>application/json</value>\n",
                "      </set-header>\n",
                "      <set-body>{\"message\": \"Hello from Gatehouse\"}</set-body>\n",
                "    </return-response>\n",
                "  </inbound>\n",
                "  <backend><base /></backend>\n",
                "  <outbound><base /></outbound>\n",
                "  <on-error><base /></on-error>\n",
                "</policies>\n",
            ),
        }],
    })
}
