//! Loading a configuration file, and reloading it on change or on demand.
//!
//! Every load reads the file, parses and validates it, and compiles it into a
//! [`CompiledConfig`] on a blocking thread (compiling 10,000 APIs takes a while and must
//! not stall a worker); only a complete, valid result is swapped in. A failed load logs
//! the error, counts it in `gatehouse_config_reload_errors_total{reason}` and leaves the
//! configuration being served untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_model::{ConfigError, Configuration};
use tokio_util::sync::CancellationToken;

use crate::GatewayState;
use crate::compiled::{CompileError, CompiledConfig};
use crate::metrics::ConfigErrorReason;

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid configuration document.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The document is valid but could not be compiled (policy or routing error).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The compile task panicked or was cancelled.
    #[error("configuration compile task failed: {0}")]
    Task(String),
}

impl LoadError {
    /// Closed reason for the error metric.
    #[must_use]
    pub const fn reason(&self) -> ConfigErrorReason {
        match self {
            Self::Read { .. } | Self::Task(_) => ConfigErrorReason::Read,
            Self::Config(ConfigError::Yaml { .. }) => ConfigErrorReason::Parse,
            Self::Config(ConfigError::Invalid { .. }) => ConfigErrorReason::Invalid,
            Self::Compile(error) => error.reason(),
        }
    }
}

/// Loads `path` and, if it is valid, serves it. Returns the new revision.
///
/// # Errors
///
/// Any [`LoadError`]; the configuration being served is then unchanged.
pub async fn load_file(state: &Arc<GatewayState>, path: &Path) -> Result<u64, LoadError> {
    let _writer = state.reload_lock.lock().await;
    let result = load_file_locked(state, path).await;
    record_outcome(state, &result);
    result
}

/// Serves an already-parsed configuration at `revision` (the control plane's), if it
/// compiles. `origin` names where it came from in errors (`control plane revision 42`).
/// This is how configuration sources other than a file (the control plane, Ingress)
/// hand their result to the data plane.
///
/// # Errors
///
/// Any [`LoadError`]; the configuration being served is then unchanged.
pub async fn apply_configuration(
    state: &Arc<GatewayState>,
    config: Configuration,
    origin: String,
    revision: u64,
) -> Result<u64, LoadError> {
    let _writer = state.reload_lock.lock().await;
    let result = async {
        config.validate().map_err(|errors| {
            LoadError::Config(ConfigError::Invalid {
                origin: origin.clone(),
                errors,
            })
        })?;
        compile_and_swap(state, origin, revision, move |_| Ok(config)).await
    }
    .await;
    record_outcome(state, &result);
    result
}

fn record_outcome(state: &GatewayState, result: &Result<u64, LoadError>) {
    match result {
        Ok(revision) => {
            state
                .metrics
                .config_revision
                .set(i64::try_from(*revision).unwrap_or(i64::MAX));
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            state.metrics.config_last_success_timestamp_seconds.set(now);
            state.readiness.set_config_loaded();
        }
        Err(error) => state.metrics.config_error(error.reason()),
    }
}

async fn load_file_locked(state: &Arc<GatewayState>, path: &Path) -> Result<u64, LoadError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
    let origin = path.display().to_string();
    let revision = state.config.load().revision() + 1;
    compile_and_swap(state, origin, revision, move |origin| {
        Ok(Configuration::load(origin, &text)?)
    })
    .await
}

/// Produces the configuration with `make` and compiles it on a blocking thread, then
/// swaps it in. Nothing is swapped unless both succeed.
async fn compile_and_swap(
    state: &Arc<GatewayState>,
    origin: String,
    revision: u64,
    make: impl FnOnce(&str) -> Result<Configuration, LoadError> + Send + 'static,
) -> Result<u64, LoadError> {
    let build_state = state.clone();
    let label = origin.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let config = make(&label)?;
        let compiled = CompiledConfig::build(
            &config,
            &label,
            revision,
            &build_state.metrics,
            &build_state.tls,
        )?;
        Ok::<_, LoadError>(compiled)
    })
    .await
    .map_err(|e| LoadError::Task(e.to_string()))??;
    let summary = compiled.summary();
    let expiry = compiled.certificate_expiry.clone();
    let compiled = Arc::new(compiled);
    let previous = state.config.swap(compiled.clone());
    // While the previous configuration is held, its series are alive: the new one takes
    // over those of the APIs it keeps (including any created since it was built), and
    // those of removed APIs go once the previous configuration's last request ends.
    compiled.adopt_series();
    drop(previous);
    state.config_swapped.send_replace(revision);
    report_certificate_expiry(state, &expiry);
    tracing::info!(%origin, revision, apis = summary.apis, operations = summary.operations, subscriptions = summary.subscriptions, "configuration loaded");
    Ok(revision)
}

/// A certificate this close to expiry is logged at warning level on every load.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Publishes when the served certificates expire, and warns of those expiring soon.
fn report_certificate_expiry(state: &GatewayState, expiry: &[(String, i64)]) {
    state
        .metrics
        .set_tls_certificate_expiry(expiry.iter().map(|(host, at)| (host.as_str(), *at)));
    let now = i64::try_from(state.now().as_secs()).unwrap_or(i64::MAX);
    let soon = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
    for (hostname, not_after) in expiry {
        if *not_after < now {
            tracing::error!(
                hostname,
                expired = %gatehouse_tls::certificate::rfc3339(*not_after),
                "the TLS certificate of this host name has expired and is still presented: clients refuse it until it is replaced; everything else is served"
            );
        } else if not_after - now < soon {
            tracing::warn!(
                hostname,
                expires = %gatehouse_tls::certificate::rfc3339(*not_after),
                "TLS certificate expires in less than 14 days; renew it"
            );
        }
    }
}

/// Reloads and logs the outcome; the configuration served is only replaced on success.
pub async fn reload_and_log(state: &Arc<GatewayState>, path: &Path, trigger: &'static str) {
    if let Err(error) = load_file(state, path).await {
        tracing::error!(path = %path.display(), trigger, error = %error, "configuration rejected; still serving the previous one");
    }
}

/// Watches `path` and reloads it when it changes, until `shutdown` is cancelled.
///
/// The parent directory is watched rather than the file, so atomic replacements
/// (rename over the file, Kubernetes ConfigMap symlink swaps) are seen too.
///
/// # Errors
///
/// If the watcher cannot be created.
pub fn watch_file(
    state: Arc<GatewayState>,
    path: PathBuf,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let watched = path.clone();
    gatehouse_watch::watch_files(&[&watched], shutdown, move || {
        let state = state.clone();
        let path = path.clone();
        async move { reload_and_log(&state, &path, "file-change").await }
    })
}
