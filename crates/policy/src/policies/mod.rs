//! One module per policy: its parsed configuration (`Config::parse`, structure only),
//! its compiled form (`compile`, every value checked and pre-parsed) and what it does
//! to a request or response (`apply`, `check`, …). The pipeline only calls them.

use http::{HeaderName, HeaderValue};

use crate::context::CompileContext;
use crate::document::{ElementReader, ParseCx, SectionKind};
use crate::error::{PolicyError, Site};
use crate::pipeline::StepMeta;
use crate::reader::{RawText, RawValue};

pub(crate) mod check_header;
pub(crate) mod cors;
pub(crate) mod forward_request;
pub(crate) mod ip_filter;
pub(crate) mod limit_concurrency;
pub(crate) mod mock_response;
pub(crate) mod quota_by_key;
pub(crate) mod rate_limit;
pub(crate) mod rate_limit_by_key;
pub(crate) mod return_response;
pub(crate) mod rewrite_uri;
pub(crate) mod set_backend_service;
pub(crate) mod set_header;
pub(crate) mod set_method;
pub(crate) mod set_query_parameter;
pub(crate) mod set_status;
mod throttle;
pub(crate) mod validate_client_certificate;

use SectionKind::{Backend, Inbound, OnError, Outbound};

/// The policies Gatehouse implements.
pub(crate) const IMPLEMENTED: &[&str] = &[
    "check-header",
    "cors",
    "forward-request",
    "ip-filter",
    "limit-concurrency",
    "mock-response",
    "quota-by-key",
    "rate-limit",
    "rate-limit-by-key",
    "return-response",
    "rewrite-uri",
    "set-backend-service",
    "set-header",
    "set-method",
    "set-query-parameter",
    "set-status",
    "validate-client-certificate",
];

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    CheckHeader(check_header::Config),
    Cors(cors::Config),
    ForwardRequest(forward_request::Config),
    IpFilter(ip_filter::Config),
    LimitConcurrency(limit_concurrency::Config),
    MockResponse(mock_response::Config),
    QuotaByKey(quota_by_key::Config),
    RateLimit(rate_limit::Config),
    RateLimitByKey(rate_limit_by_key::Config),
    ReturnResponse(return_response::Config),
    RewriteUri(rewrite_uri::Config),
    SetBackendService(set_backend_service::Config),
    SetHeader(set_header::Config),
    SetMethod(set_method::Config),
    SetQueryParameter(set_query_parameter::Config),
    SetStatus(set_status::Config),
    ValidateClientCertificate(validate_client_certificate::Config),
}

impl PolicyKind {
    /// The element name.
    pub(crate) const fn name(&self) -> &'static str {
        match self {
            Self::CheckHeader(_) => "check-header",
            Self::Cors(_) => "cors",
            Self::ForwardRequest(_) => "forward-request",
            Self::IpFilter(_) => "ip-filter",
            Self::LimitConcurrency(_) => "limit-concurrency",
            Self::MockResponse(_) => "mock-response",
            Self::QuotaByKey(_) => "quota-by-key",
            Self::RateLimit(_) => "rate-limit",
            Self::RateLimitByKey(_) => "rate-limit-by-key",
            Self::ReturnResponse(_) => "return-response",
            Self::RewriteUri(_) => "rewrite-uri",
            Self::SetBackendService(_) => "set-backend-service",
            Self::SetHeader(_) => "set-header",
            Self::SetMethod(_) => "set-method",
            Self::SetQueryParameter(_) => "set-query-parameter",
            Self::SetStatus(_) => "set-status",
            Self::ValidateClientCertificate(_) => "validate-client-certificate",
        }
    }

    /// The sections APIM allows the policy in.
    pub(crate) const fn sections(&self) -> &'static [SectionKind] {
        match self {
            Self::CheckHeader(_)
            | Self::Cors(_)
            | Self::IpFilter(_)
            | Self::RateLimit(_)
            | Self::RateLimitByKey(_)
            | Self::QuotaByKey(_)
            | Self::RewriteUri(_)
            | Self::ValidateClientCertificate(_) => &[Inbound],
            Self::ForwardRequest(_) => &[Backend],
            Self::SetBackendService(_) | Self::SetQueryParameter(_) => &[Inbound, Backend],
            Self::SetMethod(_) => &[Inbound, OnError],
            Self::MockResponse(_) => &[Inbound, Outbound, OnError],
            Self::LimitConcurrency(_)
            | Self::ReturnResponse(_)
            | Self::SetHeader(_)
            | Self::SetStatus(_) => &[Inbound, Backend, Outbound, OnError],
        }
    }
}

/// Reads a policy element; `Ok(None)` when Gatehouse does not implement it.
pub(crate) fn parse(
    reader: &mut ElementReader<'_>,
    cx: &ParseCx<'_>,
) -> Result<Option<PolicyKind>, PolicyError> {
    let kind = match reader.element.name.as_str() {
        "check-header" => PolicyKind::CheckHeader(check_header::Config::parse(reader)?),
        "cors" => PolicyKind::Cors(cors::Config::parse(reader)?),
        "forward-request" => PolicyKind::ForwardRequest(forward_request::Config::parse(reader)?),
        "ip-filter" => PolicyKind::IpFilter(ip_filter::Config::parse(reader)?),
        "limit-concurrency" => {
            PolicyKind::LimitConcurrency(limit_concurrency::Config::parse(reader, cx)?)
        }
        "mock-response" => PolicyKind::MockResponse(mock_response::Config::parse(reader)?),
        "quota-by-key" => PolicyKind::QuotaByKey(quota_by_key::Config::parse(reader)?),
        "rate-limit" => PolicyKind::RateLimit(rate_limit::Config::parse(reader)?),
        "rate-limit-by-key" => {
            PolicyKind::RateLimitByKey(rate_limit_by_key::Config::parse(reader)?)
        }
        "return-response" => PolicyKind::ReturnResponse(return_response::Config::parse(reader)?),
        "rewrite-uri" => PolicyKind::RewriteUri(rewrite_uri::Config::parse(reader)?),
        "set-backend-service" => {
            PolicyKind::SetBackendService(set_backend_service::Config::parse(reader)?)
        }
        "set-header" => PolicyKind::SetHeader(set_header::Config::parse(reader)?),
        "set-method" => PolicyKind::SetMethod(set_method::Config::parse(reader)?),
        "set-query-parameter" => {
            PolicyKind::SetQueryParameter(set_query_parameter::Config::parse(reader)?)
        }
        "set-status" => PolicyKind::SetStatus(set_status::Config::parse(reader)?),
        "validate-client-certificate" => PolicyKind::ValidateClientCertificate(
            validate_client_certificate::Config::parse(reader)?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(kind))
}

/// A compiled policy of the inbound or backend section.
pub(crate) struct RequestStep {
    pub(crate) meta: StepMeta,
    pub(crate) action: RequestAction,
}

/// What a request-side step does.
pub(crate) enum RequestAction {
    CheckHeader(check_header::CheckHeader),
    Cors(cors::Cors),
    ForwardRequest(forward_request::ForwardRequest),
    IpFilter(ip_filter::IpFilter),
    LimitConcurrency(limit_concurrency::LimitConcurrency<RequestStep>),
    MockResponse(mock_response::MockResponse),
    QuotaByKey(quota_by_key::QuotaByKey),
    RateLimit(rate_limit::RateLimit),
    RateLimitByKey(rate_limit_by_key::RateLimitByKey),
    ReturnResponse(return_response::ReturnResponse),
    RewriteUri(rewrite_uri::RewriteUri),
    SetBackendService(set_backend_service::SetBackendService),
    SetHeader(set_header::SetHeader),
    SetMethod(set_method::SetMethod),
    SetQueryParameter(set_query_parameter::SetQueryParameter),
    ValidateClientCertificate(validate_client_certificate::ValidateClientCertificate),
}

/// A compiled policy of the outbound or on-error section.
pub(crate) struct ResponseStep {
    pub(crate) meta: StepMeta,
    pub(crate) action: ResponseAction,
}

/// What a response-side step does.
pub(crate) enum ResponseAction {
    LimitConcurrency(limit_concurrency::LimitConcurrency<ResponseStep>),
    MockResponse(mock_response::MockResponse),
    ReturnResponse(return_response::ReturnResponse),
    SetHeader(set_header::SetHeader),
    SetStatus(set_status::SetStatus),
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
