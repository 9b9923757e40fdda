//! `set-status`: changes the response status (outbound, on-error, and inside
//! `return-response`).
//!
//! ```xml
//! <set-status code="401" reason="Unauthorized" />
//! ```
//!
//! `code` is required; `reason` may be left out (APIM's own snippets do), and then the
//! standard phrase of the code is sent. The reason phrase is sent over HTTP/1.1 only
//! (HTTP/2 and HTTP/3 have none). In inbound and backend a bare `set-status` has no effect on a response that
//! will come from the backend, so Gatehouse rejects it there: put it inside
//! `<return-response>` or in outbound.

use std::sync::Arc;

use http::StatusCode;

use super::status_code;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::pipeline::ResponseState;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<set-status>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    code: RawValue,
    reason: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            code: reader.required("code")?,
            reason: reader.optional("reason"),
        };
        reader.no_text()?;
        reader.no_children()?;
        Ok(config)
    }
}

/// Compiled `<set-status>`.
#[derive(Debug, Clone)]
pub(crate) struct SetStatus {
    pub(crate) status: StatusCode,
    pub(crate) reason: Option<Arc<str>>,
}

impl SetStatus {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let status = status_code(cx, site, &config.code, "code")?;
        let Some(reason) = &config.reason else {
            return Ok(Self {
                status,
                reason: None,
            });
        };
        let literal = cx.literal(site, reason)?;
        let text = literal.text.trim();
        if text.chars().any(char::is_control) {
            return Err(site.invalid(
                reason.position,
                "`reason` must not contain line breaks or control characters",
            ));
        }
        // The standard phrase needs no override; an empty one means "standard" too.
        let standard = status.canonical_reason().unwrap_or("");
        let reason = (!text.is_empty() && text != standard).then(|| Arc::from(text));
        Ok(Self { status, reason })
    }

    pub(crate) fn apply(&self, response: &mut ResponseState) {
        response.status = self.status;
        response.reason.clone_from(&self.reason);
    }
}

impl PolicyDefinition for SetStatus {
    const NAME: &'static str = "set-status";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        if matches!(cx.section, Inbound | Backend) {
            return Err(cx.site.not_supported(
                cx.position,
                format!(
                    "in the `{}` section <set-status> has no effect on the response the backend will send; \
                     put it inside <return-response>, or in outbound",
                    cx.section
                ),
            ));
        }
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for SetStatus {
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if let Some(response) = run.response.as_deref_mut() {
            self.apply(response);
        }
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_status_tests.rs"]
mod tests;
