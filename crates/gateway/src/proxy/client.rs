//! Pooled HTTP/1.1 clients to backends, one set per worker thread.
//!
//! Each worker thread owns its clients (a `thread_local!`), so connection pools are never
//! shared across cores and the request path takes no cross-thread lock to find one; the
//! pool inside a client is keyed by scheme and authority. Clients are keyed here by
//! connect timeout, the only connector setting that varies per backend. They outlive
//! configuration reloads: a reload never drops warm connections.

use std::cell::RefCell;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::RequestBody;

/// A pooled backend client.
pub type BackendClient = Client<HttpConnector, RequestBody>;

/// How long an idle pooled connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per backend authority, per worker.
pub const POOL_MAX_IDLE_PER_HOST: usize = 1024;
/// Distinct connect timeouts a worker keeps clients for. Configurations rarely use more
/// than a handful; past this, the oldest client is dropped.
const MAX_CLIENTS_PER_WORKER: usize = 16;

thread_local! {
    static CLIENTS: RefCell<Vec<(Duration, BackendClient)>> = const { RefCell::new(Vec::new()) };
}

/// The calling worker's client for backends with this connect timeout.
#[must_use]
pub fn client_for(connect_timeout: Duration) -> BackendClient {
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return client.clone();
        }
        if clients.len() >= MAX_CLIENTS_PER_WORKER {
            clients.remove(0);
        }
        let client = build_client(connect_timeout);
        clients.push((connect_timeout, client.clone()));
        client
    })
}

fn build_client(connect_timeout: Duration) -> BackendClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        // Backends see the Host the gateway sets, in the case it was configured.
        .set_host(false)
        .build(connector)
}
