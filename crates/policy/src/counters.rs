//! Counters for rate limits, quotas and concurrency limits.
//!
//! [`Counters`] is owned by the gateway, not by a [`crate::Pipeline`]: it outlives
//! configuration reloads, so a reload does not reset anyone's limits. A counter is
//! identified by the policy instance (a stable hash of the document origin and the
//! element's position, see `policy_instance_id`) and the counter key's value, so a
//! reloaded identical configuration finds its counters again. Editing a document so a
//! limit moves to another line starts that limit afresh.
//!
//! Time is always passed in (`now`, a [`Duration`] since the Unix epoch as read by the
//! caller), never read here, so tests control it. Sliding windows only use differences
//! of `now`; quota windows are aligned to `first-period-start` in that clock. A clock
//! that steps backwards is tolerated: a counter never moves back to an older window.
//!
//! # Algorithms
//!
//! - **Rate limits** (`rate-limit`, `rate-limit-by-key`) use a *sliding window
//!   counter*: two fixed buckets (this window and the previous one) and the estimate
//!   `current + previous × (part of the previous window still inside the sliding
//!   window)`. It is exact when traffic is spread evenly, approximates a true sliding
//!   log otherwise, and never admits more than `calls` in any fixed window. The state
//!   is one `AtomicU64` per key (16 bits of window tag, 24 bits each for the two
//!   counts, hence at most [`MAX_RATE_CALLS`] calls per window) updated with a
//!   compare-and-swap loop: no lock is held on the request path beyond dashmap's
//!   shard read lock for the lookup.
//! - **Quotas** (`quota-by-key`) use fixed windows aligned to `first-period-start`;
//!   calls and bandwidth are each one `AtomicU64` holding a window tag and a count.
//!   Bandwidth is charged after the response through [`DeferredCharge`]s and
//!   [`Counters::settle`].
//! - **Concurrency** (`limit-concurrency`) is one atomic gauge per key; a
//!   [`ConcurrencyPermit`] gives its slot back when dropped.
//!
//! # Memory
//!
//! Entries are created on first use and removed by [`Counters::sweep`], which the
//! gateway calls periodically (every few seconds is plenty). A rate entry lives until
//! two renewal periods (at most 600 s) after its last use; a quota entry until its
//! window ends (quotas with `renewal-period="0"` never renew, so their entries live as
//! long as the counters); a concurrency entry while it has permits out. Memory is
//! therefore bounded by the number of distinct keys seen within those horizons, about
//! 100 bytes each; [`Counters::len`] reports it for a metric.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::error::Position;

/// Most calls per renewal period a rate limit can count (24 bits per window).
pub const MAX_RATE_CALLS: u32 = (1 << COUNT_BITS) - 1;

/// Largest bandwidth a quota can count per window, in bytes (48 bits).
pub(crate) const MAX_QUOTA_BYTES: u64 = (1 << 48) - 1;

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Identifies one counter: policy instance and key value, both hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CellKey {
    pub(crate) policy: u64,
    pub(crate) key: u64,
}

/// A stable identifier for a policy instance: FNV-1a over the document origin, the
/// element's position and a tag naming the counter within the policy.
///
/// Stable across processes and reloads (unlike `RandomState`), so identical
/// configurations share counters after a reload.
pub(crate) fn policy_instance_id(origin: &str, position: Position, tag: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    feed(origin.as_bytes());
    feed(&[0xff]);
    feed(&position.line.to_le_bytes());
    feed(&position.column.to_le_bytes());
    feed(&[0xff]);
    feed(tag.as_bytes());
    hash
}

/// All rate-limit, quota and concurrency counters of one gateway process.
///
/// `Send + Sync`; share it behind an `Arc` and keep it across configuration reloads.
pub struct Counters {
    /// Keyed SipHash for key values: clients choose header values, so the hash must
    /// not let them collide on purpose.
    hasher: RandomState,
    rates: DashMap<CellKey, RateCell>,
    quotas: DashMap<CellKey, Arc<QuotaCell>>,
    gauges: DashMap<u64, Arc<AtomicU32>>,
    /// The values `cache-store-value` keeps: state that outlives configurations too.
    pub values: crate::value_cache::ValueCache,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("rates", &self.rates.len())
            .field("quotas", &self.quotas.len())
            .field("concurrency", &self.gauges.len())
            .field("cached_values", &self.values.len())
            .finish()
    }
}

impl Counters {
    /// Empty counters.
    pub fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            rates: DashMap::new(),
            quotas: DashMap::new(),
            gauges: DashMap::new(),
            values: crate::value_cache::ValueCache::default(),
        }
    }

    /// The number of live entries (rate, quota and concurrency), for a metric.
    pub fn len(&self) -> usize {
        self.rates.len() + self.quotas.len() + self.gauges.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hasher for a key value; feed it the key's bytes.
    pub(crate) fn key_hasher(&self) -> impl Hasher + use<> {
        self.hasher.build_hasher()
    }

    pub(crate) fn hash_key<T: Hash + ?Sized>(&self, value: &T) -> u64 {
        self.hasher.hash_one(value)
    }

    /// Removes expired entries; returns how many were removed.
    ///
    /// Call it periodically from one task (it takes each shard's write lock briefly).
    pub fn sweep(&self, now: Duration) -> usize {
        let now_ms = millis(now);
        let before = self.len();
        self.rates.retain(|_, cell| {
            let last = cell.last_ms.load(Ordering::Relaxed);
            let period = cell.period_ms.load(Ordering::Relaxed);
            now_ms < last.saturating_add(period.saturating_mul(2))
        });
        self.quotas.retain(|_, cell| {
            if Arc::strong_count(cell) > 1 {
                return true; // a bandwidth charge is still to be settled
            }
            let limit = cell.window_spec();
            if limit.period_s == 0 {
                return true; // a lifetime quota never renews
            }
            let last = Duration::from_millis(cell.last_ms.load(Ordering::Relaxed));
            quota_window(limit, last).0 >= quota_window(limit, now).0
        });
        self.gauges
            .retain(|_, gauge| Arc::strong_count(gauge) > 1 || gauge.load(Ordering::Acquire) > 0);
        before.saturating_sub(self.len())
    }

    // === rate limits ===

    /// Checks a sliding-window rate limit and, when `count`, adds `increment`.
    ///
    /// A counted request needs room for `increment`; an uncounted one (increment
    /// condition false, or a peek) only needs the counter not to be full.
    pub(crate) fn rate(
        &self,
        key: CellKey,
        limit: RateLimit,
        increment: u32,
        count: bool,
        now: Duration,
    ) -> RateOutcome {
        let cell = match self.rates.get(&key) {
            Some(cell) => cell,
            None => self.rates.entry(key).or_default().downgrade(),
        };
        // Read before writing: hot keys should not bounce the cache line needlessly.
        if cell.period_ms.load(Ordering::Relaxed) != limit.period_ms {
            cell.period_ms.store(limit.period_ms, Ordering::Relaxed);
        }
        let now_ms = millis(now);
        let period = limit.period_ms.max(1);
        let window = now_ms / period;
        let elapsed = now_ms % period;
        let needed = if count { increment } else { 1 };
        let added = if count { increment } else { 0 };
        let mut state = cell.state.load(Ordering::Acquire);
        loop {
            let last = cell.last_ms.load(Ordering::Relaxed);
            let stale = now_ms >= last.saturating_add(period.saturating_mul(2));
            let current = RateState::unpack(state).at(window, stale);
            let estimate = current.estimate(elapsed, period);
            if estimate + u64::from(needed) > u64::from(limit.calls) {
                let wait = retry_after_ms(current, elapsed, period, limit.calls, needed);
                return RateOutcome::Limited {
                    retry_after: Duration::from_millis(wait),
                };
            }
            let remaining = u64::from(limit.calls) - estimate - u64::from(added);
            if added == 0 {
                return RateOutcome::Allowed {
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                };
            }
            let next = RateState {
                curr: (current.curr + added).min(COUNT_MASK as u32),
                ..current
            };
            match cell.state.compare_exchange_weak(
                state,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    touch(&cell.last_ms, now_ms);
                    return RateOutcome::Allowed {
                        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                    };
                }
                Err(actual) => state = actual,
            }
        }
    }

    // === quotas ===

    /// Checks a fixed-window quota and, when `count`, adds `increment` calls. When the
    /// quota counts bandwidth, the returned charge must be settled after the response.
    pub(crate) fn quota(
        &self,
        key: CellKey,
        limit: QuotaLimit,
        increment: u32,
        count: bool,
        now: Duration,
    ) -> QuotaOutcome {
        let cell = match self.quotas.get(&key) {
            Some(cell) => Arc::clone(cell.value()),
            None => Arc::clone(self.quotas.entry(key).or_default().value()),
        };
        if cell.window_spec() != limit.window {
            cell.set_window_spec(limit.window);
        }
        let (index, remaining) = quota_window(limit.window, now);
        let tag = index as u32; // windows are ≥ 300 s: u32 wraps after 40,000 years
        let now_ms = millis(now);
        if let Some(bandwidth) = limit.bandwidth_bytes {
            let (bytes_tag, bytes) = unpack_bytes(cell.bytes.load(Ordering::Acquire));
            let used = if bytes_tag == tag as u16 && !cell.stale(now_ms, limit.window) {
                bytes
            } else {
                0
            };
            if used >= bandwidth {
                return QuotaOutcome::BandwidthExceeded {
                    retry_after: remaining,
                };
            }
        }
        let needed = if count { increment } else { 1 };
        let added = if count { increment } else { 0 };
        let mut state = cell.calls.load(Ordering::Acquire);
        loop {
            let (calls_tag, calls) = unpack_calls(state);
            let used = if calls_tag == tag { calls } else { 0 };
            if let Some(max) = limit.calls
                && u64::from(used) + u64::from(needed) > u64::from(max)
            {
                return QuotaOutcome::CallsExceeded {
                    retry_after: remaining,
                };
            }
            if added == 0 {
                break;
            }
            let next = pack_calls(tag, used.saturating_add(added));
            match cell
                .calls
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        touch(&cell.last_ms, now_ms);
        let charge = (count && limit.bandwidth_bytes.is_some()).then(|| DeferredCharge {
            cell: Arc::clone(&cell),
            window: limit.window,
        });
        QuotaOutcome::Allowed { charge }
    }

    /// Charges bandwidth quotas with the bytes a request moved, once its response is
    /// complete (or failed). `request_bytes` is the request body as sent to the
    /// backend, `response_bytes` the response body as sent to the client.
    ///
    /// A charge lands in the quota window current at `now`.
    pub fn settle(
        &self,
        deferred: &[DeferredCharge],
        request_bytes: u64,
        response_bytes: u64,
        now: Duration,
    ) {
        let bytes = request_bytes.saturating_add(response_bytes);
        let now_ms = millis(now);
        for charge in deferred {
            let cell = &charge.cell;
            let tag = quota_window(charge.window, now).0 as u32 as u16;
            let stale = cell.stale(now_ms, charge.window);
            let mut state = cell.bytes.load(Ordering::Acquire);
            loop {
                let (current_tag, used) = unpack_bytes(state);
                let used = if current_tag == tag && !stale {
                    used
                } else {
                    0
                };
                let next = pack_bytes(tag, used.saturating_add(bytes).min(MAX_QUOTA_BYTES));
                match cell.bytes.compare_exchange_weak(
                    state,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => state = actual,
                }
            }
            touch(&cell.last_ms, now_ms);
        }
    }

    // === concurrency ===

    /// Takes one of `max` slots for `key`, or `None` when all are taken.
    pub(crate) fn try_acquire(&self, key: u64, max: u32) -> Option<ConcurrencyPermit> {
        let gauge = match self.gauges.get(&key) {
            Some(gauge) => Arc::clone(gauge.value()),
            None => Arc::clone(self.gauges.entry(key).or_default().value()),
        };
        let mut current = gauge.load(Ordering::Acquire);
        loop {
            if current >= max {
                return None;
            }
            match gauge.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(ConcurrencyPermit { gauge }),
                Err(actual) => current = actual,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self, key: u64) -> u32 {
        self.gauges
            .get(&key)
            .map_or(0, |gauge| gauge.load(Ordering::Acquire))
    }
}

/// Records a use at `now_ms`; a plain load first, so requests within the same
/// millisecond do not all write the shared cache line.
fn touch(last_ms: &AtomicU64, now_ms: u64) {
    if last_ms.load(Ordering::Relaxed) < now_ms {
        last_ms.fetch_max(now_ms, Ordering::Relaxed);
    }
}

fn millis(now: Duration) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

// === rate limit state ===

/// A rate limit: `calls` per sliding window of `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) calls: u32,
    pub(crate) period_ms: u64,
}

/// What a rate limit check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateOutcome {
    /// Let through; `remaining` calls are left in the sliding window.
    Allowed { remaining: u32 },
    /// Refused; the request would be let through after `retry_after`.
    Limited { retry_after: Duration },
}

#[derive(Debug, Default)]
struct RateCell {
    /// Packed [`RateState`]: updated only by compare-and-swap so the two buckets and
    /// the window tag always move together.
    state: AtomicU64,
    /// Last time the cell counted a request, for the stale check and [`Counters::sweep`].
    last_ms: AtomicU64,
    /// The policy's renewal period, for [`Counters::sweep`].
    period_ms: AtomicU64,
}

/// The two buckets of a sliding window counter and the (truncated) window index of
/// `curr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateState {
    pub(crate) window: u16,
    pub(crate) prev: u32,
    pub(crate) curr: u32,
}

impl RateState {
    fn unpack(packed: u64) -> Self {
        Self {
            window: (packed >> 48) as u16,
            prev: ((packed >> COUNT_BITS) & COUNT_MASK) as u32,
            curr: (packed & COUNT_MASK) as u32,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.window) << 48)
            | ((u64::from(self.prev) & COUNT_MASK) << COUNT_BITS)
            | (u64::from(self.curr) & COUNT_MASK)
    }

    /// The state as seen from `window`: rolled forward one window (current becomes
    /// previous) or reset when two or more windows have passed or the cell is `stale`.
    /// A window *before* the stored one (clock stepped back) keeps the stored state.
    pub(crate) fn at(self, window: u64, stale: bool) -> Self {
        let tag = window as u16; // truncation intended: only the distance matters
        if stale {
            return Self {
                window: tag,
                prev: 0,
                curr: 0,
            };
        }
        match tag.wrapping_sub(self.window) {
            0 => self,
            1 => Self {
                window: tag,
                prev: self.curr,
                curr: 0,
            },
            distance if distance < 0x8000 => Self {
                window: tag,
                prev: 0,
                curr: 0,
            },
            _ => self,
        }
    }

    /// Requests in the sliding window ending now.
    pub(crate) fn estimate(self, elapsed_ms: u64, period_ms: u64) -> u64 {
        let overlap = period_ms.saturating_sub(elapsed_ms);
        u64::from(self.curr) + u64::from(self.prev) * overlap / period_ms.max(1)
    }
}

/// How long until a request needing `needed` calls fits, in milliseconds (≥ 1).
pub(crate) fn retry_after_ms(
    state: RateState,
    elapsed_ms: u64,
    period_ms: u64,
    calls: u32,
    needed: u32,
) -> u64 {
    let period = period_ms.max(1);
    let Some(room) = u64::from(calls).checked_sub(u64::from(needed)) else {
        return period; // can never fit; say "one window"
    };
    let curr = u64::from(state.curr);
    let prev = u64::from(state.prev);
    // Earliest offset `e` in a window at which `floor(weight × (P - e) / P) ≤ budget`:
    // that is `weight × (P - e) < (budget + 1) × P`.
    let earliest = |weight: u64, budget: u64| -> u64 {
        if weight == 0 {
            return 0;
        }
        let max_overlap = ((budget + 1) * period).div_ceil(weight) - 1;
        period.saturating_sub(max_overlap)
    };
    if curr <= room && prev > 0 {
        let at = earliest(prev, room - curr);
        if at < period {
            return at.saturating_sub(elapsed_ms).max(1);
        }
    }
    // Wait for the next window, where the current bucket becomes the previous one (at
    // worst for the whole of it, when `curr` alone exceeds the room).
    let to_next = period - elapsed_ms.min(period);
    to_next + earliest(curr, room)
}

// === quota state ===

/// Where a quota's fixed windows start and how long they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaWindow {
    /// Window length in seconds; 0 means one window forever.
    pub(crate) period_s: u64,
    /// First window start, seconds since the Unix epoch (may be negative).
    pub(crate) start_s: i64,
}

/// A quota: calls and/or bandwidth per fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaLimit {
    pub(crate) calls: Option<u32>,
    pub(crate) bandwidth_bytes: Option<u64>,
    pub(crate) window: QuotaWindow,
}

/// What a quota check decided.
#[derive(Debug)]
pub(crate) enum QuotaOutcome {
    /// Let through; settle `charge` after the response when present.
    Allowed { charge: Option<DeferredCharge> },
    /// Out of calls until the window ends (`None`: never, a lifetime quota).
    CallsExceeded { retry_after: Option<Duration> },
    /// Out of bandwidth until the window ends.
    BandwidthExceeded { retry_after: Option<Duration> },
}

/// The index of the window containing `now`, and the time left in it (`None` for a
/// lifetime quota). Before the first window starts, the first window is current.
pub(crate) fn quota_window(window: QuotaWindow, now: Duration) -> (u64, Option<Duration>) {
    if window.period_s == 0 {
        return (0, None);
    }
    let now_ms = i128::try_from(now.as_millis()).unwrap_or(i128::MAX);
    let start_ms = i128::from(window.start_s) * 1000;
    let period_ms = i128::from(window.period_s) * 1000;
    let offset = now_ms - start_ms;
    let index = if offset < 0 { 0 } else { offset / period_ms };
    let end = start_ms + (index + 1) * period_ms;
    let left = u64::try_from(end - now_ms).unwrap_or(0);
    (
        u64::try_from(index).unwrap_or(u64::MAX),
        Some(Duration::from_millis(left)),
    )
}

#[derive(Debug, Default)]
struct QuotaCell {
    /// Window tag (u32) and calls (u32), updated together by compare-and-swap.
    calls: AtomicU64,
    /// Window tag (low 16 bits) and bytes (48 bits).
    bytes: AtomicU64,
    last_ms: AtomicU64,
    /// The policy's window, for [`Counters::sweep`].
    period_s: AtomicU64,
    start_s: AtomicI64,
}

impl QuotaCell {
    fn set_window_spec(&self, window: QuotaWindow) {
        self.period_s.store(window.period_s, Ordering::Relaxed);
        self.start_s.store(window.start_s, Ordering::Relaxed);
    }

    fn window_spec(&self) -> QuotaWindow {
        QuotaWindow {
            period_s: self.period_s.load(Ordering::Relaxed),
            start_s: self.start_s.load(Ordering::Relaxed),
        }
    }

    /// Whether the bytes tag (16 bits) may have wrapped since the last update.
    fn stale(&self, now_ms: u64, window: QuotaWindow) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        window.period_s != 0
            && now_ms.saturating_sub(last)
                >= window.period_s.saturating_mul(1000).saturating_mul(0xffff)
    }
}

fn unpack_calls(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

fn pack_calls(tag: u32, calls: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(calls)
}

fn unpack_bytes(packed: u64) -> (u16, u64) {
    ((packed >> 48) as u16, packed & MAX_QUOTA_BYTES)
}

fn pack_bytes(tag: u16, bytes: u64) -> u64 {
    (u64::from(tag) << 48) | (bytes & MAX_QUOTA_BYTES)
}

/// Bandwidth a request still owes a quota, settled with [`Counters::settle`] after
/// its response completes.
pub struct DeferredCharge {
    cell: Arc<QuotaCell>,
    window: QuotaWindow,
}

impl std::fmt::Debug for DeferredCharge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredCharge")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// One slot of a `limit-concurrency` policy; the slot is free again when this is
/// dropped.
///
/// The gateway keeps permits (in [`crate::RequestState::held`]) until the response
/// body has been sent completely or the request is abandoned, so a slow download still
/// counts as in flight.
pub struct ConcurrencyPermit {
    gauge: Arc<AtomicU32>,
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for ConcurrencyPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyPermit")
            .field("in_flight", &self.gauge.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
#[path = "counters_tests.rs"]
mod tests;
