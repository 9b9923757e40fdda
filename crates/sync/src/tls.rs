//! TLS to the control plane (`config.service.endpoint` = `https://…`), and how TLS
//! failures are told apart from other connection failures.
//!
//! Trust: the system's CA certificates ([`gatehouse_tls::client::system_roots`]:
//! `/etc/ssl/certs` and friends, or the files `SSL_CERT_FILE` / `SSL_CERT_DIR` name, so
//! a CA mounted into the pod and named by `SSL_CERT_FILE` is trusted), or, with
//! `--config-service-ca-file`, only the CA certificates of that PEM bundle. The
//! certificate must name the endpoint's host and be valid now. rustls with the
//! workspace's crypto provider; ALPN offers `h2` and `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_tls::client::ClientTls;
use gatehouse_tls::rustls::{self, CertificateError};
use gatehouse_tls::{ALPN_H2, ALPN_HTTP11, TlsError};

use crate::settings::Endpoint;

/// Why TLS to the control plane cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read.
    #[error("cannot read the control plane's CA file {} (--config-service-ca-file): {error}", path.display())]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The CA file holds no usable CA certificate.
    #[error("the control plane's CA file {} (--config-service-ca-file) holds no usable CA certificate: {error}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: TlsError,
    },
    /// The system's CA certificates cannot be loaded, or rustls refused the settings.
    #[error(
        "cannot set up TLS to the control plane: {0}; give the control plane's CA with --config-service-ca-file (GATEHOUSE_CONFIG_SERVICE_CA_FILE) or SSL_CERT_FILE"
    )]
    Client(TlsError),
}

/// The rustls configuration for `endpoint`: `None` for `http://`. Blocking file reads
/// (the CA file, the system's CA certificates): call it at start or off the async
/// runtime.
///
/// # Errors
///
/// [`TlsSetupError`] naming the CA file and the problem.
pub fn client_config(
    endpoint: &Endpoint,
    ca_file: Option<&Path>,
) -> Result<Option<rustls::ClientConfig>, TlsSetupError> {
    if !endpoint.is_https() {
        if let Some(path) = ca_file {
            tracing::warn!(
                ca_file = %path.display(),
                endpoint = %endpoint,
                "--config-service-ca-file is not used: the control plane endpoint is not https://"
            );
        }
        return Ok(None);
    }
    let roots = match ca_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|error| TlsSetupError::ReadCaFile {
                    path: path.to_owned(),
                    error,
                })?;
            let store =
                gatehouse_tls::certificate::root_store([text.as_str()]).map_err(|error| {
                    TlsSetupError::CaFile {
                        path: path.to_owned(),
                        error,
                    }
                })?;
            tracing::info!(
                ca_file = %path.display(),
                certificates = store.len(),
                "the control plane's certificate is checked against this CA file only"
            );
            Some(Arc::new(store))
        }
        None => None,
    };
    let config = ClientTls {
        roots,
        alpn: vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
        ..ClientTls::default()
    }
    .build()
    .map_err(TlsSetupError::Client)?;
    Ok(Some(rustls::ClientConfig::clone(&config)))
}

/// What to do about a TLS failure, for the log line.
pub(crate) fn hint(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => {
                "the control plane's certificate is not signed by a CA this gateway trusts: give its CA bundle with --config-service-ca-file (GATEHOUSE_CONFIG_SERVICE_CA_FILE), or add it to the system's CA certificates (SSL_CERT_FILE)"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the control plane's certificate does not name the host of `config.service.endpoint`: use a host name the certificate lists, or reissue it"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the control plane's certificate has expired: renew it"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the control plane's certificate is not valid yet: check the clocks"
            }
            _ => "the control plane's certificate was refused",
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the control plane did not answer in TLS: is it serving HTTPS? (`http://` for a plain listener)"
        }
        rustls::Error::AlertReceived(_) => "the control plane refused the TLS handshake",
        _ => "the TLS handshake with the control plane failed",
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
