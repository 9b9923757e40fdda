//! Request metrics by API (and, opt-in, by operation), built for 100,000 configured
//! APIs.
//!
//! - **Created on first use.** A compiled configuration holds an empty [`SeriesSlot`]
//!   per API (and per operation with `--metrics-per-operation`). The first request that
//!   ends there fills the slot from the [`SeriesRegistry`]: a lookup under the registry's
//!   lock, once per API and configuration. An API without traffic has no series, costs
//!   16 bytes and adds nothing to a scrape.
//! - **Removed with the API.** The registry holds series weakly; the configurations
//!   that have the API hold them. When a reload removes an API its series goes with the
//!   last configuration that had it (the old one, once its in-flight requests end), and
//!   the next scrape no longer shows it. A reload that keeps the API hands its series to
//!   the new configuration ([`crate::CompiledConfig::adopt_series`]): counters do not
//!   reset on an unrelated change.
//! - **Sharded per worker.** Every series keeps one block of counters per shard, each
//!   on cache lines of its own and allocated when a thread first writes it, and a thread
//!   always writes the same shard: workers are threads, so each has its own. A scrape
//!   sums the shards. Once a slot is filled, recording a request is a thread-local read,
//!   a `OnceLock` read and three uncontended atomic adds: no lock, no counter shared
//!   between workers.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use crate::compiled::CompiledConfig;
use crate::metrics::{ResponseSource, StatusClass};

/// Latency buckets in seconds: 0.5 ms … 60 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Buckets of a histogram: the finite ones and `+Inf`.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// Most shards a series can have; more workers share them.
const MAX_SHARDS: usize = 256;

// --- shards ---------------------------------------------------------------------------

thread_local! {
    /// This thread's number, taken from [`NEXT_THREAD`] when it first records.
    static THREAD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Threads number themselves in the order they first record, so the workers of a
/// gateway (the only threads that record requests) take consecutive shards.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

fn thread_number() -> usize {
    THREAD.with(|number| {
        let mut n = number.get();
        if n == usize::MAX {
            n = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            number.set(n);
        }
        n
    })
}

/// The number of shards for `workers` workers: a power of two, so a thread's shard is a
/// mask away.
#[must_use]
pub(crate) fn shard_count(workers: usize) -> usize {
    workers.clamp(1, MAX_SHARDS).next_power_of_two()
}

/// Keeps what it holds on cache lines of its own, so two shards never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
struct CacheLine<T>(T);

/// One `T` per shard, allocated when a thread first writes it.
struct Sharded<T> {
    shards: Box<[OnceLock<Box<CacheLine<T>>>]>,
}

impl<T: Default> Sharded<T> {
    /// `shards` must be a power of two ([`shard_count`]).
    fn new(shards: usize) -> Self {
        debug_assert!(shards.is_power_of_two());
        Self {
            shards: (0..shards).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The calling thread's shard.
    fn local(&self) -> &T {
        let index = thread_number() & (self.shards.len() - 1);
        &self.shards[index]
            .get_or_init(|| Box::new(CacheLine(T::default())))
            .0
    }

    /// Every shard written so far.
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards
            .iter()
            .filter_map(OnceLock::get)
            .map(|line| &line.0)
    }
}

/// A gauge that threads move up and down on their own shard; its value is the sum.
/// `gatehouse_in_flight_requests` is one: every request moves it twice.
#[derive(Clone)]
pub struct ShardedGauge(Arc<[CacheLine<AtomicI64>]>);

impl ShardedGauge {
    /// A gauge at zero with `shards` shards (rounded up to a power of two).
    #[must_use]
    pub fn new(shards: usize) -> Self {
        Self(
            (0..shard_count(shards))
                .map(|_| CacheLine::default())
                .collect(),
        )
    }

    fn local(&self) -> &AtomicI64 {
        &self.0[thread_number() & (self.0.len() - 1)].0
    }

    /// Adds one.
    pub fn inc(&self) {
        self.local().fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one away (a thread's shard may go negative; the sum does not).
    pub fn dec(&self) {
        self.local().fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value: the sum of the shards.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.0
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for ShardedGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedGauge").field(&self.get()).finish()
    }
}

impl TypedMetric for ShardedGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for ShardedGauge {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

// --- series ---------------------------------------------------------------------------

/// One shard of a latency histogram: non-cumulative buckets (the last is `+Inf`) and
/// the sum in nanoseconds (an integer, so it can be an atomic).
#[derive(Debug, Default)]
struct HistogramCells {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl HistogramCells {
    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        // Relaxed: each cell is independent; a scrape may see a bucket one ahead of the
        // sum, which Prometheus tolerates.
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A histogram summed over shards.
#[derive(Debug, Default)]
struct HistogramTotals {
    buckets: [u64; BUCKETS],
    sum_nanos: u64,
}

impl HistogramTotals {
    fn add(&mut self, cells: &HistogramCells) {
        for (total, cell) in self.buckets.iter_mut().zip(&cells.buckets) {
            *total = total.wrapping_add(cell.load(Ordering::Relaxed));
        }
        self.sum_nanos = self
            .sum_nanos
            .wrapping_add(cells.sum_nanos.load(Ordering::Relaxed));
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn encode(&self, encoder: &mut MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // The encoder writes `f64::MAX` as `+Inf`.
        let buckets: [(f64, u64); BUCKETS] = std::array::from_fn(|i| {
            (
                LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::MAX),
                self.buckets[i],
            )
        });
        #[allow(clippy::cast_precision_loss)] // seconds as f64 is the exposition format
        let sum = self.sum_nanos as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count(), &buckets, None)
    }
}

/// One shard of an API's histograms.
#[derive(Debug, Default)]
struct ApiCells {
    request: HistogramCells,
    backend: HistogramCells,
}

/// The latency histograms of one API (`None`: requests that matched no API).
struct ApiSeries {
    api: Option<Arc<str>>,
    latency: Sharded<ApiCells>,
}

impl ApiSeries {
    fn totals(&self) -> (HistogramTotals, HistogramTotals) {
        let mut request = HistogramTotals::default();
        let mut backend = HistogramTotals::default();
        for shard in self.latency.iter() {
            request.add(&shard.request);
            backend.add(&shard.backend);
        }
        (request, backend)
    }
}

/// What `gatehouse_requests_total` counts under one label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OperationKey {
    /// The whole API: no `operation` label (the default).
    Api,
    /// `operation="-"`: requests that matched the API (or none) but no operation.
    Unmatched,
    /// `operation="<id>"`.
    Named(Arc<str>),
}

/// The labels of one `gatehouse_requests_total` series (but the status class).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    /// `None`: no API matched (`api="-"`).
    pub(crate) api: Option<Arc<str>>,
    /// The operation label, if any.
    pub(crate) operation: OperationKey,
}

impl SeriesKey {
    /// Requests that matched no API.
    pub(crate) const fn no_api(per_operation: bool) -> Self {
        Self {
            api: None,
            operation: if per_operation {
                OperationKey::Unmatched
            } else {
                OperationKey::Api
            },
        }
    }

    /// An API's requests (per-operation: those that matched none of its operations).
    pub(crate) fn api(api: &Arc<str>, per_operation: bool) -> Self {
        Self {
            api: Some(api.clone()),
            ..Self::no_api(per_operation)
        }
    }

    /// One operation's requests (per-operation only).
    pub(crate) fn operation(api: &Arc<str>, operation: &Arc<str>) -> Self {
        Self {
            api: Some(api.clone()),
            operation: OperationKey::Named(operation.clone()),
        }
    }
}

/// The request counts of one label set, by status class, and the histograms of its API.
pub struct RequestSeries {
    key: SeriesKey,
    /// By source ([`ResponseSource::index`]), then status class.
    requests: Sharded<[[AtomicU64; 5]; 3]>,
    api: Arc<ApiSeries>,
}

impl RequestSeries {
    /// Counts a finished request and observes its duration.
    pub fn record_request(&self, status: u16, source: ResponseSource, total: Duration) {
        self.requests.local()[source.index()][StatusClass::index(status)]
            .fetch_add(1, Ordering::Relaxed);
        self.api.latency.local().request.observe(total);
    }

    /// Observes the backend's time to response head.
    pub fn record_backend(&self, elapsed: Duration) {
        self.api.latency.local().backend.observe(elapsed);
    }

    /// Its labels.
    pub(crate) const fn key(&self) -> &SeriesKey {
        &self.key
    }

    /// Requests counted, by source ([`ResponseSource::index`]) and status class (`1xx`
    /// … `5xx`), summed over shards.
    #[must_use]
    pub fn counts(&self) -> [[u64; 5]; 3] {
        let mut counts = [[0u64; 5]; 3];
        for shard in self.requests.iter() {
            for (by_class, cells) in counts.iter_mut().zip(shard) {
                for (count, cell) in by_class.iter_mut().zip(cells) {
                    *count = count.wrapping_add(cell.load(Ordering::Relaxed));
                }
            }
        }
        counts
    }
}

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSeries")
            .field("key", &self.key)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// Where a compiled configuration keeps one API's (or operation's) series once it has
/// had traffic; empty until then.
#[derive(Debug, Default)]
pub struct SeriesSlot(OnceLock<Arc<RequestSeries>>);

impl SeriesSlot {
    /// The series, taken from `registry` (or created there) on first use.
    pub(crate) fn get_or_create(
        &self,
        registry: &SeriesRegistry,
        key: impl FnOnce() -> SeriesKey,
    ) -> &RequestSeries {
        self.0.get_or_init(|| registry.series(key()))
    }

    /// Takes over a series a previous configuration created, unless this slot has one.
    pub(crate) fn adopt(&self, series: Arc<RequestSeries>) {
        let _ = self.0.set(series);
    }

    /// The series, if there has been traffic.
    #[must_use]
    pub fn get(&self) -> Option<&RequestSeries> {
        self.0.get().map(|series| &**series)
    }
}

/// Which series a request counts in: its API and operation, as indexes into the
/// configuration it runs on, resolved against that configuration when the request ends
/// ([`Self::record_request`]). Cheap to clone; deliberately not `Copy`, so the request
/// path's `.clone()` of it stays as it was written for a handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationMetrics {
    /// Index into `CompiledConfig::apis`; out of range: no API matched.
    pub(crate) api: usize,
    /// Index into the API's operations; out of range: no operation matched.
    pub(crate) operation: usize,
}

impl OperationMetrics {
    /// Requests that matched no API.
    #[must_use]
    pub const fn unmatched() -> Self {
        Self {
            api: usize::MAX,
            operation: usize::MAX,
        }
    }

    /// Requests that matched API `api` (an index) but none of its operations.
    #[must_use]
    pub const fn api(api: usize) -> Self {
        Self {
            api,
            operation: usize::MAX,
        }
    }

    /// Requests that matched operation `operation` of API `api` (indexes).
    #[must_use]
    pub const fn operation(api: usize, operation: usize) -> Self {
        Self { api, operation }
    }

    /// Records a finished request in `config`, the configuration it ran on.
    pub fn record_request(
        &self,
        config: &CompiledConfig,
        status: u16,
        source: ResponseSource,
        total: Duration,
    ) {
        config
            .request_series(self)
            .record_request(status, source, total);
    }

    /// Records the backend's time to response head in `config`.
    pub fn record_backend(&self, config: &CompiledConfig, elapsed: Duration) {
        config.request_series(self).record_backend(elapsed);
    }
}

// --- registry -------------------------------------------------------------------------

/// Every live series of the process, held weakly (the configurations that have them hold
/// them strongly), and their exposition. Touched on first use of a series, on reload and
/// on scrape; never on the steady-state request path.
pub struct SeriesRegistry {
    per_operation: bool,
    shards: usize,
    requests: DashMap<SeriesKey, Weak<RequestSeries>>,
    apis: DashMap<Option<Arc<str>>, Weak<ApiSeries>>,
    /// Request series created so far, so that a configuration sees whether any appeared
    /// since it last adopted them.
    created: AtomicU64,
}

impl SeriesRegistry {
    /// A registry whose series have `shards` shards (rounded up to a power of two), and
    /// count requests by operation as well as by API when `per_operation`.
    #[must_use]
    pub fn new(per_operation: bool, shards: usize) -> Self {
        Self {
            per_operation,
            shards: shard_count(shards),
            requests: DashMap::new(),
            apis: DashMap::new(),
            created: AtomicU64::new(0),
        }
    }

    /// Whether request counts carry an `operation` label.
    #[must_use]
    pub const fn per_operation(&self) -> bool {
        self.per_operation
    }

    /// The live series of `key`, or a new one.
    pub(crate) fn series(&self, key: SeriesKey) -> Arc<RequestSeries> {
        let existing = self.requests.get(&key).and_then(|weak| weak.upgrade());
        if let Some(series) = existing {
            return series;
        }
        let api = self.api_series(key.api.clone());
        let mut entry = self.requests.entry(key.clone()).or_default();
        if let Some(series) = entry.upgrade() {
            return series;
        }
        let series = Arc::new(RequestSeries {
            key,
            requests: Sharded::new(self.shards),
            api,
        });
        *entry = Arc::downgrade(&series);
        self.created.fetch_add(1, Ordering::Relaxed);
        series
    }

    /// How many request series have been created so far.
    pub(crate) fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn api_series(&self, api: Option<Arc<str>>) -> Arc<ApiSeries> {
        let existing = self.apis.get(&api).and_then(|weak| weak.upgrade());
        if let Some(series) = existing {
            return series;
        }
        let mut entry = self.apis.entry(api.clone()).or_default();
        if let Some(series) = entry.upgrade() {
            return series;
        }
        let series = Arc::new(ApiSeries {
            api,
            latency: Sharded::new(self.shards),
        });
        *entry = Arc::downgrade(&series);
        series
    }

    /// The series some configuration still has, by label.
    pub(crate) fn live(&self) -> Vec<Arc<RequestSeries>> {
        let mut live: Vec<_> = self
            .requests
            .iter()
            .filter_map(|entry| entry.value().upgrade())
            .collect();
        live.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        live
    }

    fn live_apis(&self) -> Vec<Arc<ApiSeries>> {
        let mut live: Vec<_> = self
            .apis
            .iter()
            .filter_map(|entry| entry.value().upgrade())
            .collect();
        live.sort_unstable_by(|a, b| a.api.cmp(&b.api));
        live
    }

    /// Forgets series no configuration has any more.
    pub(crate) fn sweep(&self) {
        self.requests.retain(|_, series| series.strong_count() > 0);
        self.apis.retain(|_, series| series.strong_count() > 0);
    }

    /// Entries held, live or not yet swept (for tests).
    #[must_use]
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether it holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

impl std::fmt::Debug for SeriesRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesRegistry")
            .field("per_operation", &self.per_operation)
            .field("shards", &self.shards)
            .field("series", &self.requests.len())
            .finish_non_exhaustive()
    }
}

/// Writes one family of the exposition, unless it has no series (as `Family` does).
fn encode_family<T>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: &[T],
    mut encode: impl FnMut(&mut MetricEncoder<'_>, &T) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for one in series {
        encode(&mut metric, one)?;
    }
    Ok(())
}

impl Collector for SeriesRegistry {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.sweep();
        let requests = self.live();
        encode_family(
            &mut encoder,
            "requests",
            "Requests handled, by API (and operation with --metrics-per-operation), status class and source (backend, gateway, policy: who made the answer); each series appears with its first request",
            MetricType::Counter,
            &requests,
            |metric, series| {
                let api = series.key.api.as_deref().unwrap_or("-");
                let operation = match &series.key.operation {
                    OperationKey::Api => None,
                    OperationKey::Unmatched => Some("-"),
                    OperationKey::Named(id) => Some(&**id),
                };
                for (source, by_class) in ResponseSource::ALL.iter().zip(series.counts()) {
                    for (class, count) in StatusClass::ALL.iter().zip(by_class) {
                        // Only what happened: 15 combinations per API would mostly be 0.
                        if count == 0 {
                            continue;
                        }
                        let labels = [
                            ("api", api),
                            ("operation", operation.unwrap_or_default()),
                            ("status_class", class.as_str()),
                            ("source", source.as_str()),
                        ];
                        // Without the operation label when it is off.
                        let labels: &[(&str, &str)] = if operation.is_some() {
                            &labels
                        } else {
                            &[labels[0], labels[2], labels[3]]
                        };
                        metric
                            .encode_family(&labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
                    }
                }
                Ok(())
            },
        )?;
        let apis: Vec<_> = self
            .live_apis()
            .into_iter()
            .map(|series| {
                let (request, backend) = series.totals();
                (series.api.clone(), request, backend)
            })
            .collect();
        fn label(api: &Option<Arc<str>>) -> [(&'static str, &str); 1] {
            [("api", api.as_deref().unwrap_or("-"))]
        }
        encode_family(
            &mut encoder,
            "request_duration_seconds",
            "Time from request received to response body finished, by API",
            MetricType::Histogram,
            &apis,
            |metric, (api, request, _)| request.encode(&mut metric.encode_family(&label(api))?),
        )?;
        encode_family(
            &mut encoder,
            "backend_duration_seconds",
            "Time from request sent to the backend to its response head, by API",
            MetricType::Histogram,
            &apis,
            |metric, (api, _, backend)| backend.encode(&mut metric.encode_family(&label(api))?),
        )
    }
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
