//! Subscription keys, held hashed.
//!
//! Keys are never kept in memory in clear once a configuration is compiled: the store maps
//! SHA-256(key) to the subscription. A presented key is hashed and looked up; the final
//! comparison of digests is constant-time, so response timing says nothing about how
//! much of a key was right.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use gatehouse_model::{SubscriptionScope, SubscriptionState};

/// SHA-256 digest of a key.
pub type KeyDigest = [u8; 32];

/// Hashes a subscription key.
#[must_use]
pub fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

/// What the gateway knows about a subscription at request time.
#[derive(Debug)]
pub struct SubscriptionEntry {
    /// Subscription id (logged; never the key).
    pub id: Arc<str>,
    /// Display name (the id when it has none), for `context.Subscription.Name`.
    pub name: Arc<str>,
    /// Resolved scope.
    pub scope: ResolvedScope,
    /// Active or suspended.
    pub state: SubscriptionState,
}

/// A subscription scope resolved to indexes of the compiled configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedScope {
    /// A product, by index.
    Product(usize),
    /// An API, by index.
    Api(usize),
    /// Every API.
    AllApis,
}

/// Every key of one configuration.
#[derive(Debug, Default)]
pub struct SubscriptionStore {
    by_digest: HashMap<KeyDigest, (KeyDigest, Arc<SubscriptionEntry>)>,
}

impl SubscriptionStore {
    /// Adds a subscription under each of its keys.
    pub fn insert(&mut self, keys: &[&str], entry: &Arc<SubscriptionEntry>) {
        for key in keys {
            let digest = digest(key.as_bytes());
            self.by_digest.insert(digest, (digest, entry.clone()));
        }
    }

    /// Finds the subscription a presented key belongs to.
    #[must_use]
    pub fn find(&self, presented: &[u8]) -> Option<&Arc<SubscriptionEntry>> {
        let presented = digest(presented);
        let (stored, entry) = self.by_digest.get(&presented)?;
        // The map lookup compared digests already; this constant-time check is the
        // explicit, auditable equality the security property rests on.
        bool::from(stored.ct_eq(&presented)).then_some(entry)
    }

    /// Number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True when no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// Resolves a model scope against id → index maps.
#[must_use]
pub fn resolve_scope(
    scope: &SubscriptionScope,
    api_index: &HashMap<&str, usize>,
    product_index: &HashMap<&str, usize>,
) -> Option<ResolvedScope> {
    match scope {
        SubscriptionScope::Product(id) => product_index
            .get(id.as_str())
            .map(|i| ResolvedScope::Product(*i)),
        SubscriptionScope::Api(id) => api_index.get(id.as_str()).map(|i| ResolvedScope::Api(*i)),
        SubscriptionScope::AllApis => Some(ResolvedScope::AllApis),
    }
}

#[cfg(test)]
#[path = "subscriptions_tests.rs"]
mod tests;
