use std::io::Write;

use gatehouse_test_support::wait_for;

use super::*;

fn entry(status: u16) -> AccessLogEntry<'static> {
    AccessLogEntry {
        timestamp: "2026-01-01T00:00:00.000Z",
        kind: "request",
        request_id: "r-1",
        client_ip: "127.0.0.1".parse().unwrap(),
        method: "GET",
        host: "localhost",
        path: "/echo/x",
        protocol: "HTTP/1.1",
        api: Some("echo"),
        operation: Some("get"),
        subscription: None,
        status,
        backend_status: Some(status),
        grpc_status: None,
        source: "backend",
        error_reason: None,
        bytes_received: 0,
        bytes_sent: 12,
        duration_ms: 1.5,
        backend_duration_ms: Some(1.0),
    }
}

#[test]
fn every_entry_becomes_one_json_line() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let sink = file.reopen().unwrap();
    let (log, writer) = AccessLog::spawn(Box::new(sink), 16, Counter::default()).unwrap();
    log.write(&entry(200));
    log.write(&entry(404));
    log.flush_thread();
    drop(log);
    writer.join();
    let text = std::fs::read_to_string(file.path()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["status"], 404);
    assert_eq!(lines[0]["api"], "echo");
    assert_eq!(lines[0]["requestId"], "r-1");
}

#[test]
fn a_full_queue_drops_batches_and_counts_their_lines_instead_of_blocking() {
    /// A sink that says when a write starts, then blocks until `release` is dropped.
    struct Stuck {
        release: std::sync::mpsc::Receiver<()>,
        entered: std::sync::mpsc::Sender<()>,
    }
    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.release.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (release, stuck) = std::sync::mpsc::channel();
    let (entered, writing) = std::sync::mpsc::channel();
    let dropped = Counter::default();
    let sink = Stuck {
        release: stuck,
        entered,
    };
    let (log, writer) = AccessLog::spawn(Box::new(sink), 1, dropped.clone()).unwrap();
    // One batch is taken by the writer, which gets stuck writing it...
    log.write(&entry(200));
    log.flush_thread();
    writing
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer thread writes the first batch");
    // ...then one waits in the queue, and the rest drop.
    for _ in 0..10 {
        log.write(&entry(200));
        log.flush_thread();
    }
    assert_eq!(dropped.get(), 9);
    drop(log);
    drop(release);
    writer.join();
}

#[test]
fn lines_are_handed_over_in_batches_not_one_by_one() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (log, writer) =
        AccessLog::spawn(Box::new(file.reopen().unwrap()), 4, Counter::default()).unwrap();
    log.write(&entry(200));
    // Another thread's line, handed over when that thread exits. The writer writes
    // batches in the order they were handed over, so once this line is in the file, a
    // line handed over before it would be too.
    let other = log.clone();
    std::thread::spawn(move || other.write(&entry(201)))
        .join()
        .unwrap();
    let read = || std::fs::read_to_string(file.path()).unwrap();
    assert!(
        wait_for(
            || read().contains("\"status\":201"),
            Duration::from_secs(10)
        ),
        "the other thread's line was never written"
    );
    assert!(
        !read().contains("\"status\":200"),
        "one line stays in the thread's batch"
    );
    // Enough lines to fill a batch are handed over without an explicit flush.
    for _ in 0..(BATCH_BYTES / 200) {
        log.write(&entry(200));
    }
    log.flush_thread();
    drop(log);
    writer.join();
    let lines = read().lines().count();
    assert_eq!(lines, BATCH_BYTES / 200 + 2);
}

#[test]
fn a_thread_that_exits_hands_over_its_pending_lines() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (log, writer) =
        AccessLog::spawn(Box::new(file.reopen().unwrap()), 4, Counter::default()).unwrap();
    let worker_log = log.clone();
    std::thread::spawn(move || worker_log.write(&entry(201)))
        .join()
        .unwrap();
    drop(log);
    writer.join();
    assert!(
        std::fs::read_to_string(file.path())
            .unwrap()
            .contains("\"status\":201")
    );
}

#[test]
fn a_disabled_log_writes_nothing() {
    let log = AccessLog::disabled();
    assert!(!log.is_enabled());
    log.write(&entry(200));
}
