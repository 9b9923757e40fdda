//! `set-body`: replaces the request body (inbound, backend) or the response body
//! (outbound, on-error); also the body of `return-response`.
//!
//! ```xml
//! <set-body>@{
//!     var body = context.Request.Body.As<JObject>(preserveContent: true);
//!     body["source"] = "gateway";
//!     return body.ToString();
//! }</set-body>
//! <set-body><![CDATA[{"status":"accepted"}]]></set-body>
//! <set-body template="liquid">{"id":"{{ body.order.id }}"}</set-body>
//! ```
//!
//! The body is literal text (use CDATA for markup), a policy expression (its value as
//! text, JSON written as .NET writes it (indented), null as an empty body), or with
//! `template="liquid"` a Liquid template ([`crate::liquid`]) over the message's body
//! and the request's context. The gateway sends the new body with its length;
//! `Content-Type` is left as it is (set it with `set-header` when the type changes).
//! `xsi-nil` and `parse-date` only concern Liquid templates, so they are checked and
//! have no effect on a plain body, as in APIM. Inside `return-response` and
//! `send-request` a `<set-body>` is literal text or an expression only.

use bytes::Bytes;

use crate::body::BufferedBody;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Site};
use crate::expression::{PolicyExpression, RequestHost, TextValue};
use crate::liquid::{LiquidOptions, LiquidTemplate};
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// Parsed `<set-body>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    text: Option<RawValue>,
    template: Option<RawValue>,
    xsi_nil: Option<RawValue>,
    parse_date: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        if let Some(child) = reader.element.children.first() {
            return Err(reader.site.err(
                child.position,
                ErrorKind::NotSupported,
                "XML markup inside <set-body> is not supported yet; wrap the body in <![CDATA[ ... ]]>",
            ));
        }
        Ok(Self {
            text: reader.text(),
            template: reader.optional("template"),
            xsi_nil: reader.optional("xsi-nil"),
            parse_date: reader.optional("parse-date"),
        })
    }

    /// The body of a `<set-body>` inside another policy (`return-response`,
    /// `send-request`): literal text or an expression; a Liquid template is refused.
    pub(crate) fn compile(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<BodyValue, PolicyError> {
        let options = self.options(site, cx)?;
        if let (Some(_), Some(raw)) = (options, &self.template) {
            return Err(site.not_supported(
                raw.position,
                "Liquid templates are supported in a <set-body> policy of its own, not in a <set-body> inside another policy (APIM renders them there against an empty body)",
            ));
        }
        self.compile_plain(site, cx)
    }

    /// The checked attributes: Liquid's options when `template="liquid"`.
    fn options(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Option<LiquidOptions>, PolicyError> {
        let mut liquid = false;
        if let Some(raw) = &self.template {
            let resolved = cx.literal(site, raw)?;
            match resolved.text.trim().to_ascii_lowercase().as_str() {
                "none" => {}
                "liquid" => liquid = true,
                _ => {
                    return Err(site.invalid(
                        raw.position,
                        format!(
                            "<set-body>: `template` must be `liquid` or `none`, found {}",
                            resolved.shown()
                        ),
                    ));
                }
            }
        }
        // `xsi-nil` says how XML elements marked `xsi:nil="true"` read; a template binds
        // JSON bodies only (an XML body fails the request with a clear message), so it is
        // checked and has no effect, as in APIM for a JSON body.
        if let Some(raw) = &self.xsi_nil {
            let resolved = cx.literal(site, raw)?;
            if !matches!(resolved.text.trim(), "blank" | "null") {
                return Err(site.invalid(
                    raw.position,
                    format!(
                        "<set-body>: `xsi-nil` must be `blank` or `null`, found {}",
                        resolved.shown()
                    ),
                ));
            }
        }
        let parse_date = cx.boolean_or(site, self.parse_date.as_ref(), "parse-date", true)?;
        Ok(liquid.then_some(LiquidOptions { parse_date }))
    }

    /// A `<set-body>` policy's body: literal text, an expression or a Liquid template.
    fn compile_step(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
        section: SectionKind,
    ) -> Result<StepBody, PolicyError> {
        let Some(options) = self.options(site, cx)? else {
            return self.compile_plain(site, cx).map(StepBody::Plain);
        };
        let Some(raw) = &self.text else {
            return Ok(StepBody::Plain(BodyValue::Fixed(Bytes::new())));
        };
        let text = match &raw.text {
            RawText::Literal(text) => text,
            RawText::Expression(expression) | RawText::Mixed(expression) => {
                return Err(site.invalid(
                    expression.position,
                    "a Liquid template is text with `{{ }}` and `{% %}` markup; it cannot hold a policy expression (`@(...)`, `@{...}`)",
                ));
            }
        };
        let (text, secret) = substitute_known_named_values(site, cx, text, raw.position)?;
        let template =
            LiquidTemplate::compile(site, &text, raw.position, section, options, secret)?;
        cx.note_reads(template.context_reads());
        Ok(StepBody::Liquid(Box::new(template)))
    }

    fn compile_plain(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<BodyValue, PolicyError> {
        match &self.text {
            Some(raw) => match cx.text_value(site, raw)? {
                TextValue::Fixed(text) => Ok(BodyValue::Fixed(Bytes::from(text.text))),
                TextValue::Computed(expression) => Ok(BodyValue::Computed(expression)),
            },
            None => Ok(BodyValue::Fixed(Bytes::new())),
        }
    }
}

/// A body as compiled: fixed at load, or computed per request.
#[derive(Debug)]
pub(crate) enum BodyValue {
    Fixed(Bytes),
    /// A policy expression: its value as text (JSON as .NET writes it).
    Computed(PolicyExpression),
}

impl BodyValue {
    /// The body for this request.
    pub(crate) fn render(
        &self,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<Bytes, Flow> {
        match self {
            Self::Fixed(bytes) => Ok(bytes.clone()),
            Self::Computed(expression) => match expression.text(host) {
                Ok(text) => Ok(Bytes::copy_from_slice(text.as_bytes())),
                Err(failure) => Err(failure.into_flow(meta, section)),
            },
        }
    }
}

/// `{{name}}` references to named values that exist, substituted (APIM substitutes
/// named values first); any other `{{ ... }}` is Liquid's. Also whether a secret one
/// went in.
fn substitute_known_named_values(
    site: Site<'_>,
    cx: &CompileContext<'_>,
    text: &str,
    position: crate::error::Position,
) -> Result<(String, bool), PolicyError> {
    let mut out = String::with_capacity(text.len());
    let mut secret = false;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let reference = &rest[start..start + 2 + end + 2];
        out.push_str(&rest[..start]);
        match cx.substitute(site, reference, position) {
            Ok(resolved) if resolved.text != reference => {
                secret |= resolved.secret;
                out.push_str(&resolved.text);
            }
            Ok(_) => out.push_str(reference),
            Err(error) if error.kind == ErrorKind::UnknownNamedValue => out.push_str(reference),
            Err(error) => return Err(error),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok((out, secret))
}

/// What a `<set-body>` policy sets.
#[derive(Debug)]
enum StepBody {
    Plain(BodyValue),
    Liquid(Box<LiquidTemplate>),
}

/// Compiled `<set-body>`.
#[derive(Debug)]
pub(crate) struct SetBody {
    body: StepBody,
}

impl PolicyDefinition for SetBody {
    const NAME: &'static str = "set-body";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Self {
            body: config.compile_step(cx.site, cx.context, cx.section)?,
        })
    }
}

impl Step for SetBody {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let rendered = match &self.body {
            StepBody::Plain(body) => body.render(&run.host(), meta, run.section()),
            StepBody::Liquid(template) => template.render(&run.host()).map_err(|failure| {
                meta.fail(
                    run.section(),
                    "ExpressionValueEvaluationFailure",
                    format!("set-body: {} (template at {})", failure.0, meta.origin),
                    PolicyResponse::json_error(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal server error",
                    ),
                )
            }),
        };
        let bytes = match rendered {
            Ok(bytes) => bytes,
            Err(flow) => return flow,
        };
        let body = Some(BufferedBody::new(bytes));
        match &mut run.response {
            Some(response) => response.body = body,
            None => run.request.body = body,
        }
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_body_tests.rs"]
mod tests;
