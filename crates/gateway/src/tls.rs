//! The TLS parts of a configuration, compiled with the rest of it: the HTTPS listener's
//! certificates by SNI ([`ServerTls`]) and the client configurations of `https://`
//! backends. A certificate that does not load (bad PEM, key mismatch, expired) fails the
//! whole build, naming the entity, so the previous configuration keeps serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use gatehouse_model::{BackendTls, Certificate, Configuration};
use gatehouse_tls::client::ClientTls;
use gatehouse_tls::{ClientAuth, HostCertificate, ProtocolSettings, ServerTls, TlsError};
use rustls::pki_types::ServerName;
use sha2::Digest as _;

use crate::compiled::CompileError;

/// Process-wide TLS settings (flags and settings file), fixed for the process's life.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// What the HTTPS listener negotiates (`net.server.tls.*`).
    pub server: ProtocolSettings,
    /// What the gateway offers `https://` backends (`net.client.tls.*`).
    pub backend: ProtocolSettings,
}

/// How requests reach one `https://` backend.
#[derive(Debug)]
pub struct BackendTlsClient {
    /// A digest of everything the client configuration was built from: backends (and
    /// configurations) with equal settings share a worker's connection pool, and a
    /// reload that does not change them keeps the warm connections.
    pub fingerprint: u64,
    /// The rustls client configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and the name checked in the backend's certificate, when not the URL's host.
    pub server_name: Option<ServerName<'static>>,
}

/// The HTTPS listener's part of a compiled configuration.
#[derive(Debug, Default)]
pub(crate) struct CompiledServerTls {
    /// The listener configuration; `None` without hostnames.
    pub(crate) server: Option<Arc<ServerTls>>,
    /// When each host name's certificate expires (Unix seconds).
    pub(crate) expiry: Vec<(String, i64)>,
}

/// Whether the host name a ClientHello with `sni` selects requires a client
/// certificate. QUIC cannot require one per host name (see `ServerTls::quic_config`), so
/// those host names get no `Alt-Svc` on the HTTPS listener and are refused over HTTP/3.
#[must_use]
pub fn requires_client_certificate(tls: &ServerTls, sni: Option<&str>) -> bool {
    tls.client_auth(sni) == Some(ClientAuth::Require)
}

/// Loads every certificate a hostname presents and builds the listener configuration.
pub(crate) fn compile_server_tls(
    config: &Configuration,
    origin: &str,
    settings: &TlsSettings,
) -> Result<CompiledServerTls, CompileError> {
    if config.hostnames.is_empty() {
        return Ok(CompiledServerTls::default());
    }
    let mut expiry = Vec::with_capacity(config.hostnames.len());
    let certificates = by_id(config);
    let now = SystemTime::now();
    // Each certificate is loaded once, however many host names present it.
    let mut loaded: HashMap<&str, (Arc<rustls::sign::CertifiedKey>, i64)> = HashMap::new();
    let mut hosts = Vec::with_capacity(config.hostnames.len());
    for hostname in &config.hostnames {
        let path = format!("hostnames[{}].certificateId", hostname.hostname);
        let Some(id) = hostname.certificate_id.as_deref() else {
            return Err(invalid(
                origin,
                &path,
                "a hostname served over TLS needs a certificate".to_owned(),
            ));
        };
        let (key, not_after) = match loaded.get(id) {
            Some(loaded) => loaded.clone(),
            None => {
                let certificate = certificates
                    .get(id)
                    .ok_or_else(|| invalid(origin, &path, format!("unknown certificate `{id}`")))?;
                let key_pem = certificate.private_key_pem.as_deref().ok_or_else(|| {
                    invalid(
                        origin,
                        &path,
                        format!("certificate `{id}` has no private key"),
                    )
                })?;
                // A certificate outside its validity period is still presented: refusing
                // the configuration for it would stop every other change from reaching
                // this gateway. It is reported on every load (see `reload`), and clients
                // say why they refuse it.
                let (key, leaf) = gatehouse_tls::certificate::certified_key_at_any_time(
                    &certificate.certificate_pem,
                    key_pem,
                )
                .map_err(|source| tls_error(origin, &format!("certificates[{id}]"), source))?;
                if let Err(problem) = leaf.check_validity(now) {
                    tracing::warn!(origin, certificate = id, hostname = %hostname.hostname, problem = %problem, "presenting a certificate outside its validity period; replace it");
                }
                loaded.insert(id, (key.clone(), leaf.not_after));
                (key, leaf.not_after)
            }
        };
        expiry.push((hostname.hostname.clone(), not_after));
        hosts.push(HostCertificate {
            hostname: hostname.hostname.clone(),
            key,
            client_auth: if hostname.require_client_certificate {
                ClientAuth::Require
            } else if hostname.negotiate_client_certificate {
                ClientAuth::Request
            } else {
                ClientAuth::None
            },
            default: hostname.default_ssl_binding,
        });
    }
    let mut client_cas = Vec::new();
    for certificate in config.certificates.iter().filter(|c| c.client_ca) {
        let path = format!("certificates[{}]", certificate.id);
        client_cas.extend(
            gatehouse_tls::certificate::parse_certificates(&certificate.certificate_pem)
                .map_err(|source| tls_error(origin, &path, source))?,
        );
    }
    let asks = hosts.iter().any(|h| h.client_auth != ClientAuth::None);
    if asks && client_cas.is_empty() {
        tracing::warn!(
            origin,
            "hostnames ask for client certificates but no certificate has `clientCa: true`: any certificate whose holder has its key is accepted at the handshake; check it with validate-client-certificate"
        );
    }
    let server = ServerTls::new(hosts, &client_cas, &settings.server)
        .map_err(|source| tls_error(origin, "hostnames", source))?;
    Ok(CompiledServerTls {
        server: Some(Arc::new(server)),
        expiry,
    })
}

/// Builds the TLS clients of `https://` backends, once per distinct setting.
pub(crate) struct BackendTlsBuilder<'c> {
    certificates: HashMap<&'c str, &'c Certificate>,
    settings: &'c TlsSettings,
    origin: &'c str,
    built: HashMap<u64, Arc<BackendTlsClient>>,
}

impl<'c> BackendTlsBuilder<'c> {
    pub(crate) fn new(
        config: &'c Configuration,
        origin: &'c str,
        settings: &'c TlsSettings,
    ) -> Self {
        Self {
            certificates: by_id(config),
            settings,
            origin,
            built: HashMap::new(),
        }
    }

    /// The TLS client for a backend at `path` (`backends[x]`) with these settings.
    pub(crate) fn client(
        &mut self,
        path: &str,
        tls: &BackendTls,
    ) -> Result<Arc<BackendTlsClient>, CompileError> {
        let origin = self.origin;
        let lookup = |id: &str, field: &str| {
            self.certificates.get(id).copied().ok_or_else(|| {
                invalid(
                    origin,
                    &format!("{path}.{field}"),
                    format!("unknown certificate `{id}`"),
                )
            })
        };
        // The fingerprint covers every input of the client configuration.
        let mut digest = sha2::Sha256::new();
        let mut ca_pems = Vec::with_capacity(tls.ca_certificate_ids.len());
        for id in &tls.ca_certificate_ids {
            let certificate = lookup(id, "caCertificateIds")?;
            digest.update(certificate.certificate_pem.as_bytes());
            ca_pems.push(certificate.certificate_pem.as_str());
        }
        let client_certificate = match &tls.client_certificate_id {
            Some(id) => {
                let certificate = lookup(id, "clientCertificateId")?;
                let key_pem = certificate.private_key_pem.as_deref().ok_or_else(|| {
                    invalid(
                        origin,
                        &format!("{path}.clientCertificateId"),
                        format!("certificate `{id}` has no private key"),
                    )
                })?;
                digest.update(b"\0client\0");
                digest.update(certificate.certificate_pem.as_bytes());
                digest.update(key_pem.as_bytes());
                Some((id.as_str(), certificate.certificate_pem.as_str(), key_pem))
            }
            None => None,
        };
        if let Some(name) = &tls.server_name {
            digest.update(b"\0sni\0");
            digest.update(name.as_bytes());
        }
        digest.update([
            u8::from(tls.validate_certificate_chain),
            u8::from(tls.validate_certificate_name),
        ]);
        digest.update(format!("{:?}", self.settings.backend).as_bytes());
        let hash = digest.finalize();
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&hash[..8]);
        let fingerprint = u64::from_le_bytes(fingerprint);

        if !tls.validate_certificate_chain || !tls.validate_certificate_name {
            tracing::warn!(
                origin,
                backend = path,
                validate_certificate_chain = tls.validate_certificate_chain,
                validate_certificate_name = tls.validate_certificate_name,
                "backend TLS verification is turned off: the gateway cannot tell this backend from an impostor"
            );
        }
        if let Some(client) = self.built.get(&fingerprint) {
            return Ok(client.clone());
        }

        let roots = if ca_pems.is_empty() {
            None
        } else {
            let store = gatehouse_tls::certificate::root_store(ca_pems)
                .map_err(|source| tls_error(origin, &format!("{path}.caCertificateIds"), source))?;
            Some(Arc::new(store))
        };
        let client_certificate = match client_certificate {
            Some((id, certificate_pem, key_pem)) => {
                // As for listener certificates: an expired one is still sent (the backend
                // says why it refuses it) rather than blocking the whole configuration.
                let (key, leaf) =
                    gatehouse_tls::certificate::certified_key_at_any_time(certificate_pem, key_pem)
                        .map_err(|source| {
                            tls_error(origin, &format!("certificates[{id}]"), source)
                        })?;
                if let Err(problem) = leaf.check_validity(SystemTime::now()) {
                    tracing::warn!(origin, certificate = id, backend = path, problem = %problem, "sending a client certificate outside its validity period; replace it");
                }
                Some(key)
            }
            None => None,
        };
        let server_name = match &tls.server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| {
                invalid(
                    origin,
                    &format!("{path}.tls.serverName"),
                    format!("`{name}`: {e}"),
                )
            })?),
            None => None,
        };
        let config = ClientTls {
            roots,
            client_certificate,
            verify_chain: tls.validate_certificate_chain,
            verify_name: tls.validate_certificate_name,
            protocol: self.settings.backend.clone(),
            alpn: vec![gatehouse_tls::ALPN_HTTP11.to_vec()],
        }
        .build()
        .map_err(|source| tls_error(origin, path, source))?;
        let client = Arc::new(BackendTlsClient {
            fingerprint,
            config,
            server_name,
        });
        self.built.insert(fingerprint, client.clone());
        Ok(client)
    }
}

fn by_id(config: &Configuration) -> HashMap<&str, &Certificate> {
    config
        .certificates
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect()
}

fn invalid(origin: &str, path: &str, message: String) -> CompileError {
    CompileError::Invalid {
        origin: origin.to_owned(),
        path: path.to_owned(),
        message,
    }
}

fn tls_error(origin: &str, path: &str, source: TlsError) -> CompileError {
    CompileError::Tls {
        origin: origin.to_owned(),
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_test_support::pki::TestCa;

    #[test]
    fn required_client_certificates_follow_the_listeners_host_selection() {
        let ca = TestCa::new("CA");
        let pair = ca.server(&["example.com"]);
        let key = gatehouse_tls::certificate::certified_key(
            &pair.cert_pem,
            &pair.key_pem,
            SystemTime::now(),
        )
        .unwrap();
        let host = |name: &str, client_auth, default| HostCertificate {
            hostname: name.to_owned(),
            key: key.clone(),
            client_auth,
            default,
        };
        let listener = |hosts: Vec<HostCertificate>| {
            ServerTls::new(hosts, &[], &ProtocolSettings::default()).unwrap()
        };
        let table = listener(vec![
            host("api.example.com", ClientAuth::Request, false),
            host("mtls.example.com", ClientAuth::Require, false),
            host("*.apps.example.com", ClientAuth::Require, false),
            host("open.apps.example.com", ClientAuth::None, false),
            host("fallback.example.com", ClientAuth::Require, true),
        ]);
        let requires = |sni| requires_client_certificate(&table, sni);
        assert!(!requires(Some("api.example.com")));
        assert!(!requires(Some("API.Example.com.")));
        assert!(requires(Some("mtls.example.com")));
        assert!(requires(Some("shop.apps.example.com")));
        // An exact name wins over the wildcard.
        assert!(!requires(Some("open.apps.example.com")));
        // No match, or no SNI: the default's setting.
        assert!(requires(Some("a.b.apps.example.com")));
        assert!(requires(None));

        let none = listener(vec![host("api.example.com", ClientAuth::Request, true)]);
        assert!(!requires_client_certificate(&none, Some("api.example.com")));
        assert!(!requires_client_certificate(&none, None));
    }
}
