//! A fake server running on its own thread and Tokio runtime.
//!
//! Giving every fake its own runtime keeps it serving whatever the test does with its
//! own thread: a `#[test]` blocking on a child process, or a current-thread
//! `#[tokio::test]` calling a blocking helper.

use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Binds a listener on `127.0.0.1:0`.
pub(crate) fn bind_loopback() -> StdTcpListener {
    StdTcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|error| panic!("test-support: cannot bind 127.0.0.1:0: {error}"))
}

/// Accepts connections on `listener` until `shutdown` resolves, and runs what `serve`
/// makes of each on a task of its own (`TCP_NODELAY` set: Nagle only adds latency to a
/// test). An accept error (a connection reset before it was taken, out of descriptors)
/// ends no server: it backs off briefly and goes on.
pub(crate) async fn accept_each<F, Fut>(
    listener: TcpListener,
    mut shutdown: oneshot::Receiver<()>,
    mut serve: F,
) where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Best effort.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream));
    }
}

/// A server future running on a dedicated thread until this value is dropped.
#[derive(Debug)]
pub(crate) struct ServerThread {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve(listener, shutdown)` on a new thread named `name`.
    ///
    /// `serve` must return soon after `shutdown` resolves; connection tasks it spawned
    /// are cancelled when the runtime is dropped right after.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> Self
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let std_listener = bind_loopback();
        let addr = std_listener
            .local_addr()
            .unwrap_or_else(|error| panic!("test-support: listener has no address: {error}"));
        std_listener
            .set_nonblocking(true)
            .unwrap_or_else(|error| panic!("test-support: set_nonblocking failed: {error}"));
        // Built here, not on the thread, so that a failure panics in the test itself.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("test-support: cannot build a runtime: {error}"));
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener)
                .unwrap_or_else(|error| panic!("test-support: cannot register listener: {error}"))
        };
        let (shutdown, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(serve(listener, shutdown_rx));
                // Dropping the runtime here cancels the connection tasks, which closes
                // every connection still open.
                drop(runtime);
            })
            .unwrap_or_else(|error| panic!("test-support: cannot spawn thread {name}: {error}"));
        Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub(crate) const fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // An error means the server already stopped; nothing left to tell it.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already printed; do not panic in drop.
            let _ = thread.join();
        }
    }
}
