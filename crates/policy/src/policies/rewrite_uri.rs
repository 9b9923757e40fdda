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
//!
//! The template may be a policy expression: its value is read per request by the same
//! rules (a value that breaks them fails the request).

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::expression::{PolicyExpression, TextValue};
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
}

/// Compiled `<rewrite-uri>`.
#[derive(Debug)]
pub(crate) struct RewriteUri {
    template: TemplateSource,
    /// The operation URL template's parameters, and whether each is a catch-all: what
    /// a template computed per request may name.
    parameters: Box<[(Box<str>, bool)]>,
    /// The operation's URL template, for messages.
    operation_template: Option<Box<str>>,
    copy_unmatched_params: bool,
    /// Query keys the operation's URL template matched: not copied again.
    matched_query_keys: Box<[Box<str>]>,
}

/// A template known at load, or a policy expression whose value is one.
#[derive(Debug)]
enum TemplateSource {
    Fixed(Template),
    Computed(PolicyExpression),
}

/// A template, read: path and query pieces.
#[derive(Debug)]
struct Template {
    path: Box<[Segment]>,
    query: Box<[Segment]>,
}

/// Why a template cannot be used: the message for the policy's error.
#[derive(Debug)]
struct BadTemplate(String);

impl Template {
    /// Reads `text`: parameters must be the operation's (`parameters`), the path must
    /// not have `.` or `..` segments.
    fn read(
        text: &str,
        parameters: &[(Box<str>, bool)],
        operation_template: Option<&str>,
    ) -> Result<Self, BadTemplate> {
        let text = text.trim();
        if text.is_empty() {
            return Err(BadTemplate("`template` must not be empty".to_owned()));
        }
        if text.contains("://") {
            return Err(BadTemplate(
                "`template` is a path relative to the backend URL; to change the backend itself use <set-backend-service>"
                    .to_owned(),
            ));
        }
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        let segments = |part: &str, in_query: bool| -> Result<Vec<Segment>, BadTemplate> {
            let mut segments = Vec::new();
            let mut rest = part;
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}').map(|close| open + close) else {
                    return Err(BadTemplate(
                        "`template` has a `{` without a matching `}`".to_owned(),
                    ));
                };
                if open > 0 {
                    segments.push(Segment::Literal(encode(&rest[..open], in_query).into()));
                }
                let name = rest[open + 1..close].trim().trim_start_matches('*');
                let Some((_, catch_all)) = parameters.iter().find(|(known, _)| &**known == name)
                else {
                    return Err(BadTemplate(match operation_template {
                        Some(url_template) => format!(
                            "`{{{name}}}` is not a parameter of the operation's URL template `{url_template}`; rewrite-uri can only use its parameters"
                        ),
                        None => format!(
                            "`{{{name}}}` needs the operation's URL template parameters, but this pipeline is not compiled for an operation"
                        ),
                    }));
                };
                segments.push(Segment::Parameter {
                    name: name.into(),
                    catch_all: *catch_all,
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
            return Err(BadTemplate(
                "`template` must not contain `.` or `..` path segments".to_owned(),
            ));
        }
        Ok(Self {
            path: path_segments.into_boxed_slice(),
            query: segments(query, true)?.into_boxed_slice(),
        })
    }
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
        let operation_template = cx
            .operation()
            .map(|operation| operation.url_template.as_str());
        let known = operation_template
            .map(OperationTemplate::parse)
            .unwrap_or_default();
        let parameters: Box<[(Box<str>, bool)]> = known
            .parameters
            .iter()
            .map(|&(name, catch_all)| (name.into(), catch_all))
            .collect();
        let template = match cx.text_value(site, &config.template)? {
            TextValue::Fixed(text) => TemplateSource::Fixed(
                Template::read(&text.text, &parameters, operation_template)
                    .map_err(|BadTemplate(message)| site.invalid(position, message))?,
            ),
            TextValue::Computed(expression) => TemplateSource::Computed(expression),
        };
        Ok(Self {
            template,
            parameters,
            operation_template: operation_template.map(Into::into),
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
    fn rewrite(
        &self,
        template: &Template,
        route_params: &[(&str, &str)],
        request: &mut RequestState,
    ) -> Result<(), DotSegment> {
        let path = render_path(&template.path, route_params).ok_or(DotSegment)?;
        let mut query = String::new();
        for segment in &template.query {
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
        let computed;
        let template = match &self.template {
            TemplateSource::Fixed(template) => template,
            TemplateSource::Computed(expression) => {
                let text = match expression.text(&run.host()) {
                    Ok(text) => text,
                    Err(failure) => return failure.into_flow(meta, run.section()),
                };
                match Template::read(
                    &text,
                    &self.parameters,
                    self.operation_template.as_deref(),
                ) {
                    Ok(template) => {
                        computed = template;
                        &computed
                    }
                    Err(BadTemplate(message)) => {
                        return meta.fail(
                            run.section(),
                            "ExpressionValueEvaluationFailure",
                            format!(
                                "Expression evaluation failed. The rewrite-uri template it gave cannot be used: {message}"
                            ),
                            PolicyResponse::json_error(
                                http::StatusCode::INTERNAL_SERVER_ERROR,
                                "Internal server error",
                            ),
                        );
                    }
                }
            }
        };
        match self.rewrite(template, run.exec.facts.route_params, run.request) {
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
