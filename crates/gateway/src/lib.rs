//! The Gatehouse data plane.
//!
//! A request flows through [`proxy::handle`]: health check, route (host + path →
//! API → operation), subscription key, the operation's compiled policy pipeline
//! (inbound, backend, outbound, on-error), the backend exchange, and an access-log line
//! when the response body ends. Everything a request needs comes from one
//! [`CompiledConfig`], loaded once at the start of the request from an `ArcSwap`: a
//! reload builds and validates the next configuration off the request path, then swaps
//! it in atomically, and in-flight requests finish on the configuration they started
//! with.
//!
//! This crate does not parse command lines or set up logging (the `gatehouse` binary
//! does), and it knows no configuration source: a file, the control plane
//! (`gatehouse-sync`) and Kubernetes Ingress all offer configurations to one
//! [`ConfigSink`], which the binary hands them; it serves whatever compiles.

pub mod access_log;
pub mod admin;
pub mod compiled;
pub mod handshake;
mod http3;
pub mod identity;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod series;
pub mod server;
pub mod subscriptions;
pub mod tls;

use arc_swap::ArcSwap;

pub use access_log::AccessLog;
pub use admin::Readiness;
pub use compiled::{CompileError, CompiledConfig};
pub use metrics::{Metrics, MetricsOptions};
pub use reload::{ConfigSink, Layer, Layers, LoadError, merge_layers};
pub use server::{Gateway, Limits, ServerError, ServerSettings};

/// State shared by every worker, the admin listener and the reloader.
#[derive(Debug)]
pub struct GatewayState {
    /// The configuration being served. Requests `load` it once; reloads `store` a new one.
    pub config: ArcSwap<CompiledConfig>,
    /// Rate-limit, quota and concurrency counters; they outlive configurations.
    pub counters: gatehouse_policy::Counters,
    /// Process metrics.
    pub metrics: Metrics,
    /// Access-log writer.
    pub access_log: AccessLog,
    /// What `/readyz` waits for.
    pub readiness: Readiness,
    /// TLS versions and cipher suites of the HTTPS listener and of backend connections.
    pub tls: tls::TlsSettings,
    /// The gateway's identity for `authentication-managed-identity`, if configured.
    pub identity: Option<identity::IdentityTokens>,
    /// Serialises configuration writers (file watcher, SIGHUP); readers never touch it.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// The revision of each configuration stored into `config`, for what must follow a
    /// swap outside the request path (the HTTP/3 endpoint's certificates).
    pub(crate) config_swapped: tokio::sync::watch::Sender<u64>,
    /// Origin of the clock handed to policies (`RequestFacts::now`): a monotonic
    /// instant, and the Unix time it stood for.
    epoch: tokio::time::Instant,
    epoch_unix: std::time::Duration,
}

impl GatewayState {
    /// State with an empty configuration (every request gets 404) until one is loaded.
    #[must_use]
    pub fn new(metrics: Metrics, access_log: AccessLog) -> Self {
        Self {
            config: ArcSwap::from_pointee(CompiledConfig::empty(&metrics)),
            counters: gatehouse_policy::Counters::default(),
            metrics,
            access_log,
            readiness: Readiness::default(),
            tls: tls::TlsSettings::default(),
            identity: None,
            reload_lock: tokio::sync::Mutex::new(()),
            config_swapped: tokio::sync::watch::Sender::new(0),
            epoch: tokio::time::Instant::now(),
            epoch_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// The same state with this identity (call before sharing it).
    #[must_use]
    pub fn with_identity(mut self, identity: Option<identity::IdentityTokens>) -> Self {
        self.identity = identity;
        self
    }

    /// The same state with these TLS settings (call before sharing it).
    #[must_use]
    pub fn with_tls(mut self, tls: tls::TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// The clock of rate limits, quotas and concurrency counters: Unix time (quota
    /// windows align to `first-period-start` in it) that advances monotonically, so a
    /// wall-clock step never rewinds or skips a window.
    #[must_use]
    pub fn now(&self) -> std::time::Duration {
        self.epoch_unix + self.epoch.elapsed()
    }

    /// Sweeps expired counters every `interval` until `shutdown` is cancelled, so keys
    /// seen once (client IPs, say) do not accumulate.
    pub async fn sweep_counters(
        &self,
        interval: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    let removed = self.counters.sweep(self.now());
                    if removed > 0 {
                        tracing::debug!(removed, remaining = self.counters.len(), "swept expired rate-limit counters");
                    }
                }
            }
        }
    }
}
