//! `quota`: limits calls and/or bandwidth per subscription in fixed windows (inbound).
//!
//! ```xml
//! <quota calls="10000" bandwidth="40000" renewal-period="604800">
//!     <api name="orders" calls="1000" renewal-period="604800">
//!         <operation name="create" calls="100" renewal-period="604800" />
//!     </api>
//! </quota>
//! ```
//!
//! What `quota-by-key` does with the subscription's id as the key, plus nested
//! `<api>` and `<operation>` quotas (matched by `id` or `name` against the API's or
//! operation's id or display name, resolved at load for the pipeline's API and
//! operation) counted apart from the policy's own. Each level needs `calls`,
//! `bandwidth` (kilobytes) or both, and a `renewal-period` of 0 (a lifetime quota) or
//! at least 300 seconds. Windows are counted from 0001-01-01T00:00:00Z (Gatehouse's
//! subscriptions have no start date to count from). A request without a subscription
//! is not counted by this policy (use `quota-by-key` for those). Every applicable
//! quota is checked before any is counted, so a refusal uses none of them up. The
//! refusal is APIM's: `403`, `Retry-After`, "Out of call volume quota. …", reason
//! `QuotaExceeded`, source `quota`.

use super::quota_by_key::{YEAR_ONE, quota_amounts};
use super::throttle::{Nested, quota_exceeded};
use crate::context::CompileContext;
use crate::counters::{CellKey, QuotaLimit, QuotaOutcome, QuotaWindow, policy_instance_id};
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::{Exec, Flow, RequestState, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<quota>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    amounts: Amounts,
    apis: Vec<Nested<Amounts>>,
}

/// `calls`, `bandwidth` and `renewal-period` of the policy or of a nested element.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Amounts {
    calls: Option<RawValue>,
    bandwidth: Option<RawValue>,
    renewal_period: RawValue,
    position: Position,
}

impl Amounts {
    fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let amounts = Self {
            calls: reader.optional("calls"),
            bandwidth: reader.optional("bandwidth"),
            renewal_period: reader.required("renewal-period")?,
            position: reader.element.position,
        };
        if amounts.calls.is_none() && amounts.bandwidth.is_none() {
            return Err(reader.site.err(
                amounts.position,
                ErrorKind::Missing,
                format!(
                    "<{}>: at least one of `calls` and `bandwidth` is required",
                    reader.element.name
                ),
            ));
        }
        Ok(amounts)
    }

    fn compile(&self, site: Site<'_>, cx: &CompileContext<'_>) -> Result<QuotaLimit, PolicyError> {
        let (calls, bandwidth_bytes, period_s) = quota_amounts(
            site,
            cx,
            self.calls.as_ref(),
            self.bandwidth.as_ref(),
            &self.renewal_period,
        )?;
        Ok(QuotaLimit {
            calls,
            bandwidth_bytes,
            window: QuotaWindow {
                period_s,
                start_s: YEAR_ONE,
            },
        })
    }
}

/// Compiled `<quota>`.
#[derive(Debug)]
pub(crate) struct Quota {
    /// The policy's own quota first, then the nested ones that apply to this
    /// pipeline; each with its counter instance.
    limits: Box<[(u64, QuotaLimit)]>,
}

impl Quota {
    fn compile(config: &Config, site: Site<'_>, cx: &CompileContext<'_>) -> Result<Self, PolicyError> {
        let instance = |position| policy_instance_id(site.origin, position, "quota");
        let mut limits = vec![(
            instance(config.amounts.position),
            config.amounts.compile(site, cx)?,
        )];
        for (amounts, limit) in Nested::applicable(&config.apis, site, cx, |amounts: &Amounts| {
            amounts.compile(site, cx)
        })? {
            limits.push((instance(amounts.position), limit));
        }
        Ok(Self {
            limits: limits.into_boxed_slice(),
        })
    }

    fn apply(&self, exec: &Exec<'_, '_>, request: &mut RequestState, meta: &StepMeta) -> Flow {
        let Some(subscription) = exec.facts.subscription else {
            return Flow::Continue;
        };
        let key = exec.counters.hash_key(subscription.id);
        let cell = |instance: u64| CellKey {
            policy: instance,
            key,
        };
        // Check every quota before counting in any, so a refusal by one does not use
        // up the others.
        if self.limits.len() > 1 {
            for (instance, limit) in &self.limits {
                let outcome = exec
                    .counters
                    .quota(cell(*instance), *limit, 1, false, exec.facts.now);
                if let Some(flow) = refusal(&outcome, exec, meta) {
                    return flow;
                }
            }
        }
        for (instance, limit) in &self.limits {
            match exec
                .counters
                .quota(cell(*instance), *limit, 1, true, exec.facts.now)
            {
                // Bandwidth is charged once the response is known.
                QuotaOutcome::Allowed { charge } => request.deferred.extend(charge),
                outcome => {
                    if let Some(flow) = refusal(&outcome, exec, meta) {
                        return flow;
                    }
                }
            }
        }
        Flow::Continue
    }
}

/// The refusal an exceeded quota makes; `None` when the quota allows the call.
fn refusal(outcome: &QuotaOutcome, exec: &Exec<'_, '_>, meta: &StepMeta) -> Option<Flow> {
    let (what, retry_after) = match *outcome {
        QuotaOutcome::Allowed { .. } => return None,
        QuotaOutcome::CallsExceeded { retry_after } => ("call volume", retry_after),
        QuotaOutcome::BandwidthExceeded { retry_after } => ("bandwidth", retry_after),
    };
    let (message, response) = quota_exceeded(what, retry_after);
    Some(meta.fail_from("quota", exec.section, "QuotaExceeded", message, response))
}

impl PolicyDefinition for Quota {
    const NAME: &'static str = "quota";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        let config = Config {
            amounts: Amounts::parse(reader)?,
            apis: Nested::parse_all(reader, "api", Amounts::parse)?,
        };
        reader.no_text()?;
        Ok(config)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for Quota {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.exec, run.request, meta)
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
