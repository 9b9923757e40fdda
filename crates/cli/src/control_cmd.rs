//! `gatehouse control`: run the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_control::auth::{ADMIN_TOKEN_FILE, AdminToken};
use gatehouse_control::tls::{ReloadingCertificate, TlsFiles, serve_tls};
use gatehouse_control::vault::{ENCRYPTION_KEY_FILE, Vault};
use gatehouse_control::{AdminTokenInForce, ControlSettings, ControlState, serve};
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

    /// The admin token, shared by every replica (e.g. from a Kubernetes Secret). Without
    /// it, the token is read from <data-dir>/admin-token, or created there on first start.
    #[arg(
        long,
        env = "GATEHOUSE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    admin_token: Option<String>,

    /// The URL gateways reach this control plane at (`https://control.example.com`):
    /// the configuration endpoint written into `gateway deployment-yaml` manifests, which
    /// are refused without it.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,

    /// How long a gateway instance may stay silent before `gateway status` stops
    /// counting it [default: three of the heartbeat intervals it reports]. Instances that
    /// stop say goodbye and leave at once.
    #[arg(long, env = "GATEHOUSE_INSTANCE_TIMEOUT", value_parser = humantime::parse_duration)]
    instance_timeout: Option<Duration>,

    /// How long a web portal session (`/portal/`) lasts unused before the admin token
    /// is asked for again.
    #[arg(long, env = "GATEHOUSE_PORTAL_SESSION_IDLE_TIMEOUT", default_value = "12h", value_parser = humantime::parse_duration)]
    portal_session_idle_timeout: Duration,

    /// How long the heartbeat of a silent instance is kept before it is deleted.
    #[arg(long, env = "GATEHOUSE_HEARTBEAT_RETENTION", default_value = "1h", value_parser = humantime::parse_duration)]
    heartbeat_retention: Duration,

    /// How many of the latest revisions the change log keeps; a gateway further behind
    /// takes a new snapshot.
    #[arg(long, env = "GATEHOUSE_CHANGE_LOG_RETENTION", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    change_log_retention: u64,

    /// How long before a certificate expires it is reported (`gateway status`, log).
    #[arg(long, env = "GATEHOUSE_CERTIFICATE_EXPIRY_WARNING", default_value = "14d", value_parser = humantime::parse_duration)]
    certificate_expiry_warning: Duration,

    /// Once listening, write the bound address as JSON to this file (for tests and
    /// supervisors that start the control plane on port 0).
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,

    /// Serve HTTPS with this certificate (PEM: the certificate, then its
    /// intermediates). Needs --tls-key-file. Reloaded when the file changes and on
    /// SIGHUP.
    #[arg(long, env = "GATEHOUSE_TLS_CERT_FILE", value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,

    /// The private key of --tls-cert-file (PEM, unencrypted).
    #[arg(long, env = "GATEHOUSE_TLS_KEY_FILE", value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
}

impl ControlArgs {
    /// The HTTPS files, when both are given; an error when only one is.
    fn tls_files(&self) -> anyhow::Result<Option<TlsFiles>> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(certificate), Some(private_key)) => Ok(Some(TlsFiles {
                certificate: certificate.clone(),
                private_key: private_key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--tls-cert-file (GATEHOUSE_TLS_CERT_FILE) is set but --tls-key-file (GATEHOUSE_TLS_KEY_FILE) is not: HTTPS needs the certificate and its private key; give both, or neither for plain HTTP"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key-file (GATEHOUSE_TLS_KEY_FILE) is set but --tls-cert-file (GATEHOUSE_TLS_CERT_FILE) is not: HTTPS needs the certificate and its private key; give both, or neither for plain HTTP"
            ),
        }
    }
}

pub(crate) fn run(args: &ControlArgs) -> anyhow::Result<()> {
    // Before the runtime: a bad certificate or key stops the start, naming the file.
    let tls = match args.tls_files()? {
        Some(files) => Some(Arc::new(
            ReloadingCertificate::load(files).context("cannot serve HTTPS")?,
        )),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gatehouse-control")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve_control(args, tls))
}

async fn serve_control(
    args: &ControlArgs,
    tls: Option<Arc<ReloadingCertificate>>,
) -> anyhow::Result<()> {
    let mut control = ControlPlane::open(
        &args.data_dir,
        args.database_url.as_deref(),
        args.admin_token.as_deref(),
        ControlSettings {
            public_url: args.public_url.clone(),
            instance_timeout: args.instance_timeout,
            heartbeat_retention: args.heartbeat_retention,
            change_log_retention: args.change_log_retention,
            certificate_expiry_warning: args.certificate_expiry_warning,
            portal_session_idle_timeout: args.portal_session_idle_timeout,
            ..ControlSettings::default()
        },
        args.listen,
    )
    .await?;
    if let Some(tls) = tls {
        control = control.with_tls(tls);
    }
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
    let mut hangup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let certificate = control.tls.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => match &certificate {
                    Some(certificate) => certificate.reload_and_log("sighup").await,
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS certificate)"),
                },
            }
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
    /// HTTPS: the certificate served, reloaded when its files change.
    tls: Option<Arc<ReloadingCertificate>>,
}

impl ControlPlane {
    /// Takes `admin_token`, or loads or creates the token under `data_dir`; opens the database
    /// (`database_url`, or SQLite under `data_dir`) and binds `listen`.
    pub(crate) async fn open(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
        admin_token: Option<&str>,
        settings: ControlSettings,
        listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let admin_token_file = data_dir.join(ADMIN_TOKEN_FILE);
        // The admin token: given (GATEHOUSE_ADMIN_TOKEN, e.g. from a Kubernetes Secret
        // shared by every replica), or read from the data directory, or created there.
        let (admin, created) = match admin_token.filter(|t| !t.trim().is_empty()) {
            Some(token) => {
                tracing::info!(
                    "using the admin token given by --admin-token (GATEHOUSE_ADMIN_TOKEN)"
                );
                (AdminToken::from_secret(token), false)
            }
            None => {
                let dir = data_dir.to_owned();
                let (admin, created) =
                    tokio::task::spawn_blocking(move || AdminToken::load_or_create(&dir))
                        .await
                        .context("admin token task failed")??;
                if created {
                    tracing::info!(path = %admin_token_file.display(), "created the admin token (mode 0600)");
                } else {
                    tracing::info!(path = %admin_token_file.display(), "using the admin token");
                }
                (admin, created)
            }
        };
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
        let mut state = ControlState::new(store, admin, vault, settings);
        // Every replica on one database must hold the same encryption key and admin
        // token: checked before serving, so a misconfigured replica stops here.
        let in_force = state
            .agree_on_shared_settings(created)
            .await
            .context("cannot start the control plane")?;
        if in_force == AdminTokenInForce::Database {
            tracing::warn!(path = %admin_token_file.display(), "another replica set up the admin token of this database first; the token created here is not valid and is removed: use the other replica's token (GATEHOUSE_ADMIN_TOKEN)");
            let file = admin_token_file.clone();
            tokio::task::spawn_blocking(move || std::fs::remove_file(file))
                .await
                .context("admin token task failed")?
                .with_context(|| format!("cannot remove {}", admin_token_file.display()))?;
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, database = %redact_url(&url), "control plane listening");
        Ok(Self {
            addr,
            admin_token_file,
            listener,
            state: Arc::new(state),
            tls: None,
        })
    }

    /// Serves HTTPS with `certificate` (loaded and checked already) instead of HTTP.
    /// Sets the public URL (deployment manifests' endpoint) when none was given, now
    /// that the bound address is known (`gatehouse dev` on port 0).
    pub(crate) fn default_public_url(mut self, url: String) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.settings.public_url.get_or_insert(url);
        }
        self
    }

    pub(crate) fn with_tls(mut self, certificate: Arc<ReloadingCertificate>) -> Self {
        let current = certificate.current();
        tracing::info!(
            addr = %self.addr,
            certificate = %certificate.files().certificate.display(),
            subject = %current.details.subject,
            serial = %current.details.serial_number,
            not_after = %gatehouse_tls::certificate::rfc3339(current.details.not_after),
            "serving HTTPS (ALPN h2, http/1.1); the certificate is reloaded when its files change and on SIGHUP"
        );
        self.tls = Some(certificate);
        self
    }

    /// Serves until `shutdown` is cancelled.
    pub(crate) async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Pruning runs beside the server and stops with it.
        let maintenance = tokio::spawn(gatehouse_control::maintenance::run(
            self.state.clone(),
            shutdown.clone(),
        ));
        let served = self.serve_api(shutdown).await;
        maintenance.abort();
        served
    }

    async fn serve_api(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Some(certificate) = self.tls else {
            return serve(self.listener, self.state, shutdown)
                .await
                .context("control plane server failed");
        };
        let config = certificate
            .server_config()
            .context("cannot set up the TLS listener")?;
        let watcher = certificate.watch(shutdown.clone()).with_context(|| {
            format!(
                "cannot watch the TLS certificate files ({}, {})",
                certificate.files().certificate.display(),
                certificate.files().private_key.display()
            )
        })?;
        let served = serve_tls(self.listener, self.state, config, shutdown)
            .await
            .context("control plane server failed");
        watcher.abort();
        served
    }
}

/// `--public-url`: an absolute `http` or `https` URL, kept without a trailing `/`.
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(
            "give the http:// or https:// URL gateways reach the control plane at".to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("no query, fragment or credentials in the public URL".to_owned());
    }
    Ok(text.trim_end_matches('/').to_owned())
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
