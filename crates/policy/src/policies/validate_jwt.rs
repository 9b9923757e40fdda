//! `validate-jwt`: refuses requests without a valid JSON web token (inbound).
//!
//! ```xml
//! <validate-jwt header-name="Authorization" require-scheme="Bearer"
//!     failed-validation-httpcode="401" output-token-variable-name="jwt">
//!     <openid-config url="https://login.example.com/.well-known/openid-configuration" />
//!     <issuer-signing-keys>
//!         <key id="2024-01">{{jwt-signing-key}}</key>
//!         <key n="..." e="AQAB" />
//!         <key certificate-id="issuer-cert" />
//!     </issuer-signing-keys>
//!     <audiences><audience>api://orders</audience></audiences>
//!     <issuers><issuer>https://login.example.com/</issuer></issuers>
//!     <required-claims>
//!         <claim name="roles" match="any" separator=","><value>admin</value><value>reader</value></claim>
//!     </required-claims>
//! </validate-jwt>
//! ```
//!
//! The token comes from exactly one of `header-name` (a leading scheme word, `Bearer `,
//! is set aside; with `require-scheme` on `Authorization` it must be that scheme),
//! `query-parameter-name` or `token-value` (a policy expression or text, used as it
//! is). It is verified as a signed JWT (JWS compact form) with the algorithms RS256/384/512,
//! PS256/384/512, ES256/384 and HS256/384/512 against the keys the policy lists and
//! those of its OpenID configurations; then its lifetime (`exp`, required unless
//! `require-expiration-time="false"`, and `nbf`, with `clock-skew` seconds of slack,
//! against [`PolicyServices::now`]), its audience, its issuer and its required claims.
//!
//! OpenID configurations are fetched through [`PolicyServices::call`] (the discovery
//! document, then its `jwks_uri`) on first use, and kept per policy step: refreshed
//! after an hour, or when a token names a key (`kid`) they lack, at most once a minute
//! (a failed fetch is retried after a minute, or after 5 seconds while there are no
//! keys at all). One fetch runs at a time; requests waiting for the first wait for it.
//! The discovery document's `issuer` is an allowed issuer.
//!
//! A refused request fails with `failed-validation-httpcode` (401) and APIM's JSON body
//! `{"statusCode":401,"message":"…"}` (`failed-validation-error-message`, or `JWT not
//! present.` / `Invalid JWT.`), so `on-error` runs; `context.LastError` has source
//! `validate-jwt` and APIM's reasons: `TokenNotPresent`, `TokenSignatureInvalid`,
//! `TokenSignatureKeyNotFound`, `TokenExpired`, `TokenAudienceNotAllowed`,
//! `TokenIssuerNotAllowed`, `TokenClaimNotFound`, `TokenClaimValueNotAllowed`, and
//! `JwtInvalid` for the rest (malformed, not yet valid, no expiration). Tokens, keys
//! and claim values never appear in a message.
//!
//! Refused at load: `<decryption-keys>` (encrypted tokens, JWE), policy expressions in
//! attributes other than `token-value` and `failed-validation-error-message` and in
//! elements other than `<audience>` and `<issuer>`, and a policy that could verify no
//! signature (no keys, no OpenID configuration) while `require-signed-tokens` is true.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use gatehouse_expr::{Expression, ExpressionKind, Host, HostError, HostObject, Value};
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value as Json};
use url::Url;

use super::{header_name, status_code, value_children};
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError};
use crate::expression::{RequestHost, TextValue};
use crate::reader::RawValue;
use crate::registry::StepFuture;
use crate::registry::prelude::*;
use crate::services::{OutgoingCall, PolicyServices};

/// How long fetched OpenID keys are used before they are fetched again.
const KEYS_TTL_SECONDS: u64 = 3_600;
/// The least time between two fetches (a token naming an unknown key, a failed fetch).
const MIN_REFETCH_SECONDS: u64 = 60;
/// The least time between two fetches while none has given any key.
const COLD_RETRY_SECONDS: u64 = 5;
/// Time allowed for each call of a fetch (the discovery document, the key set).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a request waiting for the first fetch looks again, and how many times.
const WAIT_STEP: Duration = Duration::from_millis(20);
const WAIT_STEPS: u32 = 1_500;
/// The longest token read (as `AsJwt()`'s limit).
const MAX_TOKEN_LEN: usize = 64 * 1024;
/// The largest `clock-skew`, in seconds.
const MAX_CLOCK_SKEW_SECONDS: u64 = 86_400;
/// The shortest HMAC key accepted (128 bits, as .NET's `HS256` requires).
const MIN_HMAC_KEY_BYTES: usize = 16;
/// The smallest RSA modulus the verifier (ring) accepts, in bytes.
const MIN_RSA_MODULUS_BYTES: usize = 256;

const NOT_PRESENT: &str = "TokenNotPresent";
const INVALID: &str = "JwtInvalid";
const SIGNATURE_INVALID: &str = "TokenSignatureInvalid";
const KEY_NOT_FOUND: &str = "TokenSignatureKeyNotFound";

/// Parsed `<validate-jwt>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    source: Source<RawValue>,
    failed_validation_httpcode: Option<RawValue>,
    failed_validation_error_message: Option<RawValue>,
    require_expiration_time: Option<RawValue>,
    require_scheme: Option<RawValue>,
    require_signed_tokens: Option<RawValue>,
    clock_skew: Option<RawValue>,
    output_token_variable_name: Option<RawValue>,
    openid_configs: Vec<RawValue>,
    keys: Vec<KeyConfig>,
    audiences: Vec<RawValue>,
    issuers: Vec<RawValue>,
    claims: Vec<ClaimConfig>,
}

/// Where the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source<T> {
    Header(T),
    Query(T),
    Value(T),
}

/// A `<key>` of `<issuer-signing-keys>`, as written.
#[derive(Clone, PartialEq, Eq)]
struct KeyConfig {
    id: Option<RawValue>,
    form: KeyForm,
}

#[derive(Clone, PartialEq, Eq)]
enum KeyForm {
    /// Base64 HMAC secret (the element's text).
    Secret(RawValue),
    /// A `Certificate` entity's public key.
    Certificate(RawValue),
    /// RSA modulus and exponent.
    Rsa { n: RawValue, e: RawValue },
}

/// Keys never reach a `Debug` line.
impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match &self.form {
            KeyForm::Secret(_) => "secret",
            KeyForm::Certificate(_) => "certificate",
            KeyForm::Rsa { .. } => "rsa",
        };
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("form", &form)
            .finish()
    }
}

/// A `<claim>` of `<required-claims>`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimConfig {
    name: RawValue,
    match_: Option<RawValue>,
    separator: Option<RawValue>,
    values: Vec<RawValue>,
}

/// Compiled `<validate-jwt>`.
#[derive(Debug)]
pub(crate) struct ValidateJwt {
    source: TokenFrom,
    status: StatusCode,
    message: Option<TextValue>,
    require_expiration: bool,
    /// `require-scheme`, when it applies (the token is in `Authorization`).
    require_scheme: Option<Box<str>>,
    require_signed: bool,
    clock_skew: u64,
    output: Option<Output>,
    keys: Box<[VerifyKey]>,
    openid: Option<OpenIdKeys>,
    audiences: Box<[TextValue]>,
    issuers: Box<[TextValue]>,
    claims: Box<[RequiredClaim]>,
}

/// Where the token is, compiled.
#[derive(Debug)]
enum TokenFrom {
    Header(HeaderName),
    Query(Box<str>),
    Value(TextValue),
}

/// `output-token-variable-name`: the variable, and `context.AsJwt()` compiled once, so
/// the variable holds the expression language's own `Jwt` object, as in APIM.
struct Output {
    variable: Arc<str>,
    as_jwt: Option<Expression>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("variable", &self.variable)
            .finish_non_exhaustive()
    }
}

/// A key a signature may be verified with.
struct VerifyKey {
    kid: Option<Box<str>>,
    family: Family,
    /// The one algorithm the key is for, when its JWK says (`alg`).
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// Keys never reach a `Debug` line.
impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Which algorithms a key is for: a key is only ever used with its own family (an RSA
/// key never as an HMAC secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
}

impl Family {
    /// The family of `alg`; `None` for those Gatehouse does not verify (EdDSA).
    fn of(alg: Algorithm) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Self::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Self::Rsa,
            Algorithm::ES256 => Self::EcP256,
            Algorithm::ES384 => Self::EcP384,
            Algorithm::EdDSA => return None,
        })
    }
}

/// A `<claim>`, compiled.
#[derive(Debug)]
struct RequiredClaim {
    name: Box<str>,
    all: bool,
    separator: Option<Box<str>>,
    values: Box<[Box<str>]>,
}

impl PolicyDefinition for ValidateJwt {
    const NAME: &'static str = "validate-jwt";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        let header = reader.optional("header-name");
        let query = reader.optional("query-parameter-name");
        let value = reader.optional("token-value");
        let source = match (header, query, value) {
            (Some(header), None, None) => Source::Header(header),
            (None, Some(query), None) => Source::Query(query),
            (None, None, Some(value)) => Source::Value(value),
            (None, None, None) => {
                return Err(reader.site.err(
                    reader.element.position,
                    ErrorKind::Missing,
                    "says where the token is with one of `header-name`, `query-parameter-name` or `token-value`; none is given",
                ));
            }
            (header, query, value) => {
                let second = [header, query, value]
                    .into_iter()
                    .flatten()
                    .nth(1)
                    .map_or(reader.element.position, |raw| raw.position);
                return Err(reader.structure(
                    second,
                    "give only one of `header-name`, `query-parameter-name` and `token-value`",
                ));
            }
        };
        let mut config = Config {
            source,
            failed_validation_httpcode: reader.optional("failed-validation-httpcode"),
            failed_validation_error_message: reader.optional("failed-validation-error-message"),
            require_expiration_time: reader.optional("require-expiration-time"),
            require_scheme: reader.optional("require-scheme"),
            require_signed_tokens: reader.optional("require-signed-tokens"),
            clock_skew: reader.optional("clock-skew"),
            output_token_variable_name: reader.optional("output-token-variable-name"),
            openid_configs: Vec::new(),
            keys: Vec::new(),
            audiences: Vec::new(),
            issuers: Vec::new(),
            claims: Vec::new(),
        };
        let (mut keys_seen, mut audiences_seen, mut issuers_seen, mut claims_seen) =
            (false, false, false, false);
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "openid-config" => {
                    child_reader.no_children()?;
                    child_reader.no_text()?;
                    config.openid_configs.push(child_reader.required("url")?);
                }
                "issuer-signing-keys" => {
                    reader.at_most_once(&mut keys_seen, child)?;
                    config.keys = parse_keys(&child_reader)?;
                }
                "decryption-keys" => {
                    return Err(reader.site.not_supported(
                        child.position,
                        "<decryption-keys> is not supported by Gatehouse: encrypted tokens (JWE) cannot be validated, only signed ones (JWS); remove it",
                    ));
                }
                "audiences" => {
                    reader.at_most_once(&mut audiences_seen, child)?;
                    config.audiences = text_children(&child_reader, "audience")?;
                }
                "issuers" => {
                    reader.at_most_once(&mut issuers_seen, child)?;
                    config.issuers = text_children(&child_reader, "issuer")?;
                }
                "required-claims" => {
                    reader.at_most_once(&mut claims_seen, child)?;
                    config.claims = parse_claims(&child_reader)?;
                }
                _ => {
                    return Err(reader.unexpected_child(
                        child,
                        "<openid-config>, <issuer-signing-keys>, <audiences>, <issuers> or <required-claims>",
                    ));
                }
            }
            child_reader.finish()?;
        }
        Ok(config)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let (site, context) = (cx.site, cx.context);
        let source = match &config.source {
            Source::Header(raw) => TokenFrom::Header(header_name(context, site, raw, "header-name")?),
            Source::Query(raw) => {
                let name = context.literal(site, raw)?;
                let name = name.text.trim();
                if name.is_empty() {
                    return Err(
                        site.invalid(raw.position, "`query-parameter-name` must not be empty")
                    );
                }
                TokenFrom::Query(Box::from(name))
            }
            Source::Value(raw) => TokenFrom::Value(context.text_value(site, raw)?),
        };
        let status = match &config.failed_validation_httpcode {
            Some(raw) => status_code(context, site, raw, "failed-validation-httpcode")?,
            None => StatusCode::UNAUTHORIZED,
        };
        let message = config
            .failed_validation_error_message
            .as_ref()
            .map(|raw| context.text_value(site, raw))
            .transpose()?;
        let require_expiration = context.boolean_or(
            site,
            config.require_expiration_time.as_ref(),
            "require-expiration-time",
            true,
        )?;
        let require_signed = context.boolean_or(
            site,
            config.require_signed_tokens.as_ref(),
            "require-signed-tokens",
            true,
        )?;
        let require_scheme = match &config.require_scheme {
            Some(raw) => {
                let scheme = context.literal(site, raw)?;
                let scheme = scheme.text.trim();
                if scheme.is_empty() || scheme.contains(char::is_whitespace) {
                    return Err(site.invalid(
                        raw.position,
                        "`require-scheme` must be one word, such as `Bearer`",
                    ));
                }
                // As in APIM, the scheme is checked only in the Authorization header.
                matches!(&source, TokenFrom::Header(name) if name == AUTHORIZATION)
                    .then(|| Box::from(scheme))
            }
            None => None,
        };
        let clock_skew = match &config.clock_skew {
            Some(raw) => context.number(site, raw, "clock-skew", 0..=MAX_CLOCK_SKEW_SECONDS)?,
            None => 0,
        };
        let output = match &config.output_token_variable_name {
            Some(raw) => {
                let name = context.literal(site, raw)?;
                let name = name.text.trim();
                if name.is_empty() {
                    return Err(site.invalid(
                        raw.position,
                        "`output-token-variable-name` must not be empty",
                    ));
                }
                Some(Output {
                    variable: Arc::from(name),
                    as_jwt: Expression::compile("context.AsJwt()", ExpressionKind::Single).ok(),
                })
            }
            None => None,
        };
        let keys = config
            .keys
            .iter()
            .map(|key| compile_key(key, cx))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        let urls = config
            .openid_configs
            .iter()
            .map(|raw| {
                let text = context.literal(site, raw)?;
                check_url(text.text.trim()).map_err(|why| {
                    site.invalid(
                        raw.position,
                        format!("<openid-config> `url`: {why}: {}", text.shown()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if require_signed && keys.is_empty() && urls.is_empty() {
            return Err(site.invalid(
                cx.position,
                "no key to verify signed tokens with: add an <openid-config url=\"…\"/> or <issuer-signing-keys>, or set require-signed-tokens=\"false\"",
            ));
        }
        let openid = (!urls.is_empty()).then(|| OpenIdKeys::new(urls));
        let text_values = |values: &[RawValue]| {
            values
                .iter()
                .map(|raw| context.text_value(site, raw))
                .collect::<Result<Vec<_>, _>>()
                .map(Vec::into_boxed_slice)
        };
        let claims = config
            .claims
            .iter()
            .map(|claim| compile_claim(claim, cx))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        Ok(Self {
            source,
            status,
            message,
            require_expiration,
            require_scheme,
            require_signed,
            clock_skew,
            output,
            keys,
            openid,
            audiences: text_values(&config.audiences)?,
            issuers: text_values(&config.issuers)?,
            claims,
        })
    }
}

/// Reads `<issuer-signing-keys>`: `<key>` children, each one form.
fn parse_keys(reader: &ElementReader<'_>) -> Result<Vec<KeyConfig>, PolicyError> {
    reader.no_text()?;
    let mut keys = Vec::new();
    for child in &reader.element.children {
        if child.name != "key" {
            return Err(reader.unexpected_child(child, "<key>"));
        }
        let mut key = reader.child(child);
        key.no_children()?;
        let id = key.optional("id");
        let certificate = key.optional("certificate-id");
        let n = key.optional("n");
        let e = key.optional("e");
        let text = key.text();
        key.finish()?;
        let form = match (text, certificate, n, e) {
            (Some(text), None, None, None) => KeyForm::Secret(text),
            (None, Some(certificate), None, None) => KeyForm::Certificate(certificate),
            (None, None, Some(n), Some(e)) => KeyForm::Rsa { n, e },
            (None, None, Some(_), None) | (None, None, None, Some(_)) => {
                return Err(reader.structure(
                    child.position,
                    "<key>: `n` (modulus) and `e` (exponent) go together; give both",
                ));
            }
            (None, None, None, None) => {
                return Err(reader.structure(
                    child.position,
                    "<key> is empty: give a base64 key as its text, a `certificate-id`, or `n` and `e`",
                ));
            }
            _ => {
                return Err(reader.structure(
                    child.position,
                    "<key> takes one form: a base64 key as its text, a `certificate-id`, or `n` and `e`",
                ));
            }
        };
        keys.push(KeyConfig {
            id,
            form,
        });
    }
    if keys.is_empty() {
        return Err(reader.structure(
            reader.element.position,
            "<issuer-signing-keys> needs at least one <key>",
        ));
    }
    Ok(keys)
}

/// Reads `<audiences>` or `<issuers>`: `<name>` children with text, at least one.
fn text_children(reader: &ElementReader<'_>, name: &str) -> Result<Vec<RawValue>, PolicyError> {
    reader.no_text()?;
    let mut values = Vec::new();
    for child in &reader.element.children {
        if child.name != name {
            return Err(reader.unexpected_child(child, &format!("<{name}>")));
        }
        let item = reader.child(child);
        item.finish()?;
        item.no_children()?;
        let Some(text) = item.text() else {
            return Err(reader.structure(child.position, format!("<{name}> must not be empty")));
        };
        values.push(text);
    }
    if values.is_empty() {
        return Err(reader.structure(
            reader.element.position,
            format!("<{}> needs at least one <{name}>", reader.element.name),
        ));
    }
    Ok(values)
}

/// Reads `<required-claims>`: `<claim>` children.
fn parse_claims(reader: &ElementReader<'_>) -> Result<Vec<ClaimConfig>, PolicyError> {
    reader.no_text()?;
    let mut claims = Vec::new();
    for child in &reader.element.children {
        if child.name != "claim" {
            return Err(reader.unexpected_child(child, "<claim>"));
        }
        let mut claim = reader.child(child);
        let parsed = ClaimConfig {
            name: claim.required("name")?,
            match_: claim.optional("match"),
            separator: claim.optional("separator"),
            values: value_children(&claim)?,
        };
        claim.finish()?;
        claims.push(parsed);
    }
    Ok(claims)
}

/// A `<key>`, checked and ready to verify with.
fn compile_key(config: &KeyConfig, cx: &StepCx<'_, '_>) -> Result<VerifyKey, PolicyError> {
    let (site, context) = (cx.site, cx.context);
    let kid = match &config.id {
        Some(raw) => {
            let id = context.literal(site, raw)?;
            let id = id.text.trim();
            if id.is_empty() {
                return Err(site.invalid(raw.position, "<key> `id` must not be empty"));
            }
            Some(Box::from(id))
        }
        None => None,
    };
    let (family, key) = match &config.form {
        KeyForm::Secret(raw) => {
            // The key is never shown, secret named value or not.
            let text = context.literal(site, raw)?;
            let bytes = decode_base64(&text.text).ok_or_else(|| {
                site.invalid(raw.position, "<key>: the key is not valid base64")
            })?;
            if bytes.len() < MIN_HMAC_KEY_BYTES {
                return Err(site.invalid(
                    raw.position,
                    format!(
                        "<key>: the key is {} bytes; an HMAC key must be at least {MIN_HMAC_KEY_BYTES} bytes (128 bits)",
                        bytes.len()
                    ),
                ));
            }
            (Family::Hmac, DecodingKey::from_secret(&bytes))
        }
        KeyForm::Rsa { n, e } => {
            let modulus = context.literal(site, n)?;
            let modulus = decode_base64(&modulus.text)
                .ok_or_else(|| site.invalid(n.position, "<key> `n`: not valid base64url"))?;
            let exponent = context.literal(site, e)?;
            let exponent = decode_base64(&exponent.text)
                .ok_or_else(|| site.invalid(e.position, "<key> `e`: not valid base64url"))?;
            let modulus = strip_leading_zeros(&modulus);
            if modulus.len() < MIN_RSA_MODULUS_BYTES {
                return Err(site.invalid(
                    n.position,
                    format!(
                        "<key> `n`: the RSA modulus is {} bits; at least 2048 are needed",
                        modulus.len() * 8
                    ),
                ));
            }
            let exponent = strip_leading_zeros(&exponent);
            if exponent.is_empty() {
                return Err(site.invalid(e.position, "<key> `e`: the exponent is zero"));
            }
            (
                Family::Rsa,
                DecodingKey::from_rsa_raw_components(modulus, exponent),
            )
        }
        KeyForm::Certificate(raw) => {
            let (certificate, resolved) =
                context.configured_certificate(site, raw, "<key> `certificate-id`")?;
            certificate_key(&certificate.certificate_pem).map_err(|why| {
                site.invalid(
                    raw.position,
                    format!(
                        "<key> `certificate-id`: certificate {}: {why}",
                        resolved.shown()
                    ),
                )
            })?
        }
    };
    Ok(VerifyKey {
        kid,
        family,
        alg: None,
        key,
    })
}

/// A `<claim>`, checked.
fn compile_claim(config: &ClaimConfig, cx: &StepCx<'_, '_>) -> Result<RequiredClaim, PolicyError> {
    let (site, context) = (cx.site, cx.context);
    let name = context.literal(site, &config.name)?;
    let name = name.text.trim();
    if name.is_empty() {
        return Err(site.invalid(config.name.position, "<claim> `name` must not be empty"));
    }
    let all = match &config.match_ {
        None => true,
        Some(raw) => {
            let text = context.literal(site, raw)?;
            match text.text.trim().to_ascii_lowercase().as_str() {
                "all" => true,
                "any" => false,
                _ => {
                    return Err(site.invalid(
                        raw.position,
                        format!(
                            "<claim> `match` must be `all` or `any`, found {}",
                            text.shown()
                        ),
                    ));
                }
            }
        }
    };
    let separator = match &config.separator {
        None => None,
        Some(raw) => {
            let text = context.literal(site, raw)?;
            if text.text.is_empty() {
                return Err(site.invalid(raw.position, "<claim> `separator` must not be empty"));
            }
            Some(Box::from(text.text.as_str()))
        }
    };
    let values = config
        .values
        .iter()
        .map(|raw| context.literal(site, raw).map(|text| Box::from(text.text.as_str())))
        .collect::<Result<Vec<_>, _>>()?
        .into_boxed_slice();
    Ok(RequiredClaim {
        name: Box::from(name),
        all,
        separator,
        values,
    })
}

/// An absolute `http` or `https` URL.
fn check_url(text: &str) -> Result<Url, &'static str> {
    let url = Url::parse(text).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("not an http or https URL");
    }
    Ok(url)
}

/// Base64 in either alphabet, padded or not, whitespace ignored (keys are pasted in
/// both forms).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let compact = compact.trim_end_matches('=');
    if compact.is_empty() {
        return None;
    }
    let engine = if compact.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    engine.decode(compact).ok()
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

// === certificates: the public key of a Certificate entity ===

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// The public key of the first certificate of a PEM text: RSA, or EC on P-256/P-384.
fn certificate_key(pem: &str) -> Result<(Family, DecodingKey), &'static str> {
    let der = first_pem_certificate(pem).ok_or("no readable CERTIFICATE block")?;
    let PublicKeyInfo {
        algorithm,
        curve,
        key,
    } = subject_public_key(&der).ok_or("not a readable X.509 certificate")?;
    match (algorithm, curve) {
        (OID_RSA, _) => Ok((Family::Rsa, DecodingKey::from_rsa_der(key))),
        (OID_EC, Some(OID_P256)) => Ok((Family::EcP256, DecodingKey::from_ec_der(key))),
        (OID_EC, Some(OID_P384)) => Ok((Family::EcP384, DecodingKey::from_ec_der(key))),
        (OID_EC, _) => Err("its EC key is not on P-256 or P-384"),
        _ => Err("its key is neither RSA nor EC"),
    }
}

/// The DER of the first `CERTIFICATE` block.
fn first_pem_certificate(pem: &str) -> Option<Vec<u8>> {
    let mut lines = pem.lines().map(str::trim);
    lines.find(|line| *line == "-----BEGIN CERTIFICATE-----")?;
    let mut body = String::new();
    for line in lines {
        if line == "-----END CERTIFICATE-----" {
            return base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .ok();
        }
        body.push_str(line);
    }
    None
}

/// One DER element: its tag, its content and what follows it.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

/// A certificate's subjectPublicKeyInfo.
struct PublicKeyInfo<'d> {
    /// The algorithm's OID.
    algorithm: &'d [u8],
    /// The curve's OID (EC).
    curve: Option<&'d [u8]>,
    /// The BIT STRING's bytes.
    key: &'d [u8],
}

/// The subjectPublicKeyInfo of a certificate.
fn subject_public_key(der: &[u8]) -> Option<PublicKeyInfo<'_>> {
    const SEQUENCE: u8 = 0x30;
    let (tag, certificate, _) = der_next(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = der_next(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] version (optional), serial, signature, issuer, validity, subject.
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..5 {
        rest = der_next(rest)?.2;
    }
    let (tag, info, _) = der_next(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, algorithm, after) = der_next(info)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, parameters) = der_next(algorithm)?;
    if tag != 0x06 {
        return None;
    }
    let curve = der_next(parameters)
        .filter(|(tag, _, _)| *tag == 0x06)
        .map(|(_, curve, _)| curve);
    let (tag, bits, _) = der_next(after)?;
    let (&unused, key) = bits.split_first()?;
    if tag != 0x03 || unused != 0 {
        return None;
    }
    Some(PublicKeyInfo {
        algorithm: oid,
        curve,
        key,
    })
}

// === requests ===

/// Why a token was refused: APIM's reason and a message without the token.
#[derive(Debug)]
struct Refusal {
    reason: &'static str,
    message: Cow<'static, str>,
}

impl Refusal {
    fn new(reason: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// How a check ends when it does not pass: a refusal, or a failure of its own (an
/// expression).
enum Stop {
    Refused(Refusal),
    Flow(Flow),
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// A token split and decoded (not yet verified).
struct Decoded<'t> {
    token: &'t str,
    /// `header.payload`, what the signature signs.
    signed: &'t str,
    signature: &'t str,
    alg: String,
    kid: Option<String>,
    payload: Map<String, Json>,
}

/// A base64url segment decoded as a JSON object.
fn json_segment(segment: &str) -> Option<Map<String, Json>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = URL_SAFE.decode(segment.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Json::Object(map) => Some(map),
        _ => None,
    }
}

fn decode(token: &str) -> Result<Decoded<'_>, Refusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::new(
            INVALID,
            "The token is longer than 64 KiB. Access denied.",
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let &[header_segment, payload_segment, signature] = parts.as_slice() else {
        let why = if parts.len() == 5 {
            "The token is encrypted (JWE); only signed tokens (JWS) can be validated. Access denied."
        } else {
            "The token is not a well-formed JWT (header.payload.signature). Access denied."
        };
        return Err(Refusal::new(INVALID, why));
    };
    let malformed = || {
        Refusal::new(
            INVALID,
            "The token's header or payload is not base64url-encoded JSON. Access denied.",
        )
    };
    let header_json = json_segment(header_segment).ok_or_else(malformed)?;
    let payload = json_segment(payload_segment).ok_or_else(malformed)?;
    let Some(alg) = header_json.get("alg").and_then(Json::as_str) else {
        return Err(Refusal::new(
            INVALID,
            "The token's header has no `alg`. Access denied.",
        ));
    };
    Ok(Decoded {
        token,
        signed: &token[..header_segment.len() + 1 + payload_segment.len()],
        signature,
        alg: alg.to_owned(),
        kid: header_json
            .get("kid")
            .and_then(Json::as_str)
            .map(str::to_owned),
        payload,
    })
}

/// The time now, in whole seconds since the Unix epoch, from the gateway's services
/// (the request's time where there are none).
fn now_seconds(run: &Run<'_, '_, '_>) -> u64 {
    let facts = run.exec.facts;
    facts
        .services
        .map_or(facts.now, |services| services.now())
        .as_secs()
}

/// A NumericDate claim: `Ok(None)` when absent; whole seconds (a fraction is dropped).
fn numeric_date(payload: &Map<String, Json>, name: &'static str) -> Result<Option<u64>, Refusal> {
    let Some(value) = payload.get(name) else {
        return Ok(None);
    };
    let seconds = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(|seconds| {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "finite and non-negative; saturates past u64::MAX"
                )]
                let whole = seconds as u64;
                whole
            })
    });
    match seconds {
        Some(seconds) => Ok(Some(seconds)),
        None => Err(Refusal::new(
            INVALID,
            format!("The token's `{name}` claim is not a number of seconds. Access denied."),
        )),
    }
}

/// The values of a claim as text: an array's items, a string split at `separator`.
fn claim_values(value: &Json, separator: Option<&str>) -> Vec<String> {
    let text = |value: &Json| match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    };
    let split = |text: String| -> Vec<String> {
        match separator {
            Some(separator) => text.split(separator).map(str::to_owned).collect(),
            None => vec![text],
        }
    };
    match value {
        Json::Array(items) => items.iter().flat_map(|item| split(text(item))).collect(),
        other => split(text(other)),
    }
}

/// The token's `aud` or `iss`: a string or an array of strings.
fn string_or_strings(value: Option<&Json>) -> Vec<&str> {
    match value {
        Some(Json::String(text)) => vec![text.as_str()],
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Evaluates `context.AsJwt()` with the token as `context`: the expression language's
/// own `Jwt` object.
struct TokenHost<'t>(&'t str);

impl Host for TokenHost<'_> {
    fn context(&self) -> Value {
        Value::string(self.0)
    }

    fn member(&self, _object: &HostObject, _name: &str) -> Result<Value, HostError> {
        Err(HostError::UnknownMember)
    }

    fn call(
        &self,
        _object: &HostObject,
        _method: &str,
        _type_argument: Option<&str>,
        _args: &[Value],
    ) -> Result<Value, HostError> {
        Err(HostError::UnknownMember)
    }
}

impl ValidateJwt {
    /// The token of the request, without its scheme.
    fn extract(&self, run: &Run<'_, '_, '_>, meta: &StepMeta) -> Result<String, Stop> {
        let not_present = || Stop::Refused(Refusal::new(NOT_PRESENT, "JWT not present."));
        let token = match &self.source {
            TokenFrom::Header(name) => {
                let Some(value) = run.request.headers.get(name) else {
                    return Err(not_present());
                };
                let Ok(value) = value.to_str() else {
                    return Err(Stop::Refused(Refusal::new(
                        INVALID,
                        "The token header is not ASCII text. Access denied.",
                    )));
                };
                let value = value.trim();
                let (scheme, token) = match value.split_once(' ') {
                    Some((scheme, token)) => (Some(scheme), token.trim()),
                    None => (None, value),
                };
                if let Some(required) = &self.require_scheme
                    && !scheme.is_some_and(|scheme| scheme.eq_ignore_ascii_case(required))
                {
                    return Err(Stop::Refused(Refusal::new(
                        NOT_PRESENT,
                        format!(
                            "JWT not present: the Authorization header does not use the `{required}` scheme."
                        ),
                    )));
                }
                token.to_owned()
            }
            TokenFrom::Query(name) => {
                url::form_urlencoded::parse(run.request.query.as_bytes())
                    .find(|(key, _)| key == &**name)
                    .map(|(_, value)| value.trim().to_owned())
                    .unwrap_or_default()
            }
            TokenFrom::Value(value) => match value.render(&run.host()) {
                Ok(text) => text.trim().to_owned(),
                Err(failure) => return Err(Stop::Flow(failure.into_flow(meta, run.section()))),
            },
        };
        if token.is_empty() {
            return Err(not_present());
        }
        Ok(token)
    }

    /// Verifies the signature with the policy's keys and `fetched`'s.
    fn check_signature(
        &self,
        decoded: &Decoded<'_>,
        fetched: Option<&KeySet>,
        fetch_error: Option<&str>,
    ) -> Result<(), Refusal> {
        if decoded.alg == "none" {
            if self.require_signed {
                return Err(Refusal::new(
                    SIGNATURE_INVALID,
                    "The token is not signed (alg `none`) and signed tokens are required. Access denied.",
                ));
            }
            if !decoded.signature.is_empty() {
                return Err(Refusal::new(
                    INVALID,
                    "An unsigned token (alg `none`) must have an empty signature. Access denied.",
                ));
            }
            return Ok(());
        }
        let Some((alg, family)) = decoded
            .alg
            .parse::<Algorithm>()
            .ok()
            .and_then(|alg| Family::of(alg).map(|family| (alg, family)))
        else {
            return Err(Refusal::new(
                SIGNATURE_INVALID,
                "The token's signing algorithm is not supported (RS256/384/512, PS256/384/512, ES256/384, HS256/384/512 are). Access denied.",
            ));
        };
        let usable = |key: &&VerifyKey| {
            key.family == family && key.alg.is_none_or(|only| only == alg)
        };
        let all: Vec<&VerifyKey> = self
            .keys
            .iter()
            .chain(fetched.into_iter().flat_map(KeySet::keys))
            .filter(usable)
            .collect();
        let named: Vec<&VerifyKey> = match &decoded.kid {
            Some(kid) => all
                .iter()
                .copied()
                .filter(|key| key.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            None => Vec::new(),
        };
        let not_found = || {
            let mut message = String::from("Signature validation failed: no signing key for the token");
            if decoded.kid.is_some() {
                message.push_str("'s key id");
            }
            if let Some(why) = fetch_error {
                message.push_str(" (the OpenID configuration could not be fetched: ");
                message.push_str(why);
                message.push(')');
            }
            message.push_str(". Access denied.");
            Refusal::new(KEY_NOT_FOUND, message)
        };
        let candidates = if named.is_empty() { &all } else { &named };
        if candidates.is_empty() {
            return Err(not_found());
        }
        let verified = candidates.iter().any(|key| {
            jsonwebtoken::crypto::verify(
                decoded.signature,
                decoded.signed.as_bytes(),
                &key.key,
                alg,
            )
            .unwrap_or(false)
        });
        if verified {
            Ok(())
        } else if decoded.kid.is_some() && named.is_empty() {
            Err(not_found())
        } else {
            Err(Refusal::new(
                SIGNATURE_INVALID,
                "Signature validation failed. Access denied.",
            ))
        }
    }

    /// The checks after the signature: lifetime, audience, issuer, required claims.
    fn check_claims(
        &self,
        decoded: &Decoded<'_>,
        fetched: Option<&KeySet>,
        now: u64,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<(), Stop> {
        let payload = &decoded.payload;
        match numeric_date(payload, "exp")? {
            None if self.require_expiration => {
                return Err(Refusal::new(
                    INVALID,
                    "Lifetime validation failed. The token is missing an Expiration Time. Access denied.",
                )
                .into());
            }
            Some(exp) if now > exp.saturating_add(self.clock_skew) => {
                return Err(Refusal::new(
                    "TokenExpired",
                    "Lifetime validation failed. The token is expired. Access denied.",
                )
                .into());
            }
            _ => {}
        }
        if let Some(nbf) = numeric_date(payload, "nbf")?
            && nbf > now.saturating_add(self.clock_skew)
        {
            return Err(Refusal::new(
                INVALID,
                "Lifetime validation failed. The token is not yet valid. Access denied.",
            )
            .into());
        }
        let render = |value: &TextValue| {
            value
                .render(host)
                .map(|text| text.trim().to_owned())
                .map_err(|failure| Stop::Flow(failure.into_flow(meta, section)))
        };
        if !self.audiences.is_empty() {
            let audiences = string_or_strings(payload.get("aud"));
            let mut allowed = false;
            for audience in &*self.audiences {
                let audience = render(audience)?;
                if audiences.contains(&audience.as_str()) {
                    allowed = true;
                    break;
                }
            }
            if !allowed {
                return Err(Refusal::new(
                    "TokenAudienceNotAllowed",
                    if audiences.is_empty() {
                        "Audience validation failed. The token has no audience. Access denied."
                    } else {
                        "Audience validation failed. The token's audience is not allowed. Access denied."
                    },
                )
                .into());
            }
        }
        let fetched_issuers: Vec<&str> = fetched.map(KeySet::issuers).unwrap_or_default();
        if !self.issuers.is_empty() || !fetched_issuers.is_empty() {
            let issuer = payload.get("iss").and_then(Json::as_str);
            let tenant = payload.get("tid").and_then(Json::as_str);
            let mut allowed = false;
            if let Some(issuer) = issuer {
                for candidate in &*self.issuers {
                    if render(candidate)? == issuer {
                        allowed = true;
                        break;
                    }
                }
                // Microsoft Entra's multi-tenant documents name the issuer with a
                // `{tenantid}` placeholder, the token's `tid`.
                allowed = allowed
                    || fetched_issuers.iter().any(|candidate| {
                        *candidate == issuer
                            || tenant.is_some_and(|tenant| {
                                candidate.contains("{tenantid}")
                                    && candidate.replace("{tenantid}", tenant) == issuer
                            })
                    });
            }
            if !allowed {
                return Err(Refusal::new(
                    "TokenIssuerNotAllowed",
                    if issuer.is_none() {
                        "Issuer validation failed. The token has no issuer. Access denied."
                    } else {
                        "Issuer validation failed. The token's issuer is not allowed. Access denied."
                    },
                )
                .into());
            }
        }
        let missing: Vec<&str> = self
            .claims
            .iter()
            .filter(|claim| !payload.contains_key(&*claim.name))
            .map(|claim| &*claim.name)
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::new(
                "TokenClaimNotFound",
                format!(
                    "JWT token is missing the following claims: {}. Access denied.",
                    missing.join(", ")
                ),
            )
            .into());
        }
        for claim in &*self.claims {
            if claim.values.is_empty() {
                continue;
            }
            let Some(value) = payload.get(&*claim.name) else {
                continue;
            };
            let present = claim_values(value, claim.separator.as_deref());
            let has = |wanted: &str| present.iter().any(|value| value == wanted);
            let mut wanted = claim.values.iter().map(|value| &**value);
            let allowed = if claim.all {
                wanted.all(has)
            } else {
                wanted.any(has)
            };
            if !allowed {
                return Err(Refusal::new(
                    "TokenClaimValueNotAllowed",
                    format!("Claim {} value is not allowed. Access denied.", claim.name),
                )
                .into());
            }
        }
        Ok(())
    }

    /// The failure for `refusal`: the configured status and message (or APIM's).
    fn refuse(
        &self,
        meta: &StepMeta,
        section: SectionKind,
        host: &RequestHost<'_>,
        refusal: Refusal,
    ) -> Flow {
        let body = match &self.message {
            Some(message) => match message.render(host) {
                Ok(text) => text.to_string(),
                Err(failure) => return failure.into_flow(meta, section),
            },
            None if refusal.reason == NOT_PRESENT => "JWT not present.".to_owned(),
            None => "Invalid JWT.".to_owned(),
        };
        meta.fail(
            section,
            refusal.reason,
            refusal.message,
            PolicyResponse::json_error(self.status, &body),
        )
    }

    /// Checks a decoded token (the keys known) and ends the step.
    fn conclude(
        &self,
        meta: &StepMeta,
        run: &mut Run<'_, '_, '_>,
        decoded: &Decoded<'_>,
        fetched: Option<&KeySet>,
        fetch_error: Option<&str>,
    ) -> Flow {
        let section = run.section();
        let now = now_seconds(run);
        let checked = {
            let host = run.host();
            self.check_signature(decoded, fetched, fetch_error)
                .map_err(Stop::from)
                .and_then(|()| self.check_claims(decoded, fetched, now, &host, meta, section))
        };
        match checked {
            Ok(()) => {
                if let Some(output) = &self.output {
                    let value = output
                        .as_jwt
                        .as_ref()
                        .and_then(|as_jwt| as_jwt.evaluate(&TokenHost(decoded.token)).ok())
                        .filter(|value| !value.is_null())
                        .unwrap_or_else(|| Value::string(decoded.token));
                    run.request.variables.set(&output.variable, value);
                }
                Flow::Continue
            }
            Err(Stop::Flow(flow)) => flow,
            Err(Stop::Refused(refusal)) => self.refuse(meta, section, &run.host(), refusal),
        }
    }

    /// Ends the step on a refusal or a failure before the checks.
    fn stop(&self, meta: &StepMeta, run: &Run<'_, '_, '_>, stop: Stop) -> Flow {
        match stop {
            Stop::Flow(flow) => flow,
            Stop::Refused(refusal) => self.refuse(meta, run.section(), &run.host(), refusal),
        }
    }
}

impl Step for ValidateJwt {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if self.openid.is_some() {
            return meta.cannot_wait(run.section(), KEY_NOT_FOUND);
        }
        let token = match self.extract(run, meta) {
            Ok(token) => token,
            Err(stop) => return self.stop(meta, run, stop),
        };
        match decode(&token) {
            Ok(decoded) => self.conclude(meta, run, &decoded, None, None),
            Err(refusal) => self.stop(meta, run, refusal.into()),
        }
    }

    fn is_async(&self) -> bool {
        self.openid.is_some()
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            let token = match self.extract(run, meta) {
                Ok(token) => token,
                Err(stop) => return self.stop(meta, run, stop),
            };
            let decoded = match decode(&token) {
                Ok(decoded) => decoded,
                Err(refusal) => return self.stop(meta, run, refusal.into()),
            };
            let (fetched, fetch_error) = match (&self.openid, run.exec.facts.services) {
                (Some(openid), _) if decoded.alg == "none" => (openid.current(), None),
                (Some(openid), Some(services)) => {
                    let now = now_seconds(run);
                    let fetched = openid.keys(services, now, decoded.kid.as_deref()).await;
                    let error = fetched.as_ref().and_then(|set| set.error.clone());
                    (fetched, error)
                }
                (Some(_), None) => (None, Some("calls are not made here".to_owned())),
                (None, _) => (None, None),
            };
            let error = match (&fetched, fetch_error) {
                // Without any fetched key, say why; with stale ones, they are used.
                (Some(set), error) if set.keys().next().is_none() => error,
                (None, error) => error,
                _ => None,
            };
            self.conclude(meta, run, &decoded, fetched.as_deref(), error.as_deref())
        })
    }
}

// === OpenID configurations ===

/// The keys (and issuers) of a policy's `<openid-config>`s, fetched on first use and
/// kept for the step.
struct OpenIdKeys {
    urls: Box<[Url]>,
    current: ArcSwapOption<KeySet>,
    /// A fetch is under way.
    fetching: AtomicBool,
}

impl fmt::Debug for OpenIdKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<&str> = self.urls.iter().map(Url::as_str).collect();
        f.debug_struct("OpenIdKeys")
            .field("urls", &urls)
            .finish_non_exhaustive()
    }
}

/// What one fetch of every OpenID configuration gave.
struct KeySet {
    /// Per configuration, in order: its keys and issuer (a failed one keeps what the
    /// fetch before gave).
    sources: Box<[Option<Arc<SourceKeys>>]>,
    /// When the fetch started, in seconds since the Unix epoch.
    fetched_at: u64,
    /// Why some configuration could not be fetched (origins only, never a path).
    error: Option<String>,
}

struct SourceKeys {
    keys: Box<[VerifyKey]>,
    issuer: Option<Box<str>>,
}

impl KeySet {
    fn keys(&self) -> impl Iterator<Item = &VerifyKey> {
        self.sources
            .iter()
            .flatten()
            .flat_map(|source| source.keys.iter())
    }

    fn issuers(&self) -> Vec<&str> {
        self.sources
            .iter()
            .flatten()
            .filter_map(|source| source.issuer.as_deref())
            .collect()
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// When the set is due to be fetched again.
    fn due_at(&self) -> u64 {
        let wait = if self.error.is_none() {
            KEYS_TTL_SECONDS
        } else if self.keys().next().is_some() {
            MIN_REFETCH_SECONDS
        } else {
            COLD_RETRY_SECONDS
        };
        self.fetched_at.saturating_add(wait)
    }
}

/// Clears the fetching flag however the fetch ends (the request may be dropped).
struct Fetching<'a>(&'a AtomicBool);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl OpenIdKeys {
    fn new(urls: Vec<Url>) -> Self {
        Self {
            urls: urls.into_boxed_slice(),
            current: ArcSwapOption::const_empty(),
            fetching: AtomicBool::new(false),
        }
    }

    /// The keys as they are, without fetching.
    fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// The keys for a token naming `kid`: those kept, or fetched now if they are due
    /// (or lack `kid` and were fetched over a minute ago).
    async fn keys(
        &self,
        services: &dyn PolicyServices,
        now: u64,
        kid: Option<&str>,
    ) -> Option<Arc<KeySet>> {
        let current = self.current.load_full();
        let due = match &current {
            None => true,
            Some(set) => {
                now >= set.due_at()
                    || (kid.is_some_and(|kid| !set.has_kid(kid))
                        && now >= set.fetched_at.saturating_add(MIN_REFETCH_SECONDS))
            }
        };
        if !due {
            return current;
        }
        let usable = current
            .as_ref()
            .is_some_and(|set| set.keys().next().is_some());
        if self
            .fetching
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another request is fetching: use the keys there are, or wait for its.
            if usable {
                return current;
            }
            for _ in 0..WAIT_STEPS {
                services.sleep(WAIT_STEP).await;
                if !self.fetching.load(Ordering::Acquire) {
                    break;
                }
            }
            return self.current.load_full();
        }
        let _fetching = Fetching(&self.fetching);
        let set = Arc::new(self.fetch(services, now, current.as_deref()).await);
        self.current.store(Some(Arc::clone(&set)));
        Some(set)
    }

    /// Fetches every configuration and its key set.
    async fn fetch(
        &self,
        services: &dyn PolicyServices,
        now: u64,
        previous: Option<&KeySet>,
    ) -> KeySet {
        let mut sources = Vec::with_capacity(self.urls.len());
        let mut errors = Vec::new();
        for (index, url) in self.urls.iter().enumerate() {
            match fetch_source(services, url).await {
                Ok(keys) => sources.push(Some(Arc::new(keys))),
                Err(why) => {
                    errors.push(why);
                    sources.push(
                        previous
                            .and_then(|previous| previous.sources.get(index))
                            .cloned()
                            .flatten(),
                    );
                }
            }
        }
        KeySet {
            sources: sources.into_boxed_slice(),
            fetched_at: now,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        }
    }
}

/// Fetches one discovery document and the key set it names.
async fn fetch_source(services: &dyn PolicyServices, url: &Url) -> Result<SourceKeys, String> {
    let origin = url.origin().ascii_serialization();
    let document = get_json(services, url.clone())
        .await
        .map_err(|why| format!("OpenID configuration at {origin}: {why}"))?;
    let jwks_url = document
        .get("jwks_uri")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("OpenID configuration at {origin}: no `jwks_uri`"))
        .and_then(|uri| {
            check_url(uri).map_err(|why| {
                format!("OpenID configuration at {origin}: `jwks_uri`: {why}")
            })
        })?;
    let issuer = document
        .get("issuer")
        .and_then(Json::as_str)
        .map(Box::from);
    let jwks_origin = jwks_url.origin().ascii_serialization();
    let jwks = get_json(services, jwks_url)
        .await
        .map_err(|why| format!("key set at {jwks_origin}: {why}"))?;
    let keys: Box<[VerifyKey]> = jwks
        .get("keys")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("key set at {jwks_origin}: no `keys` array"))?
        .iter()
        .filter_map(jwk_key)
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "key set at {jwks_origin}: no signing key Gatehouse can use (RSA, EC P-256/P-384, oct)"
        ));
    }
    Ok(SourceKeys { keys, issuer })
}

/// GETs `url` and reads its answer as a JSON object.
async fn get_json(services: &dyn PolicyServices, url: Url) -> Result<Map<String, Json>, String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let response = services
        .call(OutgoingCall {
            method: Method::GET,
            url,
            headers,
            body: bytes::Bytes::new(),
            timeout: FETCH_TIMEOUT,
        })
        .await
        .map_err(|error| error.to_string())?;
    if !response.status.is_success() {
        return Err(format!("answered {}", response.status.as_u16()));
    }
    match serde_json::from_slice(&response.body) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err("the answer is not a JSON object".to_owned()),
    }
}

/// A JWK as a verification key; `None` for keys that are not for signatures or of a
/// kind Gatehouse does not verify with.
fn jwk_key(jwk: &Json) -> Option<VerifyKey> {
    let jwk = jwk.as_object()?;
    let text = |name: &str| jwk.get(name).and_then(Json::as_str);
    if text("use").is_some_and(|usage| usage != "sig") {
        return None;
    }
    let alg = match text("alg") {
        Some(alg) => Some(alg.parse::<Algorithm>().ok()?),
        None => None,
    };
    let (family, key) = match text("kty")? {
        "RSA" => {
            let modulus = decode_base64(text("n")?)?;
            let exponent = decode_base64(text("e")?)?;
            (
                Family::Rsa,
                DecodingKey::from_rsa_raw_components(
                    strip_leading_zeros(&modulus),
                    strip_leading_zeros(&exponent),
                ),
            )
        }
        "EC" => {
            let (family, size) = match text("crv")? {
                "P-256" => (Family::EcP256, 32),
                "P-384" => (Family::EcP384, 48),
                _ => return None,
            };
            let x = decode_base64(text("x")?)?;
            let y = decode_base64(text("y")?)?;
            if x.len() != size || y.len() != size {
                return None;
            }
            // The uncompressed point, as the verifier takes it.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, DecodingKey::from_ec_der(&point))
        }
        "oct" => {
            let secret = decode_base64(text("k")?)?;
            (Family::Hmac, DecodingKey::from_secret(&secret))
        }
        _ => return None,
    };
    if alg.is_some_and(|alg| Family::of(alg) != Some(family)) {
        return None;
    }
    Some(VerifyKey {
        kid: text("kid").map(Box::from),
        family,
        alg,
        key,
    })
}

#[cfg(test)]
#[path = "validate_jwt_tests.rs"]
mod tests;
