//! Throwaway certificate authorities and certificates for TLS tests, generated with
//! `rcgen` (ECDSA P-256), as PEM text ready for a configuration file or a client.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct CertifiedPem {
    /// `-----BEGIN CERTIFICATE-----` block(s): the leaf, then the issuing chain up to
    /// (not including) the root.
    pub cert_pem: String,
    /// `-----BEGIN PRIVATE KEY-----` block (PKCS #8).
    pub key_pem: String,
}

/// How long an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday to a year from now.
    Current,
    /// Valid in 2000, expired since.
    Expired,
    /// Valid from 2090 on.
    NotYetValid,
    /// From yesterday until this time (a certificate that expires during a test).
    Until(std::time::SystemTime),
}

/// A test certificate authority (a self-signed root).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("name", &self.name).finish()
    }
}

impl TestCa {
    /// A new root CA whose subject is `CN=<name>`.
    ///
    /// # Panics
    ///
    /// If key generation or signing fails.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|error| panic!("pki: {} failed: {error}", "CA params"));
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, Validity::Current);
        let key =
            KeyPair::generate().unwrap_or_else(|error| panic!("pki: {} failed: {error}", "CA key"));
        let issuer = CertifiedIssuer::self_signed(params, key)
            .unwrap_or_else(|error| panic!("pki: {} failed: {error}", "self-signed CA"));
        Self {
            issuer,
            name: name.to_owned(),
        }
    }

    /// The CA certificate (PEM), to trust.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid now.
    #[must_use]
    pub fn server(&self, names: &[&str]) -> CertifiedPem {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            Validity::Current,
            true,
        )
    }

    /// A server certificate with the given validity.
    #[must_use]
    pub fn server_with_validity(&self, names: &[&str], validity: Validity) -> CertifiedPem {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            validity,
            true,
        )
    }

    /// A client certificate whose subject is `CN=<common_name>`, valid now.
    #[must_use]
    pub fn client(&self, common_name: &str) -> CertifiedPem {
        self.issue(&[], common_name, Validity::Current, false)
    }

    /// A client certificate with the given validity.
    #[must_use]
    pub fn client_with_validity(&self, common_name: &str, validity: Validity) -> CertifiedPem {
        self.issue(&[], common_name, validity, false)
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        validity: Validity,
        server: bool,
    ) -> CertifiedPem {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)
            .unwrap_or_else(|error| panic!("pki: {} failed: {error}", "leaf params"));
        params.distinguished_name = distinguished_name(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        set_validity(&mut params, validity);
        let key = KeyPair::generate()
            .unwrap_or_else(|error| panic!("pki: {} failed: {error}", "leaf key"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|error| panic!("pki: {} failed: {error}", "signing a leaf"));
        CertifiedPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "Gatehouse tests");
    name
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let at = |time: std::time::SystemTime| {
        rcgen::date_time_ymd(2000, 1, 1)
            + time
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
            - std::time::Duration::from_secs(946_684_800)
    };
    let (from, to) = match validity {
        Validity::Current => {
            let now = at(std::time::SystemTime::now());
            (
                now - std::time::Duration::from_secs(86_400),
                now + std::time::Duration::from_secs(365 * 86_400),
            )
        }
        Validity::Until(until) => (
            at(std::time::SystemTime::now()) - std::time::Duration::from_secs(86_400),
            at(until),
        ),
        Validity::Expired => (
            rcgen::date_time_ymd(2000, 1, 1),
            rcgen::date_time_ymd(2001, 1, 1),
        ),
        Validity::NotYetValid => (
            rcgen::date_time_ymd(2090, 1, 1),
            rcgen::date_time_ymd(2091, 1, 1),
        ),
    };
    params.not_before = from;
    params.not_after = to;
}
