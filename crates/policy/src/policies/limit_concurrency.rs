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

use http::{HeaderMap, StatusCode};

use crate::context::CompileContext;
use crate::counters::ConcurrencyPermit;
use crate::document::{ElementReader, ParseCx, Policy, PolicyNode};
use crate::error::{PolicyError, Site};
use crate::key::CounterKey;
use crate::pipeline::{Exec, Flow, PolicyResponse, StepMeta};
use crate::reader::RawValue;

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

/// Compiled `<limit-concurrency>` around steps of type `S`.
pub(crate) struct LimitConcurrency<S> {
    key: CounterKey,
    max_count: u32,
    steps: Box<[S]>,
}

impl<S> LimitConcurrency<S> {
    /// Compiles the policy; `nested` compiles each enclosed policy for the section.
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
        nested: impl FnMut(&Policy) -> Result<S, PolicyError>,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            key: CounterKey::compile(cx, site, &config.key, "key")?,
            max_count: cx.number(site, &config.max_count, "max-count", 1..=u32::MAX)?,
            steps: config
                .policies
                .iter()
                .map(nested)
                .collect::<Result<Vec<_>, _>>()?
                .into_boxed_slice(),
        })
    }

    /// The enclosed steps.
    pub(crate) fn steps(&self) -> &[S] {
        &self.steps
    }

    /// Takes a slot, or fails the request with 429.
    pub(crate) fn acquire(
        &self,
        exec: &Exec<'_, '_>,
        headers: &HeaderMap,
        meta: &StepMeta,
    ) -> Result<ConcurrencyPermit, Flow> {
        let key = self
            .key
            .hash(exec.facts, headers, exec.counters)
            .map_err(|missing| meta.null_reference(exec.section, missing))?;
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
