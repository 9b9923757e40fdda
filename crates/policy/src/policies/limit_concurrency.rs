//! `limit-concurrency`: lets at most `max-count` requests run the enclosed policies at
//! once (any section).
//!
//! ```xml
//! <limit-concurrency key="backend-orders" max-count="3">
//!     <forward-request timeout="120" />
//! </limit-concurrency>
//! ```
//!
//! `key` is a literal or one of the counter-key idioms of `crate::key`; as in APIM,
//! policies with the same key share one gauge, each enforcing its own `max-count`.
//! Over the limit the request fails at once with `429` and reason
//! `ConcurrencyLimitExceeded` (no queueing). The slot is held in
//! [`crate::RequestState::held`] until the gateway has sent the whole response, not
//! just until the enclosed policies finish, so it bounds the backend calls in flight
//! even for streamed responses.

use http::StatusCode;

use crate::counters::ConcurrencyPermit;
use crate::document::{ElementReader, Policy, PolicyNode};
use crate::error::PolicyError;
use crate::key::CounterKey;
use crate::pipeline::{Exec, PolicyResponse, RequestState};
use crate::reader::RawValue;
use crate::registry::Steps;
use crate::registry::prelude::*;

/// Parsed `<limit-concurrency>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    key: RawValue,
    max_count: RawValue,
    pub(crate) policies: Vec<Policy>,
}

impl Config {
    pub(crate) fn parse(
        reader: &mut ElementReader<'_>,
        cx: &ParseCx<'_>,
    ) -> Result<Self, PolicyError> {
        let key = reader.required("key")?;
        let max_count = reader.required("max-count")?;
        reader.no_text()?;
        let policies = cx
            .nodes(&reader.element.children, false)?
            .into_iter()
            .filter_map(|node| match node {
                PolicyNode::Policy(policy) => Some(*policy),
                PolicyNode::Base(_) => None, // rejected by `nodes` when not allowed
            })
            .collect();
        Ok(Self {
            key,
            max_count,
            policies,
        })
    }
}

/// Compiled `<limit-concurrency>`: its key, its limit and the policies it encloses.
pub(crate) struct LimitConcurrency {
    key: CounterKey,
    max_count: u32,
    steps: Steps,
}

impl PolicyDefinition for LimitConcurrency {
    const NAME: &'static str = "limit-concurrency";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader, cx)
    }

    fn nested(config: &Config) -> &[Policy] {
        &config.policies
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Self {
            key: CounterKey::compile(cx.context, cx.site, &config.key, "key")?,
            max_count: cx
                .context
                .number(cx.site, &config.max_count, "max-count", 1..=u32::MAX)?,
            steps: cx.nested(&config.policies)?,
        })
    }
}

impl Step for LimitConcurrency {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        match self.acquire(run.exec, run.request, meta) {
            Ok(permit) => {
                // Held until the response is complete, not just while the body runs.
                run.request.held.push(permit);
                run.run(&self.steps)
            }
            Err(flow) => flow,
        }
    }

    fn is_async(&self) -> bool {
        crate::registry::any_async(&self.steps)
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> crate::registry::StepFuture<'s> {
        match self.acquire(run.exec, run.request, meta) {
            Ok(permit) => {
                run.request.held.push(permit);
                run.run_async(&self.steps)
            }
            Err(flow) => Box::pin(std::future::ready(flow)),
        }
    }
}

impl LimitConcurrency {
    /// Takes a slot, or fails the request with 429.
    fn acquire(
        &self,
        exec: &Exec<'_, '_>,
        request: &RequestState,
        meta: &StepMeta,
    ) -> Result<ConcurrencyPermit, Flow> {
        let key = self
            .key
            .hash(exec, request)
            .map_err(|failure| failure.into_flow(meta, exec.section))?;
        exec.counters
            .try_acquire(key, self.max_count)
            .ok_or_else(|| {
                meta.fail(
                    exec.section,
                    "ConcurrencyLimitExceeded",
                    "Too many concurrent requests",
                    PolicyResponse::json_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many concurrent requests. Try again later.",
                    ),
                )
            })
    }
}

#[cfg(test)]
#[path = "limit_concurrency_tests.rs"]
mod tests;
