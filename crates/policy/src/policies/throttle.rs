//! What rate limits and quotas share: response headers, the 429 and 403 responses,
//! `increment-condition` and duration formatting.

use std::sync::Arc;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::header_name;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Site};
use crate::expression::PolicyExpression;
use crate::pipeline::{PendingCount, PendingCounter, PolicyResponse, RequestState, StepMeta};
use crate::reader::{Element, RawText, RawValue};

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

/// A nested `<api>` or `<operation>` of `rate-limit` or `quota`: what it names (`id`
/// or `name`, against the entity's id or display name) and its own amounts `A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nested<A> {
    name: Option<RawValue>,
    id: Option<RawValue>,
    pub(crate) amounts: A,
    operations: Vec<Self>,
}

/// Reads a nested element's amounts.
pub(crate) type ParseAmounts<A> = fn(&mut ElementReader<'_>) -> Result<A, PolicyError>;

impl<A> Nested<A> {
    /// Reads the `<api>` (or, inside one, `<operation>`) children of `reader`'s element.
    pub(crate) fn parse_all(
        reader: &ElementReader<'_>,
        kind: &str,
        amounts: ParseAmounts<A>,
    ) -> Result<Vec<Self>, PolicyError> {
        reader
            .element
            .children
            .iter()
            .map(|child| {
                if child.name == kind {
                    Self::parse(reader, child, kind, amounts)
                } else {
                    Err(reader.unexpected_child(child, &format!("<{kind}>")))
                }
            })
            .collect()
    }

    fn parse(
        parent: &ElementReader<'_>,
        element: &Element,
        kind: &str,
        amounts: ParseAmounts<A>,
    ) -> Result<Self, PolicyError> {
        let mut reader = parent.child(element);
        let name = reader.optional("name");
        let id = reader.optional("id");
        let own = amounts(&mut reader)?;
        reader.finish()?;
        reader.no_text()?;
        if name.is_none() && id.is_none() {
            return Err(reader.site.err(
                element.position,
                ErrorKind::Missing,
                format!("<{kind}> needs a `name` or an `id`"),
            ));
        }
        let operations = if kind == "api" {
            Self::parse_all(&reader, "operation", amounts)?
        } else {
            reader.no_children()?;
            Vec::new()
        };
        Ok(Self {
            name,
            id,
            amounts: own,
            operations,
        })
    }

    /// The nested elements of `apis` that apply to the pipeline's API and operation
    /// (an `<operation>` only inside a matching `<api>`), each with its amounts
    /// compiled. Every element is compiled, whether it applies or not, so a bad value
    /// is refused wherever it is.
    pub(crate) fn applicable<'n, T>(
        apis: &'n [Self],
        site: Site<'_>,
        cx: &CompileContext<'_>,
        compile: impl Fn(&A) -> Result<T, PolicyError>,
    ) -> Result<Vec<(&'n A, T)>, PolicyError> {
        let mut applicable = Vec::new();
        for api in apis {
            let compiled = compile(&api.amounts)?;
            let api_matches = match cx.api() {
                Some(target) => api.names(site, cx, &target.id, target.display_name.as_deref())?,
                None => false,
            };
            if api_matches {
                applicable.push((&api.amounts, compiled));
            }
            for operation in &api.operations {
                let compiled = compile(&operation.amounts)?;
                let operation_matches = match cx.operation() {
                    Some(target) if api_matches => {
                        operation.names(site, cx, &target.id, target.display_name.as_deref())?
                    }
                    _ => false,
                };
                if operation_matches {
                    applicable.push((&operation.amounts, compiled));
                }
            }
        }
        Ok(applicable)
    }

    /// Whether this element names the entity: its `id` or `name` (named values
    /// substituted) equal to the entity's id or display name.
    fn names(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
        entity_id: &str,
        display_name: Option<&str>,
    ) -> Result<bool, PolicyError> {
        for raw in [&self.id, &self.name].into_iter().flatten() {
            let wanted = cx.literal(site, raw)?;
            let wanted = wanted.text.trim();
            if wanted == entity_id || display_name == Some(wanted) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
