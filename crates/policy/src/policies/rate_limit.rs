//! `rate-limit`: limits calls per subscription in a sliding window (inbound).
//!
//! ```xml
//! <rate-limit calls="100" renewal-period="60" remaining-calls-header-name="X-Remaining">
//!     <api name="orders" calls="20" renewal-period="60">
//!         <operation name="create" calls="5" renewal-period="60" />
//!     </api>
//! </rate-limit>
//! ```
//!
//! The top-level limit counts all of a subscription's calls through this policy; a
//! nested `<api>` (matched by `name` or `id` against the API's id or display name)
//! adds a limit on calls to that API, and a nested `<operation>` one on calls to that
//! operation. Nested limits are resolved at compile time for the pipeline's API and
//! operation. Requests without a subscription are not limited by this policy (use
//! `rate-limit-by-key` for those). Responses and attributes are as for
//! `rate-limit-by-key`; the remaining-calls header reports the tightest applicable
//! limit.

use super::throttle::{LimitHeaders, Nested};
use crate::context::CompileContext;
use crate::counters::RateLimit as Window;
use crate::counters::{CellKey, MAX_RATE_CALLS, RateOutcome, policy_instance_id};
use crate::document::ElementReader;
use crate::error::{PolicyError, Position, Site};
use crate::pipeline::{Exec, Flow, RequestState, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

const VARIABLES: &str =
    " (policy variables are not implemented yet); use the header attributes instead";

/// Parsed `<rate-limit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    limit: Limit,
    retry_after_header_name: Option<RawValue>,
    remaining_calls_header_name: Option<RawValue>,
    total_calls_header_name: Option<RawValue>,
    apis: Vec<Nested<Limit>>,
}

/// `calls` and `renewal-period` of the policy or of a nested element.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Limit {
    calls: RawValue,
    renewal_period: RawValue,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.unsupported("retry-after-variable-name", VARIABLES)?;
        reader.unsupported("remaining-calls-variable-name", VARIABLES)?;
        let limit = Limit::parse(reader)?;
        let config = Self {
            limit,
            retry_after_header_name: reader.optional("retry-after-header-name"),
            remaining_calls_header_name: reader.optional("remaining-calls-header-name"),
            total_calls_header_name: reader.optional("total-calls-header-name"),
            apis: Nested::parse_all(reader, "api", Limit::parse)?,
        };
        reader.no_text()?;
        Ok(config)
    }
}

impl Limit {
    fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        Ok(Self {
            calls: reader.required("calls")?,
            renewal_period: reader.required("renewal-period")?,
            position: reader.element.position,
        })
    }

    fn compile(&self, site: Site<'_>, cx: &CompileContext<'_>) -> Result<Window, PolicyError> {
        let calls = cx.number(site, &self.calls, "calls", 1..=MAX_RATE_CALLS)?;
        let period: u64 = cx.number(site, &self.renewal_period, "renewal-period", 1..=300)?;
        Ok(Window {
            calls,
            period_ms: period * 1000,
        })
    }
}

/// Compiled `<rate-limit>`.
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// The policy's own limit first, then matching nested ones; each with its counter
    /// instance.
    limits: Box<[(u64, Window)]>,
    headers: LimitHeaders,
}

impl RateLimit {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let top = config.limit.compile(site, cx)?;
        let mut limits = vec![(
            policy_instance_id(site.origin, config.limit.position, "rate-limit"),
            top,
        )];
        for (limit, window) in Nested::applicable(&config.apis, site, cx, |limit: &Limit| {
            limit.compile(site, cx)
        })? {
            limits.push((
                policy_instance_id(site.origin, limit.position, "rate-limit"),
                window,
            ));
        }
        Ok(Self {
            limits: limits.into_boxed_slice(),
            headers: LimitHeaders::compile(
                cx,
                site,
                config.retry_after_header_name.as_ref(),
                config.remaining_calls_header_name.as_ref(),
                config.total_calls_header_name.as_ref(),
                top.calls,
            )?,
        })
    }

    pub(crate) fn apply(
        &self,
        exec: &Exec<'_, '_>,
        request: &mut RequestState,
        meta: &StepMeta,
    ) -> Flow {
        let Some(subscription) = exec.facts.subscription else {
            return Flow::Continue;
        };
        let key = exec.counters.hash_key(subscription.id);
        let now = exec.facts.now;
        // Check every limit before counting in any, so a refusal by a nested limit
        // does not use up the others.
        if self.limits.len() > 1 {
            for (instance, window) in &self.limits {
                let cell = CellKey {
                    policy: *instance,
                    key,
                };
                if let RateOutcome::Limited { retry_after } =
                    exec.counters.rate(cell, *window, 1, false, now)
                {
                    return self.refuse(exec, request, meta, retry_after);
                }
            }
        }
        let mut remaining = u32::MAX;
        for (instance, window) in &self.limits {
            let cell = CellKey {
                policy: *instance,
                key,
            };
            match exec.counters.rate(cell, *window, 1, true, now) {
                RateOutcome::Allowed { remaining: left } => remaining = remaining.min(left),
                RateOutcome::Limited { retry_after } => {
                    return self.refuse(exec, request, meta, retry_after);
                }
            }
        }
        self.headers
            .report(remaining, &mut request.response_headers);
        Flow::Continue
    }

    fn refuse(
        &self,
        exec: &Exec<'_, '_>,
        request: &mut RequestState,
        meta: &StepMeta,
        retry_after: std::time::Duration,
    ) -> Flow {
        self.headers.report(0, &mut request.response_headers);
        meta.fail(
            exec.section,
            "RateLimitExceeded",
            "Rate limit is exceeded",
            self.headers.too_many_requests(retry_after),
        )
    }
}

impl PolicyDefinition for RateLimit {
    const NAME: &'static str = "rate-limit";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for RateLimit {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.exec, run.request, meta)
    }
}

#[cfg(test)]
#[path = "rate_limit_tests.rs"]
mod tests;
