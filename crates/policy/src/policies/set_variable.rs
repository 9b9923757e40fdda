//! `set-variable`: stores a value in `context.Variables` for later policies' expressions
//! (any section).
//!
//! ```xml
//! <set-variable name="isMobile" value="@(context.Request.Headers.GetValueOrDefault("User-Agent","").Contains("Mobile"))" />
//! <set-variable name="tier" value="gold" />
//! ```
//!
//! An expression's value is stored as it is (a `bool`, a number, a string, JSON); plain
//! text is stored as a string. The variable lives for the rest of the request.

use std::sync::Arc;

use gatehouse_expr::Value;

use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::context::CompileContext;
use crate::error::Site;
use crate::expression::{PolicyExpression, RequestHost, TextValue};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<set-variable>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    name: RawValue,
    value: RawValue,
}

/// Compiled `<set-variable>`.
#[derive(Debug)]
pub(crate) struct SetVariable {
    name: Arc<str>,
    value: VariableValue,
}

/// A value policies store (`set-variable`, `cache-store-value`, a lookup's default):
/// plain text as a string, or an expression's value as it is.
#[derive(Debug)]
pub(crate) enum VariableValue {
    Fixed(Value),
    Computed(PolicyExpression),
}

impl VariableValue {
    pub(crate) fn compile(
        cx: &CompileContext<'_>,
        site: Site<'_>,
        raw: &RawValue,
    ) -> Result<Self, PolicyError> {
        Ok(match cx.text_value(site, raw)? {
            TextValue::Fixed(text) => Self::Fixed(Value::string(&text.text)),
            TextValue::Computed(expression) => Self::Computed(expression),
        })
    }

    /// The value for this request; a failing expression fails it.
    pub(crate) fn value(
        &self,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<Value, Flow> {
        match self {
            Self::Fixed(value) => Ok(value.clone()),
            Self::Computed(expression) => expression
                .evaluate(host)
                .map_err(|failure| failure.into_flow(meta, section)),
        }
    }
}

impl PolicyDefinition for SetVariable {
    const NAME: &'static str = "set-variable";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        reader.no_text()?;
        Ok(Config {
            name: reader.required("name")?,
            value: reader.required("value")?,
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let name = cx.context.literal(cx.site, &config.name)?;
        let name = name.text.trim();
        if name.is_empty() {
            return Err(cx
                .site
                .invalid(config.name.position, "`name` must not be empty"));
        }
        Ok(Self {
            name: Arc::from(name),
            value: VariableValue::compile(cx.context, cx.site, &config.value)?,
        })
    }
}

impl Step for SetVariable {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let value = match self.value.value(&run.host(), meta, run.section()) {
            Ok(value) => value,
            Err(flow) => return flow,
        };
        run.request.variables.set(&self.name, value);
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_variable_tests.rs"]
mod tests;
