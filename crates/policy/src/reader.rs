//! Reads policy text into a small element tree.
//!
//! Real APIM documents are not well-formed XML: policy expressions are pasted raw, with
//! `"` inside `"`-quoted attributes, `<`, `>` and `&&` in code, even XML inside C#
//! strings. So reading happens in two steps:
//!
//! 1. [`prescan`] finds every `@(...)` (balanced parentheses) and `@{...}` (balanced
//!    braces) outside XML comments, skipping C# string literals (`"..."` with escapes,
//!    verbatim `@"..."`, interpolated `$"...{hole}..."`, raw `"""..."""`), char literals
//!    (`'x'`) and comments, and replaces each with a placeholder made of two
//!    private-use characters around its index. The placeholder is safe in attribute
//!    values and text.
//! 2. quick-xml reads the result into [`Element`]s. Every element and attribute keeps
//!    its line and column in the *original* text; a table of replacements maps offsets
//!    in the rewritten text back.
//!
//! Values that contain a placeholder become [`RawText::Expression`] (the whole value is
//! one expression) or [`RawText::Mixed`]; the compiler decides what to do with them.
//! Named values (`{{name}}`) are left alone here: they are substituted at compile time,
//! after XML unescaping, so a value containing `<` or `&` is safe.

use std::borrow::Cow;
use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{ErrorKind, PolicyError, Position};

/// Largest policy document accepted, in bytes. APIM's own limit is far lower; this one
/// only keeps a hostile document from costing much.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Deepest element nesting accepted (`<policies>` counts as 1).
pub(crate) const MAX_DEPTH: usize = 32;

/// Deepest nesting of interpolated strings inside expressions.
const MAX_CODE_DEPTH: usize = 32;

/// Opens a placeholder; reserved, so a document containing it is rejected.
const MARK_OPEN: char = '\u{E000}';
/// Closes a placeholder.
const MARK_CLOSE: char = '\u{E001}';

/// A policy expression as written (`@(...)` or `@{...}`), with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expression {
    /// The full text, including `@(` and `)` (or `@{` and `}`).
    pub(crate) source: String,
    /// Position of the `@`.
    pub(crate) position: Position,
}

impl Expression {
    /// The code inside `@(...)`; `None` for a `@{...}` block.
    pub(crate) fn single(&self) -> Option<&str> {
        self.source
            .strip_prefix("@(")
            .and_then(|rest| rest.strip_suffix(')'))
    }
}

/// What an attribute value or element text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawText {
    /// Plain text (XML-unescaped; `{{named values}}` not yet substituted).
    Literal(String),
    /// The whole value (ignoring surrounding whitespace) is one expression.
    Expression(Expression),
    /// Text and expressions mixed; the first expression is kept for error messages.
    Mixed(Expression),
}

/// An attribute value or element text with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawValue {
    pub(crate) text: RawText,
    pub(crate) position: Position,
}

impl RawValue {
    #[cfg(test)]
    pub(crate) fn literal(&self) -> Option<&str> {
        match &self.text {
            RawText::Literal(text) => Some(text),
            RawText::Expression(_) | RawText::Mixed(_) => None,
        }
    }
}

/// One attribute of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub(crate) name: String,
    pub(crate) position: Position,
    pub(crate) value: RawValue,
}

/// One element: name, attributes, child elements and (trimmed) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) position: Position,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) children: Vec<Self>,
    /// Non-whitespace text content, trimmed; `None` when there is none.
    pub(crate) text: Option<RawValue>,
}

/// Reads `xml` into its root element.
///
/// # Errors
///
/// [`ErrorKind::Syntax`] for XML that cannot be read (after expressions are set
/// aside), an unterminated expression, a document over [`MAX_DOCUMENT_BYTES`] or
/// deeper than [`MAX_DEPTH`].
pub(crate) fn read(origin: &str, xml: &str) -> Result<Element, PolicyError> {
    read_counting(origin, xml).map(|(root, _)| root)
}

/// [`read`], also returning how many policy expressions the document holds. A leading
/// byte-order mark is skipped (positions are then those an editor shows).
pub(crate) fn read_counting(origin: &str, xml: &str) -> Result<(Element, usize), PolicyError> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let lines = LineIndex::new(xml);
    let syntax = |offset: usize, message: String| {
        PolicyError::new(
            origin,
            lines.position(offset),
            None,
            ErrorKind::Syntax,
            message,
        )
    };
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(syntax(
            0,
            format!(
                "the policy document is {} bytes long; at most {MAX_DOCUMENT_BYTES} are accepted",
                xml.len()
            ),
        ));
    }
    if let Some(offset) = xml.find([MARK_OPEN, MARK_CLOSE]) {
        return Err(syntax(
            offset,
            "the document contains a reserved private-use character (U+E000 or U+E001); remove it"
                .to_owned(),
        ));
    }
    let scanned = prescan(xml).map_err(|error| syntax(error.offset, error.message))?;
    let expressions: Vec<Expression> = scanned
        .expressions
        .iter()
        .map(|span| Expression {
            source: unescape_lenient(&xml[span.start..span.end]),
            position: lines.position(span.start),
        })
        .collect();
    let builder = TreeBuilder {
        origin,
        lines: &lines,
        replacements: &scanned.replacements,
        expressions: &expressions,
    };
    builder
        .build(&scanned.text)
        .map(|root| (root, expressions.len()))
}

// === prescan ===

/// Byte range of one expression in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// One placeholder: the original range it replaced and where it sits in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replacement {
    original: Span,
    rewritten: Span,
}

/// The text with expressions replaced by placeholders.
#[derive(Debug)]
pub(crate) struct Prescanned {
    pub(crate) text: String,
    pub(crate) expressions: Vec<Span>,
    replacements: Vec<Replacement>,
}

/// Why the prescan failed, and where (byte offset in the original text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

/// Replaces every `@(...)` and `@{...}` outside XML comments with a placeholder.
pub(crate) fn prescan(src: &str) -> Result<Prescanned, ScanError> {
    let bytes = src.as_bytes();
    let mut text = String::with_capacity(src.len());
    let mut expressions = Vec::new();
    let mut replacements = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' if bytes[i..].starts_with(b"<!--") => {
                // Comments are opaque: an apostrophe or `@(` in prose must not start code.
                i = find(bytes, i + 4, b"-->").map_or(bytes.len(), |end| end + 3);
            }
            b'@' if matches!(bytes.get(i + 1), Some(b'(' | b'{')) => {
                let (open, close) = if bytes[i + 1] == b'(' {
                    (b'(', b')')
                } else {
                    (b'{', b'}')
                };
                let end = scan_code(bytes, i + 2, open, close, 0).map_err(|error| ScanError {
                    offset: if error.offset == usize::MAX {
                        i
                    } else {
                        error.offset
                    },
                    message: error.message,
                })?;
                text.push_str(&src[copied..i]);
                let rewritten_start = text.len();
                let _ = write!(text, "{MARK_OPEN}{}{MARK_CLOSE}", expressions.len());
                replacements.push(Replacement {
                    original: Span { start: i, end },
                    rewritten: Span {
                        start: rewritten_start,
                        end: text.len(),
                    },
                });
                expressions.push(Span { start: i, end });
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    text.push_str(&src[copied..]);
    Ok(Prescanned {
        text,
        expressions,
        replacements,
    })
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

fn unterminated(what: &str) -> ScanError {
    // usize::MAX: "report at the start of the expression", filled in by the caller.
    ScanError {
        offset: usize::MAX,
        message: format!(
            "unterminated policy expression: {what}; check that every `(`, `{{` and string literal is closed"
        ),
    }
}

/// Scans C# code from `i` until the `close` that balances the already-consumed `open`;
/// returns the offset just past it.
fn scan_code(
    bytes: &[u8],
    mut i: usize,
    open: u8,
    close: u8,
    depth: usize,
) -> Result<usize, ScanError> {
    if depth > MAX_CODE_DEPTH {
        return Err(ScanError {
            offset: i,
            message: "policy expression nested too deeply".to_owned(),
        });
    }
    let mut level = 1usize;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        let after = bytes.get(i + 2).copied();
        match bytes[i] {
            b'"' => i = skip_string(bytes, i)?,
            b'&' if bytes[i..].starts_with(b"&quot;") => i = skip_entity_string(bytes, i)?,
            b'@' if next == Some(b'"') => i = skip_verbatim(bytes, i + 1)?,
            b'@' if next == Some(b'$') && after == Some(b'"') => {
                i = skip_interpolated(bytes, i + 2, true, depth)?;
            }
            b'$' if next == Some(b'"') => i = skip_interpolated(bytes, i + 1, false, depth)?,
            b'$' if next == Some(b'@') && after == Some(b'"') => {
                i = skip_interpolated(bytes, i + 2, true, depth)?;
            }
            b'\'' => i = skip_char(bytes, i),
            b'/' if next == Some(b'/') => {
                i = find(bytes, i, b"\n").unwrap_or(bytes.len());
            }
            b'/' if next == Some(b'*') => {
                i = find(bytes, i + 2, b"*/")
                    .map(|end| end + 2)
                    .ok_or_else(|| unterminated("a `/*` comment is not closed"))?;
            }
            byte if byte == open => {
                level += 1;
                i += 1;
            }
            byte if byte == close => {
                level -= 1;
                i += 1;
                if level == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(unterminated(if close == b')' {
        "missing `)`"
    } else {
        "missing `}`"
    }))
}

/// `i` is at the opening `"` of a regular string (or of a raw `"""` string).
fn skip_string(bytes: &[u8], i: usize) -> Result<usize, ScanError> {
    if bytes[i..].starts_with(b"\"\"\"") {
        return find(bytes, i + 3, b"\"\"\"")
            .map(|end| end + 3)
            .ok_or_else(|| unterminated("a `\"\"\"` raw string is not closed"));
    }
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'"' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(unterminated("a string literal is not closed"))
}

/// `i` is at a `&quot;` opening a string in code written as well-formed XML.
fn skip_entity_string(bytes: &[u8], i: usize) -> Result<usize, ScanError> {
    let mut from = i + 6;
    while let Some(end) = find(bytes, from, b"&quot;") {
        if bytes[end - 1] != b'\\' {
            return Ok(end + 6);
        }
        from = end + 6;
    }
    Err(unterminated("a string literal (`&quot;`) is not closed"))
}

/// `i` is at the `"` of a verbatim string (`@"..."`, where `""` is a quote).
fn skip_verbatim(bytes: &[u8], i: usize) -> Result<usize, ScanError> {
    let mut j = i + 1;
    while j < bytes.len() {
        if bytes[j] == b'"' {
            if bytes.get(j + 1) == Some(&b'"') {
                j += 2;
            } else {
                return Ok(j + 1);
            }
        } else {
            j += 1;
        }
    }
    Err(unterminated("a verbatim string literal is not closed"))
}

/// `i` is at the `"` of an interpolated string; holes (`{...}`) are code.
fn skip_interpolated(
    bytes: &[u8],
    i: usize,
    verbatim: bool,
    depth: usize,
) -> Result<usize, ScanError> {
    let mut j = i + 1;
    while j < bytes.len() {
        let next = bytes.get(j + 1).copied();
        match bytes[j] {
            b'{' if next == Some(b'{') => j += 2,
            b'{' => j = scan_code(bytes, j + 1, b'{', b'}', depth + 1)?,
            b'\\' if !verbatim => j += 2,
            b'"' if verbatim && next == Some(b'"') => j += 2,
            b'"' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(unterminated("an interpolated string is not closed"))
}

/// `i` is at a `'`. A char literal is short; an apostrophe that does not close within a
/// few bytes is taken as a lone character rather than swallowing the rest.
fn skip_char(bytes: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if bytes.get(j) == Some(&b'\\') {
        j += 2;
    } else {
        j += 1;
        while j < bytes.len() && bytes[j] & 0xC0 == 0x80 {
            j += 1;
        }
    }
    // Longest escapes: `\u0041` (6) and `\U0001F600` (10).
    let limit = (i + 12).min(bytes.len());
    while j < limit {
        if bytes[j] == b'\'' {
            return j + 1;
        }
        j += 1;
    }
    i + 1
}

// === positions ===

/// Turns byte offsets of the original text into lines and columns.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self { text, starts }
    }

    pub(crate) fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self.text[start..offset].chars().count() + 1;
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

// === tree ===

struct Open {
    element: Element,
    text: String,
    text_offset: Option<usize>,
}

struct TreeBuilder<'a> {
    origin: &'a str,
    lines: &'a LineIndex<'a>,
    replacements: &'a [Replacement],
    expressions: &'a [Expression],
}

impl TreeBuilder<'_> {
    /// Maps an offset in the rewritten text to the original text.
    fn original(&self, rewritten: usize) -> usize {
        let index = self
            .replacements
            .partition_point(|replacement| replacement.rewritten.start <= rewritten);
        let Some(replacement) = index.checked_sub(1).and_then(|i| self.replacements.get(i)) else {
            return rewritten;
        };
        if rewritten < replacement.rewritten.end {
            replacement.original.start
        } else {
            rewritten - replacement.rewritten.end + replacement.original.end
        }
    }

    fn position(&self, rewritten: usize) -> Position {
        self.lines.position(self.original(rewritten))
    }

    fn error(&self, rewritten: usize, message: impl Into<String>) -> PolicyError {
        PolicyError::new(
            self.origin,
            self.position(rewritten),
            None,
            ErrorKind::Syntax,
            message,
        )
    }

    fn build(&self, text: &str) -> Result<Element, PolicyError> {
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        let mut stack: Vec<Open> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = reader.read_event().map_err(|error| {
                let at = usize::try_from(reader.error_position()).unwrap_or(start);
                self.error(at, format!("invalid XML: {error}"))
            })?;
            match event {
                Event::Start(tag) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(self.error(
                            start,
                            format!("elements are nested more than {MAX_DEPTH} deep"),
                        ));
                    }
                    if stack.is_empty() && root.is_some() {
                        return Err(
                            self.error(start, "a policy document has exactly one root element")
                        );
                    }
                    let element = self.element(&tag, start)?;
                    stack.push(Open {
                        element,
                        text: String::new(),
                        text_offset: None,
                    });
                }
                Event::Empty(tag) => {
                    let element = self.element(&tag, start)?;
                    self.attach(&mut stack, &mut root, element, start)?;
                }
                Event::End(_) => {
                    let Some(open) = stack.pop() else {
                        return Err(self.error(start, "closing tag without an opening tag"));
                    };
                    let element = self.close(open);
                    self.attach(&mut stack, &mut root, element, start)?;
                }
                Event::Text(content) => {
                    let decoded = content
                        .decode()
                        .map_err(|error| self.error(start, format!("invalid text: {error}")))?;
                    self.text(&mut stack, &decoded, start)?;
                }
                Event::CData(content) => {
                    let decoded = content
                        .decode()
                        .map_err(|error| self.error(start, format!("invalid CDATA: {error}")))?;
                    // `<![CDATA[` is 9 bytes before the content.
                    self.text(&mut stack, &decoded, start + 9)?;
                }
                Event::GeneralRef(reference) => {
                    let resolved = resolve_reference(&reference)
                        .ok_or_else(|| self.error(start, "unknown entity reference; only &lt; &gt; &amp; &quot; &apos; and character references like &#38; are allowed"))?;
                    self.text(&mut stack, &resolved, start)?;
                }
                Event::DocType(_) => {
                    return Err(self.error(
                        start,
                        "DOCTYPE declarations are not allowed in policy documents",
                    ));
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = stack.last() {
            return Err(PolicyError::new(
                self.origin,
                open.element.position,
                Some(&open.element.name),
                ErrorKind::Syntax,
                format!("element is not closed; add `</{}>`", open.element.name),
            ));
        }
        root.ok_or_else(|| self.error(text.len(), "the document is empty; expected `<policies>`"))
    }

    fn attach(
        &self,
        stack: &mut [Open],
        root: &mut Option<Element>,
        element: Element,
        start: usize,
    ) -> Result<(), PolicyError> {
        if let Some(parent) = stack.last_mut() {
            parent.element.children.push(element);
        } else if root.is_some() {
            return Err(self.error(start, "a policy document has exactly one root element"));
        } else {
            *root = Some(element);
        }
        Ok(())
    }

    fn text(&self, stack: &mut [Open], text: &str, start: usize) -> Result<(), PolicyError> {
        let first = text.find(|c: char| !c.is_whitespace());
        let Some(open) = stack.last_mut() else {
            return match first {
                Some(at) => Err(self.error(start + at, "text outside the root element")),
                None => Ok(()),
            };
        };
        if let (None, Some(at)) = (open.text_offset, first) {
            open.text_offset = Some(start + at);
        }
        open.text.push_str(text);
        Ok(())
    }

    fn close(&self, open: Open) -> Element {
        let mut element = open.element;
        if let Some(offset) = open.text_offset {
            element.text = Some(self.classify(open.text.trim(), self.position(offset)));
        }
        element
    }

    fn element(&self, tag: &BytesStart<'_>, start: usize) -> Result<Element, PolicyError> {
        let name = std::str::from_utf8(tag.name().as_ref())
            .map_err(|_| self.error(start, "element name is not valid UTF-8"))?
            .to_owned();
        let base = tag.as_ref().as_ptr() as usize;
        let len = tag.as_ref().len();
        let mut attributes = Vec::new();
        for attribute in tag.attributes() {
            let attribute = attribute.map_err(|error| {
                self.error(start, format!("invalid attribute in <{name}>: {error}"))
            })?;
            let key = attribute.key.as_ref();
            let key_at = key.as_ptr() as usize;
            // The key borrows from the tag, which borrows from the text (slice reader), so
            // its address gives its offset; anything else falls back to the tag start.
            let offset = if key_at >= base && key_at < base + len {
                start + 1 + (key_at - base)
            } else {
                start
            };
            let attribute_name = std::str::from_utf8(key)
                .map_err(|_| self.error(offset, "attribute name is not valid UTF-8"))?
                .to_owned();
            let value = attribute.unescape_value().map_err(|error| {
                self.error(
                    offset,
                    format!("invalid value for attribute `{attribute_name}`: {error}"),
                )
            })?;
            let position = self.position(offset);
            attributes.push(Attribute {
                value: self.classify(&value, position),
                name: attribute_name,
                position,
            });
        }
        Ok(Element {
            name,
            position: self.position(start),
            attributes,
            children: Vec::new(),
            text: None,
        })
    }

    /// Sorts a value into literal, one whole expression, or a mix.
    fn classify(&self, text: &str, position: Position) -> RawValue {
        let mut found: Option<&Expression> = None;
        let mut count = 0usize;
        let mut rest = text;
        while let Some(at) = rest.find(MARK_OPEN) {
            let after = &rest[at + MARK_OPEN.len_utf8()..];
            let Some(end) = after.find(MARK_CLOSE) else {
                break;
            };
            let expression = after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|index| self.expressions.get(index));
            if found.is_none() {
                found = expression;
            }
            count += 1;
            rest = &after[end + MARK_CLOSE.len_utf8()..];
        }
        let text = match found {
            None => RawText::Literal(text.to_owned()),
            Some(expression) => {
                let trimmed = text.trim();
                if count == 1 && trimmed.starts_with(MARK_OPEN) && trimmed.ends_with(MARK_CLOSE) {
                    RawText::Expression(expression.clone())
                } else {
                    RawText::Mixed(expression.clone())
                }
            }
        };
        RawValue { text, position }
    }
}

/// Resolves XML entities in expression code written as well-formed XML
/// (`&quot;`, `&lt;`, `&#38;`), leaving any other `&` (like a raw `&&`) alone.
pub(crate) fn unescape_lenient(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let resolved = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let character =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                } else if let Some(decimal) = name.strip_prefix('#') {
                    decimal.parse::<u32>().ok().and_then(char::from_u32)
                } else {
                    match name {
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        _ => None,
                    }
                };
            character.map(|character| (character, end))
        });
        match resolved {
            Some((character, end)) => {
                out.push(character);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Option<Cow<'static, str>> {
    if reference.is_char_ref() {
        let character = reference.resolve_char_ref().ok().flatten()?;
        return Some(Cow::Owned(character.to_string()));
    }
    let name = reference.decode().ok()?;
    quick_xml::escape::resolve_predefined_entity(&name).map(Cow::Borrowed)
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
