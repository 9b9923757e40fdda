//! `gatehouse gateway`: serve APIs from a configuration file.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_gateway::{
    AccessLog, Gateway, GatewayState, Limits, Metrics, ServerSettings, access_log, admin, reload,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How often expired rate-limit and quota counters are removed.
const COUNTER_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Options of `gatehouse gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {
    /// Declarative configuration file (YAML); see docs/configuration.md. Reloaded on
    /// change and on SIGHUP.
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,

    /// Data-plane address (HTTP/1.1 and h2c).
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// Admin address: /healthz, /readyz, /metrics.
    #[arg(long, env = "GATEHOUSE_ADMIN_LISTEN", default_value = "127.0.0.1:8082")]
    admin_listen: SocketAddr,

    /// Worker threads, each with its own listener and backend pools (default: one per
    /// available core).
    #[arg(long, env = "GATEHOUSE_WORKERS")]
    workers: Option<NonZeroUsize>,

    /// Write one JSON access-log line per request to stdout.
    #[arg(long, env = "GATEHOUSE_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "GATEHOUSE_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    max_header_bytes: usize,

    /// Most request headers; more gets 431.
    #[arg(long, env = "GATEHOUSE_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,

    /// Largest request body in bytes; larger gets 413. Default: no limit (bodies are
    /// streamed, never buffered).
    #[arg(long, env = "GATEHOUSE_MAX_REQUEST_BODY_BYTES")]
    max_request_body_bytes: Option<u64>,

    /// Time a client has to send its request head.
    #[arg(long, env = "GATEHOUSE_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,

    /// On SIGTERM, how long in-flight requests get to finish before connections are cut.
    #[arg(long, env = "GATEHOUSE_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// Once listening, write the bound addresses as JSON to this file (for tests and
    /// supervisors that start the gateway on port 0).
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,
}

pub(crate) fn run(args: &GatewayArgs) -> anyhow::Result<()> {
    let Some(config) = args.config.clone() else {
        anyhow::bail!("`gatehouse gateway` needs `--config <file.yaml>` (or GATEHOUSE_CONFIG)");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("gatehouse-main")
        .build()
        .context("cannot start the main runtime")?;
    let metrics = Metrics::new();
    let (access_log, writer) = if args.access_log {
        let (log, writer) = AccessLog::spawn(
            Box::new(std::io::stdout()),
            access_log::QUEUE_BATCHES,
            metrics.access_log_dropped.clone(),
        )
        .context("cannot start the access-log writer")?;
        (log, Some(writer))
    } else {
        (AccessLog::disabled(), None)
    };
    let state = Arc::new(GatewayState::new(metrics, access_log));
    let result = runtime.block_on(serve(args, &config, state));
    // Every AccessLog clone is gone with the state: the writer drains and exits.
    drop(runtime);
    if let Some(writer) = writer {
        writer.join();
    }
    result
}

async fn serve(args: &GatewayArgs, config: &Path, state: Arc<GatewayState>) -> anyhow::Result<()> {
    reload::load_file(&state, config)
        .await
        .with_context(|| format!("cannot start with configuration {}", config.display()))?;

    let workers = args
        .workers
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN);
    let settings = ServerSettings {
        listen: args.listen,
        workers,
        limits: Limits {
            max_header_bytes: args.max_header_bytes,
            max_headers: args.max_headers,
            max_request_body_bytes: args.max_request_body_bytes,
            header_read_timeout: args.header_read_timeout,
            ..Limits::default()
        },
        drain_timeout: args.drain_timeout,
    };
    let gateway = Gateway::start(&settings, state.clone())?;
    state.readiness.set_listeners_bound();

    let admin_listener = admin::bind(args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on admin address {}", args.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;
    tracing::info!(addr = %admin_addr, "admin listening (/healthz, /readyz, /metrics)");
    let stop_background = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        state.clone(),
        stop_background.clone(),
    ));

    if let Some(path) = &args.bound_addresses_file {
        let addresses = serde_json::json!({
            "http": gateway.local_addr().to_string(),
            "admin": admin_addr.to_string(),
        });
        crate::write_bound_addresses(path, &addresses).await?;
    }

    let sweeper = {
        let state = state.clone();
        let stop = stop_background.clone();
        tokio::spawn(async move { state.sweep_counters(COUNTER_SWEEP_INTERVAL, stop).await })
    };

    let watcher = reload::watch_file(state.clone(), config.to_path_buf(), stop_background.clone())
        .with_context(|| format!("cannot watch {}", config.display()))?;

    let mut hangup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => reload::reload_and_log(&state, config, "sighup").await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!(drain_timeout = ?args.drain_timeout, "shutting down: draining in-flight requests");
    gateway.shutdown().await;
    stop_background.cancel();
    let _ = admin_task.await;
    let _ = watcher.await;
    let _ = sweeper.await;
    tracing::info!("stopped");
    Ok(())
}
