//! Counter keys: the value a rate limit, quota or concurrency limit counts per.
//!
//! APIM takes these as policy expressions. Any expression is accepted
//! ([`CounterKey::Computed`]: its value as text is the key); the handful of idioms nearly
//! every real policy uses are recognised and computed without the evaluator, and a
//! literal key is one counter shared by every caller:
//!
//! | written | key |
//! | --- | --- |
//! | `@(context.Request.IpAddress)` | [`CounterKey::ClientIp`] |
//! | `@(context.Subscription.Id)`, `@(context.Subscription?.Id)` | [`CounterKey::SubscriptionId`] |
//! | `@(context.Subscription.Key)`, `@(context.Subscription?.Key)` | [`CounterKey::SubscriptionKey`] |
//! | `@(context.Request.Headers.GetValueOrDefault("Name"))`, `…("Name",""))` | [`CounterKey::Header`] |
//! | `@(context.Request.Certificate.Thumbprint)`, `@(context.Request.Certificate?.Thumbprint)` | [`CounterKey::CertificateThumbprint`] |
//! | `@(context.Request.Certificate.SubjectName.Name)`, `….Subject`, with `?.` after `Certificate` | [`CounterKey::CertificateSubject`] |
//!
//! Whitespace outside string literals is ignored, and `{{named values}}` are
//! substituted first.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderName;

use crate::context::{CompileContext, expression_not_supported};
use crate::document::SectionKind;
use crate::error::{PolicyError, Site};
use crate::expression::{ExpressionFailure, PolicyExpression, RequestHost};
use crate::pipeline::{Exec, Flow, RequestState, StepMeta};
use crate::reader::{RawText, RawValue};

/// What a counter counts per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CounterKey {
    /// A fixed key: one counter for everyone.
    Literal(Box<str>),
    /// The client's IP address (`context.Request.IpAddress`).
    ClientIp,
    /// The subscription id. Without `?.`, a request without a subscription fails as
    /// APIM's null reference would; with it, such requests share the empty key.
    SubscriptionId {
        /// Written `context.Subscription?.Id`.
        null_safe: bool,
    },
    /// The subscription key, likewise.
    SubscriptionKey {
        /// Written `context.Subscription?.Key`.
        null_safe: bool,
    },
    /// A request header's value (all values joined with `,`); a missing header is the
    /// empty key.
    Header(HeaderName),
    /// The client certificate's thumbprint. Without `?.`, a request without a client
    /// certificate fails as APIM's null reference would; with it, such requests share
    /// the empty key.
    CertificateThumbprint {
        /// Written `context.Request.Certificate?.Thumbprint`.
        null_safe: bool,
    },
    /// The client certificate's subject distinguished name, likewise.
    CertificateSubject {
        /// Written `context.Request.Certificate?.SubjectName.Name` (or `?.Subject`).
        null_safe: bool,
    },
    /// Any other policy expression: its value, as text, per request.
    Computed(SharedExpression),
}

/// A compiled expression in a [`CounterKey`]; two are equal when they are the same one.
#[derive(Debug, Clone)]
pub(crate) struct SharedExpression(Arc<PolicyExpression>);

impl PartialEq for SharedExpression {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedExpression {}

/// Why a key could not be computed.
#[derive(Debug)]
pub(crate) enum KeyFailure {
    /// An idiom dereferenced an object the request does not have.
    Null(NullReference),
    /// The expression failed.
    Expression(ExpressionFailure),
}

impl KeyFailure {
    /// The request's failure, as APIM reports it.
    pub(crate) fn into_flow(self, meta: &StepMeta, section: SectionKind) -> Flow {
        match self {
            Self::Null(missing) => meta.null_reference(section, missing),
            Self::Expression(failure) => failure.into_flow(meta, section),
        }
    }
}

/// The key could not be computed: the expression dereferences an object the request
/// does not have, where APIM would raise a null reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NullReference {
    /// `context.Subscription` is null: the request has no subscription.
    Subscription,
    /// `context.Request.Certificate` is null: the connection has no client certificate.
    Certificate,
}

impl CounterKey {
    /// Compiles a `counter-key` (or `key`) attribute.
    pub(crate) fn compile(
        cx: &CompileContext<'_>,
        site: Site<'_>,
        value: &RawValue,
        attribute: &str,
    ) -> Result<Self, PolicyError> {
        let expression = match &value.text {
            RawText::Literal(_) => {
                let resolved = cx.literal(site, value)?;
                if resolved.text.is_empty() {
                    return Err(
                        site.invalid(value.position, format!("`{attribute}` must not be empty"))
                    );
                }
                return Ok(Self::Literal(resolved.text.into_boxed_str()));
            }
            RawText::Mixed(expression) => return Err(expression_not_supported(site, expression)),
            RawText::Expression(expression) => expression,
        };
        let recognised = expression
            .single()
            .map(|code| cx.substitute_in_expression(site, code, expression.position))
            .transpose()?
            .and_then(|code| Self::recognise(&code.text));
        match recognised {
            Some(key) => Ok(key),
            None => Ok(Self::Computed(SharedExpression(Arc::new(
                cx.expression(site, expression)?,
            )))),
        }
    }

    /// Matches the supported idioms (code inside `@(...)`).
    pub(crate) fn recognise(code: &str) -> Option<Self> {
        let code = strip_whitespace(code);
        match code.as_str() {
            "context.Request.IpAddress" => return Some(Self::ClientIp),
            "context.Subscription.Id" => return Some(Self::SubscriptionId { null_safe: false }),
            "context.Subscription?.Id" => return Some(Self::SubscriptionId { null_safe: true }),
            "context.Subscription.Key" => return Some(Self::SubscriptionKey { null_safe: false }),
            "context.Subscription?.Key" => return Some(Self::SubscriptionKey { null_safe: true }),
            _ => {}
        }
        if let Some(member) = code.strip_prefix("context.Request.Certificate") {
            let (null_safe, member) = match member.strip_prefix("?.") {
                Some(member) => (true, member),
                None => (false, member.strip_prefix('.')?),
            };
            // `SubjectName` is never null on a certificate, so `?.` after it changes nothing.
            return match member {
                "Thumbprint" => Some(Self::CertificateThumbprint { null_safe }),
                "Subject" | "SubjectName.Name" | "SubjectName?.Name" => {
                    Some(Self::CertificateSubject { null_safe })
                }
                _ => None,
            };
        }
        let arguments = code
            .strip_prefix("context.Request.Headers.GetValueOrDefault(")?
            .strip_suffix(')')?;
        let arguments = arguments.strip_suffix(",\"\"").unwrap_or(arguments);
        let name = arguments.strip_prefix('"')?.strip_suffix('"')?;
        if name.contains('"') || name.contains('\\') {
            return None;
        }
        HeaderName::from_bytes(name.as_bytes())
            .ok()
            .map(Self::Header)
    }

    /// Hashes this request's key value with the counters' keyed hasher.
    pub(crate) fn hash(
        &self,
        exec: &Exec<'_, '_>,
        request: &RequestState,
    ) -> Result<u64, KeyFailure> {
        let facts = exec.facts;
        let headers = &request.headers;
        let mut hasher = exec.counters.key_hasher();
        match self {
            Self::Literal(key) => {
                hasher.write_u8(0);
                hasher.write(key.as_bytes());
            }
            Self::ClientIp => {
                hasher.write_u8(1);
                match facts.client_ip.to_canonical() {
                    IpAddr::V4(ip) => hasher.write(&ip.octets()),
                    IpAddr::V6(ip) => hasher.write(&ip.octets()),
                }
            }
            Self::SubscriptionId { null_safe } => {
                hasher.write_u8(2);
                match (&facts.subscription, null_safe) {
                    (Some(subscription), _) => hasher.write(subscription.id.as_bytes()),
                    (None, true) => {}
                    (None, false) => return Err(KeyFailure::Null(NullReference::Subscription)),
                }
            }
            Self::SubscriptionKey { null_safe } => {
                hasher.write_u8(3);
                match (&facts.subscription, null_safe) {
                    (Some(subscription), _) => hasher.write(subscription.key.as_bytes()),
                    (None, true) => {}
                    (None, false) => return Err(KeyFailure::Null(NullReference::Subscription)),
                }
            }
            Self::Header(name) => {
                hasher.write_u8(4);
                for (index, value) in headers.get_all(name).iter().enumerate() {
                    if index > 0 {
                        hasher.write_u8(b',');
                    }
                    hasher.write(value.as_bytes());
                }
            }
            Self::CertificateThumbprint { null_safe } => {
                hasher.write_u8(5);
                match (facts.client_certificate, null_safe) {
                    (Some(certificate), _) => hasher.write(certificate.thumbprint.as_bytes()),
                    (None, true) => {}
                    (None, false) => return Err(KeyFailure::Null(NullReference::Certificate)),
                }
            }
            Self::CertificateSubject { null_safe } => {
                hasher.write_u8(6);
                match (facts.client_certificate, null_safe) {
                    (Some(certificate), _) => hasher.write(certificate.subject.as_bytes()),
                    (None, true) => {}
                    (None, false) => return Err(KeyFailure::Null(NullReference::Certificate)),
                }
            }
            Self::Computed(SharedExpression(expression)) => {
                hasher.write_u8(7);
                let host = RequestHost {
                    facts,
                    scope: exec.scope,
                    request,
                    response: None,
                    last_error: None,
                };
                match expression.evaluate(&host).map_err(KeyFailure::Expression)? {
                    gatehouse_expr::Value::String(text) => hasher.write(text.as_bytes()),
                    other => hasher.write(other.to_string().as_bytes()),
                }
            }
        }
        Ok(hasher.finish())
    }
}

/// Removes whitespace outside `"` string literals.
fn strip_whitespace(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut in_string = false;
    let mut escaped = false;
    for character in code.chars() {
        if in_string {
            out.push(character);
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                in_string = false;
            }
        } else if character == '"' {
            in_string = true;
            out.push(character);
        } else if !character.is_whitespace() {
            out.push(character);
        }
    }
    out
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
