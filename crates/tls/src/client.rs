//! TLS client configurations: to backends and to the control plane.

use std::sync::{Arc, OnceLock};

use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use crate::verify::{AnyServerCertificate, ChainOnly};
use crate::{ProtocolSettings, TlsError, provider_for};

/// Which server certificates a client accepts.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// Trust anchors; `None`: the system's ([`system_roots`]).
    pub roots: Option<Arc<RootCertStore>>,
    /// A certificate to present when the server asks (mutual TLS).
    pub client_certificate: Option<Arc<CertifiedKey>>,
    /// Check the chain up to a trust anchor (`false` accepts any certificate).
    pub verify_chain: bool,
    /// Check the certificate names the server.
    pub verify_name: bool,
    /// Versions and cipher suites.
    pub protocol: ProtocolSettings,
    /// ALPN ids to offer (`h2`, `http/1.1`); empty: none.
    pub alpn: Vec<Vec<u8>>,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self {
            roots: None,
            client_certificate: None,
            verify_chain: true,
            verify_name: true,
            protocol: ProtocolSettings::default(),
            alpn: Vec::new(),
        }
    }
}

impl ClientTls {
    /// The rustls configuration. With `roots: None` this reads the system's CA
    /// certificates on its first call in the process (blocking file reads): call it at
    /// start or off the async runtime.
    ///
    /// # Errors
    ///
    /// [`TlsError::SystemRoots`], or rustls refusing the versions or the roots.
    pub fn build(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.protocol.validate()?;
        let provider = provider_for(&self.protocol);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.protocol.versions())?;
        let builder = if self.verify_chain {
            let roots = match &self.roots {
                Some(roots) => roots.clone(),
                None => system_roots()?,
            };
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|error| TlsError::Verifier(error.to_string()))?;
            if self.verify_name {
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner: verifier }))
            }
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        };
        let mut config = match &self.client_certificate {
            Some(key) => {
                builder.with_client_cert_resolver(Arc::new(FixedClientCertificate(key.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(Arc::new(config))
    }
}

/// Presents one certificate whenever the server asks.
#[derive(Debug)]
struct FixedClientCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The system's trusted CA certificates (`/etc/ssl/certs` and friends, or the files
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` name), read once per process and cached.
///
/// # Errors
///
/// [`TlsError::SystemRoots`] when none could be loaded (the message says what was tried).
pub fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(loaded.certs);
            if ignored > 0 {
                tracing::debug!(ignored, "system CA certificates that could not be parsed were skipped");
            }
            if added == 0 {
                let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
                return Err(if errors.is_empty() {
                    "no CA certificates found; install the `ca-certificates` package or set SSL_CERT_FILE".to_owned()
                } else {
                    errors.join("; ")
                });
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(TlsError::SystemRoots)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
