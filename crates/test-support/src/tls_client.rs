//! A TLS client for tests that need to choose what a real client would: the SNI, the
//! offered versions and cipher suites, a client certificate, the trusted CA; and to see
//! what the server presented.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedCipherSuite};

use crate::pki::CertifiedPem;

/// What a test client offers.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

/// What the server presented and the exchange produced.
#[derive(Debug)]
pub struct TlsExchange {
    /// Response status.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// Response body as text.
    pub body: String,
    /// The server's leaf certificate (DER).
    pub server_certificate: Vec<u8>,
    /// The negotiated TLS version (`TLSv1_3`…).
    pub version: String,
    /// The negotiated cipher suite, rustls's name (`TLS13_AES_256_GCM_SHA384`…).
    pub cipher_suite: String,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
}

impl TlsClient {
    /// A client trusting `ca_pem`, offering everything, with no client certificate.
    #[must_use]
    pub fn trusting(ca_pem: &str) -> Self {
        Self::build(
            ca_pem,
            None,
            None,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    /// A client presenting `certificate` when asked.
    #[must_use]
    pub fn with_client_certificate(ca_pem: &str, certificate: &CertifiedPem) -> Self {
        Self::build(
            ca_pem,
            Some(certificate),
            None,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    /// A client offering only `suites` and `versions`.
    #[must_use]
    pub fn offering(
        ca_pem: &str,
        suites: &[SupportedCipherSuite],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        Self::build(ca_pem, None, Some(suites), versions)
    }

    /// The same client offering these ALPN protocols (default: `http/1.1` only). The
    /// requests it sends are HTTP/1.1 whatever is negotiated; use it to check what the
    /// server picks ([`TlsConnection::alpn`]).
    #[must_use]
    pub fn with_alpn(self, protocols: &[&[u8]]) -> Self {
        let mut config = ClientConfig::clone(&self.config);
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Self {
            config: Arc::new(config),
        }
    }

    /// # Panics
    ///
    /// On bad PEM or a configuration rustls refuses: the test's own inputs.
    fn build(
        ca_pem: &str,
        certificate: Option<&CertifiedPem>,
        suites: Option<&[SupportedCipherSuite]>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suites) = suites {
            provider.cipher_suites = suites.to_vec();
        }
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let certificate =
                certificate.unwrap_or_else(|error| panic!("tls_client: CA PEM: {error}"));
            roots
                .add(certificate)
                .unwrap_or_else(|error| panic!("tls_client: CA: {error}"));
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap_or_else(|error| panic!("tls_client: versions: {error}"))
            .with_root_certificates(roots);
        let mut config = match certificate {
            Some(pair) => {
                let chain = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_else(|error| panic!("tls_client: client cert: {error}"));
                let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())
                    .unwrap_or_else(|error| panic!("tls_client: client key: {error}"));
                builder
                    .with_client_auth_cert(chain, key)
                    .unwrap_or_else(|error| panic!("tls_client: client auth: {error}"))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every connection a full handshake, so each one sees the certificate the
        // server presents now (a resumed session reports the one it was created with).
        config.resumption = rustls::client::Resumption::disabled();
        Self {
            config: Arc::new(config),
        }
    }

    /// Connects to `addr` with SNI `server_name` and completes the handshake; the
    /// connection then carries HTTP/1.1 requests with `Host: server_name`.
    ///
    /// # Errors
    ///
    /// The connection or handshake error, as text (tests assert on it).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<TlsConnection, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|error| format!("server name: {error}"))?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|error| format!("handshake: {error}"))?;
        let (_, connection) = tls.get_ref();
        let server_certificate = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| der.to_vec())
            .unwrap_or_default();
        let version = connection
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let cipher_suite = connection
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|error| format!("http: {error}"))?;
        tokio::spawn(conn);
        Ok(TlsConnection {
            sender,
            server_name: server_name.to_owned(),
            server_certificate,
            version,
            cipher_suite,
            alpn,
        })
    }

    /// Connects (see [`TlsClient::connect`]), sends `GET path` and reads the whole
    /// response.
    ///
    /// # Errors
    ///
    /// The connection, handshake or HTTP error, as text (tests assert on it).
    pub async fn get(
        &self,
        addr: SocketAddr,
        server_name: &str,
        path: &str,
    ) -> Result<TlsExchange, String> {
        self.connect(addr, server_name).await?.get(path).await
    }
}

/// An established TLS connection carrying HTTP/1.1.
#[derive(Debug)]
pub struct TlsConnection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    server_name: String,
    server_certificate: Vec<u8>,
    version: String,
    cipher_suite: String,
    alpn: Option<Vec<u8>>,
}

impl TlsConnection {
    /// The server's leaf certificate (DER) presented in this connection's handshake.
    #[must_use]
    pub fn server_certificate(&self) -> &[u8] {
        &self.server_certificate
    }

    /// The ALPN protocol the server chose.
    #[must_use]
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// Sends `GET path` on this connection and reads the whole response.
    ///
    /// # Errors
    ///
    /// The HTTP error, as text.
    pub async fn get(&mut self, path: &str) -> Result<TlsExchange, String> {
        self.sender
            .ready()
            .await
            .map_err(|error| format!("connection: {error}"))?;
        let request = http::Request::get(path)
            .header(http::header::HOST, &self.server_name)
            .body(Empty::<Bytes>::new())
            .map_err(|error| format!("request: {error}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|error| format!("request: {error}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("body: {error}"))?
            .to_bytes();
        Ok(TlsExchange {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            server_certificate: self.server_certificate.clone(),
            version: self.version.clone(),
            cipher_suite: self.cipher_suite.clone(),
            alpn: self.alpn.clone(),
        })
    }
}
