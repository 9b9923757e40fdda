//! `rewrite-uri`: replaces the path (and optionally the query) sent to the backend
//! (inbound).
//!
//! ```xml
//! <rewrite-uri template="/v2/stores/{storeId}?view=full" copy-unmatched-params="true" />
//! ```
//!
//! `{name}` (or `{*name}`) refers to a parameter of the operation's URL template, in its
//! path (`/stores/{storeId}`) or its query (`/search?q={term}`); that is checked at
//! compile time. The router hands over values *decoded*; each is encoded again for the
//! place it lands in, as APIM does (.NET's `Uri.EscapeDataString`: everything but
//! `A-Z a-z 0-9 - . _ ~` is percent-encoded). So a value can never add a path segment,
//! a query or a fragment: `..%2F..%2Fadmin` arrives as `..%2F..%2Fadmin`, `%3F` as `%3F`,
//! `%23` as `%23`. A catch-all (`{*path}`) keeps its `/` separators and encodes each
//! piece. A value that would make a whole path segment `.` or `..` is refused with
//! 400 (`InvalidUriParameter`) rather than sent: backends resolve such segments and
//! the request would reach a resource its route was not chosen for.
//!
//! With `copy-unmatched-params` (default true) the request's query parameters are
//! appended to the template's query, except those the operation's URL template
//! matched (`/get?a={b}`: `a` is not copied again), as APIM does. Characters of the
//! template itself that are not allowed in a URL are percent-encoded at compile time.

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::pipeline::RequestState;
use crate::reader::RawValue;
use crate::registry::prelude::*;

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

/// A piece of the template: literal text (already encoded), or a parameter of the
/// operation's URL template, and whether that parameter is a catch-all (`{*path}`:
/// its `/` separators are kept in a path).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Parameter { name: Box<str>, catch_all: bool },
}

/// The operation URL template's parameters and query keys, as `rewrite-uri` needs them.
#[derive(Debug, Default)]
struct OperationTemplate<'t> {
    /// Parameter names, and whether each is a catch-all (`{*path}`).
    parameters: Vec<(&'t str, bool)>,
    /// The query keys the template matches (`a` in `/get?a={b}` or `/get?a=1`).
    query_keys: Vec<&'t str>,
}

impl<'t> OperationTemplate<'t> {
    fn parse(template: &'t str) -> Self {
        let (path, query) = template.split_once('?').unwrap_or((template, ""));
        let mut parameters: Vec<(&str, bool)> = template_parameters(path)
            .into_iter()
            .map(|name| (name, false))
            .collect();
        // A catch-all is written `{*name}`; `template_parameters` trims the star.
        for (name, catch_all) in &mut parameters {
            *catch_all = path.contains(&format!("{{*{name}}}"));
        }
        parameters.extend(
            template_parameters(query)
                .into_iter()
                .map(|name| (name, false)),
        );
        let query_keys = query
            .split('&')
            .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key).trim())
            .filter(|key| !key.is_empty())
            .collect();
        Self {
            parameters,
            query_keys,
        }
    }

    fn is_catch_all(&self, name: &str) -> bool {
        self.parameters
            .iter()
            .any(|(known, catch_all)| *known == name && *catch_all)
    }
}

/// Compiled `<rewrite-uri>`.
#[derive(Debug)]
pub(crate) struct RewriteUri {
    path: Box<[Segment]>,
    query: Box<[Segment]>,
    copy_unmatched_params: bool,
    /// Query keys the operation's URL template matched: not copied again.
    matched_query_keys: Box<[Box<str>]>,
}

/// A `rewrite-uri` could not build a safe URL from the request's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DotSegment;

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
            .map(OperationTemplate::parse)
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
                if !known.parameters.iter().any(|(known, _)| *known == name) {
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
                segments.push(Segment::Parameter {
                    name: name.into(),
                    catch_all: known.is_catch_all(name),
                });
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
        if render_path(&path_segments, &[]).is_none() {
            return Err(site.invalid(
                position,
                "`template` must not contain `.` or `..` path segments",
            ));
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
            matched_query_keys: known.query_keys.iter().map(|&key| key.into()).collect(),
        })
    }

    /// Rewrites the request's path and query. `route_params` are the operation
    /// template's values, decoded. Fails, changing nothing, when a value would make a
    /// whole path segment `.` or `..`.
    pub(crate) fn apply(
        &self,
        route_params: &[(&str, &str)],
        request: &mut RequestState,
    ) -> Result<(), DotSegment> {
        let path = render_path(&self.path, route_params).ok_or(DotSegment)?;
        let mut query = String::new();
        for segment in &self.query {
            match segment {
                Segment::Literal(text) => query.push_str(text),
                Segment::Parameter { name, .. } => {
                    if let Some(value) = param(route_params, name) {
                        escape_data(&mut query, value);
                    }
                }
            }
        }
        if self.copy_unmatched_params && !request.query.is_empty() {
            for pair in request.query.split('&') {
                if pair.is_empty() || self.matched_by_template(pair) {
                    continue;
                }
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(pair);
            }
        }
        request.path = path;
        request.query = query;
        Ok(())
    }

    /// Whether the query pair `key=value` (raw) is one the operation's URL template
    /// matched. Keys compare form-decoded and ignoring ASCII case, as the router
    /// matches them.
    fn matched_by_template(&self, pair: &str) -> bool {
        if self.matched_query_keys.is_empty() {
            return false;
        }
        let raw_key = pair.split_once('=').map_or(pair, |(key, _)| key);
        let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
            .next()
            .map(|(key, _)| key.into_owned())
            .unwrap_or_default();
        self.matched_query_keys
            .iter()
            .any(|known| known.eq_ignore_ascii_case(&key))
    }
}

fn param<'v>(route_params: &[(&str, &'v str)], name: &str) -> Option<&'v str> {
    route_params
        .iter()
        .find(|(param, _)| *param == name)
        .map(|(_, value)| *value)
}

/// The rewritten path; `None` when a value makes a whole segment `.` or `..`.
fn render_path(parts: &[Segment], route_params: &[(&str, &str)]) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Segment::Literal(text) => out.push_str(text),
            Segment::Parameter { name, catch_all } => {
                let Some(value) = param(route_params, name) else {
                    continue;
                };
                if *catch_all {
                    for (index, piece) in value.split('/').enumerate() {
                        if index > 0 {
                            out.push('/');
                        }
                        escape_data(&mut out, piece);
                    }
                } else {
                    escape_data(&mut out, value);
                }
            }
        }
    }
    (!has_dot_segment(&out)).then_some(out)
}

/// Whether a rendered path has a `.` or `..` segment (values are escaped, so a dot is
/// always a literal dot here).
fn has_dot_segment(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// Appends `value` percent-encoded as .NET's `Uri.EscapeDataString` does: every byte of
/// its UTF-8 form except `A-Z a-z 0-9 - . _ ~`.
fn escape_data(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
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

impl PolicyDefinition for RewriteUri {
    const NAME: &'static str = "rewrite-uri";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for RewriteUri {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        match self.apply(run.exec.facts.route_params, run.request) {
            Ok(()) => Flow::Continue,
            Err(DotSegment) => meta.fail(
                run.section(),
                "InvalidUriParameter",
                "A URL template parameter's value would make a `.` or `..` path segment.",
                PolicyResponse::json_error(
                    http::StatusCode::BAD_REQUEST,
                    "A URL template parameter's value is not allowed in the backend path.",
                ),
            ),
        }
    }
}

#[cfg(test)]
#[path = "rewrite_uri_tests.rs"]
mod tests;
