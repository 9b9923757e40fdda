//! `gatehouse control`: run the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use gatehouse_control::auth::{ADMIN_TOKEN_FILE, AdminToken};
use gatehouse_control::vault::{ENCRYPTION_KEY_FILE, Vault};
use gatehouse_control::{ControlState, serve};
use gatehouse_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Options of `gatehouse control`.
#[derive(Debug, clap::Args)]
pub(crate) struct ControlArgs {
    /// Management API and Configuration API v2 address.
    #[arg(long, env = "GATEHOUSE_CONTROL_LISTEN", default_value = "0.0.0.0:8090")]
    listen: SocketAddr,

    /// Where the SQLite database and the admin token live.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./.gatehouse")]
    data_dir: PathBuf,

    /// PostgreSQL instead of SQLite (`postgres://user:password@host/db`); several
    /// control-plane replicas may share it.
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Once listening, write the bound address as JSON to this file (for tests and
    /// supervisors that start the control plane on port 0).
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,
}

pub(crate) fn run(args: &ControlArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gatehouse-control")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve_control(args))
}

async fn serve_control(args: &ControlArgs) -> anyhow::Result<()> {
    let control =
        ControlPlane::open(&args.data_dir, args.database_url.as_deref(), args.listen).await?;
    if let Some(path) = &args.bound_addresses_file {
        crate::write_bound_addresses(
            path,
            &serde_json::json!({ "http": control.addr.to_string() }),
        )
        .await?;
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        stop.cancel();
    });
    control.serve(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// A control plane ready to serve: admin token loaded (or created), database open,
/// listener bound. Shared by `gatehouse control` and `gatehouse dev`.
pub(crate) struct ControlPlane {
    /// The bound address.
    pub(crate) addr: SocketAddr,
    /// The file holding the admin token.
    pub(crate) admin_token_file: PathBuf,
    listener: tokio::net::TcpListener,
    state: Arc<ControlState>,
}

impl ControlPlane {
    /// Loads or creates the admin token under `data_dir`, opens the database
    /// (`database_url`, or SQLite under `data_dir`) and binds `listen`.
    pub(crate) async fn open(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
        listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let dir = data_dir.to_owned();
        let (admin, created) =
            tokio::task::spawn_blocking(move || AdminToken::load_or_create(&dir))
                .await
                .context("admin token task failed")??;
        let admin_token_file = data_dir.join(ADMIN_TOKEN_FILE);
        if created {
            tracing::info!(path = %admin_token_file.display(), "created the admin token (mode 0600)");
        } else {
            tracing::info!(path = %admin_token_file.display(), "using the admin token");
        }
        // Private keys are encrypted at rest: the key comes from the environment (one
        // key shared by all replicas) or a file created on first start.
        let vault = match std::env::var("GATEHOUSE_ENCRYPTION_KEY") {
            Ok(key) => Vault::from_base64(&key).context("GATEHOUSE_ENCRYPTION_KEY")?,
            Err(_) => {
                let file = data_dir.join(ENCRYPTION_KEY_FILE);
                let (vault, created) =
                    tokio::task::spawn_blocking(move || Vault::load_or_create(&file))
                        .await
                        .context("encryption key task failed")??;
                if created {
                    tracing::warn!(path = %data_dir.join(ENCRYPTION_KEY_FILE).display(), "created the encryption key for private keys at rest (mode 0600); back it up apart from the database");
                }
                vault
            }
        };
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", data_dir.join("gatehouse.db").display()),
        };
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, database = %redact_url(&url), "control plane listening");
        Ok(Self {
            addr,
            admin_token_file,
            listener,
            state: Arc::new(ControlState {
                store,
                admin,
                vault,
            }),
        })
    }

    /// Serves until `shutdown` is cancelled.
    pub(crate) async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        serve(self.listener, self.state, shutdown)
            .await
            .context("control plane server failed")
    }
}

/// A database URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
