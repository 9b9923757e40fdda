//! The gateway's own value cache, for `cache-store-value`, `cache-lookup-value` and
//! `cache-remove-value` (APIM's *internal* cache): in memory, per gateway process,
//! shared by every configuration it serves.
//!
//! Bounded: at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of values (as their size
//! is estimated); a value larger than [`MAX_VALUE_BYTES`] is not kept. When full, expired
//! entries go first, then others: it is a cache, a lookup may always miss. Time is the
//! request's (`RequestFacts::now`): this crate reads no clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use gatehouse_expr::Value;

/// Most entries kept.
pub const MAX_ENTRIES: usize = 100_000;
/// Most bytes of values kept (estimated).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Largest value kept (estimated).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// A value with its expiry (since the Unix epoch) and estimated size.
#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Duration,
    size: usize,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ValueCache {
    entries: DashMap<String, Entry>,
    bytes: AtomicUsize,
}

/// Why a value was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// Values of this type have no meaning outside the request (the context's objects).
    #[error(
        "a value of type `{0}` cannot be cached (only strings, numbers, bools, dates, JSON, bytes and arrays of those)"
    )]
    NotStorable(&'static str),
}

impl ValueCache {
    /// The value under `key`, unless it has expired by `now`.
    pub fn get(&self, key: &str, now: Duration) -> Option<Value> {
        {
            // The shard's read guard ends here, before `remove` takes its write lock.
            let entry = self.entries.get(key)?;
            if entry.expires_at > now {
                return Some(entry.value.clone());
            }
        }
        self.remove(key);
        None
    }

    /// Keeps `value` under `key` for `duration` from `now`. A value over
    /// [`MAX_VALUE_BYTES`] is not kept (and an older one under the key is dropped).
    ///
    /// # Errors
    ///
    /// [`CacheError::NotStorable`] for a value of the context model.
    pub fn put(
        &self,
        key: &str,
        value: Value,
        duration: Duration,
        now: Duration,
    ) -> Result<(), CacheError> {
        let size = key.len() + size_of(&value)?;
        self.remove(key);
        if size > MAX_VALUE_BYTES || duration.is_zero() {
            return Ok(());
        }
        self.make_room(size, now);
        let entry = Entry {
            value,
            expires_at: now.saturating_add(duration),
            size,
        };
        self.bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(previous) = self.entries.insert(key.to_owned(), entry) {
            // Another request stored the key meanwhile.
            self.bytes.fetch_sub(previous.size, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Drops `key`'s value, if any.
    pub fn remove(&self, key: &str) {
        if let Some((_, entry)) = self.entries.remove(key) {
            self.bytes.fetch_sub(entry.size, Ordering::Relaxed);
        }
    }

    /// How many values are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries, then any, until `size` more fits.
    fn make_room(&self, size: usize, now: Duration) {
        let fits = |cache: &Self| {
            cache.entries.len() < MAX_ENTRIES
                && cache.bytes.load(Ordering::Relaxed).saturating_add(size) <= MAX_BYTES
        };
        if fits(self) {
            return;
        }
        let mut dropped = 0;
        self.entries.retain(|_, entry| {
            let keep = entry.expires_at > now;
            if !keep {
                dropped += entry.size;
            }
            keep
        });
        self.bytes.fetch_sub(dropped, Ordering::Relaxed);
        while !fits(self) {
            let Some(key) = self.entries.iter().next().map(|entry| entry.key().clone()) else {
                return;
            };
            self.remove(&key);
        }
    }
}

/// The size a value is counted as; an error for a value that cannot be kept.
fn size_of(value: &Value) -> Result<usize, CacheError> {
    Ok(match value {
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Double(_) => 16,
        Value::DateTime(_) | Value::TimeSpan(_) => 16,
        Value::String(text) => 16 + text.len(),
        Value::Bytes(bytes) => 16 + bytes.len(),
        Value::Json(json) => 16 + json.to_string().len(),
        Value::Array(items) => {
            let mut total = 16;
            for item in items {
                total += size_of(item)?;
            }
            total
        }
        other => return Err(CacheError::NotStorable(other.type_name())),
    })
}

#[cfg(test)]
#[path = "value_cache_tests.rs"]
mod tests;
