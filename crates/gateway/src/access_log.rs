//! One JSON line per request, written off the request path.
//!
//! The request path serialises the entry into a fresh buffer and hands it to a bounded
//! channel; a dedicated thread writes lines to the sink through a `BufWriter` and
//! flushes whenever the channel runs dry. When the writer cannot keep up the line is
//! dropped and `gatehouse_access_log_dropped_total` counts it: a slow log sink must never
//! slow down or block requests.

use std::io::Write;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

/// Lines buffered between the request path and the writer thread.
pub const ACCESS_LOG_QUEUE_CAPACITY: usize = 64 * 1024;

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
    /// Why the gateway answered instead of the backend (closed set), if it did.
    pub error_reason: Option<&'static str>,
    /// Request body bytes received from the client.
    pub bytes_received: u64,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// Milliseconds from request received to response body finished.
    pub duration_ms: f64,
    /// Milliseconds from request sent to the backend to its response head.
    pub backend_duration_ms: Option<f64>,
}

/// Handle to the access-log writer. Cheap to clone; lines from every worker go to one
/// writer thread.
#[derive(Clone, Debug)]
pub struct AccessLog {
    sender: Option<SyncSender<Vec<u8>>>,
    dropped: Counter,
}

/// Owns the writer thread; dropping every [`AccessLog`] and then joining this flushes
/// everything queued.
#[derive(Debug)]
pub struct AccessLogWriter {
    thread: JoinHandle<()>,
}

impl AccessLogWriter {
    /// Waits until every queued line is written. Call after the last [`AccessLog`] clone
    /// is dropped, or this waits forever.
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
        capacity: usize,
        dropped: Counter,
    ) -> std::io::Result<(Self, AccessLogWriter)> {
        let (sender, receiver) = sync_channel(capacity);
        let thread = std::thread::Builder::new()
            .name("gatehouse-access-log".to_owned())
            .spawn(move || write_lines(&receiver, sink))?;
        Ok((
            Self {
                sender: Some(sender),
                dropped,
            },
            AccessLogWriter { thread },
        ))
    }

    /// An access log that writes nothing (`--access-log=false`).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            sender: None,
            dropped: Counter::default(),
        }
    }

    /// Whether lines are written at all; lets callers skip building an entry.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues one entry; never blocks.
    pub fn write(&self, entry: &AccessLogEntry<'_>) {
        let Some(sender) = &self.sender else { return };
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, entry).is_err() {
            return;
        }
        line.push(b'\n');
        match sender.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }
}

fn write_lines(receiver: &Receiver<Vec<u8>>, sink: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
    // Blocking receive: this is a dedicated thread, not the async runtime.
    while let Ok(line) = receiver.recv() {
        let mut ok = out.write_all(&line).is_ok();
        // Drain what is already queued before paying for a flush.
        while let Ok(line) = receiver.try_recv() {
            ok &= out.write_all(&line).is_ok();
        }
        ok &= out.flush().is_ok();
        if !ok {
            // stdout closed or the disk is full; keep draining so senders never stall.
            continue;
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
