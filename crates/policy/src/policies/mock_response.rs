//! `mock-response`: answers with the operation's documented example instead of calling
//! the backend (inbound, outbound, on-error).
//!
//! ```xml
//! <mock-response status-code="200" content-type="application/json" />
//! ```
//!
//! `status-code` defaults to 200. The example is the one documented for that status
//! and content type in the operation's responses (the first representation with an
//! example when `content-type` is not given); without one the body is empty. The
//! response is chosen at compile time. APIM can also generate a sample from a schema;
//! Gatehouse operations carry examples only.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};

use super::status_code;
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::pipeline::PolicyResponse;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<mock-response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    status_code: Option<RawValue>,
    content_type: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            status_code: reader.optional("status-code"),
            content_type: reader.optional("content-type"),
        };
        reader.no_text()?;
        reader.no_children()?;
        Ok(config)
    }
}

/// Compiled `<mock-response>`.
#[derive(Debug)]
pub(crate) struct MockResponse {
    response: PolicyResponse,
}

impl MockResponse {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let status = match &config.status_code {
            Some(raw) => status_code(cx, site, raw, "status-code")?,
            None => StatusCode::OK,
        };
        let content_type = config
            .content_type
            .as_ref()
            .map(|raw| {
                cx.literal(site, raw)
                    .map(|resolved| (raw.position, resolved))
            })
            .transpose()?;
        let documented = cx.operation().and_then(|operation| {
            operation
                .responses
                .iter()
                .find(|response| response.status_code == status.as_u16())
        });
        let representation = documented.and_then(|response| match &content_type {
            Some((_, wanted)) => response
                .representations
                .iter()
                .find(|representation| same_media_type(&representation.content_type, &wanted.text)),
            None => response
                .representations
                .iter()
                .find(|representation| representation.example.is_some())
                .or_else(|| response.representations.first()),
        });
        let mut response = PolicyResponse::empty(status);
        let media_type = match (&content_type, representation) {
            (Some((position, resolved)), _) => Some((*position, resolved.text.trim().to_owned())),
            (None, Some(representation)) => {
                Some((site_position(config), representation.content_type.clone()))
            }
            (None, None) => None,
        };
        if let Some((position, media_type)) = media_type {
            let value = HeaderValue::from_str(&media_type).map_err(|_| {
                site.invalid(
                    position,
                    format!("`content-type` `{media_type}` is not a valid header value"),
                )
            })?;
            response.headers.insert(CONTENT_TYPE, value);
        }
        if let Some(example) =
            representation.and_then(|representation| representation.example.as_ref())
        {
            response.body = Bytes::from(example.clone());
        }
        Ok(Self { response })
    }

    /// The response to send (a cheap clone: the body is shared).
    pub(crate) fn response(&self) -> PolicyResponse {
        self.response.clone()
    }
}

fn site_position(config: &Config) -> crate::error::Position {
    config
        .status_code
        .as_ref()
        .map(|raw| raw.position)
        .unwrap_or_default()
}

/// Compares media types without parameters, ignoring case.
fn same_media_type(a: &str, b: &str) -> bool {
    let essence = |media_type: &str| {
        media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    essence(a) == essence(b)
}

impl PolicyDefinition for MockResponse {
    const NAME: &'static str = "mock-response";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for MockResponse {
    fn apply(&self, _meta: &StepMeta, _run: &mut Run<'_, '_, '_>) -> Flow {
        Flow::Respond(Box::new(self.response()))
    }
}

#[cfg(test)]
#[path = "mock_response_tests.rs"]
mod tests;
