//! `set-header`: adds, replaces or removes a header — of the request in inbound and
//! backend, of the response in outbound and on-error (and inside `return-response`).
//!
//! ```xml
//! <set-header name="X-Api" exists-action="override | skip | append | delete">
//!     <value>one</value>
//!     <value>two</value>
//! </set-header>
//! ```
//!
//! Several `<value>`s become one comma-separated value, as in APIM, except for headers
//! whose values may contain commas or dates (`Set-Cookie`, `User-Agent`, `Date`, …),
//! which get one header line per value. `append` adds new header lines rather than
//! editing the existing value; for list-valued headers the two mean the same. With no
//! `<value>`, `override`/`skip`/`append` set an empty value. `Connection`,
//! `Content-Length`, `Keep-Alive` and `Transfer-Encoding` cannot be set or removed.
//!
//! A `<value>` may be a policy expression (`@(context.Variables["tier"])`): it is
//! evaluated per request, and its text is checked as a header value then (control
//! characters fail the request with `ExpressionValueEvaluationFailure`).

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{ExistsAction, header_name, header_value, value_children};
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::expression::{ExpressionFailure, RequestHost, TextValue};
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// Parsed `<set-header>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    name: RawValue,
    exists_action: Option<RawValue>,
    values: Vec<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        Ok(Self {
            name: reader.required("name")?,
            exists_action: reader.optional("exists-action"),
            values: value_children(reader)?,
        })
    }
}

/// Headers APIM never joins with commas: their values contain commas or dates.
const ONE_LINE_PER_VALUE: &[&str] = &[
    "user-agent",
    "www-authenticate",
    "proxy-authenticate",
    "cookie",
    "set-cookie",
    "warning",
    "date",
    "expires",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "retry-after",
];

/// Headers APIM does not let policies touch: they belong to the connection.
const PROTECTED: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
];

/// Compiled `<set-header>`.
#[derive(Debug)]
pub(crate) struct SetHeader {
    name: HeaderName,
    action: ExistsAction,
    values: Box<[HeaderValue]>,
    /// Values with policy expressions, rendered per request (then `values` is empty).
    computed: Option<Box<[TextValue]>>,
}

impl SetHeader {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let name = header_name(cx, site, &config.name, "name")?;
        if PROTECTED.contains(&name.as_str()) {
            return Err(site.invalid(
                config.name.position,
                format!("the `{name}` header is managed by the gateway and cannot be set or removed by a policy"),
            ));
        }
        let action = ExistsAction::compile(cx, site, config.exists_action.as_ref())?;
        if config
            .values
            .iter()
            .any(|value| matches!(value.text, RawText::Expression(_)))
        {
            let computed = config
                .values
                .iter()
                .map(|value| cx.text_value(site, value))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Self {
                name,
                action,
                values: Box::default(),
                computed: Some(computed.into_boxed_slice()),
            });
        }
        let mut values = config
            .values
            .iter()
            .map(|value| header_value(cx, site, value))
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() {
            values.push(HeaderValue::from_static(""));
        }
        if values.len() > 1 && !ONE_LINE_PER_VALUE.contains(&name.as_str()) {
            values = vec![join(&values)];
        }
        Ok(Self {
            name,
            action,
            values: values.into_boxed_slice(),
            computed: None,
        })
    }

    /// Whether a value holds a policy expression (evaluated per request).
    pub(crate) fn is_computed(&self) -> bool {
        self.computed.is_some()
    }

    /// Applies the policy's fixed values to a header map (request or response).
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        apply_values(&self.name, self.action, &self.values, headers);
    }

    /// The values for this request: the expressions' results, checked and joined as
    /// fixed values are at load.
    fn render(&self, host: &RequestHost<'_>) -> Result<Vec<HeaderValue>, RenderError> {
        let Some(computed) = &self.computed else {
            return Ok(self.values.to_vec());
        };
        let mut values = Vec::with_capacity(computed.len());
        for value in computed {
            let text = value.render(host).map_err(RenderError::Expression)?;
            let mut header =
                HeaderValue::from_str(text.trim()).map_err(|_| RenderError::NotAHeaderValue)?;
            header.set_sensitive(value.is_secret());
            values.push(header);
        }
        if values.is_empty() {
            values.push(HeaderValue::from_static(""));
        }
        if values.len() > 1 && !ONE_LINE_PER_VALUE.contains(&self.name.as_str()) {
            values = vec![join(&values)];
        }
        Ok(values)
    }
}

impl SetHeader {
    /// Applies the policy to `headers` (not the request's or response's own: those of
    /// a response `return-response` builds), evaluating its expressions with `host`.
    pub(crate) fn apply_with(
        &self,
        host: &RequestHost<'_>,
        headers: &mut HeaderMap,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<(), Flow> {
        let values = self
            .render(host)
            .map_err(|error| self.failure(error, meta, section))?;
        apply_values(&self.name, self.action, &values, headers);
        Ok(())
    }

    fn failure(&self, error: RenderError, meta: &StepMeta, section: SectionKind) -> Flow {
        match error {
            RenderError::Expression(failure) => failure.into_flow(meta, section),
            RenderError::NotAHeaderValue => meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                format!(
                    "Expression evaluation failed. The value for the `{}` header is not a valid header value (control characters or line breaks).",
                    self.name
                ),
                PolicyResponse::json_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            ),
        }
    }
}

enum RenderError {
    Expression(ExpressionFailure),
    NotAHeaderValue,
}

fn apply_values(
    name: &HeaderName,
    action: ExistsAction,
    values: &[HeaderValue],
    headers: &mut HeaderMap,
) {
    let append = |headers: &mut HeaderMap| {
        for value in values {
            headers.append(name.clone(), value.clone());
        }
    };
    match action {
        ExistsAction::Override => {
            headers.remove(name);
            append(headers);
        }
        ExistsAction::Skip => {
            if !headers.contains_key(name) {
                append(headers);
            }
        }
        ExistsAction::Append => append(headers),
        ExistsAction::Delete => {
            headers.remove(name);
        }
    }
}

/// Joins values with `,` into one header value (sensitive if any part is).
fn join(values: &[HeaderValue]) -> HeaderValue {
    let mut bytes = Vec::new();
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(value.as_bytes());
    }
    let sensitive = values.iter().any(HeaderValue::is_sensitive);
    // Each part is a valid header value and `,` is allowed, so the join is valid too.
    let mut joined =
        HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| HeaderValue::from_static(""));
    joined.set_sensitive(sensitive);
    joined
}

impl PolicyDefinition for SetHeader {
    const NAME: &'static str = "set-header";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for SetHeader {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if self.computed.is_none() || self.action == ExistsAction::Delete {
            self.apply(run.headers_mut());
            return Flow::Continue;
        }
        match self.render(&run.host()) {
            Ok(values) => {
                apply_values(&self.name, self.action, &values, run.headers_mut());
                Flow::Continue
            }
            Err(error) => self.failure(error, meta, run.section()),
        }
    }
}

#[cfg(test)]
#[path = "set_header_tests.rs"]
mod tests;
