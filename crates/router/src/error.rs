//! Why a routing table could not be built.
//!
//! Building reports every problem it finds, not only the first, so that one reload
//! shows the whole list; each problem names the API (and operation) by id.

use std::fmt;

/// Why a URL template is invalid. Positions are byte offsets into the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`, a `}` without its `{`, or a `{` inside a parameter.
    #[error(
        "unbalanced `{{` or `}}` at byte {position}; a parameter is written `{{name}}`, a catch-all `{{*name}}`"
    )]
    UnbalancedBrace {
        /// Where the offending brace is.
        position: usize,
    },
    /// A parameter name that is empty or holds a character with a meaning in templates.
    #[error(
        "invalid parameter name `{name}`: a name is not empty and has no whitespace or any of `{{}}/?&=#*%`"
    )]
    InvalidParamName {
        /// The name as written.
        name: String,
    },
    /// Two parameters with the same name (compared ignoring ASCII case).
    #[error("parameter `{name}` appears twice; give each parameter its own name")]
    DuplicateParam {
        /// The repeated name.
        name: String,
    },
    /// A catch-all (`{*name}` or `*`) followed by more segments.
    #[error(
        "a catch-all (`{{*name}}` or `*`) matches the rest of the path, so it must be the last segment"
    )]
    CatchAllNotLast,
    /// A catch-all with literal text around it in its segment (`a{*rest}`).
    #[error("a catch-all `{{*name}}` must be a whole segment, e.g. `/files/{{*path}}`")]
    CatchAllInSegment,
    /// Two parameters with no literal text between them (`{a}{b}`): where one ends is
    /// undecidable.
    #[error(
        "segment `{segment}` has two parameters with nothing between them; separate them with literal text, e.g. `{{a}}-{{b}}`"
    )]
    AdjacentParams {
        /// The segment as written.
        segment: String,
    },
    /// An empty segment (`/a//b`), which no request could match.
    #[error("empty path segment (`//`) at byte {position}")]
    EmptySegment {
        /// Where the empty segment starts.
        position: usize,
    },
    /// A `#`: request URIs carry no fragment, so it could never match.
    #[error("`#` at byte {position}: a URL template has no fragment")]
    Fragment {
        /// Where the `#` is.
        position: usize,
    },
    /// More segments than a template may have.
    #[error("more than {max} path segments")]
    TooManySegments {
        /// The limit.
        max: usize,
    },
    /// A query part that is not `name={param}` or `name=value`.
    #[error("invalid query part `{part}`: {reason}")]
    InvalidQuery {
        /// The part as written (between `?`/`&` and the next `&`).
        part: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One problem found while building a [`Router`](crate::Router).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The API's path prefix is not a plain path.
    #[error("API `{api}`: invalid path `{path}`: {reason}")]
    InvalidApiPath {
        /// The API's id.
        api: String,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A hostname that is neither a host name nor `*.` followed by one.
    #[error(
        "API `{api}`: invalid hostname `{hostname}`: {reason}; expected `api.example.com` or `*.example.com`, without scheme or port"
    )]
    InvalidHostname {
        /// The API's id.
        api: String,
        /// The hostname as given.
        hostname: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two APIs serve the same path prefix on the same host.
    #[error(
        "APIs `{first}` and `{second}` both serve path `/{path}` on host `{host}`; give each API its own path or hostname"
    )]
    DuplicateApiPath {
        /// The API listed first.
        first: String,
        /// The API listed second.
        second: String,
        /// The host (`*` for any host, `*.example.com` for a wildcard).
        host: String,
        /// The path prefix, without its leading `/`.
        path: String,
    },
    /// An operation's method is neither `*` nor an HTTP method token.
    #[error(
        "API `{api}`, operation `{operation}`: invalid HTTP method `{method}`; use e.g. `GET`, or `*` for any method"
    )]
    InvalidMethod {
        /// The API's id.
        api: String,
        /// The operation's id.
        operation: String,
        /// The method as given.
        method: String,
    },
    /// An operation's URL template is invalid.
    #[error("API `{api}`, operation `{operation}`: invalid URL template `{template}`: {source}")]
    InvalidTemplate {
        /// The API's id.
        api: String,
        /// The operation's id.
        operation: String,
        /// The template as given.
        template: String,
        /// What is wrong with it.
        #[source]
        source: TemplateError,
    },
    /// Two operations of one API would match exactly the same requests.
    #[error(
        "API `{api}`: operations `{first}` and `{second}` both match {method} `{template}` (templates that differ only in parameter names, letter case or a trailing `/` are the same); remove one or change its method or template"
    )]
    AmbiguousOperations {
        /// The API's id.
        api: String,
        /// The operation listed first.
        first: String,
        /// The operation listed second.
        second: String,
        /// The method they share (`*` for any).
        method: String,
        /// The second operation's template.
        template: String,
    },
}

/// Every problem found while building a [`Router`](crate::Router), in input order.
///
/// Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildErrors(Vec<BuildError>);

impl BuildErrors {
    pub(crate) fn new(errors: Vec<BuildError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self(errors))
    }

    /// The problems, in input order.
    pub fn errors(&self) -> &[BuildError] {
        &self.0
    }

    /// Takes the problems out.
    pub fn into_vec(self) -> Vec<BuildError> {
        self.0
    }
}

impl fmt::Display for BuildErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid routing configuration: {one}"),
            many => {
                write!(
                    f,
                    "invalid routing configuration ({} problems):",
                    many.len()
                )?;
                for error in many {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BuildErrors {}

impl IntoIterator for BuildErrors {
    type Item = BuildError;
    type IntoIter = std::vec::IntoIter<BuildError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a BuildErrors {
    type Item = &'a BuildError;
    type IntoIter = std::slice::Iter<'a, BuildError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
