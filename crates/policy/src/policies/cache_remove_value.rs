//! `cache-remove-value`: drops a value from the gateway's cache (any section).
//!
//! ```xml
//! <cache-remove-value key="@("token-" + context.Subscription.Id)" />
//! ```
//!
//! `key` may be a policy expression; a key with no value is not an error.
//! `caching-type` as in `cache-store-value`.

use super::{cache_key, check_caching_type};
use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::TextValue;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<cache-remove-value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    key: RawValue,
    caching_type: Option<RawValue>,
}

/// Compiled `<cache-remove-value>`.
#[derive(Debug)]
pub(crate) struct CacheRemoveValue {
    key: TextValue,
}

impl PolicyDefinition for CacheRemoveValue {
    const NAME: &'static str = "cache-remove-value";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        reader.no_text()?;
        Ok(Config {
            key: reader.required("key")?,
            caching_type: reader.optional("caching-type"),
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        check_caching_type(cx.context, cx.site, config.caching_type.as_ref())?;
        Ok(Self {
            key: cx.context.text_value(cx.site, &config.key)?,
        })
    }
}

impl Step for CacheRemoveValue {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        match cache_key(&self.key, &run.host(), meta, run.section()) {
            Ok(key) => {
                run.exec.counters.values.remove(&key);
                Flow::Continue
            }
            Err(flow) => flow,
        }
    }
}
