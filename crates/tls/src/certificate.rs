//! Certificates and private keys from PEM text: parsing, key/certificate matching,
//! validity, and the details policies and logs need.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha1::Digest as _;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::TlsError;

/// Every `CERTIFICATE` block of `pem`, in order (leaf first for a chain).
///
/// # Errors
///
/// [`TlsError::Pem`] when a block does not decode or there is none.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what: "certificate",
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            reason: "no `-----BEGIN CERTIFICATE-----` block found".to_owned(),
        });
    }
    Ok(certificates)
}

/// The private key block of `pem` (PKCS #8, PKCS #1 or SEC1).
///
/// # Errors
///
/// [`TlsError::Pem`] when there is no key block or it does not decode. The message never
/// quotes the key.
pub fn parse_private_key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|error| TlsError::Pem {
        what: "private key",
        reason: match error {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block found".to_owned()
            }
            other => other.to_string(),
        },
    })
}

/// A certificate chain and its private key, checked and ready to present: the key must
/// be usable by the crypto provider and match the leaf, and the leaf must be valid at
/// `now`.
///
/// # Errors
///
/// [`TlsError::Pem`], [`TlsError::UnsupportedKey`], [`TlsError::KeyMismatch`],
/// [`TlsError::Expired`], [`TlsError::NotYetValid`] or [`TlsError::X509`].
pub fn certified_key(
    chain_pem: &str,
    key_pem: &str,
    now: SystemTime,
) -> Result<Arc<CertifiedKey>, TlsError> {
    certified_key_with_details(chain_pem, key_pem, now).map(|(key, _)| key)
}

/// [`certified_key`], with what the leaf says about itself (parsed for the checks, so
/// callers that need its expiry or subject need not parse it again).
///
/// # Errors
///
/// As [`certified_key`].
pub fn certified_key_with_details(
    chain_pem: &str,
    key_pem: &str,
    now: SystemTime,
) -> Result<(Arc<CertifiedKey>, CertificateDetails), TlsError> {
    let (key, details) = certified_key_at_any_time(chain_pem, key_pem)?;
    details.check_validity(now)?;
    Ok((key, details))
}

/// [`certified_key_with_details`] without the validity period check: for a running
/// gateway, which keeps presenting a certificate that expired (clients then say why
/// they refuse it) rather than drop every other change, and reports it.
///
/// # Errors
///
/// As [`certified_key`], never [`TlsError::Expired`] nor [`TlsError::NotYetValid`].
pub fn certified_key_at_any_time(
    chain_pem: &str,
    key_pem: &str,
) -> Result<(Arc<CertifiedKey>, CertificateDetails), TlsError> {
    let chain = parse_certificates(chain_pem)?;
    let key = parse_private_key(key_pem)?;
    let details = CertificateDetails::from_der(&chain[0])?;
    let signing_key = crate::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::UnsupportedKey(error.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the provider cannot derive the public key (never for ring's RSA/
        // ECDSA/Ed25519); the handshake's own signature check still protects clients.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok((Arc::new(certified), details))
        }
        Err(_) => Err(TlsError::KeyMismatch {
            subject: details.subject,
        }),
    }
}

/// A root store of the `CERTIFICATE` blocks of every PEM text given (CA bundles).
///
/// # Errors
///
/// [`TlsError::Pem`] when a text holds no certificate or one that is not a usable
/// trust anchor.
pub fn root_store<'a>(pems: impl IntoIterator<Item = &'a str>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for pem in pems {
        for certificate in parse_certificates(pem)? {
            store.add(certificate).map_err(|error| TlsError::Pem {
                what: "CA certificate",
                reason: format!("not usable as a trust anchor: {error}"),
            })?;
        }
    }
    Ok(store)
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateDetails {
    /// Subject, RFC 4514 form (`CN=api.example.com, O=Contoso`).
    pub subject: String,
    /// Issuer, same form.
    pub issuer: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// SHA-1 of the DER, uppercase hex (what APIM and Windows call the thumbprint).
    pub thumbprint: String,
    /// Serial number, uppercase hex.
    pub serial_number: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
}

impl CertificateDetails {
    /// Parses one DER certificate.
    ///
    /// # Errors
    ///
    /// [`TlsError::X509`] when it does not parse.
    pub fn from_der(der: &[u8]) -> Result<Self, TlsError> {
        let (_, certificate) =
            X509Certificate::from_der(der).map_err(|error| TlsError::X509(error.to_string()))?;
        let common_name = certificate
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let dns_names = certificate
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|extension| {
                extension
                    .value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            common_name,
            thumbprint: thumbprint(der),
            serial_number: hex::encode_upper(certificate.raw_serial()),
            not_before: certificate.validity().not_before.timestamp(),
            not_after: certificate.validity().not_after.timestamp(),
            dns_names,
            is_ca: certificate.is_ca(),
        })
    }

    /// Checks `now` is within the validity period.
    ///
    /// # Errors
    ///
    /// [`TlsError::Expired`] or [`TlsError::NotYetValid`].
    pub fn check_validity(&self, now: SystemTime) -> Result<(), TlsError> {
        let now = unix_seconds(now);
        if now > self.not_after {
            return Err(TlsError::Expired {
                subject: self.subject.clone(),
                not_after: rfc3339(self.not_after),
            });
        }
        if now < self.not_before {
            return Err(TlsError::NotYetValid {
                subject: self.subject.clone(),
                not_before: rfc3339(self.not_before),
            });
        }
        Ok(())
    }
}

/// SHA-1 of `der`, uppercase hex.
#[must_use]
pub fn thumbprint(der: &[u8]) -> String {
    hex::encode_upper(sha1::Sha1::digest(der))
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `2026-11-23T18:31:35Z` for a Unix time (UTC; proleptic Gregorian calendar).
#[must_use]
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
