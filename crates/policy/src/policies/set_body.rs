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
//! ```
//!
//! The body is literal text (use CDATA for markup) or a policy expression: its value
//! as text, JSON written as .NET writes it (indented), null as an empty body. The
//! gateway sends the new body with its length; `Content-Type` is left as it is (set it
//! with `set-header` when the type changes). `template="liquid"` is not supported
//! yet; `xsi-nil` and `parse-date` only concern Liquid templates, so they are checked
//! and have no effect on a plain body, as in APIM.

use bytes::Bytes;

use crate::body::BufferedBody;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Site};
use crate::expression::{PolicyExpression, RequestHost, TextValue};
use crate::reader::RawValue;
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

    pub(crate) fn compile(
        &self,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<BodyValue, PolicyError> {
        if let Some(raw) = &self.template {
            let resolved = cx.literal(site, raw)?;
            match resolved.text.trim().to_ascii_lowercase().as_str() {
                "none" => {}
                "liquid" => {
                    return Err(site.not_supported(
                        raw.position,
                        "Liquid templates in <set-body> are not supported yet by Gatehouse",
                    ));
                }
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
        cx.boolean_or(site, self.parse_date.as_ref(), "parse-date", true)?;
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

/// Compiled `<set-body>`.
#[derive(Debug)]
pub(crate) struct SetBody {
    body: BodyValue,
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
            body: config.compile(cx.site, cx.context)?,
        })
    }
}

impl Step for SetBody {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let bytes = match self.body.render(&run.host(), meta, run.section()) {
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
