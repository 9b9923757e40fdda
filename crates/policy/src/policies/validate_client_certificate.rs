//! `validate-client-certificate`: refuses requests whose TLS client certificate is
//! missing, outside its validity period, not issued by a trusted CA, or none of the
//! listed identities (inbound).
//!
//! ```xml
//! <validate-client-certificate validate-revocation="false" validate-trust="true"
//!     validate-not-before="true" validate-not-after="true" ignore-error="false">
//!     <identities>
//!         <identity subject="CN=client.example.com, O=Contoso" issuer-certificate-id="contoso-ca" />
//!         <identity thumbprint="5E7FC1A1F7AD302EDFBFB0B87C5AF2A299B72858" />
//!     </identities>
//! </validate-client-certificate>
//! ```
//!
//! The certificate is the one the gateway received in the TLS handshake
//! ([`crate::RequestFacts::client_certificate`]). The attributes default as in APIM:
//! every check on, `ignore-error` off. Revocation (CRL, OCSP) is not checked by
//! Gatehouse, so `validate-revocation` must be written `false`: a policy that asks for
//! it, or leaves it at APIM's default, is rejected rather than silently passed.
//! `validate-trust` relies on the handshake's verification against the `clientCa`
//! certificates; with none configured it could never pass and is rejected too.
//!
//! The certificate must pass every enabled check, and, when `<identities>` lists any,
//! match every attribute of at least one `<identity>`. `certificate-id` and
//! `issuer-certificate-id` name `Certificate` entities, whose thumbprints are computed
//! at compile time. Thumbprints and serial numbers ignore case and separators; names
//! ignore case, and distinguished names the order of their attributes.
//!
//! A refused request fails with `401` and APIM's body
//! `{"statusCode":401,"message":"Client certificate missing"}` (no certificate) or
//! `…"Invalid client certificate"}`; the error reasons are APIM's:
//! `ClientCertificateNotFound`, `ClientCertificateNotYetValid`,
//! `ClientCertificateExpired`, `ClientCertificateNotTrusted`,
//! `ClientCertificateIdentityNotMatched`. With `ignore-error="true"` the request goes on
//! instead.

use http::StatusCode;

use crate::certificate::{
    ClientCertificate, DistinguishedName, normalize_name, normalize_serial, normalize_thumbprint,
    pem_thumbprint,
};
use crate::context::CompileContext;
use crate::document::{ElementReader, SectionKind};
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::{Flow, PolicyResponse, RequestFacts, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// The attributes of `<identity>`, for messages.
const IDENTITY_ATTRIBUTES: &str = "thumbprint, serial-number, common-name, subject, dns-name, issuer-subject, issuer-thumbprint, certificate-id, issuer-certificate-id";

/// Parsed `<validate-client-certificate>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    validate_revocation: Option<RawValue>,
    validate_trust: Option<RawValue>,
    validate_not_before: Option<RawValue>,
    validate_not_after: Option<RawValue>,
    ignore_error: Option<RawValue>,
    identities: Vec<IdentityConfig>,
    position: Position,
}

/// Parsed `<identity>`: every attribute optional, at least one present.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IdentityConfig {
    thumbprint: Option<RawValue>,
    serial_number: Option<RawValue>,
    common_name: Option<RawValue>,
    subject: Option<RawValue>,
    dns_name: Option<RawValue>,
    issuer_subject: Option<RawValue>,
    issuer_thumbprint: Option<RawValue>,
    certificate_id: Option<RawValue>,
    issuer_certificate_id: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let mut config = Self {
            validate_revocation: reader.optional("validate-revocation"),
            validate_trust: reader.optional("validate-trust"),
            validate_not_before: reader.optional("validate-not-before"),
            validate_not_after: reader.optional("validate-not-after"),
            ignore_error: reader.optional("ignore-error"),
            identities: Vec::new(),
            position: reader.element.position,
        };
        reader.no_text()?;
        let mut seen = false;
        for child in &reader.element.children {
            if child.name != "identities" {
                return Err(reader.unexpected_child(child, "<identities>"));
            }
            reader.at_most_once(&mut seen, child)?;
            let identities = reader.child(child);
            identities.finish()?;
            identities.no_text()?;
            for element in &child.children {
                if element.name != "identity" {
                    return Err(identities.unexpected_child(element, "<identity>"));
                }
                let mut identity = identities.child(element);
                let parsed = IdentityConfig {
                    thumbprint: identity.optional("thumbprint"),
                    serial_number: identity.optional("serial-number"),
                    common_name: identity.optional("common-name"),
                    subject: identity.optional("subject"),
                    dns_name: identity.optional("dns-name"),
                    issuer_subject: identity.optional("issuer-subject"),
                    issuer_thumbprint: identity.optional("issuer-thumbprint"),
                    certificate_id: identity.optional("certificate-id"),
                    issuer_certificate_id: identity.optional("issuer-certificate-id"),
                };
                identity.finish()?;
                identity.no_text()?;
                identity.no_children()?;
                if element.attributes.is_empty() {
                    return Err(reader.site.err(
                        element.position,
                        ErrorKind::Missing,
                        format!(
                            "an <identity> without attributes would match any certificate; give it at least one of: {IDENTITY_ATTRIBUTES}"
                        ),
                    ));
                }
                if let Some(id) = &parsed.issuer_certificate_id
                    && (parsed.issuer_subject.is_some() || parsed.issuer_thumbprint.is_some())
                {
                    return Err(reader.site.invalid(
                        id.position,
                        "`issuer-certificate-id` cannot be combined with `issuer-subject` or `issuer-thumbprint`; name the issuer one way",
                    ));
                }
                config.identities.push(parsed);
            }
        }
        Ok(config)
    }
}

/// One thing an identity requires of the certificate.
#[derive(Debug)]
enum Claim {
    /// Normalised as [`normalize_thumbprint`] does.
    Thumbprint(Box<str>),
    /// Normalised as [`normalize_serial`] does.
    SerialNumber(Box<str>),
    /// Normalised as [`normalize_name`] does.
    CommonName(Box<str>),
    Subject(DistinguishedName),
    /// Lower-cased.
    DnsName(Box<str>),
    IssuerSubject(DistinguishedName),
    /// Normalised as [`normalize_thumbprint`] does.
    IssuerThumbprint(Box<str>),
}

impl Claim {
    fn matches(&self, certificate: &ClientCertificate) -> bool {
        match self {
            Self::Thumbprint(thumbprint) => certificate.thumbprint.eq_ignore_ascii_case(thumbprint),
            Self::SerialNumber(serial) => {
                normalize_serial(&certificate.serial_number).as_deref() == Some(&**serial)
            }
            Self::CommonName(name) => certificate
                .common_name
                .as_deref()
                .is_some_and(|common_name| normalize_name(common_name) == **name),
            Self::Subject(name) => {
                DistinguishedName::parse(&certificate.subject).is_ok_and(|subject| subject == *name)
            }
            Self::DnsName(name) => certificate
                .dns_names
                .iter()
                .any(|dns_name| dns_name.eq_ignore_ascii_case(name)),
            Self::IssuerSubject(name) => {
                DistinguishedName::parse(&certificate.issuer).is_ok_and(|issuer| issuer == *name)
            }
            Self::IssuerThumbprint(thumbprint) => certificate
                .issuer_thumbprint
                .as_deref()
                .is_some_and(|issuer| issuer.eq_ignore_ascii_case(thumbprint)),
        }
    }
}

/// Compiled `<identity>`: all claims must match.
#[derive(Debug)]
struct Identity {
    claims: Box<[Claim]>,
}

/// Compiled `<validate-client-certificate>`.
#[derive(Debug)]
pub(crate) struct ValidateClientCertificate {
    validate_trust: bool,
    validate_not_before: bool,
    validate_not_after: bool,
    ignore_error: bool,
    /// Empty: no identity check.
    identities: Box<[Identity]>,
}

impl ValidateClientCertificate {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let revocation = cx.boolean_or(
            site,
            config.validate_revocation.as_ref(),
            "validate-revocation",
            true,
        )?;
        if revocation {
            let (position, why) = match &config.validate_revocation {
                Some(raw) => (raw.position, "`validate-revocation` is true"),
                None => (
                    config.position,
                    "`validate-revocation` is absent, and APIM's default is true",
                ),
            };
            return Err(site.not_supported(
                position,
                format!(
                    "{why}, but Gatehouse does not check certificate revocation (CRL or OCSP); \
                     set validate-revocation=\"false\" (to shut out a compromised certificate, \
                     remove it from <identities> or stop trusting its CA)"
                ),
            ));
        }
        let validate_trust =
            cx.boolean_or(site, config.validate_trust.as_ref(), "validate-trust", true)?;
        if validate_trust && !cx.has_client_ca() {
            let (position, why) = match &config.validate_trust {
                Some(raw) => (raw.position, "`validate-trust` is true"),
                None => (
                    config.position,
                    "`validate-trust` is absent, and APIM's default is true",
                ),
            };
            return Err(site.invalid(
                position,
                format!(
                    "{why}, but no certificate has `clientCa: true`, so no client certificate could ever be trusted; \
                     add the issuing CA under `certificates` with `clientCa: true`, or set validate-trust=\"false\""
                ),
            ));
        }
        Ok(Self {
            validate_trust,
            validate_not_before: cx.boolean_or(
                site,
                config.validate_not_before.as_ref(),
                "validate-not-before",
                true,
            )?,
            validate_not_after: cx.boolean_or(
                site,
                config.validate_not_after.as_ref(),
                "validate-not-after",
                true,
            )?,
            ignore_error: cx.boolean_or(
                site,
                config.ignore_error.as_ref(),
                "ignore-error",
                false,
            )?,
            identities: config
                .identities
                .iter()
                .map(|identity| compile_identity(identity, site, cx))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Checks the request's client certificate.
    pub(crate) fn check(
        &self,
        facts: &RequestFacts<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Flow {
        let Some(certificate) = facts.client_certificate else {
            return self.refuse(
                meta,
                section,
                "ClientCertificateNotFound",
                "Client certificate missing.",
                "Client certificate missing",
            );
        };
        let (reason, message) = if self.validate_not_before && facts.now < certificate.not_before {
            (
                "ClientCertificateNotYetValid",
                "Certificate is not yet valid.",
            )
        } else if self.validate_not_after && facts.now > certificate.not_after {
            ("ClientCertificateExpired", "Certificate has expired.")
        } else if self.validate_trust && !certificate.trusted {
            (
                "ClientCertificateNotTrusted",
                "A certificate chain could not be built to a trusted root authority.",
            )
        } else if !self.identities.is_empty()
            && !self.identities.iter().any(|identity| {
                identity
                    .claims
                    .iter()
                    .all(|claim| claim.matches(certificate))
            })
        {
            (
                "ClientCertificateIdentityNotMatched",
                "Certificate does not match any of allowed identities.",
            )
        } else {
            return Flow::Continue;
        };
        self.refuse(meta, section, reason, message, "Invalid client certificate")
    }

    fn refuse(
        &self,
        meta: &StepMeta,
        section: SectionKind,
        reason: &'static str,
        message: &'static str,
        body: &str,
    ) -> Flow {
        if self.ignore_error {
            return Flow::Continue;
        }
        meta.fail(
            section,
            reason,
            message,
            PolicyResponse::json_error(StatusCode::UNAUTHORIZED, body),
        )
    }
}

fn compile_identity(
    config: &IdentityConfig,
    site: Site<'_>,
    cx: &CompileContext<'_>,
) -> Result<Identity, PolicyError> {
    let mut claims = Vec::new();
    let thumbprint = |raw: &RawValue, attribute: &str| -> Result<Box<str>, PolicyError> {
        let resolved = cx.literal(site, raw)?;
        normalize_thumbprint(&resolved.text)
            .map(String::into_boxed_str)
            .ok_or_else(|| {
                site.invalid(
                    raw.position,
                    format!(
                        "`{attribute}` must be a SHA-1 thumbprint: 40 hexadecimal digits (spaces and `:` allowed), found {}",
                        resolved.shown()
                    ),
                )
            })
    };
    let name = |raw: &RawValue, attribute: &str| -> Result<DistinguishedName, PolicyError> {
        let resolved = cx.literal(site, raw)?;
        DistinguishedName::parse(&resolved.text).map_err(|why| {
            site.invalid(
                raw.position,
                format!(
                    "`{attribute}` must be a distinguished name such as `CN=client.example.com, O=\"Contoso, Inc.\"`, found {}: {why}",
                    resolved.shown()
                ),
            )
        })
    };
    let text = |raw: &RawValue, attribute: &str| -> Result<String, PolicyError> {
        let resolved = cx.literal(site, raw)?;
        let text = resolved.text.trim();
        if text.is_empty() {
            return Err(site.invalid(raw.position, format!("`{attribute}` must not be empty")));
        }
        Ok(text.to_owned())
    };
    let entity = |raw: &RawValue, attribute: &str| -> Result<Box<str>, PolicyError> {
        let (certificate, _) = cx.configured_certificate(site, raw, &format!("`{attribute}`"))?;
        let id = &certificate.id;
        pem_thumbprint(&certificate.certificate_pem)
            .map(String::into_boxed_str)
            .ok_or_else(|| {
                site.invalid(
                    raw.position,
                    format!(
                        "`{attribute}`: certificate `{id}` has no readable `-----BEGIN CERTIFICATE-----` block to take a thumbprint of"
                    ),
                )
            })
    };

    if let Some(raw) = &config.thumbprint {
        claims.push(Claim::Thumbprint(thumbprint(raw, "thumbprint")?));
    }
    if let Some(raw) = &config.certificate_id {
        claims.push(Claim::Thumbprint(entity(raw, "certificate-id")?));
    }
    if let Some(raw) = &config.serial_number {
        let resolved = cx.literal(site, raw)?;
        let serial = normalize_serial(&resolved.text).ok_or_else(|| {
            site.invalid(
                raw.position,
                format!(
                    "`serial-number` must be hexadecimal digits (spaces and `:` allowed), found {}",
                    resolved.shown()
                ),
            )
        })?;
        claims.push(Claim::SerialNumber(serial.into_boxed_str()));
    }
    if let Some(raw) = &config.common_name {
        let common_name = normalize_name(&text(raw, "common-name")?);
        claims.push(Claim::CommonName(common_name.into_boxed_str()));
    }
    if let Some(raw) = &config.subject {
        claims.push(Claim::Subject(name(raw, "subject")?));
    }
    if let Some(raw) = &config.dns_name {
        let dns_name = text(raw, "dns-name")?.to_ascii_lowercase();
        claims.push(Claim::DnsName(dns_name.into_boxed_str()));
    }
    if let Some(raw) = &config.issuer_subject {
        claims.push(Claim::IssuerSubject(name(raw, "issuer-subject")?));
    }
    if let Some(raw) = &config.issuer_thumbprint {
        claims.push(Claim::IssuerThumbprint(thumbprint(
            raw,
            "issuer-thumbprint",
        )?));
    }
    if let Some(raw) = &config.issuer_certificate_id {
        claims.push(Claim::IssuerThumbprint(entity(
            raw,
            "issuer-certificate-id",
        )?));
    }
    Ok(Identity {
        claims: claims.into_boxed_slice(),
    })
}

impl PolicyDefinition for ValidateClientCertificate {
    const NAME: &'static str = "validate-client-certificate";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for ValidateClientCertificate {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.check(run.exec.facts, meta, run.section())
    }
}

#[cfg(test)]
#[path = "validate_client_certificate_tests.rs"]
mod tests;
