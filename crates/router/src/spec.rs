//! What the router is built from: plain descriptions of APIs and operations, so this
//! crate does not depend on the configuration model. The caller's indices come back in
//! every [`Route`](crate::Route); the ids only label error messages.

/// One API to route to.
///
/// Mapping a `gatehouse_model::Api` is one line per field:
///
/// ```
/// # use gatehouse_router::{ApiSpec, OperationSpec};
/// # struct Api { id: String, path: String, hostnames: Vec<String>, operations: Vec<Op> }
/// # struct Op { id: String, method: String, url_template: String }
/// # let apis: Vec<Api> = Vec::new();
/// let specs = apis.iter().enumerate().map(|(index, api)| ApiSpec {
///     index,
///     id: &api.id,
///     path: &api.path,
///     hostnames: api.hostnames.iter().map(String::as_str).collect(),
///     operations: api
///         .operations
///         .iter()
///         .enumerate()
///         .map(|(index, op)| OperationSpec {
///             index,
///             id: &op.id,
///             method: &op.method,
///             url_template: &op.url_template,
///         })
///         .collect(),
/// });
/// # let _ = gatehouse_router::Router::build(specs);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiSpec<'a> {
    /// The caller's index for this API, returned in [`Route::api`](crate::Route::api).
    pub index: usize,
    /// The API's id, used in error messages.
    pub id: &'a str,
    /// The path prefix (`echo`, `v1/users`); leading and trailing `/` are ignored, and
    /// empty serves the API at the root. Plain segments only: no `{}`, `*`, `?` or `#`.
    pub path: &'a str,
    /// Host names the API answers on: exact (`api.example.com`) or one-label wildcards
    /// (`*.example.com`). Empty: any host.
    pub hostnames: Vec<&'a str>,
    /// The API's operations.
    pub operations: Vec<OperationSpec<'a>>,
}

impl<'a> ApiSpec<'a> {
    /// An API with no hostnames (any host) and no operations yet.
    pub fn new(index: usize, id: &'a str, path: &'a str) -> Self {
        Self {
            index,
            id,
            path,
            hostnames: Vec::new(),
            operations: Vec::new(),
        }
    }

    /// Adds a hostname.
    #[must_use]
    pub fn hostname(mut self, hostname: &'a str) -> Self {
        self.hostnames.push(hostname);
        self
    }

    /// Adds an operation; its index is the number of operations added before it.
    #[must_use]
    pub fn operation(mut self, id: &'a str, method: &'a str, url_template: &'a str) -> Self {
        let index = self.operations.len();
        self.operations.push(OperationSpec {
            index,
            id,
            method,
            url_template,
        });
        self
    }
}

/// One operation of an [`ApiSpec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationSpec<'a> {
    /// The caller's index for this operation, returned in
    /// [`Route::operation`](crate::Route::operation).
    pub index: usize,
    /// The operation's id, used in error messages.
    pub id: &'a str,
    /// An HTTP method (`GET`; compared after uppercasing, as APIM stores methods) or `*`
    /// for any method.
    pub method: &'a str,
    /// The URL template relative to the API path: `/users/{id}`, `/files/{name}.json`,
    /// `/files/{*path}`, `/*`, `/search?q={q}`. See the crate documentation.
    pub url_template: &'a str,
}

/// Whether literal path text is compared with or without regard to ASCII case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PathCase {
    /// `/Users` matches the literal `users`, as in APIM. The default.
    #[default]
    Insensitive,
    /// `/Users` does not match the literal `users`.
    Sensitive,
}

impl PathCase {
    pub(crate) const fn folds(self) -> bool {
        matches!(self, Self::Insensitive)
    }
}

/// Settings that change how requests match; the default is APIM's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterOptions {
    /// How literal path segments (API prefixes, template literals) and query keys are
    /// compared. Host names are always case-insensitive; parameter values are never
    /// changed.
    pub path_case: PathCase,
}
