//! One module per policy: its parsed configuration (`Config`, structure only), its
//! compiled form (every value checked and pre-parsed) and what it does to a request or
//! response, tied together by [`PolicyDefinition`](crate::registry::PolicyDefinition)
//! and [`Step`](crate::registry::Step). Adding a policy is one new module plus one
//! line in `policies!` below.

use http::{HeaderName, HeaderValue};

use crate::context::CompileContext;
use crate::document::{ElementReader, ParseCx};
use crate::error::{PolicyError, Site};
use crate::reader::{RawText, RawValue};
use crate::registry::{ParsedKind, Registration, register};

mod throttle;

/// The registry: one line per policy, `module::Type`. The module is declared here and
/// its type registered, so the reader, the compiler, `gatehouse policy check` and the
/// docs table know it.
macro_rules! policies {
    ($($module:ident :: $policy:ident),* $(,)?) => {
        $(pub(crate) mod $module;)*

        /// Every policy Gatehouse implements, by element name.
        pub(crate) const REGISTRY: &[Registration] = &[$(register::<$module::$policy>()),*];
    };
}

policies! {
    authentication_basic::AuthenticationBasic,
    authentication_managed_identity::AuthenticationManagedIdentity,
    cache_lookup_value::CacheLookupValue,
    cache_remove_value::CacheRemoveValue,
    cache_store_value::CacheStoreValue,
    check_header::CheckHeader,
    choose::Choose,
    cors::Cors,
    find_and_replace::FindAndReplace,
    forward_request::ForwardRequest,
    include_fragment::IncludeFragment,
    ip_filter::IpFilter,
    limit_concurrency::LimitConcurrency,
    log_to_eventhub::LogToEventhub,
    mock_response::MockResponse,
    quota::Quota,
    quota_by_key::QuotaByKey,
    rate_limit::RateLimit,
    rate_limit_by_key::RateLimitByKey,
    retry::Retry,
    return_response::ReturnResponse,
    send_one_way_request::SendOneWayRequest,
    send_request::SendRequest,
    rewrite_uri::RewriteUri,
    set_backend_service::SetBackendService,
    set_body::SetBody,
    set_header::SetHeader,
    set_method::SetMethod,
    set_query_parameter::SetQueryParameter,
    set_status::SetStatus,
    set_variable::SetVariable,
    trace::Trace,
    validate_client_certificate::ValidateClientCertificate,
    validate_jwt::ValidateJwt,
    wait::Wait,
}

/// The registration of the policy element `name`, if Gatehouse implements it.
pub(crate) fn find(name: &str) -> Option<&'static Registration> {
    REGISTRY
        .iter()
        .find(|registration| registration.name == name)
}

/// Reads a policy element; `Ok(None)` when Gatehouse does not implement it.
pub(crate) fn parse(
    reader: &mut ElementReader<'_>,
    cx: &ParseCx<'_>,
) -> Result<Option<ParsedKind>, PolicyError> {
    match find(&reader.element.name) {
        Some(registration) => registration.parse(reader, cx).map(Some),
        None => Ok(None),
    }
}

// === helpers shared by several policies ===

/// `exists-action` of `set-header` and `set-query-parameter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExistsAction {
    /// Replace existing values (the default).
    Override,
    /// Keep existing values; set only when absent.
    Skip,
    /// Add to existing values.
    Append,
    /// Remove.
    Delete,
}

impl ExistsAction {
    pub(crate) fn compile(
        cx: &CompileContext<'_>,
        site: Site<'_>,
        value: Option<&RawValue>,
    ) -> Result<Self, PolicyError> {
        let Some(value) = value else {
            return Ok(Self::Override);
        };
        let resolved = cx.literal(site, value)?;
        match resolved.text.trim().to_ascii_lowercase().as_str() {
            "override" => Ok(Self::Override),
            "skip" => Ok(Self::Skip),
            "append" => Ok(Self::Append),
            "delete" => Ok(Self::Delete),
            _ => Err(site.invalid(
                value.position,
                format!(
                    "`exists-action` must be `override`, `skip`, `append` or `delete`, found {}",
                    resolved.shown()
                ),
            )),
        }
    }
}

/// Reads `<value>` children (text, possibly empty); any other child is an error.
pub(crate) fn value_children(reader: &ElementReader<'_>) -> Result<Vec<RawValue>, PolicyError> {
    reader.no_text()?;
    let mut values = Vec::new();
    for child in &reader.element.children {
        if child.name != "value" {
            return Err(reader.unexpected_child(child, "<value>"));
        }
        let value_reader = reader.child(child);
        value_reader.finish()?;
        value_reader.no_children()?;
        values.push(child.text.clone().unwrap_or_else(|| RawValue {
            text: RawText::Literal(String::new()),
            position: child.position,
        }));
    }
    Ok(values)
}

/// A header name attribute, checked.
pub(crate) fn header_name(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    value: &RawValue,
    attribute: &str,
) -> Result<HeaderName, PolicyError> {
    let resolved = cx.literal(site, value)?;
    HeaderName::from_bytes(resolved.text.trim().as_bytes()).map_err(|_| {
        site.invalid(
            value.position,
            format!(
                "`{attribute}` must be an HTTP header name (letters, digits and `-`), found {}",
                resolved.shown()
            ),
        )
    })
}

/// A header value, checked; marked sensitive when it came from a secret named value so
/// `Debug` hides it.
pub(crate) fn header_value(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    value: &RawValue,
) -> Result<HeaderValue, PolicyError> {
    let resolved = cx.literal(site, value)?;
    let mut header = HeaderValue::from_str(resolved.text.trim()).map_err(|_| {
        site.invalid(
            value.position,
            format!("{} is not a valid header value (control characters and line breaks are not allowed)", resolved.shown()),
        )
    })?;
    header.set_sensitive(resolved.secret);
    Ok(header)
}

/// A `StatusCode` attribute (100–599).
pub(crate) fn status_code(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    value: &RawValue,
    attribute: &str,
) -> Result<http::StatusCode, PolicyError> {
    let code: u16 = cx.number(site, value, attribute, 100..=599)?;
    http::StatusCode::from_u16(code).map_err(|_| {
        site.invalid(
            value.position,
            format!("`{attribute}` must be an HTTP status code"),
        )
    })
}

/// `caching-type` of the cache policies: Gatehouse has only its internal cache, which
/// is what `internal` names and what `prefer-external` (APIM's default) falls back to
/// without an external one; `external` is refused.
pub(crate) fn check_caching_type(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    value: Option<&RawValue>,
) -> Result<(), PolicyError> {
    let Some(raw) = value else { return Ok(()) };
    let text = cx.literal(site, raw)?;
    match text.text.trim() {
        "internal" | "prefer-external" => Ok(()),
        "external" => Err(site.not_supported(
            raw.position,
            "`caching-type=\"external\"`: Gatehouse has no external cache yet; use `internal` or `prefer-external` (its internal cache)",
        )),
        _ => Err(site.invalid(
            raw.position,
            format!(
                "`caching-type` must be `internal`, `external` or `prefer-external`, found {}",
                text.shown()
            ),
        )),
    }
}

/// A cache key (`key` of the cache policies): text or an expression, evaluated as text.
pub(crate) fn cache_key(
    key: &crate::expression::TextValue,
    host: &crate::expression::RequestHost<'_>,
    meta: &crate::pipeline::StepMeta,
    section: crate::document::SectionKind,
) -> Result<String, crate::Flow> {
    key.render(host)
        .map(|text| text.to_string())
        .map_err(|failure| failure.into_flow(meta, section))
}
