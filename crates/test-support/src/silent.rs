//! Backends that fail at the TCP level: nothing listening, connects that never complete,
//! and connections that are accepted but never answered.
//!
//! Together they let a test tell apart the gateway's three backend failures: connection
//! refused ([`refused_addr`]), connect timeout ([`BlackholeListener`]) and response
//! timeout ([`SilentBackend`], or an [`EchoBackend`](crate::EchoBackend) with a delay).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::AsyncReadExt;

use crate::server_thread::{ServerThread, accept_each, bind_loopback};

/// A `127.0.0.1` address with nothing listening: connecting to it is refused at once.
///
/// It binds port 0 and closes the socket. Another test could in principle bind the same
/// port in between; the kernel hands out ephemeral ports in a way that makes this
/// vanishingly rare, and a test that sees it fails loudly rather than passing wrongly.
///
/// # Panics
///
/// If binding `127.0.0.1:0` fails.
#[must_use]
pub fn refused_addr() -> SocketAddr {
    let listener = bind_loopback();
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("test-support: listener has no address: {error}"))
}

// === impl SilentBackend ===

/// Accepts TCP connections, reads and discards whatever arrives, and never sends a byte:
/// the connect succeeds, the response never comes. For response timeouts.
///
/// Connections stay open until the peer closes them or the backend is dropped.
#[derive(Debug)]
pub struct SilentBackend {
    server: ServerThread,
    stats: Arc<SilentStats>,
}

#[derive(Debug, Default)]
struct SilentStats {
    connections_accepted: AtomicU64,
    open_connections: AtomicUsize,
}

impl SilentBackend {
    /// Binds `127.0.0.1:0` and starts accepting on a thread of its own.
    ///
    /// # Panics
    ///
    /// If the socket, runtime or thread cannot be created.
    #[must_use]
    pub fn start() -> Self {
        let stats = Arc::new(SilentStats::default());
        let server_stats = Arc::clone(&stats);
        let server = ServerThread::spawn("silent-backend", move |listener, shutdown| {
            accept_each(listener, shutdown, move |mut stream| {
                let stats = Arc::clone(&server_stats);
                stats.connections_accepted.fetch_add(1, Ordering::SeqCst);
                stats.open_connections.fetch_add(1, Ordering::SeqCst);
                async move {
                    let mut buffer = [0_u8; 4096];
                    // Until EOF or error; cancelled when the backend is dropped, and the
                    // counter is then never read again.
                    while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
                    stats.open_connections.fetch_sub(1, Ordering::SeqCst);
                }
            })
        });
        Self { server, stats }
    }

    /// The address it listens on.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:{port}`, without a trailing slash.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Connections accepted so far.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.stats.connections_accepted.load(Ordering::SeqCst)
    }

    /// Connections open right now (the peer has not closed them).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.stats.open_connections.load(Ordering::SeqCst)
    }
}

// === impl BlackholeListener ===

/// A listening socket whose accept queue is full, so a new connect never completes: the
/// kernel drops the SYN and the client waits until its own connect timeout. For connect
/// timeouts, on loopback, without relying on an unroutable address.
///
/// It listens with a backlog of 0, never accepts, and fills the queue itself with a few
/// connections that it keeps open. This is Linux behaviour (a full accept queue drops
/// SYNs); other systems may refuse the connect instead.
#[derive(Debug)]
pub struct BlackholeListener {
    addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

impl BlackholeListener {
    /// How long a filler connect may take before the queue counts as full.
    const FILL_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
    /// More filler connections than any kernel needs for a backlog of 0.
    const MAX_FILLERS: usize = 16;

    /// Binds `127.0.0.1:0` with a full accept queue.
    ///
    /// # Panics
    ///
    /// If the socket cannot be created, or the queue does not fill up (a kernel that
    /// does not drop SYNs on a full queue).
    #[must_use]
    pub fn start() -> Self {
        let fail = |what: &str, error: std::io::Error| -> ! {
            panic!("test-support: BlackholeListener: {what}: {error}")
        };
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
            .unwrap_or_else(|error| fail("socket", error));
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        listener
            .bind(&any_port.into())
            .unwrap_or_else(|error| fail("bind", error));
        listener
            .listen(0)
            .unwrap_or_else(|error| fail("listen", error));
        let addr = listener
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .unwrap_or_else(|| panic!("test-support: BlackholeListener: no local address"));

        let mut fillers = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Self::FILL_PROBE_TIMEOUT) {
                Ok(stream) if fillers.len() < Self::MAX_FILLERS => fillers.push(stream),
                Ok(_) => panic!(
                    "test-support: BlackholeListener: the accept queue never filled \
                     ({} connects succeeded); this kernel does not drop SYNs on a full queue",
                    Self::MAX_FILLERS
                ),
                Err(error)
                    if matches!(error.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                {
                    break;
                }
                Err(error) => fail("filling the accept queue", error),
            }
        }
        Self {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }

    /// The address whose connects hang.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}`, without a trailing slash.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
