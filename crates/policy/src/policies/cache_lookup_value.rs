//! `cache-lookup-value`: reads a value from the gateway's cache into a variable (any
//! section).
//!
//! ```xml
//! <cache-lookup-value key="@("token-" + context.Subscription.Id)" variable-name="token" default-value="none" />
//! ```
//!
//! `key` may be a policy expression. Found, the variable holds the value as it was
//! stored; not found (never stored, expired, or dropped to make room), it holds
//! `default-value` (which may be an expression) or, without one, is not set — as in
//! APIM, so `context.Variables.ContainsKey(...)` tells a miss. `caching-type` as in
//! `cache-store-value`.

use std::sync::Arc;

use super::set_variable::VariableValue;
use super::{cache_key, check_caching_type};
use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::TextValue;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<cache-lookup-value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    key: RawValue,
    variable_name: RawValue,
    default_value: Option<RawValue>,
    caching_type: Option<RawValue>,
}

/// Compiled `<cache-lookup-value>`.
#[derive(Debug)]
pub(crate) struct CacheLookupValue {
    key: TextValue,
    variable: Arc<str>,
    default: Option<VariableValue>,
}

impl PolicyDefinition for CacheLookupValue {
    const NAME: &'static str = "cache-lookup-value";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        reader.no_text()?;
        Ok(Config {
            key: reader.required("key")?,
            variable_name: reader.required("variable-name")?,
            default_value: reader.optional("default-value"),
            caching_type: reader.optional("caching-type"),
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        check_caching_type(cx.context, cx.site, config.caching_type.as_ref())?;
        let variable = cx.context.literal(cx.site, &config.variable_name)?;
        let variable = variable.text.trim();
        if variable.is_empty() {
            return Err(cx.site.invalid(
                config.variable_name.position,
                "`variable-name` must not be empty",
            ));
        }
        Ok(Self {
            key: cx.context.text_value(cx.site, &config.key)?,
            variable: Arc::from(variable),
            default: config
                .default_value
                .as_ref()
                .map(|raw| VariableValue::compile(cx.context, cx.site, raw))
                .transpose()?,
        })
    }
}

impl Step for CacheLookupValue {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let section = run.section();
        let host = run.host();
        let key = match cache_key(&self.key, &host, meta, section) {
            Ok(key) => key,
            Err(flow) => return flow,
        };
        let found = run.exec.counters.values.get(&key, run.exec.facts.now);
        let value = match (found, &self.default) {
            (Some(value), _) => value,
            (None, None) => return Flow::Continue,
            (None, Some(default)) => match default.value(&host, meta, section) {
                Ok(value) => value,
                Err(flow) => return flow,
            },
        };
        run.request.variables.set(&self.variable, value);
        Flow::Continue
    }
}
