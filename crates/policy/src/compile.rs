//! Compiling merged sections into a [`Pipeline`]: section rules, then each policy's
//! own compile step.

use std::sync::Arc;

use crate::context::CompileContext;
use crate::document::{Policy, PolicyDocument, SectionKind};
use crate::error::{ErrorKind, PolicyError};
use crate::merge::merge;
use crate::pipeline::{Pipeline, StepMeta};
use crate::policies::{
    PolicyKind, RequestAction, RequestStep, ResponseAction, ResponseStep, check_header, cors,
    forward_request, ip_filter, limit_concurrency, mock_response, quota_by_key, rate_limit,
    rate_limit_by_key, return_response, rewrite_uri, set_backend_service, set_header, set_method,
    set_query_parameter, set_status, validate_client_certificate,
};

/// See [`crate::compile`]: every policy is compiled, and every problem reported (in
/// the order the policies run), not only the first.
pub(crate) fn compile_all(
    scopes: &[&PolicyDocument],
    cx: &CompileContext<'_>,
) -> Result<Pipeline, Vec<PolicyError>> {
    if let Some(fragment) = scopes.iter().find(|document| document.is_fragment()) {
        return Err(vec![PolicyError::new(
            fragment.origin(),
            fragment.position(),
            Some("fragment"),
            ErrorKind::NotSupported,
            "policy fragments (and `include-fragment`) are not supported yet by Gatehouse; a scope's policy must have a <policies> root",
        )]);
    }
    let mut problems = Vec::new();
    let backend = merge(scopes, SectionKind::Backend);
    if let Err(problem) = check_forward_request_is_last(&backend, &mut None) {
        problems.push(problem);
    }
    let inbound = steps(
        &merge(scopes, SectionKind::Inbound),
        SectionKind::Inbound,
        cx,
        request_step,
        &mut problems,
    );
    let backend = steps(
        &backend,
        SectionKind::Backend,
        cx,
        request_step,
        &mut problems,
    );
    let outbound = steps(
        &merge(scopes, SectionKind::Outbound),
        SectionKind::Outbound,
        cx,
        response_step,
        &mut problems,
    );
    let on_error = steps(
        &merge(scopes, SectionKind::OnError),
        SectionKind::OnError,
        cx,
        response_step,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Pipeline {
        inbound,
        backend,
        outbound,
        on_error,
    })
}

/// Compiles each policy of a section; those that fail are reported in `problems`.
fn steps<T>(
    policies: &[&Policy],
    section: SectionKind,
    cx: &CompileContext<'_>,
    step: impl Fn(&Policy, SectionKind, &CompileContext<'_>) -> Result<T, PolicyError>,
    problems: &mut Vec<PolicyError>,
) -> Box<[T]> {
    policies
        .iter()
        .filter_map(|policy| {
            step(policy, section, cx)
                .map_err(|problem| problems.push(problem))
                .ok()
        })
        .collect()
}

fn meta(policy: &Policy) -> StepMeta {
    StepMeta {
        name: policy.name(),
        origin: Arc::clone(&policy.origin),
        position: policy.position,
        id: policy.id.as_deref().map(Arc::from),
    }
}

fn check_section(policy: &Policy, section: SectionKind) -> Result<(), PolicyError> {
    let allowed = policy.kind.sections();
    if allowed.contains(&section) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|section| section.name()).collect();
    Err(policy.site().err(
        policy.position,
        ErrorKind::WrongSection,
        format!(
            "this policy cannot be used in the `{section}` section; it is allowed in: {}",
            names.join(", ")
        ),
    ))
}

/// The gateway forwards when the backend section ends, so nothing may follow
/// `forward-request` there (nested ones included).
fn check_forward_request_is_last<'p>(
    policies: &[&'p Policy],
    forward: &mut Option<&'p Policy>,
) -> Result<(), PolicyError> {
    for policy in policies {
        if let Some(previous) = forward {
            return Err(policy.site().err(
                policy.position,
                ErrorKind::Structure,
                format!(
                    "no policy may follow <forward-request> ({}:{}) in the backend section: the request is forwarded when the section ends; move this policy to outbound",
                    previous.origin(),
                    previous.position
                ),
            ));
        }
        match &policy.kind {
            PolicyKind::ForwardRequest(_) => *forward = Some(policy),
            PolicyKind::LimitConcurrency(config) => {
                let nested: Vec<&Policy> = config.policies.iter().collect();
                check_forward_request_is_last(&nested, forward)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn request_step(
    policy: &Policy,
    section: SectionKind,
    cx: &CompileContext<'_>,
) -> Result<RequestStep, PolicyError> {
    check_section(policy, section)?;
    let site = policy.site();
    let action = match &policy.kind {
        PolicyKind::CheckHeader(config) => {
            RequestAction::CheckHeader(check_header::CheckHeader::compile(config, site, cx)?)
        }
        PolicyKind::Cors(config) => RequestAction::Cors(cors::Cors::compile(config, site, cx)?),
        PolicyKind::ForwardRequest(config) => RequestAction::ForwardRequest(
            forward_request::ForwardRequest::compile(config, site, cx)?,
        ),
        PolicyKind::IpFilter(config) => {
            RequestAction::IpFilter(ip_filter::IpFilter::compile(config, site, cx)?)
        }
        PolicyKind::LimitConcurrency(config) => RequestAction::LimitConcurrency(
            limit_concurrency::LimitConcurrency::compile(config, site, cx, |nested| {
                request_step(nested, section, cx)
            })?,
        ),
        PolicyKind::MockResponse(config) => {
            RequestAction::MockResponse(mock_response::MockResponse::compile(config, site, cx)?)
        }
        PolicyKind::QuotaByKey(config) => {
            RequestAction::QuotaByKey(quota_by_key::QuotaByKey::compile(config, site, cx)?)
        }
        PolicyKind::RateLimit(config) => {
            RequestAction::RateLimit(rate_limit::RateLimit::compile(config, site, cx)?)
        }
        PolicyKind::RateLimitByKey(config) => RequestAction::RateLimitByKey(
            rate_limit_by_key::RateLimitByKey::compile(config, site, cx)?,
        ),
        PolicyKind::ReturnResponse(config) => RequestAction::ReturnResponse(
            return_response::ReturnResponse::compile(config, site, cx)?,
        ),
        PolicyKind::RewriteUri(config) => {
            RequestAction::RewriteUri(rewrite_uri::RewriteUri::compile(config, site, cx)?)
        }
        PolicyKind::SetBackendService(config) => RequestAction::SetBackendService(
            set_backend_service::SetBackendService::compile(config, site, cx)?,
        ),
        PolicyKind::SetHeader(config) => {
            RequestAction::SetHeader(set_header::SetHeader::compile(config, site, cx)?)
        }
        PolicyKind::SetMethod(config) => {
            RequestAction::SetMethod(set_method::SetMethod::compile(config, site, cx)?)
        }
        PolicyKind::SetQueryParameter(config) => RequestAction::SetQueryParameter(
            set_query_parameter::SetQueryParameter::compile(config, site, cx)?,
        ),
        PolicyKind::ValidateClientCertificate(config) => RequestAction::ValidateClientCertificate(
            validate_client_certificate::ValidateClientCertificate::compile(config, site, cx)?,
        ),
        PolicyKind::SetStatus(_) => {
            return Err(site.not_supported(
                policy.position,
                format!(
                    "in the `{section}` section <set-status> has no effect on the response the backend will send; \
                     put it inside <return-response>, or in outbound"
                ),
            ));
        }
    };
    Ok(RequestStep {
        meta: meta(policy),
        action,
    })
}

fn response_step(
    policy: &Policy,
    section: SectionKind,
    cx: &CompileContext<'_>,
) -> Result<ResponseStep, PolicyError> {
    check_section(policy, section)?;
    let site = policy.site();
    let action = match &policy.kind {
        PolicyKind::SetHeader(config) => {
            ResponseAction::SetHeader(set_header::SetHeader::compile(config, site, cx)?)
        }
        PolicyKind::SetStatus(config) => {
            ResponseAction::SetStatus(set_status::SetStatus::compile(config, site, cx)?)
        }
        PolicyKind::ReturnResponse(config) => ResponseAction::ReturnResponse(
            return_response::ReturnResponse::compile(config, site, cx)?,
        ),
        PolicyKind::MockResponse(config) => {
            ResponseAction::MockResponse(mock_response::MockResponse::compile(config, site, cx)?)
        }
        PolicyKind::LimitConcurrency(config) => ResponseAction::LimitConcurrency(
            limit_concurrency::LimitConcurrency::compile(config, site, cx, |nested| {
                response_step(nested, section, cx)
            })?,
        ),
        PolicyKind::SetMethod(_) => {
            return Err(site.not_supported(
                policy.position,
                "<set-method> in on-error only matters to `send-request`, which is not supported yet by Gatehouse",
            ));
        }
        PolicyKind::CheckHeader(_)
        | PolicyKind::Cors(_)
        | PolicyKind::ForwardRequest(_)
        | PolicyKind::IpFilter(_)
        | PolicyKind::QuotaByKey(_)
        | PolicyKind::RateLimit(_)
        | PolicyKind::RateLimitByKey(_)
        | PolicyKind::RewriteUri(_)
        | PolicyKind::SetBackendService(_)
        | PolicyKind::SetQueryParameter(_)
        | PolicyKind::ValidateClientCertificate(_) => {
            // `check_section` already refused these for response sections.
            return Err(site.err(
                policy.position,
                ErrorKind::WrongSection,
                format!("this policy cannot be used in the `{section}` section"),
            ));
        }
    };
    Ok(ResponseStep {
        meta: meta(policy),
        action,
    })
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
