//! The TLS handshake of the HTTPS listener.
//!
//! The ClientHello is read first ([`LazyConfigAcceptor`]); its SNI picks the host name,
//! and with it the certificate and whether a client certificate is asked for, from the
//! configuration being served at that moment ([`ServerTls::select`]). A configuration
//! swap therefore applies to the next handshake; established connections keep what
//! they negotiated. The whole handshake runs under one deadline.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_policy::ClientCertificate;
use gatehouse_tls::ServerTls;
use gatehouse_tls::certificate::CertificateDetails;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

/// What a connection negotiated, for requests on it.
#[derive(Debug, Clone)]
pub struct ConnectionTls {
    /// The SNI the client sent.
    pub server_name: Option<Box<str>>,
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: &'static str,
    /// The client's certificate, when it presented one.
    pub client_certificate: Option<ClientCertificate>,
    /// The `Alt-Svc` value the connection's responses carry (HTTP/3 offered on the
    /// HTTPS port), decided once per connection from its host name; `None` when HTTP/3
    /// is off, the host name requires a client certificate, or the connection is QUIC.
    pub alt_svc: Option<http::HeaderValue>,
}

/// Why a handshake did not complete; the label of `gatehouse_tls_handshake_errors_total`.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The deadline passed.
    #[error("TLS handshake not finished within {0:?}")]
    Timeout(Duration),
    /// The configuration has no hostnames.
    #[error("no hostnames are configured for TLS")]
    NotConfigured,
    /// No hostname matches the SNI and there is no default.
    #[error("no certificate for server name {0:?} and no default (defaultSslBinding)")]
    UnknownServerName(Option<String>),
    /// rustls refused the peer (no common version or cipher suite, bad client
    /// certificate, malformed message) or the connection failed.
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
}

impl HandshakeError {
    /// Closed label value for metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::NotConfigured => "not_configured",
            Self::UnknownServerName(_) => "unknown_server_name",
            Self::Failed(error) => match error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(
                    rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_),
                ) => "client_certificate",
                Some(rustls::Error::PeerIncompatible(_)) => "incompatible",
                Some(_) => "protocol",
                None => "io",
            },
        }
    }
}

/// Runs the server side of a TLS handshake on `io` with the configuration `tls`.
///
/// # Errors
///
/// [`HandshakeError`] saying why.
pub async fn accept<IO>(
    io: IO,
    tls: Option<&Arc<ServerTls>>,
    timeout: Duration,
) -> Result<(TlsStream<IO>, ConnectionTls), HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(HandshakeError::Failed)?;
        let server_name = start.client_hello().server_name().map(Box::<str>::from);
        let tls = tls.ok_or(HandshakeError::NotConfigured)?;
        let config = tls.select(server_name.as_deref()).ok_or_else(|| {
            HandshakeError::UnknownServerName(server_name.as_deref().map(str::to_owned))
        })?;
        let stream = start
            .into_stream(config)
            .await
            .map_err(HandshakeError::Failed)?;
        Ok::<_, HandshakeError>((stream, server_name))
    };
    let (stream, server_name) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| HandshakeError::Timeout(timeout))??;
    let (_, connection) = stream.get_ref();
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
        _ => "unknown",
    };
    let client_certificate = match (connection.peer_certificates(), tls) {
        (Some(chain), Some(tls)) => client_certificate(tls, chain),
        _ => None,
    };
    Ok((
        stream,
        ConnectionTls {
            server_name,
            version,
            client_certificate,
            alt_svc: None,
        },
    ))
}

/// What policies see of a client's certificate chain (TCP and QUIC handshakes).
pub(crate) fn client_certificate(
    tls: &ServerTls,
    chain: &[rustls::pki_types::CertificateDer<'static>],
) -> Option<ClientCertificate> {
    let leaf = chain.first()?;
    let details = match CertificateDetails::from_der(leaf) {
        Ok(details) => details,
        Err(error) => {
            // rustls verified the holder's signature with it, so it parses for webpki;
            // a certificate x509-parser cannot read is reported, not trusted.
            tracing::debug!(%error, "client certificate details unavailable");
            return None;
        }
    };
    let (trusted, issuer_thumbprint) = tls.client_trust(chain, &details);
    let seconds = |unix: i64| Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    Some(ClientCertificate {
        subject: details.subject,
        issuer: details.issuer,
        common_name: details.common_name,
        thumbprint: details.thumbprint,
        serial_number: details.serial_number,
        not_before: seconds(details.not_before),
        not_after: seconds(details.not_after),
        dns_names: details.dns_names,
        issuer_thumbprint,
        trusted,
    })
}
