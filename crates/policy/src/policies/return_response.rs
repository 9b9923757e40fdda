//! `return-response`: ends the request with a response built from its children
//! (inbound, backend, outbound, on-error).
//!
//! ```xml
//! <return-response>
//!     <set-status code="401" reason="Unauthorized" />
//!     <set-header name="WWW-Authenticate" exists-action="override">
//!         <value>Bearer error="invalid_token"</value>
//!     </set-header>
//!     <set-body>{"error":"unauthorized"}</set-body>
//! </return-response>
//! ```
//!
//! Without children the response is an empty `200 OK`, as in APIM. `set-body` takes
//! literal text (use CDATA for markup); its `template="liquid"` and
//! `response-variable-name` on `return-response` are not supported yet. `xsi-nil` and
//! `parse-date` are accepted and have no effect on literal text. The whole response
//! is built at compile time.

use bytes::Bytes;

use super::{set_header, set_status};
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Site};
use crate::pipeline::PolicyResponse;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<return-response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    status: Option<set_status::Config>,
    headers: Vec<set_header::Config>,
    body: Option<Body>,
}

/// Parsed `<set-body>` inside `<return-response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Body {
    text: Option<RawValue>,
    template: Option<RawValue>,
    xsi_nil: Option<RawValue>,
    parse_date: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.unsupported(
            "response-variable-name",
            " (it needs `send-request`, which is not implemented yet)",
        )?;
        reader.no_text()?;
        let mut config = Self {
            status: None,
            headers: Vec::new(),
            body: None,
        };
        let (mut status_seen, mut body_seen) = (false, false);
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "set-status" => {
                    reader.at_most_once(&mut status_seen, child)?;
                    config.status = Some(set_status::Config::parse(&mut child_reader)?);
                }
                "set-header" => config
                    .headers
                    .push(set_header::Config::parse(&mut child_reader)?),
                "set-body" => {
                    reader.at_most_once(&mut body_seen, child)?;
                    config.body = Some(Body::parse(&mut child_reader)?);
                }
                _ => {
                    return Err(
                        reader.unexpected_child(child, "<set-status>, <set-header> or <set-body>")
                    );
                }
            }
            child_reader.finish()?;
        }
        Ok(config)
    }
}

impl Body {
    fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
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

    fn compile(&self, site: Site<'_>, cx: &CompileContext<'_>) -> Result<Bytes, PolicyError> {
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
            Some(raw) => Ok(Bytes::from(cx.literal(site, raw)?.text)),
            None => Ok(Bytes::new()),
        }
    }
}

/// Compiled `<return-response>`.
#[derive(Debug)]
pub(crate) struct ReturnResponse {
    response: PolicyResponse,
}

impl ReturnResponse {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let mut response = PolicyResponse::empty(http::StatusCode::OK);
        if let Some(status) = &config.status {
            let status = set_status::SetStatus::compile(status, site, cx)?;
            response.status = status.status;
            response.reason = status.reason;
        }
        for header_config in &config.headers {
            let header = set_header::SetHeader::compile(header_config, site, cx)?;
            if header.is_computed() {
                return Err(site.not_supported(
                    header_config.position(),
                    "policy expressions in a <set-header> inside <return-response> are not supported yet by Gatehouse; set the header with a <set-header> in outbound or use a literal value",
                ));
            }
            header.apply(&mut response.headers);
        }
        if let Some(body) = &config.body {
            response.body = body.compile(site, cx)?;
        }
        Ok(Self { response })
    }

    /// The response to send (a cheap clone: the body is shared).
    pub(crate) fn response(&self) -> PolicyResponse {
        self.response.clone()
    }
}

impl PolicyDefinition for ReturnResponse {
    const NAME: &'static str = "return-response";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for ReturnResponse {
    fn apply(&self, _meta: &StepMeta, _run: &mut Run<'_, '_, '_>) -> Flow {
        Flow::Respond(Box::new(self.response()))
    }
}

#[cfg(test)]
#[path = "return_response_tests.rs"]
mod tests;
