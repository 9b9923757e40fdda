//! The gateway's one entry for configuration: [`ConfigSink`]. Every source (a
//! configuration file, the control plane, Kubernetes Ingress) produces a
//! [`Configuration`] and offers it here; the gateway knows none of them (the binary
//! wires them up).
//!
//! Every offer is validated and compiled into a [`CompiledConfig`] on a blocking thread
//! (compiling 10,000 APIs takes a while and must not stall a worker); only a complete,
//! valid result is swapped in. A refused offer counts in
//! `gatehouse_config_reload_errors_total{reason}` and leaves the configuration being
//! served untouched; the source logs it with its own context. Offers are serialised, so
//! two sources never interleave a swap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_model::{ConfigError, Configuration};

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

/// The handle configuration sources feed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConfigSink {
    state: Arc<GatewayState>,
}

impl ConfigSink {
    /// The sink of the gateway `state` serves.
    #[must_use]
    pub const fn new(state: Arc<GatewayState>) -> Self {
        Self { state }
    }

    /// Serves `config` if it validates and compiles. `origin` names where it came from
    /// in errors and logs (`gateway.yaml`, `control plane revision 42`); `revision` is
    /// the source's (the control plane's), or `None` for the next local one. Returns the
    /// revision served.
    ///
    /// # Errors
    ///
    /// Any [`LoadError`]; the configuration being served is then unchanged.
    pub async fn offer(
        &self,
        config: Configuration,
        origin: String,
        revision: Option<u64>,
    ) -> Result<u64, LoadError> {
        self.offer_with(origin, revision, move |origin| {
            config.validate().map_err(|errors| {
                LoadError::Config(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    errors,
                })
            })?;
            Ok(config)
        })
        .await
    }

    /// As [`ConfigSink::offer`], with the configuration produced by `make` on the
    /// compiling thread: for a source whose parsing is itself heavy (a large file).
    /// `make` must validate what it returns ([`Configuration::load`] does).
    ///
    /// # Errors
    ///
    /// `make`'s error, or any [`LoadError`] of compiling.
    pub async fn offer_with(
        &self,
        origin: String,
        revision: Option<u64>,
        make: impl FnOnce(&str) -> Result<Configuration, LoadError> + Send + 'static,
    ) -> Result<u64, LoadError> {
        let _writer = self.state.reload_lock.lock().await;
        let revision = revision.unwrap_or_else(|| self.served_revision() + 1);
        let result = compile_and_swap(&self.state, origin, revision, make).await;
        record_outcome(&self.state, &result);
        result
    }

    /// The revision being served (0 before the first configuration).
    #[must_use]
    pub fn served_revision(&self) -> u64 {
        self.state.config.load().revision()
    }

    /// Whether a configuration was loaded (`/readyz` waits for one).
    #[must_use]
    pub fn has_configuration(&self) -> bool {
        !self.state.readiness.pending().contains(&"config")
    }

    /// The gateway's metrics, where sources count their own health (sync errors, token
    /// expiry).
    #[must_use]
    pub fn metrics(&self) -> &crate::Metrics {
        &self.state.metrics
    }
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
