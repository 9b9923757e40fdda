//! A TLS listener's configuration for one Gatehouse configuration: certificates chosen
//! by SNI, client certificates asked for per host name.
//!
//! The listener reads the ClientHello first (tokio-rustls's `LazyConfigAcceptor`), calls
//! [`ServerTls::select`] with its SNI, and finishes the handshake with the returned
//! rustls configuration: one per client-authentication mode, all sharing one host table.
//! A configuration change builds a new `ServerTls` and swaps it in; connections that
//! finished their handshake keep theirs.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::certificate::CertificateDetails;
use crate::verify::AnyClientCertificate;
use crate::{ProtocolSettings, TlsError, provider_for};

/// Whether a host name asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientAuth {
    /// No certificate requested.
    #[default]
    None,
    /// Requested; a client without one is served, one with a certificate that does not
    /// chain to a client CA is served too (policies see `trusted: false`).
    Request,
    /// Required: no certificate, or (when client CAs are configured) one that does not
    /// chain to them, fails the handshake.
    Require,
}

impl ClientAuth {
    const fn index(self) -> usize {
        match self {
            Self::None => 0,
            Self::Request => 1,
            Self::Require => 2,
        }
    }
}

/// A host name served over TLS and what it presents.
#[derive(Debug, Clone)]
pub struct HostCertificate {
    /// `api.example.com` or `*.example.com` (case-insensitive).
    pub hostname: String,
    /// The certificate chain and key presented for it.
    pub key: Arc<CertifiedKey>,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// Presented when the SNI matches no host name, or is absent.
    pub default: bool,
}

/// SNI → host entry: exact names, then one-label wildcards, then the default.
#[derive(Debug, Default)]
struct HostTable {
    hosts: Vec<HostCertificate>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    default: Option<usize>,
}

impl HostTable {
    fn new(hosts: Vec<HostCertificate>) -> Self {
        let mut table = Self::default();
        for (index, host) in hosts.iter().enumerate() {
            let name = host.hostname.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => table.wildcard.insert(parent.to_owned(), index),
                None => table.exact.insert(name, index),
            };
            if host.default {
                table.default = Some(index);
            }
        }
        table.hosts = hosts;
        table
    }

    fn lookup(&self, sni: Option<&str>) -> Option<&HostCertificate> {
        let index = sni.and_then(|name| {
            let lowered;
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered = name.to_ascii_lowercase();
                lowered.as_str()
            } else {
                name
            };
            let name = name.strip_suffix('.').unwrap_or(name);
            self.exact.get(name).copied().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent).copied()
            })
        });
        index.or(self.default).map(|index| &self.hosts[index])
    }
}

impl ResolvesServerCert for HostTable {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(client_hello.server_name())
            .map(|host| host.key.clone())
    }
}

/// The TLS side of a listener for one configuration.
#[derive(Debug)]
pub struct ServerTls {
    table: Arc<HostTable>,
    configs: [Arc<ServerConfig>; 3],
    client_trust: Option<Arc<dyn ClientCertVerifier>>,
    client_cas: Vec<CertificateDetails>,
    protocol: ProtocolSettings,
}

/// Session tickets are encrypted with keys shared by every configuration of the
/// process, so a configuration swap does not force clients into full handshakes.
fn ticketer() -> Option<Arc<dyn rustls::server::ProducesTickets>> {
    static TICKETER: OnceLock<Option<Arc<dyn rustls::server::ProducesTickets>>> = OnceLock::new();
    TICKETER
        .get_or_init(|| match rustls::crypto::ring::Ticketer::new() {
            Ok(ticketer) => Some(ticketer),
            Err(error) => {
                tracing::warn!(%error, "TLS session tickets disabled");
                None
            }
        })
        .clone()
}

impl ServerTls {
    /// Builds the listener configurations.
    ///
    /// `client_cas` are the trust anchors for client certificates (Certificate entities
    /// with `clientCa: true`); with none, a host that requires a certificate accepts any
    /// whose holder proves possession of its key, and policies see `trusted: false`.
    ///
    /// # Errors
    ///
    /// Bad protocol settings, a client CA that is not a usable trust anchor, or rustls
    /// refusing the configuration.
    pub fn new(
        hosts: Vec<HostCertificate>,
        client_cas: &[CertificateDer<'static>],
        protocol: &ProtocolSettings,
    ) -> Result<Self, TlsError> {
        protocol.validate()?;
        let provider = provider_for(protocol);
        let table = Arc::new(HostTable::new(hosts));
        let mut details = Vec::with_capacity(client_cas.len());
        let client_trust = if client_cas.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            for ca in client_cas {
                details.push(CertificateDetails::from_der(ca)?);
                roots.add(ca.clone()).map_err(|error| TlsError::Pem {
                    what: "client CA certificate",
                    reason: format!("not usable as a trust anchor: {error}"),
                })?;
            }
            let roots = Arc::new(roots);
            let verifier = |optional: bool| {
                let builder =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                let builder = if optional {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder
                    .build()
                    .map_err(|error| TlsError::Verifier(error.to_string()))
            };
            Some((verifier(true)?, verifier(false)?))
        };
        let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
            Arc::new(AnyClientCertificate {
                mandatory,
                algorithms: provider.signature_verification_algorithms,
            })
        };
        let verifiers: [Arc<dyn ClientCertVerifier>; 3] = [
            WebPkiClientVerifier::no_client_auth(),
            any(false),
            client_trust
                .as_ref()
                .map_or_else(|| any(true), |(_, required)| required.clone()),
        ];
        let mut configs = Vec::with_capacity(3);
        for verifier in verifiers {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&protocol.versions())?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(table.clone());
            config.alpn_protocols = protocol.alpn();
            // The server's suite order (strongest first, or the configured order) wins.
            config.ignore_client_order = true;
            if let Some(ticketer) = ticketer() {
                config.ticketer = ticketer;
            }
            configs.push(Arc::new(config));
        }
        let configs: [Arc<ServerConfig>; 3] = configs.try_into().map_err(|_| {
            TlsError::Verifier("internal: three configurations expected".to_owned())
        })?;
        Ok(Self {
            table,
            configs,
            client_trust: client_trust.map(|(optional, _)| optional),
            client_cas: details,
            protocol: protocol.clone(),
        })
    }

    /// The rustls configuration for a connection whose ClientHello carried `sni`; `None`
    /// when no host name matches and there is no default (refuse the connection).
    #[must_use]
    pub fn select(&self, sni: Option<&str>) -> Option<Arc<ServerConfig>> {
        let host = self.table.lookup(sni)?;
        Some(self.configs[host.client_auth.index()].clone())
    }

    /// The client-certificate mode of the host name a ClientHello with `sni` selects
    /// (the same selection as [`ServerTls::select`]); `None` when none is selected.
    #[must_use]
    pub fn client_auth(&self, sni: Option<&str>) -> Option<ClientAuth> {
        self.table.lookup(sni).map(|host| host.client_auth)
    }

    /// Whether any host name is served.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.hosts.is_empty()
    }

    /// The host names served.
    pub fn hosts(&self) -> impl Iterator<Item = &HostCertificate> {
        self.table.hosts.iter()
    }

    /// The protocol settings these configurations were built with.
    #[must_use]
    pub const fn protocol(&self) -> &ProtocolSettings {
        &self.protocol
    }

    /// Whether a client's certificate chain (leaf first, as the handshake delivered it)
    /// chains to a configured client CA, and the thumbprint of its issuer when known (a
    /// client CA whose subject is the leaf's issuer, else the next certificate the
    /// client sent).
    #[must_use]
    pub fn client_trust(
        &self,
        chain: &[CertificateDer<'_>],
        leaf: &CertificateDetails,
    ) -> (bool, Option<String>) {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return (false, None);
        };
        let trusted = self.client_trust.as_ref().is_some_and(|verifier| {
            verifier
                .verify_client_cert(end_entity, intermediates, UnixTime::now())
                .is_ok()
        });
        let issuer = self
            .client_cas
            .iter()
            .find(|ca| ca.subject == leaf.issuer)
            .map(|ca| ca.thumbprint.clone())
            .or_else(|| {
                intermediates
                    .first()
                    .map(|der| crate::certificate::thumbprint(der))
            });
        (trusted, issuer)
    }

    /// A configuration for QUIC (HTTP/3): TLS 1.3 only, ALPN `h3`, the same host table.
    /// QUIC has no ClientHello-first hook, so client certificates are requested when
    /// any host name asks for them (never required; hosts that require one are served
    /// over TCP only — `Alt-Svc` is not sent for them).
    ///
    /// # Errors
    ///
    /// [`TlsError::Http3NeedsTls13`] when the maximum version is 1.2, or no TLS 1.3
    /// suite is allowed.
    pub fn quic_config(&self) -> Result<ServerConfig, TlsError> {
        if self.protocol.max_version < crate::TlsVersion::V1_3 {
            return Err(TlsError::Http3NeedsTls13);
        }
        let mut protocol = self.protocol.clone();
        protocol.min_version = crate::TlsVersion::V1_3;
        protocol.max_version = crate::TlsVersion::V1_3;
        protocol.validate()?;
        let provider = provider_for(&protocol);
        let ask = self
            .table
            .hosts
            .iter()
            .any(|host| host.client_auth != ClientAuth::None);
        let verifier: Arc<dyn ClientCertVerifier> = if ask {
            Arc::new(AnyClientCertificate {
                mandatory: false,
                algorithms: provider.signature_verification_algorithms,
            })
        } else {
            WebPkiClientVerifier::no_client_auth()
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.table.clone());
        config.alpn_protocols = vec![b"h3".to_vec()];
        config.max_early_data_size = 0;
        Ok(config)
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
pub(crate) mod tests;
