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

use std::collections::HashMap;
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
    /// With several sources at once (hybrid mode): this source's layer.
    layer: Option<(Arc<Layers>, &'static str)>,
}

/// The configurations of several sources feeding one gateway (hybrid mode: Kubernetes
/// Ingress and the control plane), merged last one wins (see [`merge_layers`]).
#[derive(Debug)]
pub struct Layers {
    /// Each source's latest configuration, and the clock of changes.
    entries: tokio::sync::Mutex<LayerEntries>,
    /// The sources that must all have offered a configuration before the gateway is
    /// ready (`/readyz`); what arrives earlier is served meanwhile.
    required: Vec<&'static str>,
}

#[derive(Debug, Default, Clone)]
struct LayerEntries {
    layers: Vec<Layer>,
    /// Counts the changes offered by every source: the order "last one wins" follows.
    clock: u64,
}

/// One source's latest configuration.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The source (`kubernetes ingress`, `control plane`).
    pub name: &'static str,
    /// What it offered last.
    pub config: Configuration,
    /// When it last offered a change (the [`Layers`] clock).
    pub changed: u64,
    /// For each of its APIs (by id), when it last offered a change to that API.
    pub api_changed: HashMap<String, u64>,
}

impl Layers {
    /// No source has offered anything yet; the gateway is ready once each of `required`
    /// has.
    #[must_use]
    pub fn new(required: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            entries: tokio::sync::Mutex::default(),
            required: required.to_vec(),
        })
    }

    /// Whether the source `name` has offered a configuration.
    pub async fn has(&self, name: &str) -> bool {
        self.entries
            .lock()
            .await
            .layers
            .iter()
            .any(|layer| layer.name == name)
    }
}

/// Merges the sources' configurations "last one wins" (seed 002): when two sources have
/// an API with the same id or serving the same host names and path (what a client would
/// reach), the one changed last is served and the other is dropped with what referred
/// to it (its products' lists, its subscriptions, gateway assignments). Other entities
/// with the same id: the source that changed last wins. Pure.
#[must_use]
pub fn merge_layers(layers: &[Layer]) -> Configuration {
    let route = |api: &gatehouse_model::Api| {
        let mut hosts: Vec<String> = api
            .hostnames
            .iter()
            .map(|host| host.to_ascii_lowercase())
            .collect();
        hosts.sort();
        (hosts, api.path.trim_matches('/').to_ascii_lowercase())
    };
    let stamp = |layer: &Layer, api: &gatehouse_model::Api| {
        layer
            .api_changed
            .get(&api.id)
            .copied()
            .unwrap_or(layer.changed)
    };
    // An API loses to a clashing API of another source changed later (a tie goes to
    // the source changed last).
    let loses = |index: usize, api: &gatehouse_model::Api| {
        let mine = (stamp(&layers[index], api), layers[index].changed);
        layers.iter().enumerate().any(|(other, layer)| {
            other != index
                && layer.config.apis.iter().any(|theirs| {
                    (theirs.id == api.id || route(theirs) == route(api))
                        && (stamp(layer, theirs), layer.changed) > mine
                })
        })
    };
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&index| layers[index].changed);
    let mut merged = Configuration::default();
    let mut dropped: Vec<String> = Vec::new();
    for index in order {
        let mut config = layers[index].config.clone();
        config.apis.retain(|api| {
            let keep = !loses(index, api);
            if !keep {
                dropped.push(api.id.clone());
            }
            keep
        });
        merged.overlay(config);
    }
    dropped.retain(|id| !merged.apis.iter().any(|api| &api.id == id));
    if !dropped.is_empty() {
        for product in &mut merged.products {
            product.apis.retain(|id| !dropped.contains(id));
        }
        merged.subscriptions.retain(|subscription| {
            !matches!(&subscription.scope, gatehouse_model::SubscriptionScope::Api(id) if dropped.contains(id))
        });
        for gateway in &mut merged.gateways {
            gateway.apis.retain(|id| !dropped.contains(id));
        }
    }
    merged
}

impl ConfigSink {
    /// The sink of the gateway `state` serves.
    #[must_use]
    pub const fn new(state: Arc<GatewayState>) -> Self {
        Self { state, layer: None }
    }

    /// The sink of one of several sources feeding the gateway together (hybrid mode):
    /// what it offers replaces its layer of `layers`, and the gateway serves the layers
    /// merged ([`merge_layers`]).
    #[must_use]
    pub const fn layer(state: Arc<GatewayState>, layers: Arc<Layers>, name: &'static str) -> Self {
        Self {
            state,
            layer: Some((layers, name)),
        }
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
        if let Some((layers, name)) = &self.layer {
            return self.offer_layer(layers, name, config, origin).await;
        }
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
        self.compile_and_serve(origin, revision, make, true).await
    }

    /// Compiles and swaps in what `make` produces; `ready`: the gateway is ready once it
    /// is served.
    async fn compile_and_serve(
        &self,
        origin: String,
        revision: Option<u64>,
        make: impl FnOnce(&str) -> Result<Configuration, LoadError> + Send + 'static,
        ready: bool,
    ) -> Result<u64, LoadError> {
        let _writer = self.state.reload_lock.lock().await;
        let revision = revision.unwrap_or_else(|| self.served_revision() + 1);
        let result = compile_and_swap(&self.state, origin, revision, make).await;
        record_outcome(&self.state, &result, ready);
        result
    }

    /// Hybrid mode: replaces this source's layer and serves the merge. The layer is kept
    /// only when the merge compiles, so a refused offer changes nothing.
    async fn offer_layer(
        &self,
        layers: &Layers,
        name: &'static str,
        config: Configuration,
        origin: String,
    ) -> Result<u64, LoadError> {
        // Held across the compile: two sources never interleave their merges.
        let mut entries = layers.entries.lock().await;
        let mut next = entries.clone();
        next.clock += 1;
        let now = next.clock;
        let previous = next
            .layers
            .iter()
            .position(|layer| layer.name == name)
            .map(|index| next.layers.remove(index));
        // An API the source offers unchanged keeps when it last changed.
        let api_changed = config
            .apis
            .iter()
            .map(|api| {
                let unchanged = previous.as_ref().and_then(|layer| {
                    let before = layer.config.apis.iter().find(|old| old.id == api.id)?;
                    (before == api).then(|| layer.api_changed.get(&api.id).copied())?
                });
                (api.id.clone(), unchanged.unwrap_or(now))
            })
            .collect();
        next.layers.push(Layer {
            name,
            config,
            changed: now,
            api_changed,
        });
        let merged = merge_layers(&next.layers);
        let origin = format!("{origin} (merged with the other sources, last one wins)");
        let ready = layers
            .required
            .iter()
            .all(|required| next.layers.iter().any(|layer| layer.name == *required));
        let make = move |origin: &str| {
            merged.validate().map_err(|errors| {
                LoadError::Config(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    errors,
                })
            })?;
            Ok(merged)
        };
        let result = self.compile_and_serve(origin, None, make, ready).await;
        if result.is_ok() {
            *entries = next;
        }
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

fn record_outcome(state: &GatewayState, result: &Result<u64, LoadError>, ready: bool) {
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
            if ready {
                state.readiness.set_config_loaded();
            }
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

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
