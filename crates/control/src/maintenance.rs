//! Pruning on a schedule, so nothing the control plane stores grows without bound:
//!
//! - heartbeats of instances silent for longer than `heartbeat_retention` (default 1
//!   hour) are deleted (they stopped counting in `gateway status` long before: after
//!   their instance timeout);
//! - the change log keeps the latest `change_log_retention` revisions (default 10 000);
//!   a gateway further behind gets `410 Gone` and takes a new snapshot.
//!
//! The same pass logs the certificates that expired or expire within
//! `certificate_expiry_warning` (default 14 days), each at most once a day per replica;
//! `gateway status` lists them too.
//!
//! Every replica runs it; both steps are idempotent, so replicas running them at once
//! do the same work twice at worst.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    let mut warned: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        warn_of_certificates(&state, &mut warned).await;
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

/// How often one certificate is logged while it needs replacing.
const CERTIFICATE_LOG_EVERY: Duration = Duration::from_secs(86_400);

/// Logs the certificates that need replacing, each at most once per
/// [`CERTIFICATE_LOG_EVERY`].
async fn warn_of_certificates(
    state: &ControlState,
    warned: &mut HashMap<String, tokio::time::Instant>,
) {
    let config = match state.all().await {
        Ok((_, stored)) => match crate::entities::configuration(&stored) {
            Ok(config) => config,
            Err(error) => return tracing::warn!(%error, "cannot check certificate expiry"),
        },
        Err(error) => return tracing::warn!(%error, "cannot check certificate expiry"),
    };
    let now = tokio::time::Instant::now();
    let warnings = crate::status::certificate_warnings(
        &config,
        unix_now(),
        state.settings.certificate_expiry_warning,
    );
    warned.retain(|id, _| warnings.iter().any(|w| &w.certificate_id == id));
    for warning in warnings {
        if warned
            .get(&warning.certificate_id)
            .is_some_and(|at| now.duration_since(*at) < CERTIFICATE_LOG_EVERY)
        {
            continue;
        }
        if warning.expired {
            tracing::error!(certificate = %warning.certificate_id, hostnames = ?warning.hostnames, expired = %warning.not_after, "certificate expired: gateways still present it and clients refuse it; replace it (everything else is delivered as usual)");
        } else {
            tracing::warn!(certificate = %warning.certificate_id, hostnames = ?warning.hostnames, expires = %warning.not_after, "certificate expires soon; replace it");
        }
        warned.insert(warning.certificate_id, now);
    }
}
