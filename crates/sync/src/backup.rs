//! The configuration backup (APIM's `/apim/config` volume): the last configuration the
//! gateway applied from the control plane, so a restart while the control plane is
//! unreachable still serves.
//!
//! One file per gateway id, `gatehouse-<gatewayId>.snapshot.json`, mode 0600. It holds
//! subscription keys and secret named values, so the [`Snapshot`] (revision, gateway id,
//! configuration, SHA-256 checksum over all three) is sealed with AES-256-GCM: the file
//! is `{"format", "gatewayId", "revision", "keySource", "sealed"}`, `sealed` being
//! base64 of nonce ‖ ciphertext, with the format, gateway id and revision bound as
//! associated data. The key ([`BackupKey`]) is `--config-backup-key` when given (a
//! mounted Secret: the backup then survives token rotation), else derived from the
//! gateway's token (HMAC-SHA256 keyed with the whole token): a backup sealed under one
//! token opens only with that token, so after a token change the gateway needs its
//! control plane once before the backup is usable again. The file is written
//! atomically: a temporary file in the same directory, `fsync`, rename over the old one,
//! `fsync` of the directory; a crash leaves the old backup or the new one, never a mix.
//!
//! Reading checks everything before anything is served: the JSON parses whole (a
//! truncated file does not), the gateway id is this gateway's, the seal opens with this
//! gateway's key (so the file was written by this gateway and not altered), and the
//! snapshot's checksum matches. A backup failing any check is reported with the reason
//! and ignored; it is overwritten by the next good configuration.
//!
//! The functions here block (file I/O, `fsync`): call them from `spawn_blocking`, as
//! [`BackupWriter`] does.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use gatehouse_gateway::ConfigSink;
use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::token::GatewayToken;
use gatehouse_model::{Configuration, Snapshot, SnapshotError};
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
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
    /// The seal does not open with this gateway's key: written under another token or
    /// backup key, or altered.
    #[error(
        "the configuration backup {path} does not open with this gateway's {key}: it was written under another one, or altered"
    )]
    Sealed {
        /// The file.
        path: PathBuf,
        /// Which key was tried.
        key: KeySource,
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

/// The `format` of the files written here.
const FORMAT: &str = "gatehouse-backup-v2";

/// Where a [`BackupKey`] comes from, as the file records it (and errors name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeySource {
    /// Derived from the gateway's token.
    Token,
    /// `--config-backup-key`.
    BackupKey,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token => "token",
            Self::BackupKey => "backup key (--config-backup-key)",
        })
    }
}

/// The AES-256-GCM key backups are sealed with.
#[derive(Clone)]
pub struct BackupKey {
    cipher: Aes256Gcm,
    source: KeySource,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({}, <redacted>)", self.source)
    }
}

/// A `--config-backup-key` that is not base64 of 32 bytes.
#[derive(Debug, thiserror::Error)]
#[error(
    "the configuration backup key must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)"
)]
pub struct BadBackupKey;

impl BackupKey {
    /// The key given as base64 of 32 bytes (`--config-backup-key`).
    ///
    /// # Errors
    ///
    /// [`BadBackupKey`] unless it is that.
    pub fn from_base64(text: &str) -> Result<Self, BadBackupKey> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| BadBackupKey)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| BadBackupKey)?;
        Ok(Self {
            cipher,
            source: KeySource::BackupKey,
        })
    }

    /// The key derived from `token`: HMAC-SHA256 keyed with the whole token (its
    /// signature is 512 bits of secret) over a fixed label.
    #[must_use]
    pub fn from_token(token: &GatewayToken) -> Self {
        // HMAC takes a key of any length: `new_from_slice` cannot fail.
        let mac =
            <Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(token.to_header_value().as_bytes())
                .map(|mac| {
                    mac.chain_update(b"gatehouse configuration backup v2")
                        .finalize()
                });
        let key: [u8; 32] = mac.map(|m| m.into_bytes().into()).unwrap_or_default();
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            source: KeySource::Token,
        }
    }

    /// Where this key comes from.
    #[must_use]
    pub const fn source(&self) -> KeySource {
        self.source
    }
}

/// Which key seals each backup: the one given, or the one derived from the token in use
/// at the time (the token file may change).
#[derive(Debug, Clone)]
pub enum BackupKeys {
    /// `--config-backup-key`.
    Given(Box<BackupKey>),
    /// Derived from the current token.
    FromToken(Arc<crate::token::TokenSource>),
}

impl BackupKeys {
    /// The key to seal or open with now.
    #[must_use]
    pub fn current(&self) -> BackupKey {
        match self {
            Self::Given(key) => BackupKey::clone(key),
            Self::FromToken(token) => BackupKey::from_token(&token.current()),
        }
    }
}

/// The backup file: the sealed snapshot, and in clear what is bound to it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SealedFile {
    format: String,
    gateway_id: String,
    revision: u64,
    key_source: KeySource,
    /// base64(nonce ‖ AES-256-GCM ciphertext of the snapshot's JSON).
    sealed: String,
}

fn associated_data(gateway_id: &str, revision: u64) -> Vec<u8> {
    format!("{FORMAT}\n{gateway_id}\n{revision}").into_bytes()
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

/// Reads and checks the backup of `gateway_id` in `dir`, opening it with `key`:
/// `Ok(None)` when there is none.
///
/// # Errors
///
/// [`BackupError`] when there is one but it cannot be read, is not a whole sealed
/// backup, is of another gateway, does not open with `key` or fails its checksum.
/// Nothing of it should be used then.
pub fn read(
    dir: &Path,
    gateway_id: &str,
    key: &BackupKey,
) -> Result<Option<Snapshot>, BackupError> {
    let path = backup_path(dir, gateway_id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BackupError::Read { path, source }),
    };
    let corrupt = |path: &Path, message: String| BackupError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let file: SealedFile = serde_json::from_slice(&bytes).map_err(|error| {
        corrupt(
            &path,
            format!("{error} (a backup written before backups were sealed is not read)"),
        )
    })?;
    if file.format != FORMAT {
        return Err(corrupt(
            &path,
            format!("unknown format `{}` (expected `{FORMAT}`)", file.format),
        ));
    }
    if file.gateway_id != gateway_id {
        return Err(BackupError::OtherGateway {
            path,
            expected: gateway_id.to_owned(),
            found: file.gateway_id,
        });
    }
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&file.sealed)
        .map_err(|error| corrupt(&path, format!("`sealed` is not base64: {error}")))?;
    let Some((nonce, ciphertext)) = sealed.split_at_checked(12) else {
        return Err(corrupt(&path, "`sealed` is too short".to_owned()));
    };
    let aad = associated_data(&file.gateway_id, file.revision);
    let plain = key
        .cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| BackupError::Sealed {
            path: path.clone(),
            key: key.source,
        })?;
    let snapshot: Snapshot = serde_json::from_slice(&plain)
        .map_err(|error| corrupt(&path, format!("the sealed snapshot: {error}")))?;
    if snapshot.gateway_id != file.gateway_id || snapshot.revision != file.revision {
        return Err(corrupt(
            &path,
            "the sealed snapshot is not the one the file names".to_owned(),
        ));
    }
    snapshot.verify().map_err(|source| BackupError::Checksum {
        path: path.clone(),
        source,
    })?;
    Ok(Some(snapshot))
}

/// Writes `snapshot`, sealed with `key`, as the backup of its gateway in `dir`,
/// atomically, mode 0600. Returns the file's path.
///
/// # Errors
///
/// [`BackupError::Write`]; the previous backup, if any, is then intact.
pub fn write(dir: &Path, snapshot: &Snapshot, key: &BackupKey) -> Result<PathBuf, BackupError> {
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
    let plain = serde_json::to_vec(snapshot)
        .map_err(|error| failed(&temp)(std::io::Error::other(error)))?;
    let nonce: [u8; 12] = rand::random();
    let aad = associated_data(&snapshot.gateway_id, snapshot.revision);
    let ciphertext = key
        .cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| failed(&temp)(std::io::Error::other("sealing the backup failed")))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ciphertext);
    let file = SealedFile {
        format: FORMAT.to_owned(),
        gateway_id: snapshot.gateway_id.clone(),
        revision: snapshot.revision,
        key_source: key.source,
        sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
    };
    let bytes =
        serde_json::to_vec(&file).map_err(|error| failed(&temp)(std::io::Error::other(error)))?;
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
        keys: BackupKeys,
        sink: ConfigSink,
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
                    let key = keys.current();
                    write_logged(&dir, &gateway_id, &key, revision, config, &sink).await;
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
    key: &BackupKey,
    revision: u64,
    config: Arc<Configuration>,
    sink: &ConfigSink,
) {
    let dir = dir.to_owned();
    let gateway_id = gateway_id.to_owned();
    let key = key.clone();
    let result = tokio::task::spawn_blocking(move || {
        // The checksum hashes the whole configuration, and sealing encrypts it: off the
        // runtime too.
        let snapshot = Snapshot::new(revision, gateway_id, Configuration::clone(&config));
        write(&dir, &snapshot, &key)
    })
    .await;
    match result {
        Ok(Ok(path)) => {
            tracing::debug!(path = %path.display(), revision, "configuration backed up");
        }
        Ok(Err(error)) => {
            sink.metrics().config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, revision, "configuration backup failed; the previous backup, if any, is kept");
        }
        Err(error) => {
            sink.metrics().config_sync_error(SyncErrorReason::Backup);
            tracing::error!(error = %error, revision, "configuration backup task failed");
        }
    }
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
