//! One JSON line per request, written off the request path.
//!
//! Each worker thread serialises entries into its own batch buffer (no allocation per
//! line, no lock, no wake-up). A batch goes to the writer thread when it reaches
//! [`BATCH_BYTES`] or when the worker's periodic [`AccessLog::flush_thread`] runs
//! (every [`FLUSH_INTERVAL`]), through a bounded channel of [`QUEUE_BATCHES`] batches.
//! The writer thread writes batches to the sink and flushes whenever the channel runs
//! dry. When the writer cannot keep up, a batch is dropped and
//! `gatehouse_access_log_dropped_total` counts its lines: a slow log sink must never slow
//! down or block requests. Memory held is bounded by `QUEUE_BATCHES × BATCH_BYTES` plus
//! one batch per worker.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

/// Bytes a worker gathers before handing a batch to the writer.
pub const BATCH_BYTES: usize = 32 * 1024;
/// Batches queued between the workers and the writer thread.
pub const QUEUE_BATCHES: usize = 256;
/// How often workers hand over a partial batch, so lines reach the sink promptly under
/// light traffic.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// One request, as logged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogEntry<'a> {
    /// RFC 3339 time the request was received.
    pub timestamp: &'a str,
    /// Always `request`, so access lines are easy to tell from diagnostic lines.
    pub kind: &'static str,
    /// Request id (also logged by diagnostic lines about this request).
    pub request_id: &'a str,
    /// Client address.
    pub client_ip: IpAddr,
    /// HTTP method.
    pub method: &'a str,
    /// `Host` header or `:authority`.
    pub host: &'a str,
    /// Request path (no query string: it may carry keys).
    pub path: &'a str,
    /// HTTP version of the client request.
    pub protocol: &'static str,
    /// Matched API id.
    pub api: Option<&'a str>,
    /// Matched operation id.
    pub operation: Option<&'a str>,
    /// Subscription id, when a key was presented and recognised.
    pub subscription: Option<&'a str>,
    /// Status sent to the client.
    pub status: u16,
    /// Status the backend answered, when the request reached one.
    pub backend_status: Option<u16>,
    /// `grpc-status` of a gRPC call (from the trailers or a trailers-only head); absent
    /// for other requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    /// Who made the answer: `backend`, `gateway` (its own error) or `policy` (a policy
    /// answered: `return-response`, a rate limit's 429, …).
    pub source: &'static str,
    /// Why the gateway answered with an error instead of the backend (closed set), if
    /// it did; `policy_error` when a policy raised one.
    pub error_reason: Option<&'static str>,
    /// Request body bytes received from the client.
    pub bytes_received: u64,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// Milliseconds from request received to response body finished (three decimals:
    /// whole microseconds).
    pub duration_ms: f64,
    /// Milliseconds from request sent to the backend to its response head (three
    /// decimals).
    pub backend_duration_ms: Option<f64>,
}

/// Handle to the access-log writer. Cheap to clone; lines from every worker go to one
/// writer thread.
#[derive(Clone, Debug)]
pub struct AccessLog {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    sender: SyncSender<Batch>,
    dropped: Counter,
}

/// Lines serialised by one thread, not yet handed to the writer.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

/// A thread's pending batch and the log it belongs to.
struct Pending {
    owner: Arc<Shared>,
    batch: Batch,
}

impl Pending {
    fn hand_over(self) {
        let Self { owner, batch } = self;
        if batch.lines == 0 {
            return;
        }
        let lines = batch.lines;
        match owner.sender.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                owner.dropped.inc_by(lines);
            }
        }
    }
}

/// Hands the pending batch over when its thread exits (a worker that stops).
struct PendingSlot(RefCell<Option<Pending>>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some(pending) = self.0.get_mut().take() {
            pending.hand_over();
        }
    }
}

thread_local! {
    static PENDING: PendingSlot = const { PendingSlot(RefCell::new(None)) };
}

/// Owns the writer thread; once every thread holding lines has flushed
/// ([`AccessLog::flush_thread`], or exited) and every [`AccessLog`] is dropped, joining
/// this writes everything queued.
#[derive(Debug)]
pub struct AccessLogWriter {
    thread: JoinHandle<()>,
}

impl AccessLogWriter {
    /// Waits until every queued line is written.
    pub fn join(self) {
        // A panic in the writer thread has already been reported by the panic hook.
        let _ = self.thread.join();
    }
}

impl AccessLog {
    /// Starts a writer thread writing to `sink`.
    ///
    /// # Errors
    ///
    /// If the thread cannot be spawned.
    pub fn spawn(
        sink: Box<dyn Write + Send>,
        queue_batches: usize,
        dropped: Counter,
    ) -> std::io::Result<(Self, AccessLogWriter)> {
        let (sender, receiver) = sync_channel(queue_batches);
        let thread = std::thread::Builder::new()
            .name("gatehouse-access-log".to_owned())
            .spawn(move || write_batches(&receiver, sink))?;
        Ok((
            Self {
                shared: Some(Arc::new(Shared { sender, dropped })),
            },
            AccessLogWriter { thread },
        ))
    }

    /// An access log that writes nothing (`--access-log=false`).
    #[must_use]
    pub const fn disabled() -> Self {
        Self { shared: None }
    }

    /// Whether lines are written at all; lets callers skip building an entry.
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Adds one entry to this thread's batch; never blocks.
    pub fn write(&self, entry: &AccessLogEntry<'_>) {
        let Some(shared) = &self.shared else { return };
        PENDING.with(|slot| {
            let mut slot = slot.0.borrow_mut();
            let pending = match slot.as_mut() {
                Some(pending) if Arc::ptr_eq(&pending.owner, shared) => pending,
                _ => {
                    // First line on this thread, or lines of another log: hand those
                    // over first so each reaches its own writer.
                    if let Some(other) = slot.take() {
                        other.hand_over();
                    }
                    slot.insert(Pending {
                        owner: shared.clone(),
                        batch: Batch {
                            bytes: Vec::with_capacity(BATCH_BYTES + 1024),
                            lines: 0,
                        },
                    })
                }
            };
            let before = pending.batch.bytes.len();
            if serde_json::to_writer(&mut pending.batch.bytes, entry).is_err() {
                pending.batch.bytes.truncate(before);
                return;
            }
            pending.batch.bytes.push(b'\n');
            pending.batch.lines += 1;
            if pending.batch.bytes.len() >= BATCH_BYTES
                && let Some(full) = slot.take()
            {
                full.hand_over();
            }
        });
    }

    /// Hands this thread's pending lines to the writer. Workers call it every
    /// [`FLUSH_INTERVAL`] and when they stop.
    pub fn flush_thread(&self) {
        PENDING.with(|slot| {
            if let Some(pending) = slot.0.borrow_mut().take() {
                pending.hand_over();
            }
        });
    }

    /// Calls [`AccessLog::flush_thread`] every [`FLUSH_INTERVAL`] until `shutdown`, then
    /// once more. Run it on each worker's (current-thread) runtime.
    pub async fn flush_periodically(&self, shutdown: tokio_util::sync::CancellationToken) {
        if !self.is_enabled() {
            return;
        }
        let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => self.flush_thread(),
            }
        }
        self.flush_thread();
    }
}

fn write_batches(receiver: &Receiver<Batch>, sink: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    // Blocking receive: this is a dedicated thread, not the async runtime.
    while let Ok(batch) = receiver.recv() {
        // On a write error (stdout closed, disk full) keep draining, so workers never
        // stall; their batches are simply lost.
        let _ = out.write_all(&batch.bytes);
        // Write what is already queued before paying for a flush.
        while let Ok(batch) = receiver.try_recv() {
            let _ = out.write_all(&batch.bytes);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
