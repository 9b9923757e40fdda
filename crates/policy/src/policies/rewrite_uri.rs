//! `rewrite-uri`: replaces the path (and optionally the query) sent to the backend
//! (inbound).
//!
//! ```xml
//! <rewrite-uri template="/v2/stores/{storeId}?view=full" copy-unmatched-params="true" />
//! ```
//!
//! `{name}` (or `{*name}`) refers to a parameter of the operation's URL template and is
//! replaced by its value as matched in the request path (still percent-encoded). Every
//! `{name}` must be a template parameter; that is checked at compile time. With
//! `copy-unmatched-params` (default true) the request's query string is appended to
//! the template's query. Gatehouse operation templates have no query part, so all of
//! the request's query parameters are "unmatched". Characters not allowed in a URL
//! are percent-encoded at compile time.

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::pipeline::RequestState;
use crate::reader::RawValue;

/// Parsed `<rewrite-uri>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    template: RawValue,
    copy_unmatched_params: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            template: reader.required("template")?,
            copy_unmatched_params: reader.optional("copy-unmatched-params"),
        };
        reader.no_text()?;
        reader.no_children()?;
        Ok(config)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Parameter(Box<str>),
}

/// Compiled `<rewrite-uri>`.
#[derive(Debug)]
pub(crate) struct RewriteUri {
    path: Box<[Segment]>,
    query: Box<[Segment]>,
    copy_unmatched_params: bool,
}

impl RewriteUri {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let position = config.template.position;
        let template = cx.literal(site, &config.template)?;
        let text = template.text.trim();
        if text.is_empty() {
            return Err(site.invalid(position, "`template` must not be empty"));
        }
        if text.contains("://") {
            return Err(site.invalid(
                position,
                "`template` is a path relative to the backend URL; to change the backend itself use <set-backend-service>",
            ));
        }
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        let operation_template = cx
            .operation()
            .map(|operation| operation.url_template.as_str());
        let known = operation_template
            .map(template_parameters)
            .unwrap_or_default();
        let segments = |part: &str, in_query: bool| -> Result<Vec<Segment>, PolicyError> {
            let mut segments = Vec::new();
            let mut rest = part;
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}').map(|close| open + close) else {
                    return Err(
                        site.invalid(position, "`template` has a `{` without a matching `}`")
                    );
                };
                if open > 0 {
                    segments.push(Segment::Literal(encode(&rest[..open], in_query).into()));
                }
                let name = rest[open + 1..close].trim().trim_start_matches('*');
                if !known.contains(&name) {
                    let message = match operation_template {
                        Some(url_template) => format!(
                            "`{{{name}}}` is not a parameter of the operation's URL template `{url_template}`; rewrite-uri can only use its parameters"
                        ),
                        None => format!(
                            "`{{{name}}}` needs the operation's URL template parameters, but this pipeline is not compiled for an operation"
                        ),
                    };
                    return Err(site.invalid(position, message));
                }
                segments.push(Segment::Parameter(name.into()));
                rest = &rest[close + 1..];
            }
            if !rest.is_empty() {
                segments.push(Segment::Literal(encode(rest, in_query).into()));
            }
            Ok(segments)
        };
        let mut path_segments = segments(path, false)?;
        if !matches!(path_segments.first(), Some(Segment::Literal(literal)) if literal.starts_with('/'))
        {
            path_segments.insert(0, Segment::Literal("/".into()));
        }
        Ok(Self {
            path: path_segments.into_boxed_slice(),
            query: segments(query, true)?.into_boxed_slice(),
            copy_unmatched_params: cx.boolean_or(
                site,
                config.copy_unmatched_params.as_ref(),
                "copy-unmatched-params",
                true,
            )?,
        })
    }

    /// Rewrites the request's path and query.
    pub(crate) fn apply(&self, route_params: &[(&str, &str)], request: &mut RequestState) {
        let path = render(&self.path, route_params);
        let mut query = render(&self.query, route_params);
        if self.copy_unmatched_params && !request.query.is_empty() {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&request.query);
        }
        request.path = path;
        request.query = query;
    }
}

fn render(segments: &[Segment], route_params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Parameter(name) => {
                if let Some((_, value)) = route_params.iter().find(|(param, _)| *param == &**name) {
                    out.push_str(value);
                }
            }
        }
    }
    out
}

/// The parameter names of an operation URL template (`/users/{id}/files/{*path}`).
pub(crate) fn template_parameters(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|close| open + close) else {
            break;
        };
        names.push(rest[open + 1..close].trim().trim_start_matches('*'));
        rest = &rest[close + 1..];
    }
    names
}

/// Percent-encodes what may not appear literally in a path (or query).
fn encode(text: &str, in_query: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let allowed = byte.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/%".contains(&byte)
            || (in_query && byte == b'?');
        if allowed {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
#[path = "rewrite_uri_tests.rs"]
mod tests;
