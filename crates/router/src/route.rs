//! What a lookup returns.

use std::fmt;

/// The result of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// An API and one of its operations match.
    Matched(Route),
    /// No API serves this host and path. APIM answers 404.
    ApiNotFound,
    /// The API matched, but none of its operation templates matches the path (and
    /// required query parameters). APIM answers 404.
    OperationNotFound {
        /// The caller's index of the API.
        api: usize,
    },
    /// The API matched and at least one operation template matches the path and query,
    /// but none of those allows the method. APIM answers 404 here too (not 405); the
    /// variant exists so the gateway can log the difference.
    MethodMismatch {
        /// The caller's index of the API.
        api: usize,
    },
}

impl RouteMatch {
    /// The matched route, if any.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Self::Matched(route) => Some(route),
            Self::ApiNotFound | Self::OperationNotFound { .. } | Self::MethodMismatch { .. } => {
                None
            }
        }
    }

    /// The matched route, if any, by value.
    pub fn into_route(self) -> Option<Route> {
        match self {
            Self::Matched(route) => Some(route),
            Self::ApiNotFound | Self::OperationNotFound { .. } | Self::MethodMismatch { .. } => {
                None
            }
        }
    }

    /// The caller's index of the API that matched, even when no operation did.
    pub const fn api(&self) -> Option<usize> {
        match self {
            Self::Matched(route) => Some(route.api),
            Self::OperationNotFound { api } | Self::MethodMismatch { api } => Some(*api),
            Self::ApiNotFound => None,
        }
    }

    /// A fixed label for logs and metrics: `matched`, `api_not_found`,
    /// `operation_not_found` or `method_mismatch`. Never request data.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Matched(_) => "matched",
            Self::ApiNotFound => "api_not_found",
            Self::OperationNotFound { .. } => "operation_not_found",
            Self::MethodMismatch { .. } => "method_mismatch",
        }
    }
}

/// A matched API and operation, with the values of the template's parameters.
///
/// Owns its data (no borrow of the router or the request), so it can travel in request
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The caller's index of the API ([`ApiSpec::index`](crate::ApiSpec::index)).
    pub api: usize,
    /// The caller's index of the operation ([`OperationSpec::index`](crate::OperationSpec::index)).
    pub operation: usize,
    /// The template's parameters, decoded.
    pub params: Params,
    /// How many bytes of the request path the API prefix took (`/echo` in
    /// `/echo/users/1`: 5). See [`Route::operation_path`].
    pub api_path_len: usize,
}

impl Route {
    /// The part of `path` after the API prefix, raw (still percent-encoded), e.g.
    /// `/users/1` for `/echo/users/1`; empty when the path is the prefix itself. This is
    /// what APIM appends to the backend URL. `path` must be the path that was routed
    /// (without the query); for any other string the result is unspecified but never a
    /// panic.
    pub fn operation_path<'p>(&self, path: &'p str) -> &'p str {
        path.get(self.api_path_len..).unwrap_or("")
    }
}

/// The values of a template's parameters, in template order: path parameters, the
/// catch-all, then query parameters.
///
/// Values are percent-decoded (query values also turn `+` into a space); bytes that are
/// not UTF-8 after decoding become U+FFFD. Names and values share one buffer, so a match
/// costs at most two allocations however many parameters there are, and none when there
/// are none; nothing is shared with the table, so no reference count is touched.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Names and values, back to back.
    text: String,
    spans: Vec<Span>,
}

/// Where one parameter's name and value are in [`Params::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    name: usize,
    value: usize,
    end: usize,
}

impl Params {
    /// Room for `count` parameters whose names and values take about `bytes` bytes.
    pub(crate) fn with_capacity(count: usize, bytes: usize) -> Self {
        if count == 0 {
            return Self::default();
        }
        Self {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(count),
        }
    }

    /// Adds the parameter `name`, its value written by `write`.
    pub(crate) fn push_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        self.text.push_str(name);
        let value = self.text.len();
        write(&mut self.text);
        self.spans.push(Span {
            name: start,
            value,
            end: self.text.len(),
        });
    }

    fn pair(&self, span: Span) -> (&str, &str) {
        (
            self.text.get(span.name..span.value).unwrap_or_default(),
            self.text.get(span.value..span.end).unwrap_or_default(),
        )
    }

    /// The value of the parameter `name`, compared ignoring ASCII case (a template
    /// cannot declare two names that differ only in case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The `(name, value)` pairs in template order.
    pub fn iter(&self) -> ParamsIter<'_> {
        ParamsIter {
            params: self,
            spans: self.spans.iter(),
        }
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a str, &'a str);
    type IntoIter = ParamsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The `(name, value)` pairs of [`Params`], in template order.
#[derive(Debug, Clone)]
pub struct ParamsIter<'a> {
    params: &'a Params,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Iterator for ParamsIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.spans.next().map(|&span| self.params.pair(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for ParamsIter<'_> {}
