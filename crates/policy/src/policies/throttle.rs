//! What rate limits and quotas share: response headers, the 429 and 403 responses,
//! `increment-condition` and duration formatting.

use std::sync::Arc;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::header_name;
use crate::context::CompileContext;
use crate::error::{PolicyError, Site};
use crate::expression::PolicyExpression;
use crate::pipeline::{PendingCount, PendingCounter, PolicyResponse, RequestState, StepMeta};
use crate::reader::{RawText, RawValue};

/// The headers a rate limit reports: `Retry-After` (or its replacement) on refusal,
/// and optionally remaining and total calls on every response.
#[derive(Debug)]
pub(crate) struct LimitHeaders {
    retry_after: HeaderName,
    remaining: Option<HeaderName>,
    total: Option<(HeaderName, HeaderValue)>,
}

impl LimitHeaders {
    pub(crate) fn compile(
        cx: &CompileContext<'_>,
        site: Site<'_>,
        retry_after: Option<&RawValue>,
        remaining: Option<&RawValue>,
        total: Option<&RawValue>,
        calls: u32,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            retry_after: retry_after
                .map(|raw| header_name(cx, site, raw, "retry-after-header-name"))
                .transpose()?
                .unwrap_or(RETRY_AFTER),
            remaining: remaining
                .map(|raw| header_name(cx, site, raw, "remaining-calls-header-name"))
                .transpose()?,
            total: total
                .map(|raw| header_name(cx, site, raw, "total-calls-header-name"))
                .transpose()?
                .map(|name| (name, HeaderValue::from(calls))),
        })
    }

    /// Adds the remaining/total headers (if configured) to the response headers.
    pub(crate) fn report(&self, remaining: u32, headers: &mut HeaderMap) {
        if let Some(name) = &self.remaining {
            headers.insert(name.clone(), HeaderValue::from(remaining));
        }
        if let Some((name, value)) = &self.total {
            headers.insert(name.clone(), value.clone());
        }
    }

    /// APIM's 429: `Retry-After` in whole seconds and a JSON body saying when to retry.
    pub(crate) fn too_many_requests(&self, retry_after: Duration) -> PolicyResponse {
        let seconds = retry_seconds(retry_after);
        let mut response = PolicyResponse::json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Rate limit is exceeded. Try again in {seconds} seconds."),
        );
        response
            .headers
            .insert(self.retry_after.clone(), HeaderValue::from(seconds));
        response
    }
}

/// Whole seconds to wait, rounded up, at least 1.
pub(crate) fn retry_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// APIM's 403 for an exhausted quota: `Retry-After` and "replenished in hh:mm:ss".
pub(crate) fn quota_exceeded(
    what: &str,
    retry_after: Option<Duration>,
) -> (String, PolicyResponse) {
    let message = match retry_after {
        Some(wait) => format!(
            "Out of {what} quota. Quota will be replenished in {}.",
            time_span(retry_seconds(wait))
        ),
        None => format!("Out of {what} quota."),
    };
    let mut response = PolicyResponse::json_error(StatusCode::FORBIDDEN, &message);
    if let Some(wait) = retry_after {
        response
            .headers
            .insert(RETRY_AFTER, HeaderValue::from(retry_seconds(wait)));
    }
    (message, response)
}

/// .NET `TimeSpan` formatting as APIM prints it: `hh:mm:ss`, or `d.hh:mm:ss` from one
/// day up.
pub(crate) fn time_span(total_seconds: u64) -> String {
    let days = total_seconds / 86_400;
    let hours = total_seconds % 86_400 / 3600;
    let minutes = total_seconds % 3600 / 60;
    let seconds = total_seconds % 60;
    if days > 0 {
        format!("{days}.{hours:02}:{minutes:02}:{seconds:02}")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    }
}

/// `increment-condition`: a literal `true`/`false`, or a policy expression evaluated
/// once the response is known (APIM counts after the response: the expression
/// usually reads `context.Response.StatusCode`).
#[derive(Debug, Clone)]
pub(crate) enum IncrementCondition {
    Fixed(bool),
    Computed(Arc<PolicyExpression>),
}

/// `increment-condition` as a policy counting `increment` per request uses it: a
/// request counting 0 is never counted, whatever the condition.
pub(crate) fn increment_condition(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    value: Option<&RawValue>,
    increment: u32,
) -> Result<IncrementCondition, PolicyError> {
    let Some(value) = value else {
        return Ok(IncrementCondition::Fixed(increment > 0));
    };
    if let RawText::Expression(expression) = &value.text {
        let expression = cx.expression(site, expression)?;
        return Ok(if increment > 0 {
            IncrementCondition::Computed(Arc::new(expression))
        } else {
            IncrementCondition::Fixed(false)
        });
    }
    let count = cx.boolean(site, value, "increment-condition")?;
    Ok(IncrementCondition::Fixed(count && increment > 0))
}

impl IncrementCondition {
    /// Whether the request counts on arrival.
    pub(crate) fn counts_now(&self) -> bool {
        matches!(self, Self::Fixed(true))
    }

    /// For a condition decided once the response is known: leaves the count to then
    /// (`true`); a fixed condition has nothing to leave (`false`).
    pub(crate) fn defer(
        &self,
        counter: PendingCounter,
        increment: u32,
        meta: &StepMeta,
        request: &mut RequestState,
    ) -> bool {
        let Self::Computed(condition) = self else {
            return false;
        };
        request.pending_counts.push(PendingCount {
            counter,
            increment,
            condition: Arc::clone(condition),
            meta: meta.clone(),
        });
        true
    }
}

/// Whether a nested `<api>` or `<operation>` of `rate-limit` or `quota` names the
/// pipeline's entity: its `name` or `id` (named values substituted) equal to the
/// entity's id or display name.
pub(crate) fn names_entity(
    site: crate::error::Site<'_>,
    cx: &crate::context::CompileContext<'_>,
    name: Option<&crate::reader::RawValue>,
    id: Option<&crate::reader::RawValue>,
    entity_id: &str,
    display_name: Option<&str>,
) -> Result<bool, crate::error::PolicyError> {
    for raw in [id, name].into_iter().flatten() {
        let wanted = cx.literal(site, raw)?;
        let wanted = wanted.text.trim();
        if wanted == entity_id || display_name == Some(wanted) {
            return Ok(true);
        }
    }
    Ok(false)
}
