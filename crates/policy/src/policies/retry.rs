//! `retry`: runs the policies it holds, then again while its condition holds, up to
//! `count` more times, waiting between attempts (any section).
//!
//! ```xml
//! <retry condition="@(context.Response.StatusCode >= 500)" count="3" interval="1"
//!        max-interval="10" delta="1" first-fast-retry="true">
//!     <forward-request buffer-request-body="true" />
//! </retry>
//! ```
//!
//! The wait before each retry is, as APIM documents: `interval` (fixed) when only
//! `interval` is given; `interval + (n - 1) × delta` (linear) with `delta`; and
//! `interval + (2ⁿ - 1) × delta × a random factor from 0.8 to 1.2`, at most
//! `max-interval` (exponential) with both. `first-fast-retry="true"` makes the first
//! retry at once.
//!
//! Two forms:
//!
//! - Around `forward-request` (backend section; `forward-request` its last child):
//!   the gateway forwards when the section ends, so the step only hands the gateway a
//!   [`PendingRetry`]. After each answer the gateway asks [`Pipeline::retry_forward`]
//!   (crate::Pipeline::retry_forward), which evaluates the condition on the response's
//!   status and headers, waits and runs the children again; the gateway sends the same
//!   body again (it keeps it whole, up to its buffering limit). A backend that cannot be
//!   reached (no response to judge) is retried while retries remain. The policies
//!   before `forward-request` may not wait (`send-request`) in this form.
//! - Around anything else: the children run, then the condition is evaluated on the
//!   request as they left it, and so on.

use std::sync::Arc;
use std::time::Duration;

use crate::document::{ElementReader, Policy, PolicyNode};
use crate::error::{ErrorKind, PolicyError};
use crate::pipeline::{Exec, RequestState, ResponseState};
use crate::policies::choose::Condition;
use crate::reader::RawValue;
use crate::registry::prelude::*;
use crate::registry::{StepFuture, Steps};

/// Most retries one `retry` may make.
const MAX_COUNT: u32 = 100;
/// Longest `interval`, `max-interval` or `delta` (seconds), and longest wait.
const MAX_INTERVAL_S: u64 = 3600;

/// Parsed `<retry>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    condition: RawValue,
    count: RawValue,
    interval: RawValue,
    max_interval: Option<RawValue>,
    delta: Option<RawValue>,
    first_fast_retry: Option<RawValue>,
    policies: Vec<Policy>,
}

/// Compiled `<retry>`.
pub(crate) struct Retry {
    plan: Arc<RetryPlan>,
    /// Around `forward-request`: the gateway forwards, and asks the plan after.
    forwards: bool,
}

/// What a `retry` does, shared with the request when it wraps `forward-request`.
pub(crate) struct RetryPlan {
    condition: Condition,
    /// Retries after the first run.
    count: u32,
    schedule: RetrySchedule,
    steps: Steps,
}

/// A `retry` around `forward-request` that ran: the gateway asks
/// [`Pipeline::retry_forward`](crate::Pipeline::retry_forward) after each answer.
#[derive(Clone)]
pub(crate) struct PendingRetry {
    plan: Arc<RetryPlan>,
    meta: StepMeta,
}

impl std::fmt::Debug for PendingRetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRetry")
            .field("count", &self.plan.count)
            .field("schedule", &self.plan.schedule)
            .finish_non_exhaustive()
    }
}

/// What the gateway does after an answer under a `retry` around `forward-request`.
#[derive(Debug, PartialEq)]
pub enum RetryDecision {
    /// Keep this answer (or failure): the condition does not hold, or no retries remain.
    Done,
    /// Forward again, as the request now is (the wait is over, the children ran again).
    Again,
    /// The condition, or a policy run again, answered or failed: handle the flow as the
    /// backend section's.
    Stop(Flow),
}

/// The waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetrySchedule {
    pub(crate) interval: Duration,
    pub(crate) max_interval: Option<Duration>,
    pub(crate) delta: Option<Duration>,
    pub(crate) first_fast_retry: bool,
}

impl RetrySchedule {
    /// The wait before retry `retry` (1 for the first); `jitter` from 0 to 1 picks the
    /// exponential form's random factor (0.8 to 1.2).
    pub(crate) fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let most = Duration::from_secs(MAX_INTERVAL_S);
        if retry == 1 && self.first_fast_retry {
            return Duration::ZERO;
        }
        let delay = match (self.delta, self.max_interval) {
            (None, _) => self.interval,
            (Some(delta), None) => self
                .interval
                .saturating_add(delta.saturating_mul(retry.saturating_sub(1))),
            (Some(delta), Some(max_interval)) => {
                let growth = 2_f64.powi(i32::try_from(retry.min(64)).unwrap_or(64)) - 1.0;
                let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
                let extra = Duration::try_from_secs_f64(delta.as_secs_f64() * growth * factor)
                    .unwrap_or(most);
                self.interval.saturating_add(extra).min(max_interval)
            }
        };
        delay.min(most)
    }
}

impl PolicyDefinition for Retry {
    const NAME: &'static str = "retry";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        let config = Config {
            condition: reader.required("condition")?,
            count: reader.required("count")?,
            interval: reader.required("interval")?,
            max_interval: reader.optional("max-interval"),
            delta: reader.optional("delta"),
            first_fast_retry: reader.optional("first-fast-retry"),
            policies: cx
                .nodes(&reader.element.children, false)?
                .into_iter()
                .filter_map(|node| match node {
                    PolicyNode::Policy(policy) => Some(*policy),
                    PolicyNode::Base(_) => None, // refused by `nodes` here
                })
                .collect(),
        };
        if config.policies.is_empty() {
            return Err(reader.structure(
                reader.element.position,
                "<retry> needs at least one policy to run (usually <forward-request/>)",
            ));
        }
        Ok(config)
    }

    fn nested(config: &Config) -> &[Policy] {
        &config.policies
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let seconds = |raw: &RawValue, name: &str| -> Result<Duration, PolicyError> {
            cx.context
                .number(cx.site, raw, name, 0..=MAX_INTERVAL_S)
                .map(Duration::from_secs)
        };
        let interval = seconds(&config.interval, "interval")?;
        let delta = config
            .delta
            .as_ref()
            .map(|raw| seconds(raw, "delta"))
            .transpose()?;
        let max_interval = match (&config.max_interval, delta) {
            (Some(raw), Some(_)) => Some(seconds(raw, "max-interval")?),
            (Some(raw), None) => {
                return Err(cx.site.invalid(
                    raw.position,
                    "`max-interval` needs `delta` (together with `interval` they make the exponential wait)",
                ));
            }
            (None, _) => None,
        };
        let forwards = match config.policies.split_last() {
            Some((last, before)) if last.name() == "forward-request" => {
                if let Some(nested) = before.iter().find(|policy| holds_forward(policy)) {
                    return Err(cx.site.err(
                        nested.position,
                        ErrorKind::Structure,
                        "only one <forward-request> may be in a <retry>, as its last policy",
                    ));
                }
                true
            }
            _ => {
                if let Some(nested) = config.policies.iter().find(|policy| holds_forward(policy))
                {
                    return Err(cx.site.err(
                        nested.position,
                        ErrorKind::Structure,
                        "a <forward-request> in a <retry> must be its last policy, directly inside it (not in a <choose> or another <retry>)",
                    ));
                }
                false
            }
        };
        let steps = cx.nested(&config.policies)?;
        if forwards
            && let Some(step) = steps.iter().find(|step| step.is_async)
        {
            return Err(cx.site.not_supported(
                step.meta.position,
                format!(
                    "<{}> waits, and a <retry> around <forward-request> cannot wait between its policies yet; move it before the <retry>",
                    step.meta.name
                ),
            ));
        }
        Ok(Self {
            plan: Arc::new(RetryPlan {
                condition: Condition::compile(&config.condition, cx)?,
                count: cx
                    .context
                    .number(cx.site, &config.count, "count", 0..=MAX_COUNT)?,
                schedule: RetrySchedule {
                    interval,
                    max_interval,
                    delta,
                    first_fast_retry: cx.context.boolean_or(
                        cx.site,
                        config.first_fast_retry.as_ref(),
                        "first-fast-retry",
                        false,
                    )?,
                },
                steps,
            }),
            forwards,
        })
    }
}

/// Whether `policy` is or holds a `forward-request`.
fn holds_forward(policy: &Policy) -> bool {
    policy.name() == "forward-request" || policy.kind.nested().iter().any(holds_forward)
}

impl Step for Retry {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if !self.forwards {
            return meta.cannot_wait(run.section(), "RetryCannotWait");
        }
        let flow = run.run(&self.plan.steps);
        if flow == Flow::Continue {
            run.request.retry = Some(PendingRetry {
                plan: Arc::clone(&self.plan),
                meta: meta.clone(),
            });
        }
        flow
    }

    fn is_async(&self) -> bool {
        // Around `forward-request` the gateway waits; otherwise the step does.
        !self.forwards
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        if self.forwards {
            return Box::pin(std::future::ready(self.apply(meta, run)));
        }
        Box::pin(async move {
            let plan = &self.plan;
            let mut retry = 0;
            loop {
                let flow = run.run_async(&plan.steps).await;
                if flow != Flow::Continue || retry >= plan.count {
                    return flow;
                }
                match plan.condition.holds(meta, run, "The retry condition") {
                    Ok(true) => {}
                    Ok(false) => return Flow::Continue,
                    Err(flow) => return flow,
                }
                retry += 1;
                plan.wait(run.exec, retry).await;
            }
        })
    }
}

impl RetryPlan {
    /// Waits before retry `retry` on the gateway's timer (no services: no wait).
    async fn wait(&self, exec: &Exec<'_, '_>, retry: u32) {
        let Some(services) = exec.facts.services else {
            return;
        };
        let random = services.random_bytes();
        let jitter = f64::from(u16::from_le_bytes([random[0], random[1]])) / f64::from(u16::MAX);
        let delay = self.schedule.delay(retry, jitter);
        if !delay.is_zero() {
            services.sleep(delay).await;
        }
    }
}

impl PendingRetry {
    /// See [`Pipeline::retry_forward`](crate::Pipeline::retry_forward): `retries` made so
    /// far; `response` the answer's status and headers, `None` when the backend could
    /// not be reached.
    pub(crate) async fn after_answer(
        &self,
        exec: &Exec<'_, '_>,
        request: &mut RequestState,
        response: Option<&mut ResponseState>,
        retries: u32,
    ) -> RetryDecision {
        let plan = &self.plan;
        if retries >= plan.count {
            return RetryDecision::Done;
        }
        let mut run = Run {
            exec,
            request,
            response,
        };
        if run.response.is_some() {
            match plan.condition.holds(&self.meta, &run, "The retry condition") {
                Ok(true) => {}
                Ok(false) => return RetryDecision::Done,
                Err(flow) => return RetryDecision::Stop(flow),
            }
        }
        plan.wait(exec, retries + 1).await;
        // The children run again on the request (not on the answer being dropped).
        run.response = None;
        match run.run(&plan.steps) {
            Flow::Continue => RetryDecision::Again,
            flow => RetryDecision::Stop(flow),
        }
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
