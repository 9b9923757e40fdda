//! Pruning on a schedule, so nothing the control plane stores grows without bound:
//!
//! - heartbeats of instances silent for longer than `heartbeat_retention` (default 1
//!   hour) are deleted (they stopped counting in `gateway status` long before: after
//!   their instance timeout);
//! - the change log keeps the latest `change_log_retention` revisions (default 10 000);
//!   a gateway further behind gets `410 Gone` and takes a new snapshot.
//!
//! Every replica runs it; both steps are idempotent, so replicas running them at once
//! do the same work twice at worst.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{ControlState, unix_now};

/// What one pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Heartbeats deleted.
    pub heartbeats: u64,
    /// The change log's horizon after the pass: changes at or below it are gone.
    pub compacted_through: u64,
}

/// One pass.
///
/// # Errors
///
/// The store's, from the first step that failed.
pub async fn prune_once(state: &ControlState) -> Result<Pruned, gatehouse_store::StoreError> {
    let retention = i64::try_from(state.settings.heartbeat_retention.as_secs()).unwrap_or(i64::MAX);
    let heartbeats = state
        .store
        .prune_heartbeats(unix_now().saturating_sub(retention))
        .await?;
    let compacted_through = state
        .store
        .compact(state.settings.change_log_retention)
        .await?;
    Ok(Pruned {
        heartbeats,
        compacted_through,
    })
}

/// Prunes every `maintenance_interval` until `shutdown`; failures are logged and the
/// next pass tries again.
pub async fn run(state: Arc<ControlState>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(state.settings.maintenance_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match prune_once(&state).await {
            Ok(pruned) if pruned.heartbeats > 0 => tracing::info!(
                heartbeats = pruned.heartbeats,
                change_log_horizon = pruned.compacted_through,
                "pruned the heartbeats of long-gone gateway instances"
            ),
            Ok(pruned) => tracing::debug!(
                change_log_horizon = pruned.compacted_through,
                "pruning pass"
            ),
            Err(error) => tracing::warn!(%error, "pruning failed; retrying at the next pass"),
        }
    }
}
