//! `set-method`: changes the HTTP method sent to the backend (inbound).
//!
//! ```xml
//! <set-method>POST</set-method>
//! ```
//!
//! APIM also allows it in on-error, where it only matters to `send-request`; Gatehouse
//! rejects it there until `send-request` exists.

use http::Method;

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<set-method>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    method: Option<RawValue>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.no_children()?;
        Ok(Self {
            method: reader.text(),
            position: reader.element.position,
        })
    }
}

/// Compiled `<set-method>`.
#[derive(Debug)]
pub(crate) struct SetMethod {
    method: Method,
}

impl SetMethod {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let Some(raw) = &config.method else {
            return Err(site.err(
                config.position,
                ErrorKind::Missing,
                "the method is missing; write it as the element's text, e.g. <set-method>POST</set-method>",
            ));
        };
        let resolved = cx.literal(site, raw)?;
        let method = Method::from_bytes(resolved.text.trim().as_bytes()).map_err(|_| {
            site.invalid(
                raw.position,
                format!("{} is not an HTTP method", resolved.shown()),
            )
        })?;
        Ok(Self { method })
    }

    /// The method to send.
    pub(crate) fn method(&self) -> &Method {
        &self.method
    }
}

impl PolicyDefinition for SetMethod {
    const NAME: &'static str = "set-method";
    const SECTIONS: &'static [SectionKind] = &[Inbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        if cx.section == OnError {
            return Err(cx.site.not_supported(
                cx.position,
                "<set-method> in on-error only matters to `send-request`, which is not supported yet by Gatehouse",
            ));
        }
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for SetMethod {
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        run.request.method = self.method().clone();
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_method_tests.rs"]
mod tests;
