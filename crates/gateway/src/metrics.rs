//! Prometheus metrics of the data plane.
//!
//! Families are registered once per process in [`Metrics::new`]. Request counts and
//! latencies by API are [`crate::series`]: created on an API's first request, dropped
//! with the API, sharded per worker and summed at scrape time, so the request path takes
//! no lock and shares no counter between workers, and a scrape is proportional to the
//! APIs that had traffic rather than to those configured. The other metrics are
//! process-wide and resolved here, once.

use std::num::NonZeroUsize;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use crate::series::{LATENCY_BUCKETS, OperationMetrics, SeriesRegistry, ShardedGauge};

/// How request metrics are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Count requests by operation as well as by API (`--metrics-per-operation`): an
    /// `operation` label on `gatehouse_requests_total`. Off, series are per API.
    pub per_operation: bool,
    /// Shards of each counter: the number of workers (rounded up to a power of two), so
    /// each worker writes its own.
    pub shards: NonZeroUsize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            per_operation: false,
            shards: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        }
    }
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

/// Who made a response: the `source` label of `gatehouse_requests_total` and the
/// access log's `source`, so a 429 the gateway's rate limit made is not taken for a
/// backend's.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ResponseSource {
    /// The backend's answer, relayed (whatever policies then did to it).
    Backend,
    /// The gateway's own error (no API matched, bad request, backend unreachable, …),
    /// or no answer at all (the client went away first).
    Gateway,
    /// A policy answered instead of the backend (`return-response`, a rate limit's
    /// 429, a CORS preflight, `on-error` after a policy raised an error).
    Policy,
}

impl ResponseSource {
    /// Every source, in the order of [`Self::index`].
    pub const ALL: [Self; 3] = [Self::Backend, Self::Gateway, Self::Policy];

    /// Its index into [`Self::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Backend => "backend",
            Self::Gateway => "gateway",
            Self::Policy => "policy",
        }
    }
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
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl StatusClass {
    /// Every class, in the order of [`Self::index`].
    pub const ALL: [Self; 5] = [
        Self::Informational,
        Self::Success,
        Self::Redirection,
        Self::ClientError,
        Self::ServerError,
    ];

    /// The class of `status` as an index into [`Self::ALL`]; below 100 counts as 1xx,
    /// above 599 as 5xx.
    #[must_use]
    pub fn index(status: u16) -> usize {
        usize::from(status / 100).clamp(1, 5) - 1
    }

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
        }
    }
}

/// The process's metric families and registry.
pub struct Metrics {
    registry: Registry,
    /// `gatehouse_requests_total`, `gatehouse_request_duration_seconds`,
    /// `gatehouse_backend_duration_seconds`.
    series: Arc<SeriesRegistry>,
    /// Open client connections on the data listeners.
    pub active_connections: Gauge,
    /// Requests currently being processed; sharded, as every request moves it twice.
    pub in_flight_requests: ShardedGauge,
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
    /// Requests forwarded again by a `retry` around `forward-request`
    /// (`gatehouse_backend_retries_total`).
    pub backend_retries: Counter,
    /// `gatehouse_one_way_requests_total{outcome}` (`send-one-way-request`), resolved
    /// per outcome: `answered` (any status), `failed` (no answer), `dropped` (too many
    /// in flight).
    one_way_requests: [(OneWayOutcome, Counter); 3],
    /// `gatehouse_tls_handshakes_total{version}`, resolved per version.
    tls_handshakes: [(&'static str, Counter); 3],
    /// `gatehouse_tls_handshake_errors_total{reason}`, resolved per reason.
    tls_handshake_errors: [(&'static str, Counter); 7],
    /// `gatehouse_tls_certificate_expiry_timestamp_seconds{hostname}`.
    tls_certificate_expiry: Family<HostnameLabels, Gauge>,
    /// `gatehouse_websocket_*` (see [`crate::proxy::websocket`]).
    pub websocket: crate::proxy::websocket::WebSocketMetrics,
}

/// Labels of per-host-name TLS metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostnameLabels {
    hostname: String,
}

/// What became of a `send-one-way-request` call; a metric label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum OneWayOutcome {
    /// The service answered, with any status.
    Answered,
    /// No answer: no connection, a timeout, a broken exchange.
    Failed,
    /// Not sent: too many were in flight.
    Dropped,
}

impl OneWayOutcome {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

impl EncodeLabelValue for OneWayOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `gatehouse_one_way_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OneWayLabels {
    outcome: OneWayOutcome,
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

impl Metrics {
    /// Creates and registers every family under the `gatehouse` prefix, with the default
    /// [`MetricsOptions`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_options(MetricsOptions::default())
    }

    /// Creates and registers every family under the `gatehouse` prefix.
    #[must_use]
    pub fn with_options(options: MetricsOptions) -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let series = Arc::new(SeriesRegistry::new(
            options.per_operation,
            options.shards.get(),
        ));
        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Open client connections on the data listeners",
            active_connections.clone(),
        );
        let in_flight_requests = ShardedGauge::new(options.shards.get());
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
        let backend_retries = Counter::default();
        registry.register(
            "backend_retries",
            "Requests forwarded to the backend again by a retry policy around forward-request",
            backend_retries.clone(),
        );
        let one_way = Family::<OneWayLabels, Counter>::default();
        registry.register(
            "one_way_requests",
            "Calls made by send-one-way-request policies, by outcome (answered, failed, dropped when too many were in flight)",
            one_way.clone(),
        );
        let one_way_requests = [
            OneWayOutcome::Answered,
            OneWayOutcome::Failed,
            OneWayOutcome::Dropped,
        ]
        .map(|outcome| {
            let counter = one_way.get_or_create(&OneWayLabels { outcome }).clone();
            (outcome, counter)
        });
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
        let websocket = crate::proxy::websocket::WebSocketMetrics::register(&mut registry);
        // Last: the request families follow the process-wide ones in a scrape.
        registry.register_collector(Box::new(series.clone()));
        Self {
            registry,
            series,
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
            backend_retries,
            one_way_requests,
            tls_handshakes,
            tls_handshake_errors,
            tls_certificate_expiry,
            websocket,
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

    /// The counter of `send-one-way-request` calls with `outcome` (a handle the
    /// background task keeps).
    #[must_use]
    pub fn one_way_requests(&self, outcome: OneWayOutcome) -> Counter {
        self.one_way_requests
            .iter()
            .find(|(o, _)| *o == outcome)
            .map(|(_, counter)| counter.clone())
            .unwrap_or_default()
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

    /// The series of request counts and latencies by API, which compiled
    /// configurations take their series from.
    #[must_use]
    pub const fn series(&self) -> &Arc<SeriesRegistry> {
        &self.series
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

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
