//! What compiling needs from the rest of the configuration — named values, backends,
//! certificates, the API and operation a pipeline serves — and the helpers every
//! policy uses to turn a raw attribute value into a checked one.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use gatehouse_model::{Api, Backend, Certificate, NamedValue, Operation};

use crate::body::ContextReads;
use crate::document::PolicyDocument;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::reader::{Expression, RawText, RawValue};

/// Named values, looked up case-insensitively as APIM does.
///
/// Build it once per configuration and share it between all compilations. `Debug`
/// prints the names and hides secret values.
#[derive(Clone, Default)]
pub struct NamedValues {
    entries: HashMap<String, NamedEntry>,
}

#[derive(Clone)]
struct NamedEntry {
    value: String,
    secret: bool,
}

impl NamedValues {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a named value.
    pub fn insert(&mut self, name: &str, value: impl Into<String>, secret: bool) {
        self.entries.insert(
            name.to_ascii_lowercase(),
            NamedEntry {
                value: value.into(),
                secret,
            },
        );
    }

    /// The number of named values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, name: &str) -> Option<&NamedEntry> {
        if name.bytes().any(|byte| byte.is_ascii_uppercase()) {
            self.entries.get(&name.to_ascii_lowercase())
        } else {
            self.entries.get(name)
        }
    }
}

impl<'a> FromIterator<&'a NamedValue> for NamedValues {
    fn from_iter<I: IntoIterator<Item = &'a NamedValue>>(values: I) -> Self {
        let mut named = Self::new();
        for value in values {
            named.insert(&value.name, value.value.clone(), value.secret);
        }
        named
    }
}

impl fmt::Debug for NamedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets must not leak through `{:?}`.
        let mut map = f.debug_map();
        let mut names: Vec<_> = self.entries.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, entry) in names {
            let value: &dyn fmt::Debug = if entry.secret {
                &"<secret>"
            } else {
                &entry.value
            };
            map.entry(name, value);
        }
        map.finish()
    }
}

/// Everything [`crate::compile`] needs besides the documents.
///
/// A pipeline is compiled per operation (the operation scope is one of the merged
/// documents), so the context names the API and operation: `<rate-limit>`'s nested
/// `<api>`/`<operation>` limits, `rewrite-uri` template parameters and
/// `mock-response` examples are resolved at compile time from them.
///
/// ```
/// # use gatehouse_policy::{CompileContext, NamedValues};
/// let named_values = NamedValues::new();
/// let cx = CompileContext::new(&named_values);
/// # let _ = cx;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CompileContext<'a> {
    named_values: &'a NamedValues,
    backends: &'a [Backend],
    certificates: &'a [Certificate],
    api: Option<&'a Api>,
    operation: Option<&'a Operation>,
    /// The policy fragments `include-fragment` may name, read.
    fragments: &'a [(String, PolicyDocument)],
    /// How many `include-fragment`s deep this compile is (a cycle stops at the limit).
    fragment_depth: u8,
    /// Where a pipeline's compile records the bodies its expressions read.
    context_reads: Option<&'a Cell<ContextReads>>,
    /// Expressions compiled so far in this configuration, by their text (named values
    /// substituted): the same text is compiled once.
    expressions: Option<&'a ExpressionCache>,
}

/// Expressions compiled while compiling one configuration, by text (see
/// [`CompileContext::with_expression_cache`]).
#[derive(Default)]
pub struct ExpressionCache(
    std::cell::RefCell<
        HashMap<
            String,
            (std::sync::Arc<gatehouse_expr::Expression>, ContextReads),
            // The keys are the configuration's own text, not a client's: a fast hash.
            foldhash::fast::RandomState,
        >,
    >,
);

impl fmt::Debug for ExpressionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The texts may hold secret named values: the count only.
        f.debug_struct("ExpressionCache")
            .field("expressions", &self.0.borrow().len())
            .finish()
    }
}

/// How deep fragments may include fragments.
const MAX_FRAGMENT_DEPTH: u8 = 8;

impl<'a> CompileContext<'a> {
    /// A context with named values only: no backends, no certificates, no API or
    /// operation.
    pub fn new(named_values: &'a NamedValues) -> Self {
        Self {
            named_values,
            backends: &[],
            certificates: &[],
            api: None,
            operation: None,
            fragments: &[],
            fragment_depth: 0,
            context_reads: None,
            expressions: None,
        }
    }

    /// The same context, sharing compiled expressions through `cache` (one per
    /// configuration).
    #[must_use]
    pub fn with_expression_cache(mut self, cache: &'a ExpressionCache) -> Self {
        self.expressions = Some(cache);
        self
    }

    /// A compiled expression for `text`, if this configuration compiled it before.
    pub(crate) fn cached_expression(
        &self,
        text: &str,
    ) -> Option<(std::sync::Arc<gatehouse_expr::Expression>, ContextReads)> {
        self.expressions?.0.borrow().get(text).cloned()
    }

    /// Keeps a compiled expression for the next time `text` appears.
    pub(crate) fn cache_expression(
        &self,
        text: &str,
        expression: &std::sync::Arc<gatehouse_expr::Expression>,
        reads: ContextReads,
    ) {
        if let Some(cache) = self.expressions {
            cache
                .0
                .borrow_mut()
                .insert(text.to_owned(), (std::sync::Arc::clone(expression), reads));
        }
    }

    /// The same context, recording the bodies expressions read into `reads`.
    pub(crate) fn recording_reads<'b>(&self, reads: &'b Cell<ContextReads>) -> CompileContext<'b>
    where
        'a: 'b,
    {
        CompileContext {
            context_reads: Some(reads),
            ..*self
        }
    }

    /// Records that an expression reads a body.
    pub(crate) fn note_reads(&self, reads: ContextReads) {
        if let Some(cell) = self.context_reads {
            cell.set(cell.get().union(reads));
        }
    }

    /// The policy fragments (id, `<fragment>` document) `include-fragment` may name.
    #[must_use]
    pub fn with_fragments(mut self, fragments: &'a [(String, PolicyDocument)]) -> Self {
        self.fragments = fragments;
        self
    }

    /// The fragment `id`, if defined.
    pub(crate) fn fragment(&self, id: &str) -> Option<&'a PolicyDocument> {
        self.fragments
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, document)| document)
    }

    /// The ids of the fragments defined, for messages.
    pub(crate) fn fragment_ids(&self) -> Vec<&'a str> {
        self.fragments.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The context for compiling an included fragment's policies; `None` past the
    /// nesting limit (fragments including each other in a cycle end there).
    pub(crate) fn inside_fragment(&self) -> Option<Self> {
        (self.fragment_depth < MAX_FRAGMENT_DEPTH).then(|| Self {
            fragment_depth: self.fragment_depth + 1,
            ..*self
        })
    }

    /// The backends `set-backend-service backend-id` may name.
    #[must_use]
    pub fn with_backends(mut self, backends: &'a [Backend]) -> Self {
        self.backends = backends;
        self
    }

    /// The certificates `validate-client-certificate` may name (`certificate-id`,
    /// `issuer-certificate-id`); those with `client_ca` are the CAs the gateway verifies
    /// client certificates against (`validate-trust`).
    #[must_use]
    pub fn with_certificates(mut self, certificates: &'a [Certificate]) -> Self {
        self.certificates = certificates;
        self
    }

    /// The API the pipeline serves.
    #[must_use]
    pub fn with_api(mut self, api: &'a Api) -> Self {
        self.api = Some(api);
        self
    }

    /// The operation the pipeline serves (its URL template and documented responses).
    #[must_use]
    pub fn with_operation(mut self, operation: &'a Operation) -> Self {
        self.operation = Some(operation);
        self
    }

    pub(crate) fn api(&self) -> Option<&'a Api> {
        self.api
    }

    pub(crate) fn operation(&self) -> Option<&'a Operation> {
        self.operation
    }

    pub(crate) fn backend(&self, id: &str) -> Option<&'a Backend> {
        self.backends.iter().find(|backend| backend.id == id)
    }

    pub(crate) fn backend_ids(&self) -> Vec<&'a str> {
        self.backends
            .iter()
            .map(|backend| backend.id.as_str())
            .collect()
    }

    pub(crate) fn certificate(&self, id: &str) -> Option<&'a Certificate> {
        self.certificates
            .iter()
            .find(|certificate| certificate.id == id)
    }

    /// The configured certificate `raw` names (named values substituted), with the
    /// resolved reference for messages; an unknown one is refused, listing those there
    /// are. `what` names the attribute in the message (`` `certificate-id` ``).
    pub(crate) fn configured_certificate(
        &self,
        site: Site<'_>,
        raw: &RawValue,
        what: &str,
    ) -> Result<(&'a Certificate, Resolved), PolicyError> {
        let resolved = self.literal(site, raw)?;
        let Some(certificate) = self.certificate(resolved.text.trim()) else {
            let known = self.certificate_ids();
            let hint = if known.is_empty() {
                "no certificates are configured".to_owned()
            } else {
                format!("configured certificates: {}", known.join(", "))
            };
            return Err(site.invalid(
                raw.position,
                format!(
                    "{what}: unknown certificate {}; add it under `certificates` ({hint})",
                    resolved.shown()
                ),
            ));
        };
        Ok((certificate, resolved))
    }

    pub(crate) fn certificate_ids(&self) -> Vec<&'a str> {
        self.certificates
            .iter()
            .map(|certificate| certificate.id.as_str())
            .collect()
    }

    /// Whether any certificate is a client CA (so a client certificate can be trusted).
    pub(crate) fn has_client_ca(&self) -> bool {
        self.certificates
            .iter()
            .any(|certificate| certificate.client_ca)
    }

    /// A plain value with named values substituted. Policy expressions are rejected.
    pub(crate) fn literal(
        &self,
        site: Site<'_>,
        value: &RawValue,
    ) -> Result<Resolved, PolicyError> {
        match &value.text {
            RawText::Literal(text) => self.substitute(site, text, value.position),
            RawText::Expression(expression) | RawText::Mixed(expression) => {
                Err(expression_not_supported(site, expression))
            }
        }
    }

    /// Substitutes `{{name}}` references; a value that then holds an expression is
    /// rejected like one written inline.
    pub(crate) fn substitute(
        &self,
        site: Site<'_>,
        text: &str,
        position: Position,
    ) -> Result<Resolved, PolicyError> {
        let (resolved, from_named_value) = self.substitute_named_values(site, text, position)?;
        if let Some(name) = from_named_value {
            let trimmed = resolved.text.trim_start();
            if trimmed.starts_with("@(") || trimmed.starts_with("@{") {
                return Err(site.not_supported(
                    position,
                    format!("named value `{name}` holds a policy expression; Gatehouse evaluates expressions only where they are written in the policy"),
                ));
            }
        }
        Ok(resolved)
    }

    /// Substitutes `{{name}}` references in the code of a policy expression (APIM does so
    /// before compiling it).
    pub(crate) fn substitute_in_expression(
        &self,
        site: Site<'_>,
        text: &str,
        position: Position,
    ) -> Result<Resolved, PolicyError> {
        self.substitute_named_values(site, text, position)
            .map(|(resolved, _)| resolved)
    }

    /// Substitutes `{{name}}` references; also gives the first named value used.
    fn substitute_named_values<'t>(
        &self,
        site: Site<'_>,
        text: &'t str,
        position: Position,
    ) -> Result<(Resolved, Option<&'t str>), PolicyError> {
        let mut out = String::with_capacity(text.len());
        let mut secret = false;
        let mut from_named_value: Option<&'t str> = None;
        let mut rest = text;
        while let Some(start) = find_double_brace(rest) {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            let name = after[..end].trim();
            if !is_named_value_name(name) {
                // Not a reference (JSON in a body, say): keep the braces as text.
                out.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            }
            let entry = self.named_values.get(name).ok_or_else(|| {
                site.err(
                    position,
                    ErrorKind::UnknownNamedValue,
                    format!("named value `{{{{{name}}}}}` is not defined; add it under `namedValues` (names are case-insensitive) or fix the name"),
                )
            })?;
            out.push_str(&rest[..start]);
            out.push_str(&entry.value);
            secret |= entry.secret;
            from_named_value.get_or_insert(name);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok((
            Resolved {
                text: out,
                secret,
                position,
            },
            from_named_value,
        ))
    }

    /// A number, e.g. `calls="10"`, within `range`.
    pub(crate) fn number<T>(
        &self,
        site: Site<'_>,
        value: &RawValue,
        attribute: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, PolicyError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let resolved = self.literal(site, value)?;
        let parsed: T = resolved.text.trim().parse().map_err(|_| {
            site.invalid(
                value.position,
                format!(
                    "`{attribute}` must be a whole number from {} to {}, found {}",
                    range.start(),
                    range.end(),
                    resolved.shown()
                ),
            )
        })?;
        if !range.contains(&parsed) {
            return Err(site.invalid(
                value.position,
                format!(
                    "`{attribute}` must be from {} to {}, found {}",
                    range.start(),
                    range.end(),
                    resolved.shown()
                ),
            ));
        }
        Ok(parsed)
    }

    /// `true` or `false` (any case, as .NET's `bool.Parse` accepts).
    pub(crate) fn boolean(
        &self,
        site: Site<'_>,
        value: &RawValue,
        attribute: &str,
    ) -> Result<bool, PolicyError> {
        let resolved = self.literal(site, value)?;
        let text = resolved.text.trim();
        if text.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if text.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(site.invalid(
                value.position,
                format!(
                    "`{attribute}` must be `true` or `false`, found {}",
                    resolved.shown()
                ),
            ))
        }
    }

    /// An optional boolean attribute with its default.
    pub(crate) fn boolean_or(
        &self,
        site: Site<'_>,
        value: Option<&RawValue>,
        attribute: &str,
        default: bool,
    ) -> Result<bool, PolicyError> {
        value.map_or(Ok(default), |value| self.boolean(site, value, attribute))
    }
}

/// Where `{{` first appears in `text`: a byte search, cheaper than `str::find` with a
/// string pattern for the short values policies have.
fn find_double_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&byte| byte == b'{') {
        let at = from + offset;
        if bytes.get(at + 1) == Some(&b'{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_named_value_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// The error for a policy expression where Gatehouse cannot evaluate one yet: a value
/// that does not take expressions yet, or text mixed with an expression.
pub(crate) fn expression_not_supported(site: Site<'_>, expression: &Expression) -> PolicyError {
    site.not_supported(
        expression.position,
        format!(
            "Gatehouse does not evaluate policy expressions in this value yet (found `{}` at {}); use a literal value or a named value, or write the whole value as one expression where docs/policies.md says it takes one",
            abbreviate(&expression.source),
            expression.position
        ),
    )
}

/// Shortens code for an error message.
fn abbreviate(code: &str) -> String {
    const MAX: usize = 60;
    let single_line: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    if single_line.chars().count() <= MAX {
        single_line
    } else {
        let head: String = single_line.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// A value after named-value substitution.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) text: String,
    /// Whether any part came from a secret named value: then the text never appears in
    /// an error message or `Debug` output.
    pub(crate) secret: bool,
    pub(crate) position: Position,
}

impl Resolved {
    /// The value for an error message: quoted, or a placeholder for secrets.
    pub(crate) fn shown(&self) -> String {
        if self.secret {
            "a value from a secret named value".to_owned()
        } else {
            format!("`{}`", self.text)
        }
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: &dyn fmt::Debug = if self.secret { &"<secret>" } else { &self.text };
        f.debug_struct("Resolved")
            .field("text", text)
            .field("position", &self.position)
            .finish()
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
