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

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{ExistsAction, header_name, header_value, value_children};
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::reader::RawValue;
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
        })
    }

    /// Applies the policy to a header map (request or response).
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        match self.action {
            ExistsAction::Override => {
                headers.remove(&self.name);
                self.append(headers);
            }
            ExistsAction::Skip => {
                if !headers.contains_key(&self.name) {
                    self.append(headers);
                }
            }
            ExistsAction::Append => self.append(headers),
            ExistsAction::Delete => {
                headers.remove(&self.name);
            }
        }
    }

    fn append(&self, headers: &mut HeaderMap) {
        for value in &self.values {
            headers.append(self.name.clone(), value.clone());
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
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.headers_mut());
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "set_header_tests.rs"]
mod tests;
