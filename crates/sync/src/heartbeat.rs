//! The heartbeat: every `--heartbeat-interval` (60 s by default), the instance tells
//! the control plane who it is, what it serves and what went wrong last, which
//! `gatehouse gateway status` shows as the gateway's "nodes". The first is sent at
//! start. When the applied revision changes or an error appears or clears, one is sent
//! at once (at most one per [`MIN_HEARTBEAT_GAP`]), so the status page does not lag a
//! whole interval behind. A failed heartbeat is logged at warn and retried at the next
//! tick; the sync loop reports control-plane trouble more loudly.
//!
//! The same tick checks the token's expiry and warns, once a day, from 7 days before
//! it. When the gateway stops, the instance says goodbye (within
//! [`GOODBYE_TIMEOUT`]), so the status stops counting it at once instead of after three
//! silent intervals.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_gateway::ConfigSink;
use tokio_util::sync::CancellationToken;

use crate::client::{ConfigClient, Heartbeat};
use crate::status::SyncStatus;
use crate::sync_loop::unix_now;
use crate::token::{ExpiryWarning, TokenSource};

/// Longest the goodbye may hold up a stopping gateway.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Least time between two heartbeats, however often the status changes.
pub const MIN_HEARTBEAT_GAP: Duration = Duration::from_secs(1);

/// Who this process is, for the control plane.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `<hostname>-<pid>-<start unix time>`: unique per process, stable for its life.
    pub id: String,
    /// Host name (the pod name on Kubernetes).
    pub hostname: String,
    started: tokio::time::Instant,
}

impl Instance {
    /// This process: host name from `HOSTNAME`, else the kernel's.
    pub async fn detect() -> Self {
        let hostname = match std::env::var("HOSTNAME") {
            Ok(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => tokio::fs::read_to_string("/proc/sys/kernel/hostname")
                .await
                .map(|name| name.trim().to_owned())
                .ok()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "unknown".to_owned()),
        };
        let id = format!("{hostname}-{}-{}", std::process::id(), unix_now());
        Self {
            id,
            hostname,
            started: tokio::time::Instant::now(),
        }
    }

    /// Seconds since [`Instance::detect`].
    #[must_use]
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// The heartbeat of now.
#[must_use]
pub fn heartbeat(
    instance: &Instance,
    status: &SyncStatus,
    token: &TokenSource,
    interval: Duration,
) -> Heartbeat {
    Heartbeat {
        instance_id: instance.id.clone(),
        hostname: instance.hostname.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        applied_revision: status.applied_revision(),
        last_error: status.last_error(),
        uptime_seconds: instance.uptime_seconds(),
        token_expiry: Some(token.current().expiry_unix()),
        heartbeat_interval_seconds: Some(interval.as_secs().max(1)),
    }
}

/// Sends a heartbeat every `interval` (the first at once) until `shutdown`, then says
/// goodbye.
pub async fn run(
    client: ConfigClient,
    token: Arc<TokenSource>,
    status: Arc<SyncStatus>,
    sink: ConfigSink,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let instance = Instance::detect().await;
    tracing::info!(instance = %instance.id, interval = ?interval, "sending heartbeats");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry_warning = ExpiryWarning::default();
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return goodbye(&client, &instance).await,
            _ = ticker.tick() => {}
            () = status.changed() => {
                if let Some(last) = last_sent {
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return goodbye(&client, &instance).await,
                        () = tokio::time::sleep_until(last + MIN_HEARTBEAT_GAP) => {}
                    }
                }
                ticker.reset();
            }
        }
        last_sent = Some(tokio::time::Instant::now());
        let current = token.current();
        sink.metrics()
            .token_expiry_timestamp_seconds
            .set(current.expiry_unix());
        expiry_warning.check_and_log(unix_now(), &current, token.file());
        let beat = heartbeat(&instance, &status, &token, interval);
        let sent = tokio::select! {
            biased;
            () = shutdown.cancelled() => return goodbye(&client, &instance).await,
            sent = client.heartbeat(&beat) => sent,
        };
        match sent {
            Ok(()) => tracing::debug!(revision = beat.applied_revision, "heartbeat sent"),
            Err(error) => {
                tracing::warn!(reason = error.reason.as_str(), error = %error, "heartbeat failed; retrying at the next interval")
            }
        }
    }
}

/// Tells the control plane this instance is stopping; a failure is only logged (the
/// control plane then drops the instance after its silence times out).
async fn goodbye(client: &ConfigClient, instance: &Instance) {
    match client.goodbye(&instance.id, GOODBYE_TIMEOUT).await {
        Ok(()) => tracing::info!(instance = %instance.id, "said goodbye to the control plane"),
        Err(error) => tracing::warn!(
            instance = %instance.id,
            reason = error.reason.as_str(),
            error = %error,
            "could not say goodbye to the control plane; it drops this instance once its heartbeats stop for long enough"
        ),
    }
}
