//! The one error type of this crate: where in which document, which policy, what is wrong
//! and how to fix it.

use std::fmt;

/// A 1-based line and column (in characters) in the original policy text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters (a tab counts as one).
    pub column: u32,
}

impl Position {
    /// A position from a 1-based line and column.
    pub const fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What kind of problem a [`PolicyError`] reports.
///
/// Callers branch on this rather than on the message: for example a control plane may
/// show [`ErrorKind::NotSupported`] as "not available in Gatehouse yet" rather than as a
/// typo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text cannot be read: XML syntax, an unbalanced `@(...)`, a document too big or
    /// too deep.
    Syntax,
    /// The document is readable but its shape is wrong: a duplicate section or `<base/>`,
    /// text where none belongs, a child element the policy does not have.
    Structure,
    /// An element that is neither a section nor a policy APIM knows; usually a typo.
    UnknownElement,
    /// An attribute the element does not have; usually a typo.
    UnknownAttribute,
    /// A required attribute or child element is absent.
    Missing,
    /// A value that cannot be used: not a number, out of range, not a header name, not a
    /// URL, an unknown backend id.
    InvalidValue,
    /// An APIM feature Gatehouse does not implement yet: a policy, an attribute, a value
    /// or a policy expression.
    NotSupported,
    /// A policy placed in a section where APIM (or Gatehouse) does not run it.
    WrongSection,
    /// A `{{name}}` reference to a named value that is not defined.
    UnknownNamedValue,
    /// An `include-fragment` of a policy fragment that is not defined.
    UnknownFragment,
    /// Not an error: an Azure-only policy that loads as its open equivalent (reported
    /// by [`crate::check`] as a warning saying what it maps to).
    Mapped,
}

impl ErrorKind {
    /// A stable name for reports (`gatehouse policy check --format json`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::Structure => "structure",
            Self::UnknownElement => "unknown-element",
            Self::UnknownAttribute => "unknown-attribute",
            Self::Missing => "missing",
            Self::InvalidValue => "invalid-value",
            Self::NotSupported => "not-supported",
            Self::WrongSection => "wrong-section",
            Self::UnknownNamedValue => "unknown-named-value",
            Self::UnknownFragment => "unknown-fragment",
            Self::Mapped => "mapped",
        }
    }
}

/// A policy document that cannot be used, with its location and a message saying how
/// to fix it.
///
/// Displayed as `origin:line:column: <element>: message`, for example
/// ``gateway.yaml: apis[echo].policy:3:9: <rate-limit>: missing required attribute `calls` ``.
///
/// Messages never contain the value of a secret named value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{position}: {}{message}", ElementPrefix(.element.as_deref()))]
pub struct PolicyError {
    /// Where the document came from, as the caller named it in [`crate::parse`].
    pub origin: String,
    /// Where in the document.
    pub position: Position,
    /// The policy (or section) element concerned, without angle brackets; `None` for
    /// problems outside any element (XML syntax).
    pub element: Option<String>,
    /// The kind of problem.
    pub kind: ErrorKind,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl PolicyError {
    /// Builds an error; `element` is the policy or section element name.
    pub(crate) fn new(
        origin: &str,
        position: Position,
        element: Option<&str>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.to_owned(),
            position,
            element: element.map(str::to_owned),
            kind,
            message: message.into(),
        }
    }

    /// The 1-based line.
    pub fn line(&self) -> u32 {
        self.position.line
    }

    /// The 1-based column.
    pub fn column(&self) -> u32 {
        self.position.column
    }
}

struct ElementPrefix<'a>(Option<&'a str>);

impl fmt::Display for ElementPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "<{name}>: "),
            None => Ok(()),
        }
    }
}

/// Where an error is reported: the document origin and the policy element.
///
/// Passed around while reading and compiling one policy so every error carries both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) origin: &'a str,
    pub(crate) element: &'a str,
}

impl<'a> Site<'a> {
    pub(crate) const fn new(origin: &'a str, element: &'a str) -> Self {
        Self { origin, element }
    }

    pub(crate) fn err(
        &self,
        position: Position,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError::new(self.origin, position, Some(self.element), kind, message)
    }

    pub(crate) fn invalid(&self, position: Position, message: impl Into<String>) -> PolicyError {
        self.err(position, ErrorKind::InvalidValue, message)
    }

    pub(crate) fn not_supported(
        &self,
        position: Position,
        message: impl Into<String>,
    ) -> PolicyError {
        self.err(position, ErrorKind::NotSupported, message)
    }
}
