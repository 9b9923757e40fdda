//! `set-status`: changes the response status (outbound, on-error, and inside
//! `return-response`).
//!
//! ```xml
//! <set-status code="401" reason="Unauthorized" />
//! ```
//!
//! Both attributes are required, as in APIM. The reason phrase is sent over HTTP/1.1
//! only. In inbound and backend a bare `set-status` has no effect on a response that
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

/// Parsed `<set-status>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    code: RawValue,
    reason: RawValue,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            code: reader.required("code")?,
            reason: reader.required("reason")?,
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
        let reason = cx.literal(site, &config.reason)?;
        let text = reason.text.trim();
        if text.chars().any(char::is_control) {
            return Err(site.invalid(
                config.reason.position,
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

#[cfg(test)]
#[path = "set_status_tests.rs"]
mod tests;
