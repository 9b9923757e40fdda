//! Pooled HTTP/1.1 clients to backends, one set per worker thread.
//!
//! Each worker thread owns its clients (a `thread_local!`), so connection pools are never
//! shared across cores and the request path takes no cross-thread lock to find one; the
//! pool inside a client is keyed by scheme and authority. Clients are keyed here by what
//! varies per backend in the connector: the connect timeout and, for `https://`
//! backends, the TLS client settings (by fingerprint: trust anchors, client
//! certificate, SNI name, verification flags). Two backends with equal settings share a
//! client; a backend with its own client certificate never shares connections with one
//! without. Clients outlive configuration reloads: a reload that keeps a backend's
//! settings keeps its warm connections.
//!
//! The HTTP version is part of the key too ([`BackendProtocol`]): HTTP/1.1 (the default),
//! HTTP/2 only (`forward-request http-version="2"`, and gRPC: prior knowledge over
//! cleartext, ALPN `h2` over TLS), or HTTP/2 when the backend offers it by ALPN and
//! HTTP/1.1 otherwise (`2or1`; over cleartext there is nothing to negotiate with, so
//! it is HTTP/1.1 there).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_rustls::{DefaultServerNameResolver, FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::RequestBody;
use crate::tls::BackendTlsClient;

/// A pooled backend client (plain HTTP, or TLS for `https://` URLs).
pub type BackendClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How long an idle pooled connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per backend authority, per worker.
pub const POOL_MAX_IDLE_PER_HOST: usize = 1024;
/// Distinct connector settings a worker keeps clients for. Configurations rarely use
/// more than a handful; past this, the oldest client is dropped.
const MAX_CLIENTS_PER_WORKER: usize = 32;

/// The HTTP version(s) a client speaks to backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendProtocol {
    /// HTTP/1.1 only.
    #[default]
    Http1,
    /// HTTP/2 only: prior knowledge (h2c) on `http://`, ALPN `h2` on `https://`.
    Http2,
    /// HTTP/2 where the backend's TLS handshake offers it by ALPN, else HTTP/1.1 (and
    /// always HTTP/1.1 on `http://`).
    Http2OrHttp1,
}

/// What a client is keyed by.
type ClientKey = (Duration, Option<u64>, BackendProtocol);

thread_local! {
    static CLIENTS: RefCell<Vec<(ClientKey, BackendClient)>> = const { RefCell::new(Vec::new()) };
}

/// The calling worker's client for backends with this connect timeout, TLS settings
/// (`None`: plain HTTP) and HTTP version.
#[must_use]
pub fn client_for(
    connect_timeout: Duration,
    tls: Option<&BackendTlsClient>,
    protocol: BackendProtocol,
) -> BackendClient {
    // `2or1` has nothing to negotiate with over cleartext: one pool with HTTP/1.1.
    let protocol = match (protocol, tls) {
        (BackendProtocol::Http2OrHttp1, None) => BackendProtocol::Http1,
        (protocol, _) => protocol,
    };
    let key = (connect_timeout, tls.map(|tls| tls.fingerprint), protocol);
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
            return client.clone();
        }
        if clients.len() >= MAX_CLIENTS_PER_WORKER {
            clients.remove(0);
        }
        let client = build_client(connect_timeout, tls, protocol);
        clients.push((key, client.clone()));
        client
    })
}

/// The TLS configuration of plain-HTTP clients: never used for a handshake (their
/// backends are `http://`), and with no trust anchors, so that an `https://` URL
/// reaching one by mistake fails verification instead of trusting anything.
fn plain_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    gatehouse_tls::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    builder
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| {
                    // The ring provider supports the default versions; this is
                    // unreachable, and an empty-rooted config is still the safe answer.
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                }),
            )
        })
        .clone()
}

/// `config` offering the ALPN protocols of `protocol`.
fn with_alpn(
    config: &Arc<rustls::ClientConfig>,
    protocol: BackendProtocol,
) -> Arc<rustls::ClientConfig> {
    let alpn: &[&[u8]] = match protocol {
        BackendProtocol::Http1 => return config.clone(),
        BackendProtocol::Http2 => &[b"h2"],
        BackendProtocol::Http2OrHttp1 => &[b"h2", b"http/1.1"],
    };
    let mut config = (**config).clone();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

fn build_client(
    connect_timeout: Duration,
    tls: Option<&BackendTlsClient>,
    protocol: BackendProtocol,
) -> BackendClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    // The HTTPS connector wraps it and decides by the URL's scheme.
    http.enforce_http(false);
    let connector = match tls {
        Some(tls) => {
            let resolver: Arc<dyn hyper_rustls::ResolveServerName + Send + Sync> =
                match &tls.server_name {
                    Some(name) => Arc::new(FixedServerNameResolver::new(name.clone())),
                    None => Arc::new(DefaultServerNameResolver::default()),
                };
            HttpsConnector::new(http, with_alpn(&tls.config, protocol), false, resolver)
        }
        None => HttpsConnector::new(
            http,
            plain_tls_config(),
            false,
            Arc::new(DefaultServerNameResolver::default()),
        ),
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        // Backends see the Host the gateway sets, in the case it was configured.
        .set_host(false)
        .http2_only(protocol == BackendProtocol::Http2)
        // Long-lived HTTP/2 connections (gRPC streams) are checked with PINGs.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(false);
    builder.build(connector)
}
