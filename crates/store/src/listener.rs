//! PostgreSQL only: wakes this process's [`crate::Store::watch`] receivers when another
//! process (another control-plane replica) commits a write.
//!
//! Every write transaction ends with `pg_notify('gatehouse_changes', '<revision>')`, which
//! PostgreSQL delivers at commit to every session that ran `LISTEN gatehouse_changes`. One
//! task per [`crate::Store`] holds such a session on a dedicated connection (outside the
//! query pool, so it never starves it) and raises the watched revision to each payload.
//!
//! Notifications sent while the session is down are lost, so after every (re)subscription
//! the task reads `state.revision` once: a reader may be woken late by the reconnect, never
//! left behind. Connection failures are retried forever with exponential backoff and jitter
//! (100 ms doubling to 30 s), logged at `warn`. The task ends when the store is closed or
//! dropped.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connect::StoreOptions;
use crate::error::StoreError;

/// The channel every write notifies, with the new revision as its payload.
pub(crate) const CHANNEL: &str = "gatehouse_changes";

/// The first reconnect delay.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// The longest reconnect delay.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// Opens the listening session and subscribes to [`CHANNEL`], so that once this returns no
/// later commit can be missed.
pub(crate) async fn subscribe(
    pool: &PgPool,
    settings: &StoreOptions,
) -> Result<(PgListener, PgPool), StoreError> {
    // One long-lived connection of its own: LISTEN is per session, and a pooled
    // connection would be recycled by idle or lifetime limits.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let mut listener = PgListener::connect_with(&listen_pool).await?;
    listener.listen(CHANNEL).await?;
    Ok((listener, listen_pool))
}

/// Runs the listener until `shutdown` is cancelled, raising `revision` to every notified
/// (or re-read) revision.
pub(crate) fn spawn(
    pool: PgPool,
    listener: PgListener,
    listen_pool: PgPool,
    revision: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {}
            () = run(&pool, listener, &listen_pool, &revision) => {}
        }
        listen_pool.close().await;
        tracing::debug!("store change listener stopped");
    });
}

/// The listener's loop; never returns (it is cancelled).
async fn run(
    pool: &PgPool,
    listener: PgListener,
    listen_pool: &PgPool,
    revision: &watch::Sender<u64>,
) {
    let mut backoff = Backoff::new(MIN_RECONNECT_DELAY, MAX_RECONNECT_DELAY);
    let mut subscribed = Some(listener);
    loop {
        let mut listener = match subscribed.take() {
            Some(listener) => listener,
            None => match resubscribe(listen_pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    let delay = backoff.next_delay(rand::random());
                    tracing::warn!(
                        %error,
                        retry_in_ms = delay.as_millis(),
                        "cannot LISTEN for store changes on PostgreSQL; \
                         other replicas' writes wake long-polls late until this recovers"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            },
        };
        // Subscribed: catch up on anything committed while we were not listening.
        catch_up(pool, revision).await;
        backoff.reset();

        let error = loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match notification.payload().parse::<u64>() {
                    Ok(notified) => raise(revision, notified),
                    Err(_) => {
                        tracing::warn!(
                            payload = notification.payload(),
                            "unexpected payload on {CHANNEL}; re-reading the revision"
                        );
                        catch_up(pool, revision).await;
                    }
                },
                // The connection dropped and `PgListener` reconnected and re-subscribed
                // by itself; notifications in between are lost.
                Ok(None) => {
                    tracing::info!("store change listener reconnected to PostgreSQL");
                    catch_up(pool, revision).await;
                }
                Err(error) => break error,
            }
        };
        let delay = backoff.next_delay(rand::random());
        tracing::warn!(
            %error,
            retry_in_ms = delay.as_millis(),
            "store change listener lost its PostgreSQL session; reconnecting"
        );
        drop(listener);
        tokio::time::sleep(delay).await;
    }
}

async fn resubscribe(listen_pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(listen_pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Reads `state.revision` and raises the watched value to it; logs on failure (the next
/// notification or reconnect tries again).
async fn catch_up(pool: &PgPool, revision: &watch::Sender<u64>) {
    match crate::store::read_revision_pg(pool).await {
        Ok(current) => raise(revision, current),
        Err(error) => {
            tracing::warn!(%error, "cannot read the store revision after (re)subscribing")
        }
    }
}

/// Raises the watched revision to `seen`; never lowers it (notifications of concurrent
/// commits can arrive out of order), and wakes receivers only on a change.
pub(crate) fn raise(revision: &watch::Sender<u64>, seen: u64) {
    revision.send_if_modified(|current| {
        let newer = seen > *current;
        if newer {
            *current = seen;
        }
        newer
    });
}

/// Exponential backoff with jitter: each delay is between half and all of a ceiling that
/// doubles from `min` to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
}

impl Backoff {
    /// A backoff starting at `min`, capped at `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            ceiling: min,
        }
    }

    /// The next delay; `unit` in `[0, 1)` picks where in the jitter range it falls
    /// (`rand::random()` in production, fixed values in tests).
    pub(crate) fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + unit / 2.0)
    }

    /// Back to the first delay (after a success).
    pub(crate) fn reset(&mut self) {
        self.ceiling = self.min;
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
