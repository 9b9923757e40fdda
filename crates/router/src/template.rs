//! Operation URL templates as APIM writes them: `/users/{id}`, `/files/{name}.json`,
//! `/files/{*path}`, `/*`, `/search?q={q}&type=user`.
//!
//! A template is parsed once into segments. The routing table indexes the segments in
//! a trie; [`Template::capture`] walks one template on its own (the table calls it for
//! the winning operation, to pull out the parameter values).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::text::{Norm, Normalized, decode_into, eq_normalized, normalize, split_at_byte};
use crate::{Params, PathCase, TemplateError};

/// The most path segments a template may have. Matching recurses once per segment, so
/// this also bounds the stack a lookup uses.
pub const MAX_TEMPLATE_SEGMENTS: usize = 64;

/// A parsed operation URL template.
///
/// # Syntax
///
/// - The path part is split on `/`; a leading `/` is optional and one trailing `/` is
///   ignored (`/users/` is `/users`). Empty segments (`//`) are rejected.
/// - A segment is literal text (percent-escapes allowed, compared decoded), a parameter
///   `{id}` (one non-empty segment), or a mix such as `{name}.json`, `v{major}.{minor}`
///   (parameters separated by literal text; see [`Template::capture`] for how it splits).
/// - The last segment may be a catch-all: `{*rest}` captures the rest of the path as
///   `rest`, `*` matches it without capturing. Both also match nothing (`/files/{*p}`
///   matches `/files`).
/// - After `?`, `&`-separated `name={param}` parts require the query parameter `name`
///   and capture its value as `param` (APIM's `MatchedParameters`); `name=value` parts
///   require that exact value. Other query parameters are ignored.
#[derive(Clone)]
pub struct Template {
    source: Box<str>,
    segments: Box<[Segment]>,
    tail: Tail,
    query: Box<[QueryPart]>,
    /// How many parameters, and the length of their names: sizes the [`Params`] buffer.
    param_count: usize,
    names_len: usize,
}

/// One path segment of a template.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    /// Literal text, decoded (not case-folded).
    Literal(Box<[u8]>),
    /// A whole-segment parameter.
    Param(Arc<str>),
    /// Parameters and literal text within one segment.
    Pattern(Pattern),
}

/// What follows the last segment.
#[derive(Debug, Clone)]
pub(crate) enum Tail {
    /// Nothing: the path must end there.
    Exact,
    /// A catch-all, capturing under the name when it has one.
    CatchAll(Option<Arc<str>>),
}

/// A segment mixing literal text and parameters: `{name}.json`, `v{major}.{minor}`.
///
/// Invariant (kept by the parser): at least one parameter and one literal, and no two
/// parameters next to each other.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pieces: Box<[Piece]>,
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(Box<[u8]>),
    Param(Arc<str>),
}

/// One `name=…` part of a template's query.
#[derive(Debug, Clone)]
struct QueryPart {
    /// The query key, form-decoded (not case-folded).
    key: Box<[u8]>,
    value: QueryValue,
}

#[derive(Debug, Clone)]
enum QueryValue {
    Param(Arc<str>),
    Literal(Box<[u8]>),
}

// === impl Template ===

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    ///
    /// What is wrong and where: unbalanced braces, bad or duplicate parameter names, a
    /// catch-all that is not last, `{a}{b}`, `//`, a `#`, a malformed query part.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if let Some(position) = text.find('#') {
            return Err(TemplateError::Fragment { position });
        }
        let (path, query) = match text.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (text, None),
        };
        let mut offset = 0;
        let path = match path.strip_prefix('/') {
            Some(rest) => {
                offset = 1;
                rest
            }
            None => path,
        };
        let path = path.strip_suffix('/').unwrap_or(path);

        let mut segments = Vec::new();
        let mut tail = Tail::Exact;
        if !path.is_empty() {
            let count = path.split('/').count();
            if count > MAX_TEMPLATE_SEGMENTS {
                return Err(TemplateError::TooManySegments {
                    max: MAX_TEMPLATE_SEGMENTS,
                });
            }
            for (position, raw) in path.split('/').enumerate() {
                let is_last = position + 1 == count;
                match parse_segment(raw, offset)? {
                    Parsed::Segment(segment) => segments.push(segment),
                    Parsed::CatchAll(name) if is_last => tail = Tail::CatchAll(name),
                    Parsed::CatchAll(_) => return Err(TemplateError::CatchAllNotLast),
                }
                offset += raw.len() + 1;
            }
        }
        let query = match query {
            Some(query) => parse_query(query)?,
            None => Vec::new(),
        };
        let mut template = Self {
            source: text.into(),
            segments: segments.into_boxed_slice(),
            tail,
            query: query.into_boxed_slice(),
            param_count: 0,
            names_len: 0,
        };
        template.check_unique_names()?;
        template.param_count = template.params().count();
        template.names_len = template.params().map(str::len).sum();
        Ok(template)
    }

    fn check_unique_names(&self) -> Result<(), TemplateError> {
        let names: Vec<&str> = self.params().collect();
        for (position, name) in names.iter().enumerate() {
            if names[..position]
                .iter()
                .any(|earlier| earlier.eq_ignore_ascii_case(name))
            {
                return Err(TemplateError::DuplicateParam {
                    name: (*name).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The names of all parameters in capture order: path parameters, the named
    /// catch-all, then query parameters.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.path_params().chain(self.query_params())
    }

    /// The names of the parameters bound from the path, the named catch-all included.
    pub fn path_params(&self) -> impl Iterator<Item = &str> {
        let segments = self.segments.iter().flat_map(|segment| {
            let names: Box<dyn Iterator<Item = &str>> = match segment {
                Segment::Literal(_) => Box::new(std::iter::empty()),
                Segment::Param(name) => Box::new(std::iter::once(&**name)),
                Segment::Pattern(pattern) => Box::new(pattern.names()),
            };
            names
        });
        let tail = match &self.tail {
            Tail::CatchAll(Some(name)) => Some(&**name),
            Tail::CatchAll(None) | Tail::Exact => None,
        };
        segments.chain(tail)
    }

    /// The names of the parameters bound from the query (`q` in `/search?query={q}`).
    pub fn query_params(&self) -> impl Iterator<Item = &str> {
        self.query.iter().filter_map(|part| match &part.value {
            QueryValue::Param(name) => Some(&**name),
            QueryValue::Literal(_) => None,
        })
    }

    /// Whether the template ends in a catch-all (`{*rest}` or `*`).
    pub fn has_catch_all(&self) -> bool {
        matches!(self.tail, Tail::CatchAll(_))
    }

    /// Matches this template alone against a path relative to the API (`/users/42`,
    /// optionally followed by `?query`) and returns the parameter values.
    ///
    /// Parameter values are percent-decoded. In a mixed segment the parameters are
    /// filled right to left, each literal matching at its last occurrence, as ASP.NET
    /// does: `{name}.{ext}` splits `a.b.json` into `a.b` and `json`. Every parameter
    /// gets at least one byte.
    pub fn capture(&self, path_and_query: &str, case: PathCase) -> Option<Params> {
        let (path, query) = split_query(path_and_query);
        self.capture_parts(path, query, case.folds())
    }

    /// [`Template::capture`] on a path already split from its query.
    pub(crate) fn capture_parts(
        &self,
        path: &str,
        query: Option<&str>,
        fold: bool,
    ) -> Option<Params> {
        let full = path.strip_prefix('/').unwrap_or(path);
        let mut rest = segments_of(full);
        let mut consumed = 0;
        // Values are no longer than the raw text they are decoded from, so this is the
        // only allocation of the text buffer.
        let mut params = Params::with_capacity(
            self.param_count,
            self.names_len + path.len() + query.map_or(0, str::len),
        );
        let mut found = Vec::new();
        for segment in &self.segments {
            let (raw, next) = split_segment(rest?);
            match segment {
                Segment::Literal(literal) => {
                    if !eq_normalized(raw.as_bytes(), literal, Norm::path(fold)) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if raw.is_empty() {
                        return None;
                    }
                    params.push_with(name, |out| decode_into(out, raw, Norm::path(false)));
                }
                Segment::Pattern(pattern) => {
                    let decoded: Cow<'_, [u8]> = if raw.contains('%') {
                        Cow::Owned(normalize(raw.as_bytes(), Norm::path(false)))
                    } else {
                        Cow::Borrowed(raw.as_bytes())
                    };
                    found.clear();
                    if !pattern.split(&decoded, fold, |name, range| {
                        found.push((name, range));
                    }) {
                        return None;
                    }
                    // `split` reports right to left.
                    for (name, range) in found.iter().rev() {
                        let value = decoded.get(range.clone()).unwrap_or_default();
                        params.push_with(name, |out| out.push_str(&String::from_utf8_lossy(value)));
                    }
                }
            }
            consumed += raw.len() + 1;
            rest = next;
        }
        match &self.tail {
            Tail::Exact if rest.is_some() => return None,
            Tail::Exact | Tail::CatchAll(None) => {}
            Tail::CatchAll(Some(name)) => {
                // The untrimmed remainder: a trailing `/` is part of the captured path.
                let remainder = full.get(consumed..).unwrap_or("");
                params.push_with(name, |out| decode_into(out, remainder, Norm::path(false)));
            }
        }
        if !self.query_matches(query, fold) {
            return None;
        }
        for part in &self.query {
            if let QueryValue::Param(name) = &part.value {
                let value = query_values(query, &part.key, fold).next()?;
                params.push_with(name, |out| decode_into(out, value, Norm::form(false)));
            }
        }
        Some(params)
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub(crate) const fn tail(&self) -> &Tail {
        &self.tail
    }

    /// How many query constraints the template has: more is more specific.
    pub(crate) fn query_len(&self) -> usize {
        self.query.len()
    }

    /// Whether `query` has every parameter (and literal value) the template requires.
    pub(crate) fn query_matches(&self, query: Option<&str>, fold: bool) -> bool {
        self.query.iter().all(|part| {
            let mut values = query_values(query, &part.key, fold);
            match &part.value {
                QueryValue::Param(_) => values.next().is_some(),
                QueryValue::Literal(literal) => {
                    values.any(|value| eq_normalized(value.as_bytes(), literal, Norm::form(false)))
                }
            }
        })
    }

    /// A key equal for two templates exactly when they match the same requests: names
    /// left out, literals folded when matching folds, query parts in a fixed order.
    pub(crate) fn shape(&self, fold: bool) -> Vec<u8> {
        let fold_bytes = |bytes: &[u8]| -> Vec<u8> {
            if fold {
                bytes.to_ascii_lowercase()
            } else {
                bytes.to_vec()
            }
        };
        let mut shape = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    shape.push(b'l');
                    shape.extend(fold_bytes(literal));
                }
                Segment::Param(_) => shape.push(b'p'),
                Segment::Pattern(pattern) => {
                    shape.push(b'm');
                    shape.extend(pattern.shape(fold));
                }
            }
            shape.push(0);
        }
        shape.push(match self.tail {
            Tail::Exact => b'e',
            Tail::CatchAll(_) => b'c',
        });
        let mut parts: Vec<Vec<u8>> = self
            .query
            .iter()
            .map(|part| {
                let mut bytes = fold_bytes(&part.key);
                bytes.push(0);
                match &part.value {
                    QueryValue::Param(_) => bytes.push(b'p'),
                    QueryValue::Literal(literal) => {
                        bytes.push(b'l');
                        bytes.extend_from_slice(literal);
                    }
                }
                bytes
            })
            .collect();
        parts.sort();
        for part in parts {
            shape.push(0);
            shape.extend(part);
        }
        shape
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

// === impl Pattern ===

impl Pattern {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Param(name) => Some(&**name),
            Piece::Literal(_) => None,
        })
    }

    /// How much literal text the pattern has: more is more specific.
    pub(crate) fn literal_len(&self) -> usize {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Literal(literal) => literal.len(),
                Piece::Param(_) => 0,
            })
            .sum()
    }

    /// A key equal for two patterns exactly when they match the same segments.
    pub(crate) fn shape(&self, fold: bool) -> Vec<u8> {
        let mut shape = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(literal) if fold => {
                    shape.push(b'l');
                    shape.extend(literal.to_ascii_lowercase());
                }
                Piece::Literal(literal) => {
                    shape.push(b'l');
                    shape.extend_from_slice(literal);
                }
                Piece::Param(_) => shape.push(b'p'),
            }
            shape.push(0);
        }
        shape
    }

    /// Whether the raw (still percent-encoded) segment matches. Does not allocate for
    /// segments up to 256 bytes.
    pub(crate) fn matches_raw(&self, raw: &str, fold: bool) -> bool {
        let raw = raw.as_bytes();
        if !raw.contains(&b'%') {
            return self.split(raw, fold, |_, _| {});
        }
        let mut buffer = [0_u8; 256];
        if raw.len() > buffer.len() {
            return self.split(&normalize(raw, Norm::path(false)), fold, |_, _| {});
        }
        // Decoding never lengthens the text, so it fits.
        let mut len = 0;
        for (slot, byte) in buffer
            .iter_mut()
            .zip(Normalized::new(raw, Norm::path(false)))
        {
            *slot = byte;
            len += 1;
        }
        self.split(&buffer[..len], fold, |_, _| {})
    }

    /// Matches the decoded segment `text` and reports each parameter's byte range, right
    /// to left. Reports may precede a failure; callers keep them only on `true`.
    ///
    /// Right to left, each literal taken at its last occurrence that leaves every
    /// parameter at least one byte. This finds a split whenever one exists: taking the
    /// last occurrence leaves the most room for the pieces to its left.
    fn split<'p>(
        &'p self,
        text: &[u8],
        fold: bool,
        mut report: impl FnMut(&'p Arc<str>, Range<usize>),
    ) -> bool {
        let pieces = &*self.pieces;
        let (mut low, mut high) = (0, text.len());
        let mut first = 0;
        let mut last = pieces.len();
        if let Some(Piece::Literal(prefix)) = pieces.first() {
            if !text
                .get(..prefix.len())
                .is_some_and(|head| eq_bytes(head, prefix, fold))
            {
                return false;
            }
            low = prefix.len();
            first = 1;
        }
        if last > first
            && let Some(Piece::Literal(suffix)) = pieces.last()
        {
            let Some(start) = high.checked_sub(suffix.len()).filter(|&s| s >= low) else {
                return false;
            };
            if !eq_bytes(&text[start..high], suffix, fold) {
                return false;
            }
            high = start;
            last -= 1;
        }
        // Now `pieces[first..last]` is `param (literal param)*`.
        let mut end = high;
        let mut index = last;
        while index > first {
            index -= 1;
            let Some(Piece::Param(name)) = pieces.get(index) else {
                return false;
            };
            if index == first {
                if end <= low {
                    return false;
                }
                report(name, low..end);
                return true;
            }
            index -= 1;
            let Some(Piece::Literal(literal)) = pieces.get(index) else {
                return false;
            };
            // The literal must start after at least one byte of the parameter before it
            // and end before at least one byte of this parameter.
            let Some(latest) = end.checked_sub(literal.len() + 1) else {
                return false;
            };
            let Some(start) = (low + 1..=latest)
                .rev()
                .find(|&start| eq_bytes(&text[start..start + literal.len()], literal, fold))
            else {
                return false;
            };
            report(name, start + literal.len()..end);
            end = start;
        }
        false
    }
}

fn eq_bytes(text: &[u8], literal: &[u8], fold: bool) -> bool {
    if fold {
        text.eq_ignore_ascii_case(literal)
    } else {
        text == literal
    }
}

// === parsing ===

enum Parsed {
    Segment(Segment),
    CatchAll(Option<Arc<str>>),
}

enum RawPiece<'t> {
    Literal(&'t str),
    Param(&'t str),
}

/// Parses one path segment; `offset` is where it starts in the template text.
fn parse_segment(raw: &str, offset: usize) -> Result<Parsed, TemplateError> {
    if raw.is_empty() {
        return Err(TemplateError::EmptySegment { position: offset });
    }
    if raw == "*" {
        return Ok(Parsed::CatchAll(None));
    }
    let mut pieces = Vec::new();
    let mut rest = raw;
    let mut position = offset;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(RawPiece::Literal(rest));
                break;
            }
            Some(brace) if rest.as_bytes()[brace] == b'}' => {
                return Err(TemplateError::UnbalancedBrace {
                    position: position + brace,
                });
            }
            Some(open) => {
                if open > 0 {
                    pieces.push(RawPiece::Literal(&rest[..open]));
                }
                let after = &rest[open + 1..];
                let close = match after.find(['{', '}']) {
                    Some(close) if after.as_bytes()[close] == b'}' => close,
                    _ => {
                        return Err(TemplateError::UnbalancedBrace {
                            position: position + open,
                        });
                    }
                };
                pieces.push(RawPiece::Param(&after[..close]));
                let used = open + 1 + close + 1;
                rest = &rest[used..];
                position += used;
            }
        }
    }

    if let [RawPiece::Param(name)] = pieces.as_slice()
        && let Some(name) = name.strip_prefix('*')
    {
        return Ok(Parsed::CatchAll(Some(param_name(name)?)));
    }
    let mut parsed = Vec::with_capacity(pieces.len());
    let mut previous_was_param = false;
    for piece in pieces {
        match piece {
            RawPiece::Literal(literal) => {
                previous_was_param = false;
                parsed.push(Piece::Literal(
                    normalize(literal.as_bytes(), Norm::path(false)).into(),
                ));
            }
            RawPiece::Param(name) => {
                if name.starts_with('*') {
                    return Err(TemplateError::CatchAllInSegment);
                }
                if previous_was_param {
                    return Err(TemplateError::AdjacentParams {
                        segment: raw.to_owned(),
                    });
                }
                previous_was_param = true;
                parsed.push(Piece::Param(param_name(name)?));
            }
        }
    }
    Ok(Parsed::Segment(match <[Piece; 1]>::try_from(parsed) {
        Ok([Piece::Literal(literal)]) => Segment::Literal(literal),
        Ok([Piece::Param(name)]) => Segment::Param(name),
        Err(pieces) => Segment::Pattern(Pattern {
            pieces: pieces.into_boxed_slice(),
        }),
    }))
}

fn param_name(name: &str) -> Result<Arc<str>, TemplateError> {
    let valid = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "{}/?&=#*%".contains(c));
    if valid {
        Ok(name.into())
    } else {
        Err(TemplateError::InvalidParamName {
            name: name.to_owned(),
        })
    }
}

fn parse_query(query: &str) -> Result<Vec<QueryPart>, TemplateError> {
    let mut parts: Vec<QueryPart> = Vec::new();
    if query.is_empty() {
        return Ok(parts);
    }
    for text in query.split('&') {
        let invalid = |reason| TemplateError::InvalidQuery {
            part: text.to_owned(),
            reason,
        };
        let Some((key, value)) = text.split_once('=') else {
            return Err(invalid("expected `name={param}` or `name=value`"));
        };
        if key.is_empty() || key.contains(['{', '}']) {
            return Err(invalid(
                "the name before `=` is literal text, e.g. `q={query}`",
            ));
        }
        let value = if let Some(inner) = value
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
        {
            if inner.starts_with('*') {
                return Err(invalid("a catch-all has no meaning in the query"));
            }
            if inner.contains(['{', '}']) {
                return Err(invalid("unbalanced `{` or `}`"));
            }
            QueryValue::Param(param_name(inner)?)
        } else if value.contains(['{', '}']) {
            return Err(invalid(
                "a query value is either one `{param}` or literal text",
            ));
        } else {
            QueryValue::Literal(normalize(value.as_bytes(), Norm::form(false)).into())
        };
        let key: Box<[u8]> = normalize(key.as_bytes(), Norm::form(false)).into();
        if parts.iter().any(|part| part.key.eq_ignore_ascii_case(&key)) {
            return Err(invalid("this query name appears twice"));
        }
        parts.push(QueryPart { key, value });
    }
    Ok(parts)
}

// === request paths ===

/// Splits a request target into path and query.
pub(crate) fn split_query(path_and_query: &str) -> (&str, Option<&str>) {
    match split_at_byte(path_and_query, b'?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    }
}

/// The segments of a path without its leading `/`: `None` when there are none. One
/// trailing `/` is ignored, so `users/` has the single segment `users`.
pub(crate) fn segments_of(path: &str) -> Option<&str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    (!path.is_empty()).then_some(path)
}

/// The first segment of a non-empty segment list, and the rest if there is more.
pub(crate) fn split_segment(segments: &str) -> (&str, Option<&str>) {
    match split_at_byte(segments, b'/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (segments, None),
    }
}

/// The raw values of the query parameter whose key normalizes to `key`.
fn query_values<'q>(
    query: Option<&'q str>,
    key: &'q [u8],
    fold: bool,
) -> impl Iterator<Item = &'q str> {
    query.unwrap_or("").split('&').filter_map(move |pair| {
        let (name, value) = split_at_byte(pair, b'=').unwrap_or((pair, ""));
        eq_normalized(name.as_bytes(), key, Norm::form(fold)).then_some(value)
    })
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
