//! `quota-by-key`: limits calls and/or bandwidth per key in fixed windows (inbound).
//!
//! ```xml
//! <quota-by-key calls="10000" bandwidth="40000" renewal-period="3600"
//!     counter-key="@(context.Subscription?.Id)" increment-condition="true"
//!     increment-count="1" first-period-start="2024-01-01T00:00:00Z" />
//! ```
//!
//! At least one of `calls` and `bandwidth` (kilobytes) is required. `renewal-period`
//! is 0 (one window forever) or at least 300 seconds, as in APIM; windows start at
//! `first-period-start` (`yyyy-MM-ddTHH:mm:ssZ`, default `0001-01-01T00:00:00Z`).
//! Calls are counted when the request passes; bandwidth (request plus response body)
//! is charged after the response through [`crate::Counters::settle`], and a request
//! is refused once the window's bandwidth is used up. Refusals are APIM's `403` with
//! `Retry-After` (time to the window's end) and "Out of call volume quota. Quota will
//! be replenished in hh:mm:ss." (or "bandwidth"), reason `QuotaExceeded`.

use super::throttle::{IncrementCondition, increment_condition, quota_exceeded};
use crate::context::CompileContext;
use crate::counters::{
    CellKey, MAX_QUOTA_BYTES, QuotaLimit, QuotaOutcome, QuotaWindow, policy_instance_id,
};
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::key::CounterKey;
use crate::pipeline::{Exec, Flow, PendingCounter, RequestState, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// `0001-01-01T00:00:00Z`, APIM's default `first-period-start`, in Unix seconds.
pub(crate) const YEAR_ONE: i64 = -62_135_596_800;

/// Parsed `<quota-by-key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    calls: Option<RawValue>,
    bandwidth: Option<RawValue>,
    renewal_period: RawValue,
    counter_key: RawValue,
    increment_condition: Option<RawValue>,
    increment_count: Option<RawValue>,
    first_period_start: Option<RawValue>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            calls: reader.optional("calls"),
            bandwidth: reader.optional("bandwidth"),
            renewal_period: reader.required("renewal-period")?,
            counter_key: reader.required("counter-key")?,
            increment_condition: reader.optional("increment-condition"),
            increment_count: reader.optional("increment-count"),
            first_period_start: reader.optional("first-period-start"),
            position: reader.element.position,
        };
        reader.no_text()?;
        reader.no_children()?;
        if config.calls.is_none() && config.bandwidth.is_none() {
            return Err(reader.site.err(
                config.position,
                ErrorKind::Missing,
                "at least one of `calls` and `bandwidth` is required",
            ));
        }
        Ok(config)
    }
}

/// Compiled `<quota-by-key>`.
#[derive(Debug)]
pub(crate) struct QuotaByKey {
    instance: u64,
    limit: QuotaLimit,
    key: CounterKey,
    /// Count at once (`Fixed`), or once the response is known.
    condition: IncrementCondition,
    increment: u32,
}

impl QuotaByKey {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let (calls, bandwidth_bytes, period) = quota_amounts(
            site,
            cx,
            config.calls.as_ref(),
            config.bandwidth.as_ref(),
            &config.renewal_period,
        )?;
        let start = match &config.first_period_start {
            None => YEAR_ONE,
            Some(raw) => {
                let resolved = cx.literal(site, raw)?;
                parse_date_time(resolved.text.trim()).ok_or_else(|| {
                    site.invalid(
                        raw.position,
                        format!("`first-period-start` must be a UTC time like `2024-01-01T00:00:00Z`, found {}", resolved.shown()),
                    )
                })?
            }
        };
        let increment: u32 = match &config.increment_count {
            Some(raw) => cx.number(site, raw, "increment-count", 0..=calls.unwrap_or(u32::MAX))?,
            None => 1,
        };
        Ok(Self {
            instance: policy_instance_id(site.origin, config.position, "quota-by-key"),
            limit: QuotaLimit {
                calls,
                bandwidth_bytes,
                window: QuotaWindow {
                    period_s: period,
                    start_s: start,
                },
            },
            key: CounterKey::compile(cx, site, &config.counter_key, "counter-key")?,
            condition: increment_condition(
                cx,
                site,
                config.increment_condition.as_ref(),
                increment,
            )?,
            increment,
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
        let (what, retry_after) =
            match exec.counters.quota(
                cell,
                self.limit,
                self.increment,
                self.condition.counts_now(),
                exec.facts.now,
            ) {
                QuotaOutcome::Allowed { charge } => {
                    // Deferred, bandwidth and calls are both charged once the condition
                    // is known.
                    let deferred = self.condition.defer(
                        PendingCounter::Quota {
                            cell,
                            limit: self.limit,
                        },
                        self.increment,
                        meta,
                        request,
                    );
                    if !deferred {
                        request.deferred.extend(charge);
                    }
                    return Flow::Continue;
                }
                QuotaOutcome::CallsExceeded { retry_after } => ("call volume", retry_after),
                QuotaOutcome::BandwidthExceeded { retry_after } => ("bandwidth", retry_after),
            };
        let (message, response) = quota_exceeded(what, retry_after);
        meta.fail_from("quota", exec.section, "QuotaExceeded", message, response)
    }
}

/// A quota's `calls`, `bandwidth` (kilobytes, as bytes) and `renewal-period` (seconds:
/// 0 for a lifetime quota, else at least 300, as in APIM), checked; shared with
/// `quota`.
pub(crate) fn quota_amounts(
    site: Site<'_>,
    cx: &CompileContext<'_>,
    calls: Option<&RawValue>,
    bandwidth: Option<&RawValue>,
    renewal_period: &RawValue,
) -> Result<(Option<u32>, Option<u64>, u64), PolicyError> {
    let calls: Option<u32> = calls
        .map(|raw| cx.number(site, raw, "calls", 1..=u32::MAX))
        .transpose()?;
    let bandwidth_kb: Option<u64> = bandwidth
        .map(|raw| cx.number(site, raw, "bandwidth", 1..=MAX_QUOTA_BYTES / 1024))
        .transpose()?;
    let period: u64 = cx.number(
        site,
        renewal_period,
        "renewal-period",
        0..=u64::from(u32::MAX),
    )?;
    if period != 0 && period < 300 {
        return Err(site.invalid(
            renewal_period.position,
            "`renewal-period` must be 0 (never renew) or at least 300 seconds; use rate-limit-by-key for shorter windows",
        ));
    }
    Ok((calls, bandwidth_kb.map(|kb| kb * 1024), period))
}

/// Parses `yyyy-MM-ddTHH:mm:ss` with an optional `Z` into Unix seconds (UTC).
pub(crate) fn parse_date_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.split('-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: u32 = number(date_parts.next()?, 2)?;
    let day: u32 = number(date_parts.next()?, 2)?;
    let mut time_parts = time.split(':');
    let hour: i64 = number(time_parts.next()?, 2)?;
    let minute: i64 = number(time_parts.next()?, 2)?;
    let second: i64 = number(time_parts.next()?, 2)?;
    if date_parts.next().is_some() || time_parts.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn number<T: std::str::FromStr>(text: &str, digits: usize) -> Option<T> {
    (text.len() == digits && text.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl PolicyDefinition for QuotaByKey {
    const NAME: &'static str = "quota-by-key";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for QuotaByKey {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.exec, run.request, meta)
    }
}

#[cfg(test)]
#[path = "quota_by_key_tests.rs"]
mod tests;
