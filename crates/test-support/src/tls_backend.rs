//! An HTTPS backend: TLS (rustls) in front of a tiny HTTP/1.1 and HTTP/2 responder (by
//! ALPN), optionally requiring a client certificate from a given CA. It answers every
//! request with 200 and a JSON body naming the path, the SNI it was reached with, the
//! number of client certificates, the `Host` and the HTTP version (`HTTP/1.1`,
//! `HTTP/2.0`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::pki::CertifiedPem;
use crate::server_thread::{ServerThread, accept_each};

/// A running HTTPS backend; stops when dropped.
#[derive(Debug)]
pub struct TlsBackend {
    server: ServerThread,
    handshakes: Arc<AtomicUsize>,
}

impl TlsBackend {
    /// Serves `certificate`; with `client_ca_pem`, requires a client certificate issued
    /// by it.
    ///
    /// # Panics
    ///
    /// On bad PEM or a configuration rustls refuses (the test's own inputs).
    #[must_use]
    pub fn start(certificate: &CertifiedPem, client_ca_pem: Option<&str>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|error| panic!("TlsBackend: certificate: {error}"));
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
            .unwrap_or_else(|error| panic!("TlsBackend: key: {error}"));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|error| panic!("TlsBackend: versions: {error}"));
        let builder = match client_ca_pem {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots
                        .add(ca.unwrap_or_else(|error| panic!("TlsBackend: CA: {error}")))
                        .unwrap_or_else(|error| panic!("TlsBackend: CA: {error}"));
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap_or_else(|error| panic!("TlsBackend: verifier: {error}"));
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .unwrap_or_else(|error| panic!("TlsBackend: certificate and key: {error}"));
        // HTTP/2 for clients that offer it by ALPN, else HTTP/1.1.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = handshakes.clone();
        let server = ServerThread::spawn("tls-backend", move |listener, shutdown| {
            accept_each(listener, shutdown, move |tcp| {
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let (_, connection) = tls.get_ref();
                    let sni = connection.server_name().unwrap_or_default().to_owned();
                    let client = connection
                        .peer_certificates()
                        .map(|chain| chain.len())
                        .unwrap_or_default();
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let body = serde_json::json!({
                                "path": request.uri().path(),
                                "sni": sni,
                                "clientCertificates": client,
                                "host": request
                                    .headers()
                                    .get(http::header::HOST)
                                    .and_then(|h| h.to_str().ok()),
                                "version": format!("{:?}", request.version()),
                            });
                            async move {
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                    body.to_string(),
                                ))))
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
                }
            })
        });
        Self { server, handshakes }
    }

    /// Its address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Completed TLS handshakes so far.
    #[must_use]
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }
}
