//! The sync loop: snapshot, then the change stream, forever, as an explicit state
//! machine ([`SyncState`]).
//!
//! ```text
//!  Bootstrapping ──snapshot──▶ Watching ◀──changes (applied or not)──┐
//!       │                       │  │  └────────────────────────────────┘
//!       │            410, resync│  │error
//!       │                       ▼  ▼
//!       │   Snapshot ◀──── Backoff (delay, then back where it failed)
//!       └──error──────────────────▲
//! ```
//!
//! Fail-static: nothing here ever clears what the gateway serves. A failed exchange
//! leaves the last good configuration (from the control plane or the backup) serving;
//! a configuration that does not compile leaves the previous one serving.
//!
//! # A change that does not compile
//!
//! The gateway keeps two configurations: the one it *serves* (the last that compiled)
//! and its *local copy* of what the control plane says (every change applied, whether
//! or not the result compiled). Changes are applied to the local copy, which then
//! advances to the answer's revision even when compiling it fails; the failure is
//! logged, counted (`compile`) and reported as `lastError` in the heartbeat, and the
//! served configuration stays. The next change is applied on top of the local copy, so
//! when it fixes the problem (say, the API is corrected), the gateway converges to
//! exactly what the control plane holds. Re-requesting the same changes instead would
//! fail the same way forever; taking a new snapshot would give the same configuration.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_gateway::ConfigSink;
use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::{Configuration, Snapshot};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backup::BackupWriter;
use crate::changes::{Changes, apply_changes};
use crate::client::{ConfigClient, SyncError};
use crate::settings::Backoff;
use crate::status::SyncStatus;
use crate::token::TokenSource;

/// Where the sync loop is. Each state does one exchange (or one wait) and names the
/// next state.
#[derive(Debug)]
pub enum SyncState {
    /// Just started; nothing received from the control plane yet (a backup may be
    /// serving, or nothing). Fetches the first snapshot. On error: [`SyncState::Backoff`],
    /// then here again.
    Bootstrapping,
    /// Needs a new snapshot: after `410 Gone`, `resync: true`, or a change stream it
    /// could not understand. On error: [`SyncState::Backoff`], then here again.
    Snapshot,
    /// Holds the local copy of the configuration at a revision and long-polls the
    /// changes after it. On `410 Gone`: [`SyncState::Snapshot`] at once (through
    /// [`SyncState::Backoff`] if the last answer was `410 Gone` too). On other
    /// errors: [`SyncState::Backoff`], then here again with the same local copy (the
    /// revision is still good). A change that does not compile stays here (see the
    /// module docs).
    Watching(Box<LocalCopy>),
    /// Waits `delay` after `attempt` consecutive failures, then goes back to `resume`.
    /// Ends early when the token changes (a rotated Secret should be tried at once).
    Backoff {
        /// Consecutive failures so far.
        attempt: u32,
        /// How long to wait (already jittered).
        delay: Duration,
        /// Where to go afterwards.
        resume: Box<Self>,
    },
}

/// The gateway's copy of what the control plane holds for it.
#[derive(Debug, Clone)]
pub struct LocalCopy {
    /// The control plane's revision this copy is at.
    pub revision: u64,
    /// The configuration, every change applied (whether or not it compiled).
    pub config: Arc<Configuration>,
}

/// What [`apply_response`] did with an answer of the change stream.
#[derive(Debug)]
pub enum ChangesOutcome {
    /// Applied (or nothing to apply): keep watching from the new copy.
    Advanced(LocalCopy),
    /// The control plane asked for a new snapshot.
    Resync,
    /// The answer could not be applied to the local copy: take a new snapshot.
    Unusable(SyncError),
}

/// The sync loop and what it needs.
#[derive(Debug)]
pub struct Syncer {
    sink: ConfigSink,
    client: ConfigClient,
    token: Arc<TokenSource>,
    token_changes: watch::Receiver<u64>,
    status: Arc<SyncStatus>,
    backup: Option<BackupWriter>,
    long_poll_wait: Duration,
    backoff: Backoff,
    /// Consecutive failed exchanges.
    failures: u32,
    /// Consecutive `410 Gone` answers with only snapshots in between.
    gone_in_a_row: u32,
}

impl Syncer {
    /// A sync loop serving into `sink`.
    #[must_use]
    pub fn new(
        sink: ConfigSink,
        client: ConfigClient,
        token: Arc<TokenSource>,
        status: Arc<SyncStatus>,
        backup: Option<BackupWriter>,
        long_poll_wait: Duration,
        backoff: Backoff,
    ) -> Self {
        let token_changes = token.subscribe();
        Self {
            sink,
            client,
            token,
            token_changes,
            status,
            backup,
            long_poll_wait,
            backoff,
            failures: 0,
            gone_in_a_row: 0,
        }
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut current = SyncState::Bootstrapping;
        loop {
            current = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                next = self.step(current) => next,
            };
        }
    }

    /// One exchange or wait; returns the next state.
    pub async fn step(&mut self, current: SyncState) -> SyncState {
        match current {
            SyncState::Bootstrapping | SyncState::Snapshot => match self.client.snapshot().await {
                Ok(snapshot) => self.on_snapshot(snapshot, current).await,
                Err(error) => self.failed(error, current).await,
            },
            SyncState::Watching(local) => {
                match self
                    .client
                    .changes(local.revision, self.long_poll_wait)
                    .await
                {
                    Ok(response) => {
                        self.succeeded();
                        self.gone_in_a_row = 0;
                        match apply_response(&self.sink, &self.status, &local, &response).await {
                            ChangesOutcome::Advanced(next) => {
                                if next.revision != local.revision
                                    && !self.status.has_config_error()
                                {
                                    self.save_backup(&next);
                                }
                                SyncState::Watching(Box::new(next))
                            }
                            ChangesOutcome::Resync => {
                                tracing::info!(
                                    revision = response.revision,
                                    "the control plane changed this gateway's assignment; taking a new snapshot"
                                );
                                SyncState::Snapshot
                            }
                            ChangesOutcome::Unusable(error) => {
                                self.failed(error, SyncState::Snapshot).await
                            }
                        }
                    }
                    Err(error) if error.reason == SyncErrorReason::Gone => {
                        self.gone_in_a_row += 1;
                        if self.gone_in_a_row > 1 {
                            // Gone again right after a new snapshot: the control plane
                            // is confused; back off rather than spin.
                            return self.failed(error, SyncState::Snapshot).await;
                        }
                        self.sink.metrics().config_sync_error(SyncErrorReason::Gone);
                        tracing::warn!(since = local.revision, error = %error, "taking a new snapshot");
                        SyncState::Snapshot
                    }
                    Err(error) => self.failed(error, SyncState::Watching(local)).await,
                }
            }
            SyncState::Backoff { delay, resume, .. } => {
                if self.token_changes.has_changed().unwrap_or(false) {
                    self.token_changes.borrow_and_update();
                    return *resume;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = self.token_changes.changed() => {
                        self.token_changes.borrow_and_update();
                        tracing::info!("the gateway token changed; retrying now");
                    }
                }
                *resume
            }
        }
    }

    async fn on_snapshot(&mut self, snapshot: Snapshot, current: SyncState) -> SyncState {
        if snapshot.gateway_id != self.token.gateway_id() {
            let error = SyncError::new(
                SyncErrorReason::BadResponse,
                format!(
                    "the control plane sent the snapshot of gateway `{}` to gateway `{}`",
                    snapshot.gateway_id,
                    self.token.gateway_id()
                ),
            );
            return self.failed(error, current).await;
        }
        if let Err(mismatch) = snapshot.verify() {
            let error = SyncError::new(SyncErrorReason::Checksum, mismatch.to_string());
            return self.failed(error, current).await;
        }
        self.succeeded();
        let revision = snapshot.revision;
        let local = LocalCopy {
            revision,
            config: Arc::new(snapshot.configuration),
        };
        if apply(&self.sink, &self.status, &local, "snapshot").await {
            self.save_backup(&local);
        }
        SyncState::Watching(Box::new(local))
    }

    fn save_backup(&self, local: &LocalCopy) {
        if let Some(backup) = &self.backup {
            backup.save(local.revision, local.config.clone());
        }
    }

    /// An exchange worked: reset the backoff, clear the sync error.
    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "reached the control plane again");
        }
        self.failures = 0;
        self.status.set_sync_error(None);
        // A token change seen while things work needs no early retry later.
        self.token_changes.borrow_and_update();
    }

    /// An exchange failed: count, log (at error, every round), remember, back off.
    async fn failed(&mut self, error: SyncError, resume: SyncState) -> SyncState {
        self.failures = self.failures.saturating_add(1);
        self.sink.metrics().config_sync_error(error.reason);
        self.status.set_sync_error(Some(error.message.clone()));
        let delay = self.backoff.delay(self.failures, rand::random::<f64>());
        let serving = if !self.sink.has_configuration() {
            "nothing yet (no backup, no answer from the control plane)".to_owned()
        } else {
            format!("revision {}", self.sink.served_revision())
        };
        tracing::error!(
            reason = error.reason.as_str(),
            attempt = self.failures,
            retry_in = ?delay,
            serving = %serving,
            "{error}; the gateway keeps serving what it has"
        );
        if error.reason == SyncErrorReason::Status4xxAuth {
            // Perhaps the Secret was updated and the watcher missed it.
            self.token.reload_and_log(&self.sink, "token-refused").await;
            let token = self.token.current();
            if token.expiry_unix() <= unix_now() {
                tracing::error!(
                    gateway = token.gateway_id(),
                    expired = %gatehouse_model::token::format_utc_minute(token.expiry_unix()),
                    "the gateway token has expired: generate a new one with `gatehouse gateway token {}` and update `config.service.auth`",
                    token.gateway_id()
                );
            }
        }
        SyncState::Backoff {
            attempt: self.failures,
            delay,
            resume: Box::new(resume),
        }
    }
}

/// Applies an answer of the change stream, received for `local`, and serves the result
/// if it compiles. See the module docs for what happens when it does not.
pub async fn apply_response(
    sink: &ConfigSink,
    status: &SyncStatus,
    local: &LocalCopy,
    response: &Changes,
) -> ChangesOutcome {
    if response.resync {
        return ChangesOutcome::Resync;
    }
    if response.changes.is_empty() {
        if response.revision > local.revision && !status.has_config_error() {
            // Writes that do not concern this gateway: what it serves is current.
            status.set_applied_revision(response.revision);
        }
        return ChangesOutcome::Advanced(LocalCopy {
            revision: response.revision.max(local.revision),
            config: local.config.clone(),
        });
    }
    let next = match apply_changes(&local.config, local.revision, response) {
        Ok(config) => LocalCopy {
            revision: response.revision,
            config: Arc::new(config),
        },
        Err(error) => {
            return ChangesOutcome::Unusable(SyncError::new(
                SyncErrorReason::BadResponse,
                format!("cannot apply the control plane's changes: {error}; taking a new snapshot"),
            ));
        }
    };
    apply(sink, status, &next, "changes").await;
    ChangesOutcome::Advanced(next)
}

/// Validates, compiles and serves `local`; returns whether it is now served. On
/// failure the previous configuration keeps serving and the error is logged, counted
/// and kept for the heartbeat.
pub async fn apply(
    sink: &ConfigSink,
    status: &SyncStatus,
    local: &LocalCopy,
    what: &'static str,
) -> bool {
    let origin = format!("control plane revision {}", local.revision);
    let result = sink
        .offer(
            Configuration::clone(&local.config),
            origin,
            Some(local.revision),
        )
        .await;
    match result {
        Ok(_) => {
            status.set_applied_revision(local.revision);
            status.set_config_error(None);
            true
        }
        Err(error) => {
            sink.metrics().config_sync_error(SyncErrorReason::Compile);
            let served = sink.served_revision();
            tracing::error!(
                revision = local.revision,
                served,
                from = what,
                error = %error,
                "the configuration from the control plane cannot be served; still serving the previous one"
            );
            status.set_config_error(Some(format!(
                "revision {} cannot be served (still serving {served}): {error}",
                local.revision
            )));
            false
        }
    }
}

/// Seconds since the Unix epoch by the wall clock (token expiry is wall-clock time).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "sync_loop_tests.rs"]
mod tests;
