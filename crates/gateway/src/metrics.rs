//! Prometheus metrics of the data plane.
//!
//! Families are registered once per process in [`Metrics::new`]. The request path never
//! looks a label set up in a family (that takes the family's lock): when a configuration
//! is compiled, each operation resolves its own handles ([`OperationMetrics`]) and the
//! request path only bumps atomics. Histograms are [`AtomicHistogram`] for the same
//! reason: `prometheus_client`'s histogram takes a write lock per observation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: 0.5 ms … 60 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Labels of per-operation request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// API id, or `-` when no API matched.
    pub api: String,
    /// Operation id, or `-`.
    pub operation: String,
    /// `1xx` … `5xx`.
    pub status_class: StatusClass,
}

/// Labels of per-API latency histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// API id, or `-` when no API matched.
    pub api: String,
}

/// Why a configuration could not be loaded; a closed set, used as a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ConfigErrorReason {
    /// The file could not be read.
    Read,
    /// YAML syntax or format error.
    Parse,
    /// References, ids or templates are inconsistent.
    Invalid,
    /// A policy document failed to parse or compile.
    Policy,
    /// The routing table could not be built.
    Routing,
    /// A certificate, key or TLS setting could not be loaded.
    Tls,
}

impl ConfigErrorReason {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Parse => "parse",
            Self::Invalid => "invalid",
            Self::Policy => "policy",
            Self::Routing => "routing",
            Self::Tls => "tls",
        }
    }
}

impl EncodeLabelValue for ConfigErrorReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `gatehouse_config_reload_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigErrorLabels {
    /// Closed set of reasons.
    pub reason: ConfigErrorReason,
}

/// Why an exchange with the control plane's Configuration API v2 failed, or why what it
/// sent could not be served; a closed set, used as a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SyncErrorReason {
    /// The control plane could not be reached, or the connection broke mid-exchange.
    Connect,
    /// The TLS handshake with the control plane failed: its certificate is not trusted
    /// (unknown issuer), names another host, or expired; or it does not speak TLS.
    Tls,
    /// The control plane did not answer in time.
    Timeout,
    /// 401 or 403: the token is expired, revoked, malformed or for another gateway.
    Status4xxAuth,
    /// Another 4xx (the gateway does not exist, say).
    Status4xx,
    /// A 5xx from the control plane.
    Status5xx,
    /// An answer that is not what the Configuration API v2 sends (not JSON, wrong
    /// shape, wrong gateway, an entity that does not parse).
    BadResponse,
    /// A snapshot whose checksum does not match its configuration.
    Checksum,
    /// The configuration received does not validate or compile; the previous one kept
    /// serving.
    Compile,
    /// `410 Gone`: the revision asked from was compacted; a new snapshot is taken.
    Gone,
    /// The token file could not be read or does not hold a token.
    Token,
    /// The configuration backup could not be read or written.
    Backup,
}

impl SyncErrorReason {
    /// Every reason, so dashboards see zeros rather than missing series.
    pub const ALL: [Self; 12] = [
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::Status4xxAuth,
        Self::Status4xx,
        Self::Status5xx,
        Self::BadResponse,
        Self::Checksum,
        Self::Compile,
        Self::Gone,
        Self::Token,
        Self::Backup,
    ];

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Status4xxAuth => "status_4xx_auth",
            Self::Status4xx => "status_4xx",
            Self::Status5xx => "status_5xx",
            Self::BadResponse => "bad_response",
            Self::Checksum => "checksum",
            Self::Compile => "compile",
            Self::Gone => "gone",
            Self::Token => "token",
            Self::Backup => "backup",
        }
    }
}

impl EncodeLabelValue for SyncErrorReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `gatehouse_config_sync_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncErrorLabels {
    /// Closed set of reasons.
    pub reason: SyncErrorReason,
}

/// Which part of a request a client was too slow to send; a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// The request head (`header_read_timeout`); HTTP/1.1 only.
    Header,
    /// The next piece of the request body (`body_read_timeout`).
    Body,
}

impl TimeoutPhase {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Body => "body",
        }
    }
}

impl EncodeLabelValue for TimeoutPhase {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `gatehouse_client_timeouts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    /// Head or body.
    pub phase: TimeoutPhase,
}

/// HTTP status class label: `1xx` … `5xx`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StatusClass {
    /// 1xx.
    Informational,
    /// 2xx.
    Success,
    /// 3xx.
    Redirection,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
}

impl EncodeLabelValue for StatusClass {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let text = match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
        };
        std::fmt::Write::write_str(encoder, text)
    }
}

impl StatusClass {
    const ALL: [Self; 5] = [
        Self::Informational,
        Self::Success,
        Self::Redirection,
        Self::ClientError,
        Self::ServerError,
    ];

    fn index(status: u16) -> usize {
        usize::from(status / 100).clamp(1, 5) - 1
    }
}

/// The process's metric families and registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ApiLabels, AtomicHistogram, fn() -> AtomicHistogram>,
    backend_duration: Family<ApiLabels, AtomicHistogram, fn() -> AtomicHistogram>,
    /// Open client connections on the data listeners.
    pub active_connections: Gauge,
    /// Requests currently being processed.
    pub in_flight_requests: Gauge,
    /// Revision of the configuration being served.
    pub config_revision: Gauge,
    /// Unix time of the last successful configuration load.
    pub config_last_success_timestamp_seconds: Gauge,
    config_reload_errors: Family<ConfigErrorLabels, Counter>,
    config_sync_errors: Family<SyncErrorLabels, Counter>,
    /// Expiry of the gateway token (Unix seconds); 0 when the gateway has none (file
    /// mode).
    pub token_expiry_timestamp_seconds: Gauge,
    /// Access-log lines dropped because the writer could not keep up.
    pub access_log_dropped: Counter,
    /// Client connections closed at accept because `max_connections` were open.
    pub connections_rejected: Counter,
    /// Clients that did not send their request head within `header_read_timeout`
    /// (`gatehouse_client_timeouts_total{phase="header"}`).
    pub client_header_timeouts: Counter,
    /// Clients that paused their request body for longer than `body_read_timeout`
    /// (`gatehouse_client_timeouts_total{phase="body"}`).
    pub client_body_timeouts: Counter,
    /// Requests refused for their framing or header syntax: what the HTTP/1.1 parser
    /// rejects (400, 414, 431) and what the gateway adds (`Content-Length` with
    /// `Transfer-Encoding`, a transfer coding other than `chunked`).
    pub malformed_requests: Counter,
    /// `gatehouse_tls_handshakes_total{version}`, resolved per version.
    tls_handshakes: [(&'static str, Counter); 3],
    /// `gatehouse_tls_handshake_errors_total{reason}`, resolved per reason.
    tls_handshake_errors: [(&'static str, Counter); 7],
    /// `gatehouse_tls_certificate_expiry_timestamp_seconds{hostname}`.
    tls_certificate_expiry: Family<HostnameLabels, Gauge>,
}

/// Labels of per-host-name TLS metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostnameLabels {
    hostname: String,
}

/// Labels of `gatehouse_tls_handshakes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsVersionLabels {
    version: String,
}

/// Labels of `gatehouse_tls_handshake_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsErrorLabels {
    reason: String,
}

/// Every value of `gatehouse_tls_handshake_errors_total{reason}`
/// ([`crate::handshake::HandshakeError::reason`]).
const TLS_ERROR_REASONS: [&str; 7] = [
    "timeout",
    "not_configured",
    "unknown_server_name",
    "client_certificate",
    "incompatible",
    "protocol",
    "io",
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn new_latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(&LATENCY_BUCKETS)
}

impl Metrics {
    /// Creates and registers every family under the `gatehouse` prefix.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests handled, by API, operation and status class",
            requests.clone(),
        );
        let request_duration: Family<ApiLabels, AtomicHistogram, fn() -> AtomicHistogram> =
            Family::new_with_constructor(new_latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from request received to response body finished, by API",
            request_duration.clone(),
        );
        let backend_duration: Family<ApiLabels, AtomicHistogram, fn() -> AtomicHistogram> =
            Family::new_with_constructor(new_latency_histogram);
        registry.register(
            "backend_duration_seconds",
            "Time from request sent to the backend to its response head, by API",
            backend_duration.clone(),
        );
        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Open client connections on the data listeners",
            active_connections.clone(),
        );
        let in_flight_requests = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests currently being processed",
            in_flight_requests.clone(),
        );
        let config_revision = Gauge::default();
        registry.register(
            "config_revision",
            "Revision of the configuration being served",
            config_revision.clone(),
        );
        let config_last_success_timestamp_seconds = Gauge::default();
        registry.register(
            "config_last_success_timestamp_seconds",
            "Unix time of the last successful configuration load",
            config_last_success_timestamp_seconds.clone(),
        );
        let config_reload_errors = Family::<ConfigErrorLabels, Counter>::default();
        registry.register(
            "config_reload_errors",
            "Configuration loads rejected, by reason; the previous configuration kept serving",
            config_reload_errors.clone(),
        );
        let config_sync_errors = Family::<SyncErrorLabels, Counter>::default();
        registry.register(
            "config_sync_errors",
            "Failed exchanges with the control plane and configurations from it that could not be served, by reason; the last good configuration kept serving",
            config_sync_errors.clone(),
        );
        let token_expiry_timestamp_seconds = Gauge::default();
        registry.register(
            "token_expiry_timestamp_seconds",
            "Expiry of the gateway token (Unix seconds); 0 without a control plane",
            token_expiry_timestamp_seconds.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access-log lines dropped because the log writer could not keep up",
            access_log_dropped.clone(),
        );
        let connections_rejected = Counter::default();
        registry.register(
            "connections_rejected",
            "Client connections closed at accept because the connection limit was reached",
            connections_rejected.clone(),
        );
        // Both phases resolved here, so the request path only bumps an atomic.
        let client_timeouts = Family::<TimeoutLabels, Counter>::default();
        registry.register(
            "client_timeouts",
            "Clients too slow to send a request head or the next piece of a request body, by phase",
            client_timeouts.clone(),
        );
        let client_timeout = |phase| {
            client_timeouts
                .get_or_create(&TimeoutLabels { phase })
                .clone()
        };
        let client_header_timeouts = client_timeout(TimeoutPhase::Header);
        let client_body_timeouts = client_timeout(TimeoutPhase::Body);
        let malformed_requests = Counter::default();
        registry.register(
            "malformed_requests",
            "Requests refused for their framing or header syntax (400, 414, 431); the connection was closed",
            malformed_requests.clone(),
        );
        let handshakes = Family::<TlsVersionLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes on the HTTPS listener, by TLS version",
            handshakes.clone(),
        );
        let tls_handshakes = ["TLSv1_2", "TLSv1_3", "unknown"].map(|version| {
            let counter = handshakes
                .get_or_create(&TlsVersionLabels {
                    version: version.to_owned(),
                })
                .clone();
            (version, counter)
        });
        let handshake_errors = Family::<TlsErrorLabels, Counter>::default();
        registry.register(
            "tls_handshake_errors",
            "Failed TLS handshakes on the HTTPS listener, by reason",
            handshake_errors.clone(),
        );
        let tls_handshake_errors = TLS_ERROR_REASONS.map(|reason| {
            let counter = handshake_errors
                .get_or_create(&TlsErrorLabels {
                    reason: reason.to_owned(),
                })
                .clone();
            (reason, counter)
        });
        let tls_certificate_expiry = Family::<HostnameLabels, Gauge>::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the certificate served for each TLS host name expires (Unix seconds)",
            tls_certificate_expiry.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            backend_duration,
            active_connections,
            in_flight_requests,
            config_revision,
            config_last_success_timestamp_seconds,
            config_reload_errors,
            config_sync_errors,
            token_expiry_timestamp_seconds,
            access_log_dropped,
            connections_rejected,
            client_header_timeouts,
            client_body_timeouts,
            malformed_requests,
            tls_handshakes,
            tls_handshake_errors,
            tls_certificate_expiry,
        }
    }

    /// Counts a completed TLS handshake (`version`: `TLSv1_2`, `TLSv1_3`).
    pub fn tls_handshake(&self, version: &str) {
        let index = match version {
            "TLSv1_2" => 0,
            "TLSv1_3" => 1,
            _ => 2,
        };
        self.tls_handshakes[index].1.inc();
    }

    /// Counts a failed TLS handshake by its reason label.
    pub fn tls_handshake_failed(&self, reason: &str) {
        if let Some((_, counter)) = self.tls_handshake_errors.iter().find(|(r, _)| *r == reason) {
            counter.inc();
        }
    }

    /// Replaces the certificate expiry series with those of the configuration now
    /// served: `(hostname, not_after)` pairs.
    pub fn set_tls_certificate_expiry<'a>(&self, hosts: impl IntoIterator<Item = (&'a str, i64)>) {
        self.tls_certificate_expiry.clear();
        for (hostname, not_after) in hosts {
            self.tls_certificate_expiry
                .get_or_create(&HostnameLabels {
                    hostname: hostname.to_owned(),
                })
                .set(not_after);
        }
    }

    /// Resolves the handles one operation (or the `-` pseudo-operation for unmatched
    /// requests) bumps on the request path. Called at configuration compile time.
    #[must_use]
    pub fn operation(&self, api: &str, operation: &str) -> OperationMetrics {
        let requests = StatusClass::ALL.map(|status_class| {
            self.requests
                .get_or_create(&RequestLabels {
                    api: api.to_owned(),
                    operation: operation.to_owned(),
                    status_class,
                })
                .clone()
        });
        let labels = ApiLabels {
            api: api.to_owned(),
        };
        OperationMetrics(Arc::new(OperationMetricsInner {
            requests,
            request_duration: self.request_duration.get_or_create(&labels).clone(),
            backend_duration: self.backend_duration.get_or_create(&labels).clone(),
        }))
    }

    /// Counts a rejected configuration.
    pub fn config_error(&self, reason: ConfigErrorReason) {
        self.config_reload_errors
            .get_or_create(&ConfigErrorLabels { reason })
            .inc();
    }

    /// Counts a failed exchange with the control plane, or a configuration from it that
    /// could not be served.
    pub fn config_sync_error(&self, reason: SyncErrorReason) {
        self.config_sync_errors
            .get_or_create(&SyncErrorLabels { reason })
            .inc();
    }

    /// Shows every sync error reason at zero, so a dashboard of a gateway in
    /// control-plane mode has its series from the start. File-mode gateways do not call
    /// it and show none.
    pub fn init_config_sync_errors(&self) {
        for reason in SyncErrorReason::ALL {
            let _ = self
                .config_sync_errors
                .get_or_create(&SyncErrorLabels { reason });
        }
    }

    /// Renders the registry in the Prometheus text format.
    ///
    /// # Errors
    ///
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Metric handles of one operation, resolved at configuration compile time so the
/// request path touches only atomics.
#[derive(Clone, Debug)]
pub struct OperationMetrics(Arc<OperationMetricsInner>);

#[derive(Debug)]
struct OperationMetricsInner {
    requests: [Counter; 5],
    request_duration: AtomicHistogram,
    backend_duration: AtomicHistogram,
}

impl OperationMetrics {
    /// Records a finished request.
    pub fn record_request(&self, status: u16, total: Duration) {
        self.0.requests[StatusClass::index(status)].inc();
        self.0.request_duration.observe(total);
    }

    /// Records the backend's time to response head.
    pub fn record_backend(&self, elapsed: Duration) {
        self.0.backend_duration.observe(elapsed);
    }
}

/// A histogram whose observations are lock-free: one atomic add per bucket hit plus the
/// count and the sum (kept in nanoseconds so it can be an integer atomic).
#[derive(Clone, Debug)]
pub struct AtomicHistogram(Arc<AtomicHistogramInner>);

#[derive(Debug)]
struct AtomicHistogramInner {
    upper_bounds: Vec<f64>,
    /// Non-cumulative: each observation bumps exactly one bucket (the last one is +Inf).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with the given finite upper bounds (seconds), ascending.
    #[must_use]
    pub fn new(upper_bounds: &[f64]) -> Self {
        let mut bounds = upper_bounds.to_vec();
        // The encoder writes `f64::MAX` as `+Inf`.
        bounds.push(f64::MAX);
        let buckets = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(AtomicHistogramInner {
            upper_bounds: bounds,
            buckets,
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let inner = &*self.0;
        let index = inner
            .upper_bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(inner.upper_bounds.len() - 1);
        // Relaxed: each counter is independent; a scrape may see a count one ahead of
        // the sum, which Prometheus tolerates.
        inner.buckets[index].fetch_add(1, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Number of observations so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let inner = &*self.0;
        let buckets: Vec<(f64, u64)> = inner
            .upper_bounds
            .iter()
            .zip(&inner.buckets)
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        #[allow(clippy::cast_precision_loss)] // seconds as f64 is the exposition format
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
