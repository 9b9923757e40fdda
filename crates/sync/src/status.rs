//! What the sync loop knows that the heartbeat reports: the revision served and the
//! last unresolved error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

/// Shared between the sync loop (writer) and the heartbeat (reader).
#[derive(Debug, Default)]
pub struct SyncStatus {
    /// Woken when something the control plane should hear about changed: the applied
    /// revision, or an error appearing or clearing.
    changed: Notify,
    applied_revision: AtomicU64,
    /// The last configuration from the control plane that could not be served; cleared
    /// when one is.
    config_error: ArcSwapOption<String>,
    /// The last failed exchange; cleared by the next successful one.
    sync_error: ArcSwapOption<String>,
}

impl SyncStatus {
    /// The control-plane revision the gateway is up to date with: what it serves, or
    /// later when nothing it serves changed since.
    #[must_use]
    pub fn applied_revision(&self) -> u64 {
        self.applied_revision.load(Ordering::Relaxed)
    }

    /// Records the revision the gateway is up to date with.
    pub fn set_applied_revision(&self, revision: u64) {
        if self.applied_revision.swap(revision, Ordering::Relaxed) != revision {
            self.changed.notify_one();
        }
    }

    /// Records (or clears) the configuration error.
    pub fn set_config_error(&self, error: Option<String>) {
        let error = error.map(Arc::new);
        let previous = self.config_error.swap(error.clone());
        if previous != error {
            self.changed.notify_one();
        }
    }

    /// Whether a configuration from the control plane is failing to compile.
    #[must_use]
    pub fn has_config_error(&self) -> bool {
        self.config_error.load().is_some()
    }

    /// Records (or clears) the sync error.
    pub fn set_sync_error(&self, error: Option<String>) {
        let appeared_or_cleared = error.is_some();
        let previous = self.sync_error.swap(error.map(Arc::new));
        // Only when it appears or clears: a control plane failing every round must not
        // turn into a heartbeat every round.
        if previous.is_some() != appeared_or_cleared {
            self.changed.notify_one();
        }
    }

    /// Completes when something changed since the last call (at once if it did
    /// meanwhile).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The error to report: a configuration that cannot be served matters more than a
    /// failed exchange (which, if it persists, stops heartbeats too).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.config_error
            .load_full()
            .or_else(|| self.sync_error.load_full())
            .map(|error| String::clone(&error))
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
