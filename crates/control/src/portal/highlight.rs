//! Syntax highlighting of policy documents for the portal's read-only views: a pure,
//! forgiving scan into classed pieces that the template escapes and wraps in `<span>`s
//! (no HTML is built here, so nothing in a document can become markup).
//!
//! It reads APIM's documents as the policy reader does in spirit — `@(...)` and `@{...}`
//! are code with balanced brackets and C# strings, even inside attribute values whose
//! quotes they contain — but never fails: what it does not recognise is plain text.
//! It is not a validator; the editor's check is.

/// One piece of a document and its class (`None`: plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// The CSS class: `tag`, `attr`, `value`, `expr`, `named`, `comment`, `punct`.
    pub(crate) class: Option<&'static str>,
    /// The text, unescaped.
    pub(crate) text: String,
}

/// Largest document highlighted; a longer one is shown plain (the scan is linear, this
/// only bounds the page).
pub(crate) const MAX_HIGHLIGHTED_BYTES: usize = 256 * 1024;

/// Splits `document` into classed pieces whose texts, joined, are `document`.
#[must_use]
pub(crate) fn highlight(document: &str) -> Vec<Piece> {
    let mut out = Pieces::default();
    if document.len() > MAX_HIGHLIGHTED_BYTES {
        out.push(None, document);
        return out.0;
    }
    let mut rest = document;
    while !rest.is_empty() {
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(rest.len(), |at| at + 3);
            out.push(Some("comment"), &rest[..end]);
            rest = &rest[end..];
        } else if rest.starts_with("@(") || rest.starts_with("@{") {
            let end = expression_end(rest);
            out.push(Some("expr"), &rest[..end]);
            rest = &rest[end..];
        } else if rest.starts_with("{{") {
            let end = rest.find("}}").map_or(rest.len(), |at| at + 2);
            out.push(Some("named"), &rest[..end]);
            rest = &rest[end..];
        } else if rest.starts_with('<')
            && rest[1..]
                .chars()
                .next()
                .is_some_and(|c| c == '/' || c.is_ascii_alphabetic())
        {
            rest = tag(rest, &mut out);
        } else {
            let first = rest.chars().next().map_or(1, char::len_utf8);
            let end = rest[first..]
                .find(['<', '@', '{'])
                .map_or(rest.len(), |at| at + first);
            out.push(None, &rest[..end]);
            rest = &rest[end..];
        }
    }
    out.0
}

#[derive(Default)]
struct Pieces(Vec<Piece>);

impl Pieces {
    fn push(&mut self, class: Option<&'static str>, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(last) = self.0.last_mut()
            && last.class == class
        {
            last.text.push_str(text);
            return;
        }
        self.0.push(Piece {
            class,
            text: text.to_owned(),
        });
    }
}

/// Scans one tag (`<name attr="value" ...>`, `</name>`, `<name/>`) from the start of
/// `rest`; returns what follows it.
fn tag<'a>(rest: &'a str, out: &mut Pieces) -> &'a str {
    let open = if rest.starts_with("</") { 2 } else { 1 };
    out.push(Some("punct"), &rest[..open]);
    let mut rest = &rest[open..];
    let name = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    out.push(Some("tag"), &rest[..name]);
    rest = &rest[name..];
    loop {
        let spaces = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push(None, &rest[..spaces]);
        rest = &rest[spaces..];
        if rest.is_empty() {
            return rest;
        }
        if let Some(after) = rest.strip_prefix("/>") {
            out.push(Some("punct"), "/>");
            return after;
        }
        if let Some(after) = rest.strip_prefix('>') {
            out.push(Some("punct"), ">");
            return after;
        }
        let attr = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len())
            .max(1);
        out.push(Some("attr"), &rest[..attr]);
        rest = &rest[attr..];
        if let Some(after) = rest.strip_prefix('=') {
            out.push(Some("punct"), "=");
            rest = value(after, out);
        }
    }
}

/// Scans an attribute value (quoted or not) from the start of `rest`.
fn value<'a>(rest: &'a str, out: &mut Pieces) -> &'a str {
    let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>')
            .unwrap_or(rest.len());
        out.push(Some("value"), &rest[..end]);
        return &rest[end..];
    };
    out.push(Some("value"), &rest[..1]);
    let mut rest = &rest[1..];
    loop {
        if rest.starts_with("@(") || rest.starts_with("@{") {
            // Raw code may hold the quote itself (APIM accepts it): skip it whole.
            let end = expression_end(rest);
            out.push(Some("expr"), &rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let Some(at) = rest.find([quote, '@']) else {
            out.push(Some("value"), rest);
            return "";
        };
        if rest[at..].starts_with(quote) {
            out.push(Some("value"), &rest[..=at]);
            return &rest[at + 1..];
        }
        if rest[at..].starts_with("@(") || rest[at..].starts_with("@{") {
            out.push(Some("value"), &rest[..at]);
            rest = &rest[at..];
        } else {
            out.push(Some("value"), &rest[..=at]);
            rest = &rest[at + 1..];
        }
    }
}

/// The length of the `@(...)` or `@{...}` at the start of `text`: brackets balanced,
/// C# string and character literals skipped; the whole text when it never closes.
fn expression_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0_usize;
    let mut index = 1;
    while index < bytes.len() {
        match bytes[index] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                index += 1;
                while index < bytes.len() && bytes[index] != quote {
                    if bytes[index] == b'\\' {
                        index += 1;
                    }
                    index += 1;
                }
            }
            _ => {}
        }
        index += 1;
    }
    text.len()
}

#[cfg(test)]
#[path = "highlight_tests.rs"]
mod tests;
