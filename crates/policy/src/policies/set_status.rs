//! `set-status`: changes the response status (outbound, on-error, and inside
//! `return-response`).
//!
//! ```xml
//! <set-status code="401" reason="Unauthorized" />
//! ```
//!
//! `code` is required; `reason` may be left out (APIM's own snippets do), and then the
//! standard phrase of the code is sent. Either may be a policy expression (`code` must
//! give a number from 100 to 599, or its text); a bad value fails the request with
//! `ExpressionValueEvaluationFailure`. The reason phrase is sent over HTTP/1.1 only
//! (HTTP/2 and HTTP/3 have none). In inbound and backend a bare `set-status` has no effect on a response that
//! will come from the backend, so Gatehouse rejects it there: put it inside
//! `<return-response>` or in outbound.

use std::sync::Arc;

use gatehouse_expr::Value;
use http::StatusCode;

use super::status_code;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::expression::{PolicyExpression, RequestHost, TextValue};
use crate::reader::{RawText, RawValue};
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
#[derive(Debug)]
pub(crate) enum SetStatus {
    /// Both known at load.
    Fixed {
        status: StatusCode,
        reason: Option<Arc<str>>,
    },
    /// A policy expression in `code` or `reason`: computed per request.
    Computed {
        code: Code,
        reason: Option<TextValue>,
    },
}

/// `code`: known at load, or an expression giving it.
#[derive(Debug)]
pub(crate) enum Code {
    Fixed(StatusCode),
    Expression(PolicyExpression),
}

impl SetStatus {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let code = match (&config.code.text, cx.text_value(site, &config.code)) {
            (RawText::Expression(_), Ok(TextValue::Computed(expression))) => {
                Code::Expression(expression)
            }
            _ => Code::Fixed(status_code(cx, site, &config.code, "code")?),
        };
        let reason = match &config.reason {
            None => None,
            Some(raw) => match cx.text_value(site, raw)? {
                TextValue::Computed(expression) => Some(TextValue::Computed(expression)),
                TextValue::Fixed(literal) => {
                    if let Err(message) = check_reason(&literal.text) {
                        return Err(site.invalid(raw.position, message));
                    }
                    Some(TextValue::Fixed(literal))
                }
            },
        };
        Ok(match (code, reason) {
            (Code::Fixed(status), None) => Self::Fixed {
                status,
                reason: None,
            },
            (Code::Fixed(status), Some(TextValue::Fixed(literal))) => Self::Fixed {
                status,
                reason: reason_override(status, literal.text.trim()),
            },
            (code, reason) => Self::Computed { code, reason },
        })
    }

    /// The status and reason for this request.
    pub(crate) fn resolve(
        &self,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<(StatusCode, Option<Arc<str>>), Flow> {
        let (code, reason) = match self {
            Self::Fixed { status, reason } => return Ok((*status, reason.clone())),
            Self::Computed { code, reason } => (code, reason),
        };
        let failed = |message: String| {
            meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                format!("Expression evaluation failed. {message}"),
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            )
        };
        let status = match code {
            Code::Fixed(status) => *status,
            Code::Expression(expression) => {
                let value = expression
                    .evaluate(host)
                    .map_err(|failure| failure.into_flow(meta, section))?;
                let number = match &value {
                    Value::Int(number) => Some(*number),
                    Value::String(text) => text.trim().parse().ok(),
                    _ => None,
                };
                match number
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (100..=599).contains(n))
                    .and_then(|n| StatusCode::from_u16(n).ok())
                {
                    Some(status) => status,
                    None => {
                        return Err(failed(format!(
                            "<set-status> `code` gave {}, not a status code from 100 to 599.",
                            value.type_name()
                        )));
                    }
                }
            }
        };
        let reason = match reason {
            None => None,
            Some(value) => {
                let text = value
                    .render(host)
                    .map_err(|failure| failure.into_flow(meta, section))?;
                if let Err(message) = check_reason(&text) {
                    return Err(failed(format!("<set-status> {message}.")));
                }
                reason_override(status, text.trim())
            }
        };
        Ok((status, reason))
    }
}

/// A reason phrase goes on the status line: no line breaks or control characters.
fn check_reason(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_control) {
        return Err("`reason` must not contain line breaks or control characters");
    }
    Ok(())
}

/// The reason to send instead of the standard phrase, if any: the standard phrase, or
/// an empty one, needs no override.
fn reason_override(status: StatusCode, text: &str) -> Option<Arc<str>> {
    let standard = status.canonical_reason().unwrap_or("");
    (!text.is_empty() && text != standard).then(|| Arc::from(text))
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
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let (status, reason) = match self.resolve(&run.host(), meta, run.section()) {
            Ok(resolved) => resolved,
            Err(flow) => return flow,
        };
        if let Some(response) = run.response.as_deref_mut() {
            response.status = status;
            response.reason = reason;
        }
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_status_tests.rs"]
mod tests;
