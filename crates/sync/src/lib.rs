//! The gateway side of the Configuration API v2: how a gateway in control-plane mode
//! gets its configuration, keeps it, and reports back.
//!
//! [`start`] does, in order:
//!
//! 1. reads the token (`config.service.auth`: inline, or a file re-read on change,
//!    [`token`]); the gateway id is the token's;
//! 2. serves the configuration backup of that gateway id at once, if there is a valid
//!    one ([`backup`]): a restart while the control plane is unreachable still serves;
//! 3. runs the sync loop ([`sync_loop`]): snapshot, then long-polled changes applied to
//!    a local copy and offered to the gateway through its `ConfigSink`
//!    (validated and compiled off the request path; the old configuration kept on
//!    error), each applied configuration backed up;
//! 4. sends heartbeats ([`heartbeat`]).
//!
//! Fail-static throughout: nothing here ever empties what the gateway serves. A control
//! plane that is down, slow, failing, answering garbage or refusing the token leaves the
//! last good configuration serving; each failed round is logged at error and counted in
//! `gatehouse_config_sync_errors_total{reason}`, with exponential backoff and jitter
//! between rounds.
//!
//! This crate does not parse command lines or environment variables (the `gatehouse`
//! binary does, into [`SyncSettings`]), and it serves nothing itself.

pub mod backup;
pub mod changes;
pub mod client;
pub mod heartbeat;
pub mod settings;
pub mod status;
pub mod sync_loop;
pub mod tls;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_gateway::ConfigSink;
use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::token::format_utc_minute;
use tokio_util::sync::CancellationToken;

pub use client::{ConfigClient, SyncError};
pub use settings::{AuthSetting, Backoff, Endpoint, SettingsError, SyncSettings};
pub use status::SyncStatus;
pub use sync_loop::{SyncState, Syncer};
pub use token::TokenSource;

/// Why control-plane mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token could not be read.
    #[error(transparent)]
    Token(#[from] token::TokenFileError),
    /// The token file cannot be watched.
    #[error("cannot watch the gateway token file: {0}")]
    Watch(#[from] notify::Error),
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client of the control plane: {0}")]
    Client(#[from] reqwest::Error),
    /// TLS to an `https://` control plane cannot be set up (the CA file, say).
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    /// A setup task failed.
    #[error("control-plane mode setup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The running tasks of control-plane mode.
#[derive(Debug)]
pub struct SyncHandle {
    token: Arc<TokenSource>,
    status: Arc<SyncStatus>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SyncHandle {
    /// The token in use (to re-read its file on `SIGHUP`, say).
    #[must_use]
    pub fn token(&self) -> &Arc<TokenSource> {
        &self.token
    }

    /// What the heartbeat reports.
    #[must_use]
    pub fn status(&self) -> &Arc<SyncStatus> {
        &self.status
    }

    /// Waits for every task to end (after the `shutdown` given to [`start`] is
    /// cancelled; a pending backup is written first).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts control-plane mode: reads the token, serves the backup if there is a valid
/// one, and spawns the sync loop, the heartbeat, the backup writer and the token-file
/// watcher, which run until `shutdown` is cancelled. Returns once the backup (if any)
/// is served, before the control plane has answered: the gateway's listeners should not
/// wait for it.
///
/// # Errors
///
/// [`StartError`] when the token cannot be read (the gateway id is not known then) or
/// its file cannot be watched, or, for an `https://` endpoint, when the CA file (or the
/// system's CA certificates) cannot be loaded.
pub async fn start(
    settings: SyncSettings,
    sink: ConfigSink,
    shutdown: CancellationToken,
) -> Result<SyncHandle, StartError> {
    // Blocking reads (the CA file, the system's CA certificates), once, off the runtime.
    let tls = {
        let endpoint = settings.endpoint.clone();
        let ca_file = settings.ca_file.clone();
        tokio::task::spawn_blocking(move || tls::client_config(&endpoint, ca_file.as_deref()))
            .await??
    };
    let token = Arc::new(TokenSource::load(&settings.auth).await?);
    let gateway_id = token.gateway_id().to_owned();
    let current = token.current();
    sink.metrics().init_config_sync_errors();
    sink.metrics()
        .token_expiry_timestamp_seconds
        .set(current.expiry_unix());
    tracing::info!(
        endpoint = %settings.endpoint,
        ca_file = ?settings.ca_file,
        gateway = %gateway_id,
        token_expires = %format_utc_minute(current.expiry_unix()),
        token_file = ?token.file(),
        "control-plane mode: configuration comes from the Configuration API v2"
    );

    let status = Arc::new(SyncStatus::default());
    let backup_dir = match settings.backup_dir {
        Some(dir) => usable_backup_dir(dir).await,
        None => {
            tracing::warn!(
                "configuration backup disabled: a restart while the control plane is unreachable serves nothing"
            );
            None
        }
    };
    let backup_keys = match settings.backup_key {
        Some(key) => backup::BackupKeys::Given(Box::new(key)),
        None => backup::BackupKeys::FromToken(token.clone()),
    };
    if let Some(dir) = &backup_dir {
        serve_backup(&sink, &status, dir, &gateway_id, &backup_keys.current()).await;
    }

    let mut tasks = Vec::new();
    let backup = backup_dir.map(|dir| {
        let (writer, task) = backup::BackupWriter::spawn(
            dir,
            gateway_id.clone(),
            backup_keys,
            sink.clone(),
            shutdown.clone(),
        );
        tasks.push(task);
        writer
    });
    if let Some(task) = token.clone().watch(sink.clone(), shutdown.clone())? {
        tasks.push(task);
    }
    let client = ConfigClient::new(
        settings.endpoint.clone(),
        token.clone(),
        settings.request_timeout,
        tls,
    )?;
    let syncer = Syncer::new(
        sink.clone(),
        client.clone(),
        token.clone(),
        status.clone(),
        backup,
        settings.long_poll_wait,
        settings.backoff,
    );
    tasks.push(tokio::spawn(syncer.run(shutdown.clone())));
    tasks.push(tokio::spawn(heartbeat::run(
        client,
        token.clone(),
        status.clone(),
        sink,
        settings.heartbeat_interval,
        shutdown,
    )));
    Ok(SyncHandle {
        token,
        status,
        tasks,
    })
}

/// `dir` if the backup can be written there; else a warning and `None`.
async fn usable_backup_dir(dir: PathBuf) -> Option<PathBuf> {
    let probe = dir.clone();
    match tokio::task::spawn_blocking(move || backup::check_writable(&probe)).await {
        Ok(Ok(())) => {
            tracing::info!(dir = %dir.display(), "configuration backup on");
            Some(dir)
        }
        Ok(Err(error)) => {
            tracing::warn!(dir = %dir.display(), error = %error, "configuration backup disabled: the directory is missing or not writable (mount a volume there, or set --config-backup-dir); a restart while the control plane is unreachable serves nothing");
            None
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), error = %error, "configuration backup disabled: cannot check the directory");
            None
        }
    }
}

/// Serves the backup of `gateway_id` in `dir` if there is a valid one. A corrupt one
/// is reported and ignored: nothing of it is served.
async fn serve_backup(
    sink: &ConfigSink,
    status: &SyncStatus,
    dir: &std::path::Path,
    gateway_id: &str,
    key: &backup::BackupKey,
) {
    let path = backup::backup_path(dir, gateway_id);
    let read = {
        let dir = dir.to_owned();
        let gateway_id = gateway_id.to_owned();
        let key = key.clone();
        tokio::task::spawn_blocking(move || backup::read(&dir, &gateway_id, &key)).await
    };
    let snapshot = match read {
        Ok(Ok(Some(snapshot))) => snapshot,
        Ok(Ok(None)) => {
            tracing::info!(path = %path.display(), "no configuration backup yet; nothing is served until the control plane answers");
            return;
        }
        Ok(Err(error)) => {
            sink.metrics().config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, "configuration backup ignored; nothing is served until the control plane answers");
            return;
        }
        Err(error) => {
            sink.metrics().config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, "configuration backup read task failed");
            return;
        }
    };
    let revision = snapshot.revision;
    let origin = format!(
        "configuration backup {} (revision {revision})",
        path.display()
    );
    match sink
        .offer(snapshot.configuration, origin, Some(revision))
        .await
    {
        Ok(_) => {
            status.set_applied_revision(revision);
            tracing::info!(path = %path.display(), revision, "serving the configuration backup until the control plane answers");
        }
        Err(error) => {
            sink.metrics().config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, "configuration backup cannot be served; nothing is served until the control plane answers");
        }
    }
}
