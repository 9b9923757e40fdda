//! `rate-limit-by-key`: limits calls per key in a sliding window (inbound).
//!
//! ```xml
//! <rate-limit-by-key calls="10" renewal-period="60"
//!     counter-key="@(context.Request.IpAddress)"
//!     increment-condition="true" increment-count="1"
//!     retry-after-header-name="Retry-After"
//!     remaining-calls-header-name="X-RateLimit-Remaining"
//!     total-calls-header-name="X-RateLimit-Limit" />
//! ```
//!
//! `counter-key` is a literal or a policy expression (some idioms are computed without
//! the evaluator; see `crate::key`).
//! `renewal-period` is 1–300 seconds. `increment-condition` is `true`, `false` or a
//! policy expression decided once the response is known (the limit is checked on
//! arrival, the count added after; see `PendingCount`); `increment-count` defaults
//! to 1. Over the limit the request fails with APIM's `429` (`Retry-After`, JSON body
//! "Rate limit is exceeded. Try again in N seconds.") and reason `RateLimitExceeded`.
//! `retry-after-variable-name` and `remaining-calls-variable-name` need policy
//! variables and are not supported yet. See [`crate::counters`] for the algorithm.

use super::throttle::{IncrementCondition, LimitHeaders, increment_condition};
use crate::context::CompileContext;
use crate::counters::{CellKey, MAX_RATE_CALLS, RateLimit, RateOutcome, policy_instance_id};
use crate::document::ElementReader;
use crate::error::{PolicyError, Position, Site};
use crate::key::CounterKey;
use crate::pipeline::{Exec, Flow, PendingCounter, RequestState, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

const VARIABLES: &str =
    " (policy variables are not implemented yet); use the header attributes instead";

/// Parsed `<rate-limit-by-key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    calls: RawValue,
    renewal_period: RawValue,
    counter_key: RawValue,
    increment_condition: Option<RawValue>,
    increment_count: Option<RawValue>,
    retry_after_header_name: Option<RawValue>,
    remaining_calls_header_name: Option<RawValue>,
    total_calls_header_name: Option<RawValue>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.unsupported("retry-after-variable-name", VARIABLES)?;
        reader.unsupported("remaining-calls-variable-name", VARIABLES)?;
        let config = Self {
            calls: reader.required("calls")?,
            renewal_period: reader.required("renewal-period")?,
            counter_key: reader.required("counter-key")?,
            increment_condition: reader.optional("increment-condition"),
            increment_count: reader.optional("increment-count"),
            retry_after_header_name: reader.optional("retry-after-header-name"),
            remaining_calls_header_name: reader.optional("remaining-calls-header-name"),
            total_calls_header_name: reader.optional("total-calls-header-name"),
            position: reader.element.position,
        };
        reader.no_text()?;
        reader.no_children()?;
        Ok(config)
    }
}

/// Compiled `<rate-limit-by-key>`.
#[derive(Debug)]
pub(crate) struct RateLimitByKey {
    instance: u64,
    limit: RateLimit,
    key: CounterKey,
    /// Count at once (`Fixed`), or once the response is known.
    condition: IncrementCondition,
    increment: u32,
    headers: LimitHeaders,
}

impl RateLimitByKey {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let calls: u32 = cx.number(site, &config.calls, "calls", 1..=MAX_RATE_CALLS)?;
        let period: u64 = cx.number(site, &config.renewal_period, "renewal-period", 1..=300)?;
        let increment: u32 = match &config.increment_count {
            Some(raw) => cx.number(site, raw, "increment-count", 0..=calls)?,
            None => 1,
        };
        Ok(Self {
            instance: policy_instance_id(site.origin, config.position, "rate-limit-by-key"),
            limit: RateLimit {
                calls,
                period_ms: period * 1000,
            },
            key: CounterKey::compile(cx, site, &config.counter_key, "counter-key")?,
            condition: increment_condition(
                cx,
                site,
                config.increment_condition.as_ref(),
                increment,
            )?,
            increment,
            headers: LimitHeaders::compile(
                cx,
                site,
                config.retry_after_header_name.as_ref(),
                config.remaining_calls_header_name.as_ref(),
                config.total_calls_header_name.as_ref(),
                calls,
            )?,
        })
    }

    pub(crate) fn apply(
        &self,
        exec: &Exec<'_, '_>,
        request: &mut RequestState,
        meta: &StepMeta,
    ) -> Flow {
        let key = match self.key.hash(exec, request) {
            Ok(key) => key,
            Err(failure) => return failure.into_flow(meta, exec.section),
        };
        let cell = CellKey {
            policy: self.instance,
            key,
        };
        match exec.counters.rate(
            cell,
            self.limit,
            self.increment,
            self.condition.counts_now(),
            exec.facts.now,
        )
        {
            RateOutcome::Allowed { remaining } => {
                self.headers
                    .report(remaining, &mut request.response_headers);
                self.condition.defer(
                    PendingCounter::Rate {
                        cell,
                        limit: self.limit,
                    },
                    self.increment,
                    meta,
                    request,
                );
                Flow::Continue
            }
            RateOutcome::Limited { retry_after } => {
                self.headers.report(0, &mut request.response_headers);
                meta.fail_from(
                    "rate-limit",
                    exec.section,
                    "RateLimitExceeded",
                    "Rate limit is exceeded",
                    self.headers.too_many_requests(retry_after),
                )
            }
        }
    }
}

impl PolicyDefinition for RateLimitByKey {
    const NAME: &'static str = "rate-limit-by-key";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for RateLimitByKey {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.exec, run.request, meta)
    }
}

#[cfg(test)]
#[path = "rate_limit_by_key_tests.rs"]
mod tests;
