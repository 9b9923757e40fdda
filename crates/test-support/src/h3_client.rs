//! An HTTP/3 client for tests: quinn and h3 over a rustls configuration (ring, TLS 1.3,
//! ALPN `h3`) that trusts a test CA, reporting the certificate the server presented.
//!
//! ```no_run
//! # async fn doc(ca_pem: &str, addr: std::net::SocketAddr) {
//! use gatehouse_test_support::h3_client::H3Client;
//!
//! let client = H3Client::trusting(ca_pem);
//! let response = client.get(addr, "api.example.com", "/hello").await.unwrap();
//! assert_eq!(response.status, 200);
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki::CertifiedPem;

/// How long a test connection may stay silent before quinn gives up on it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A test HTTP/3 client; each connection gets a UDP socket of its own on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct H3Client {
    config: quinn::ClientConfig,
}

/// A response read to its end.
#[derive(Debug)]
pub struct H3Response {
    /// Status code.
    pub status: u16,
    /// Header fields.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// Trailer fields, when the server sent some.
    pub trailers: Option<http::HeaderMap>,
    /// The server's leaf certificate (DER) presented in the connection's handshake.
    pub server_certificate: Vec<u8>,
}

impl H3Response {
    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl H3Client {
    /// A client trusting `ca_pem`, with no client certificate.
    ///
    /// # Panics
    ///
    /// On bad PEM: the test's own input.
    #[must_use]
    pub fn trusting(ca_pem: &str) -> Self {
        Self::build(ca_pem, None)
    }

    /// A client presenting `certificate` when the server asks for one.
    ///
    /// # Panics
    ///
    /// On bad PEM: the test's own input.
    #[must_use]
    pub fn with_client_certificate(ca_pem: &str, certificate: &CertifiedPem) -> Self {
        Self::build(ca_pem, Some(certificate))
    }

    fn build(ca_pem: &str, certificate: Option<&CertifiedPem>) -> Self {
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let der = der.unwrap_or_else(|error| panic!("h3_client: CA PEM: {error}"));
            roots
                .add(der)
                .unwrap_or_else(|error| panic!("h3_client: CA: {error}"));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|error| panic!("h3_client: versions: {error}"))
        .with_root_certificates(roots);
        let mut tls = match certificate {
            Some(pair) => {
                let chain = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_else(|error| panic!("h3_client: client cert: {error}"));
                let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())
                    .unwrap_or_else(|error| panic!("h3_client: client key: {error}"));
                builder
                    .with_client_auth_cert(chain, key)
                    .unwrap_or_else(|error| panic!("h3_client: client auth: {error}"))
            }
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![b"h3".to_vec()];
        // Every connection a full handshake, so each one sees the certificate the
        // server presents now.
        tls.resumption = rustls::client::Resumption::disabled();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))
            .unwrap_or_else(|error| panic!("h3_client: QUIC TLS: {error}"));
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT)
                .unwrap_or_else(|error| panic!("h3_client: idle timeout: {error}")),
        ));
        config.transport_config(Arc::new(transport));
        Self { config }
    }

    /// Connects to `addr` with SNI `server_name` and sets up HTTP/3.
    ///
    /// # Errors
    ///
    /// What failed, as text (`handshake: …` for the QUIC/TLS handshake).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<H3Connection, String> {
        let endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|error| format!("endpoint: {error}"))?;
        let connection = endpoint
            .connect_with(self.config.clone(), addr, server_name)
            .map_err(|error| format!("connect: {error}"))?
            .await
            .map_err(|error| format!("handshake: {error}"))?;
        let server_certificate = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().map(|der| der.to_vec()))
            .unwrap_or_default();
        let (mut driver, send_request) =
            h3::client::new(h3_quinn::Connection::new(connection.clone()))
                .await
                .map_err(|error| format!("h3: {error}"))?;
        let driver = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(H3Connection {
            endpoint,
            connection,
            send_request,
            driver,
            server_name: server_name.to_owned(),
            server_certificate,
        })
    }

    /// One request on a new connection (see [`H3Connection::send`]).
    ///
    /// # Errors
    ///
    /// What failed, as text.
    pub async fn send(
        &self,
        addr: SocketAddr,
        server_name: &str,
        request: http::Request<Bytes>,
    ) -> Result<H3Response, String> {
        let mut connection = self.connect(addr, server_name).await?;
        let response = connection.send(request).await;
        connection.close().await;
        response
    }

    /// `GET path` on a new connection.
    ///
    /// # Errors
    ///
    /// What failed, as text.
    pub async fn get(
        &self,
        addr: SocketAddr,
        server_name: &str,
        path: &str,
    ) -> Result<H3Response, String> {
        let request = http::Request::get(path)
            .body(Bytes::new())
            .map_err(|error| format!("request: {error}"))?;
        self.send(addr, server_name, request).await
    }
}

/// An established HTTP/3 connection.
pub struct H3Connection {
    endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    send_request: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    driver: tokio::task::JoinHandle<()>,
    server_name: String,
    server_certificate: Vec<u8>,
}

impl std::fmt::Debug for H3Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Connection")
            .field("server_name", &self.server_name)
            .field("remote", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl H3Connection {
    /// The server's leaf certificate (DER) presented in this connection's handshake.
    #[must_use]
    pub fn server_certificate(&self) -> &[u8] {
        &self.server_certificate
    }

    /// The QUIC connection, e.g. to wait for the server to close it.
    #[must_use]
    pub const fn quic(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Sends `request` (a path, or an absolute URI; a path is sent to
    /// `https://{server_name}`), its body (if not empty) and reads the whole response.
    ///
    /// # Errors
    ///
    /// What failed, as text.
    pub async fn send(&mut self, request: http::Request<Bytes>) -> Result<H3Response, String> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.authority().is_none() {
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str);
            parts.uri = format!("https://{}{path}", self.server_name)
                .parse()
                .map_err(|error| format!("uri: {error}"))?;
        }
        let mut stream = self
            .send_request
            .send_request(http::Request::from_parts(parts, ()))
            .await
            .map_err(|error| format!("request: {error}"))?;
        // A server may answer before it has read the whole body (a 413, say) and ask the
        // client to stop sending: the response is still there to read.
        let mut sent = Ok(());
        if !body.is_empty() {
            sent = stream
                .send_data(body)
                .await
                .map_err(|error| format!("request body: {error}"));
        }
        if sent.is_ok() {
            sent = stream
                .finish()
                .await
                .map_err(|error| format!("request end: {error}"));
        }
        let response = match stream.recv_response().await {
            Ok(response) => response,
            Err(error) => {
                sent?;
                return Err(format!("response: {error}"));
            }
        };
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream
            .recv_data()
            .await
            .map_err(|error| format!("response body: {error}"))?
        {
            let chunk = chunk.copy_to_bytes(chunk.remaining());
            body.extend_from_slice(&chunk);
        }
        let trailers = stream
            .recv_trailers()
            .await
            .map_err(|error| format!("response trailers: {error}"))?;
        Ok(H3Response {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: body.freeze(),
            trailers,
            server_certificate: self.server_certificate.clone(),
        })
    }

    /// `GET path` on this connection.
    ///
    /// # Errors
    ///
    /// What failed, as text.
    pub async fn get(&mut self, path: &str) -> Result<H3Response, String> {
        let request = http::Request::get(path)
            .body(Bytes::new())
            .map_err(|error| format!("request: {error}"))?;
        self.send(request).await
    }

    /// Closes the connection (H3_NO_ERROR) and waits, briefly, for the close to go out.
    pub async fn close(self) {
        self.connection.close(quinn::VarInt::from_u32(0x100), b"");
        self.driver.abort();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}
