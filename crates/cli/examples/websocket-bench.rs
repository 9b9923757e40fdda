//! WebSocket load tool for `bench/websocket.sh`: an echo backend and a load client.
//!
//! ```text
//! websocket-bench backend                       # prints ws://127.0.0.1:PORT, echoes
//! websocket-bench client URL CONNECTIONS SECONDS SIZE
//! ```
//!
//! The backend echoes every text and binary message on every connection (one thread).
//! The client opens CONNECTIONS WebSockets to URL (one thread), and on each sends a
//! binary message of SIZE bytes and waits for its echo, again and again, for SECONDS;
//! then prints one line: `echoes N seconds S errors E p50_us P p99_us Q` (an echo is
//! one message each way through the proxy). The stdin of the backend is watched: it
//! exits when stdin closes, so the script that started it cannot leave it behind.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("runtime: {error}"));
    match args.first().map(String::as_str) {
        Some("backend") => runtime.block_on(backend()),
        Some("client") if args.len() == 5 => {
            let number = |i: usize| -> u64 {
                args[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number: {}", args[i]))
            };
            runtime.block_on(client(
                &args[1],
                usize::try_from(number(2)).unwrap_or(1),
                Duration::from_secs(number(3)),
                usize::try_from(number(4)).unwrap_or(1),
            ));
        }
        _ => panic!("usage: websocket-bench backend | client URL CONNECTIONS SECONDS SIZE"),
    }
}

async fn backend() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|error| panic!("bind: {error}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("address: {error}"));
    #[allow(clippy::print_stdout)] // the script reads the address from stdout
    {
        println!("ws://{addr}");
    }
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    let serve = async {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() || message.is_binary() {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    } else if message.is_close() {
                        return;
                    }
                }
            });
        }
    };
    tokio::select! {
        () = serve => {}
        _ = stdin_closed => {}
    }
}

async fn client(url: &str, connections: usize, duration: Duration, size: usize) {
    let deadline = Instant::now() + duration;
    let payload = tokio_tungstenite::tungstenite::Bytes::from(vec![b'x'; size]);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let url = url.to_owned();
            let payload = payload.clone();
            tokio::spawn(async move { one_connection(&url, payload, deadline).await })
        })
        .collect();
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0_u64;
    for task in tasks {
        match task.await {
            Ok((mut samples, failed)) => {
                latencies.append(&mut samples);
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    latencies.sort_unstable();
    let percentile = |p: usize| -> u32 {
        if latencies.is_empty() {
            0
        } else {
            latencies[(latencies.len() - 1) * p / 100]
        }
    };
    #[allow(clippy::print_stdout)] // the script reads the result from stdout
    {
        println!(
            "echoes {} seconds {} errors {errors} p50_us {} p99_us {}",
            latencies.len(),
            duration.as_secs(),
            percentile(50),
            percentile(99)
        );
    }
}

/// Echo round trips on one connection until `deadline`: their latencies (µs), and 1
/// when the connection failed.
async fn one_connection(
    url: &str,
    payload: tokio_tungstenite::tungstenite::Bytes,
    deadline: Instant,
) -> (Vec<u32>, u64) {
    let Ok(request) = url.into_client_request() else {
        return (Vec::new(), 1);
    };
    let Some(authority) = request.uri().authority().map(ToString::to_string) else {
        return (Vec::new(), 1);
    };
    let Ok(tcp) = TcpStream::connect(authority).await else {
        return (Vec::new(), 1);
    };
    let _ = tcp.set_nodelay(true);
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, tcp).await else {
        return (Vec::new(), 1);
    };
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        if ws.send(Message::Binary(payload.clone())).await.is_err() {
            return (samples, 1);
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(echo))) if echo.len() == payload.len() => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return (samples, 1),
            }
        }
        samples.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    let _ = ws.close(None).await;
    (samples, 0)
}
