//! The configuration backup (APIM's `/apim/config` volume): the last configuration the
//! gateway applied from the control plane, so a restart while the control plane is
//! unreachable still serves.
//!
//! One file per gateway id, `gatehouse-<gatewayId>.snapshot.json`: a [`Snapshot`] in
//! JSON (revision, gateway id, configuration, SHA-256 checksum), mode 0600 (it holds
//! subscription keys and secret named values). It is written atomically: a temporary
//! file in the same directory, `fsync`, rename over the old one, `fsync` of the
//! directory; a crash leaves the old backup or the new one, never a mix.
//!
//! Reading checks everything before anything is served: the JSON parses whole (a
//! truncated file does not), the gateway id is this gateway's, and the checksum matches
//! the configuration. A backup failing any check is reported with the reason and
//! ignored; it is overwritten by the next good configuration.
//!
//! The functions here block (file I/O, `fsync`): call them from `spawn_blocking`, as
//! [`BackupWriter`] does.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_gateway::GatewayState;
use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::{Configuration, Snapshot, SnapshotError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why a backup could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file could not be read.
    #[error("cannot read the configuration backup {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a whole snapshot (truncated, edited, or from an incompatible
    /// version).
    #[error("the configuration backup {path} is corrupt or truncated: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON reader's message, with line and column.
        message: String,
    },
    /// The checksum does not match the configuration.
    #[error("the configuration backup {path} fails its checksum: {source}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The mismatch.
        #[source]
        source: SnapshotError,
    },
    /// The backup is of another gateway (a volume shared or reused).
    #[error(
        "the configuration backup {path} is of gateway `{found}`, not `{expected}`; ignoring it"
    )]
    OtherGateway {
        /// The file.
        path: PathBuf,
        /// This gateway.
        expected: String,
        /// The gateway the backup names.
        found: String,
    },
    /// Writing failed.
    #[error("cannot write the configuration backup {path}: {source}")]
    Write {
        /// The file being written (the temporary one, or the directory).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the backup of `gateway_id` lives in `dir`.
#[must_use]
pub fn backup_path(dir: &Path, gateway_id: &str) -> PathBuf {
    dir.join(format!("gatehouse-{gateway_id}.snapshot.json"))
}

/// Checks that `dir` is a directory this process can write to, by creating and removing
/// a probe file.
///
/// # Errors
///
/// The OS error (missing, not a directory, read-only, no permission).
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    let metadata = std::fs::metadata(dir)?;
    if !metadata.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    let probe = dir.join(format!(".gatehouse-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Reads and checks the backup of `gateway_id` in `dir`: `Ok(None)` when there is none.
///
/// # Errors
///
/// [`BackupError`] when there is one but it cannot be read, is not a whole snapshot,
/// is of another gateway or fails its checksum. Nothing of it should be used then.
pub fn read(dir: &Path, gateway_id: &str) -> Result<Option<Snapshot>, BackupError> {
    let path = backup_path(dir, gateway_id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BackupError::Read { path, source }),
    };
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|error| BackupError::Corrupt {
            path: path.clone(),
            message: error.to_string(),
        })?;
    if snapshot.gateway_id != gateway_id {
        return Err(BackupError::OtherGateway {
            path,
            expected: gateway_id.to_owned(),
            found: snapshot.gateway_id,
        });
    }
    snapshot.verify().map_err(|source| BackupError::Checksum {
        path: path.clone(),
        source,
    })?;
    Ok(Some(snapshot))
}

/// Writes `snapshot` as the backup of its gateway in `dir`, atomically, mode 0600.
/// Returns the file's path.
///
/// # Errors
///
/// [`BackupError::Write`]; the previous backup, if any, is then intact.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<PathBuf, BackupError> {
    let path = backup_path(dir, &snapshot.gateway_id);
    // In the same directory, so the rename is atomic; named per process, so two
    // gateways sharing a volume never write into each other's temporary file.
    let temp = dir.join(format!(
        ".gatehouse-{}.snapshot.json.{}.tmp",
        snapshot.gateway_id,
        std::process::id()
    ));
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Write { path, source }
    };
    let bytes = serde_json::to_vec(snapshot)
        .map_err(|error| failed(&temp)(std::io::Error::other(error)))?;
    if let Err(source) = write_synced(&temp, &bytes) {
        let _ = std::fs::remove_file(&temp);
        return Err(failed(&temp)(source));
    }
    if let Err(source) = std::fs::rename(&temp, &path) {
        let _ = std::fs::remove_file(&temp);
        return Err(failed(&path)(source));
    }
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed(dir))?;
    Ok(path)
}

/// Creates `path` afresh with mode 0600, writes `bytes` and flushes them to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A leftover of a crashed write may have other permissions: start afresh, so the
    // mode below applies.
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes backups off the sync loop: the loop hands over each configuration it
/// applied, and a task writes the latest one. A burst of changes is written once, at
/// its end, rather than once per change.
#[derive(Debug, Clone)]
pub struct BackupWriter {
    latest: Arc<watch::Sender<Pending>>,
}

/// The configuration waiting to be backed up, and its revision.
type Pending = Option<(u64, Arc<Configuration>)>;

impl BackupWriter {
    /// Starts the writing task for `gateway_id` in `dir`; it stops (after writing what
    /// is pending) when `shutdown` is cancelled.
    #[must_use]
    pub fn spawn(
        dir: PathBuf,
        gateway_id: String,
        state: Arc<GatewayState>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = watch::channel::<Pending>(None);
        let task = tokio::spawn(async move {
            let mut written = None;
            loop {
                let stopping = tokio::select! {
                    biased;
                    changed = receiver.changed() => changed.is_err(),
                    () = shutdown.cancelled() => true,
                };
                let pending = receiver.borrow_and_update().clone();
                if let Some((revision, config)) = pending
                    && written != Some(revision)
                {
                    write_logged(&dir, &gateway_id, revision, config, &state).await;
                    written = Some(revision);
                }
                if stopping {
                    return;
                }
            }
        });
        (
            Self {
                latest: Arc::new(sender),
            },
            task,
        )
    }

    /// Asks for `config`, applied at `revision`, to be backed up.
    pub fn save(&self, revision: u64, config: Arc<Configuration>) {
        self.latest.send_replace(Some((revision, config)));
    }
}

async fn write_logged(
    dir: &Path,
    gateway_id: &str,
    revision: u64,
    config: Arc<Configuration>,
    state: &GatewayState,
) {
    let dir = dir.to_owned();
    let gateway_id = gateway_id.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        // The checksum hashes the whole configuration: off the runtime too.
        let snapshot = Snapshot::new(revision, gateway_id, Configuration::clone(&config));
        write(&dir, &snapshot)
    })
    .await;
    match result {
        Ok(Ok(path)) => {
            tracing::debug!(path = %path.display(), revision, "configuration backed up");
        }
        Ok(Err(error)) => {
            state.metrics.config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, revision, "configuration backup failed; the previous backup, if any, is kept");
        }
        Err(error) => {
            state.metrics.config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, revision, "configuration backup task failed");
        }
    }
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
