//! `cache-store-value`: keeps a value in the gateway's cache under a key, for a
//! duration (any section).
//!
//! ```xml
//! <cache-store-value key="@("token-" + context.Subscription.Id)" value="@((string)context.Variables["token"])" duration="3600" />
//! ```
//!
//! `key`, `value` and `duration` (seconds) may be policy expressions. The cache is the
//! gateway's own, in memory and bounded ([`crate::value_cache`]); `caching-type`
//! `internal` and `prefer-external` use it, `external` is refused. A value of the context
//! model (a request or response object) fails the request: it means nothing after it.

use std::time::Duration;

use http::StatusCode;

use super::set_variable::VariableValue;
use super::{cache_key, check_caching_type};
use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::{PolicyExpression, TextValue};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Longest `duration` (seconds): a year.
const MAX_DURATION_S: u64 = 365 * 24 * 3600;

/// Parsed `<cache-store-value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    key: RawValue,
    value: RawValue,
    duration: RawValue,
    caching_type: Option<RawValue>,
}

/// Compiled `<cache-store-value>`.
#[derive(Debug)]
pub(crate) struct CacheStoreValue {
    key: TextValue,
    value: VariableValue,
    duration: DurationValue,
}

#[derive(Debug)]
enum DurationValue {
    Fixed(Duration),
    Computed(PolicyExpression),
}

impl PolicyDefinition for CacheStoreValue {
    const NAME: &'static str = "cache-store-value";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        reader.no_text()?;
        Ok(Config {
            key: reader.required("key")?,
            value: reader.required("value")?,
            duration: reader.required("duration")?,
            caching_type: reader.optional("caching-type"),
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        check_caching_type(cx.context, cx.site, config.caching_type.as_ref())?;
        let duration = match cx.context.text_value(cx.site, &config.duration)? {
            TextValue::Computed(expression) => DurationValue::Computed(expression),
            TextValue::Fixed(_) => DurationValue::Fixed(Duration::from_secs(cx.context.number(
                cx.site,
                &config.duration,
                "duration",
                0..=MAX_DURATION_S,
            )?)),
        };
        Ok(Self {
            key: cx.context.text_value(cx.site, &config.key)?,
            value: VariableValue::compile(cx.context, cx.site, &config.value)?,
            duration,
        })
    }
}

impl Step for CacheStoreValue {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let section = run.section();
        let host = run.host();
        let failed = |message: String| {
            meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                message,
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            )
        };
        let key = match cache_key(&self.key, &host, meta, section) {
            Ok(key) => key,
            Err(flow) => return flow,
        };
        let value = match self.value.value(&host, meta, section) {
            Ok(value) => value,
            Err(flow) => return flow,
        };
        let duration = match &self.duration {
            DurationValue::Fixed(duration) => *duration,
            DurationValue::Computed(expression) => match expression.evaluate(&host) {
                Ok(gatehouse_expr::Value::Int(seconds)) => {
                    match u64::try_from(seconds).ok().filter(|s| *s <= MAX_DURATION_S) {
                        Some(seconds) => Duration::from_secs(seconds),
                        None => {
                            return failed(format!(
                                "cache-store-value: `duration` must be 0 to {MAX_DURATION_S} seconds, found {seconds}"
                            ));
                        }
                    }
                }
                Ok(other) => {
                    return failed(format!(
                        "cache-store-value: `duration` gave {}, not a number of seconds",
                        other.type_name()
                    ));
                }
                Err(failure) => return failure.into_flow(meta, section),
            },
        };
        let now = run.exec.facts.now;
        match run.exec.counters.values.put(&key, value, duration, now) {
            Ok(()) => Flow::Continue,
            Err(error) => failed(format!("cache-store-value: {error}")),
        }
    }
}

#[cfg(test)]
#[path = "cache_value_tests.rs"]
mod tests;
