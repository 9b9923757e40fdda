//! Request routing for Gatehouse: (host, method, path) to the API, the operation and the
//! URL template parameters, the way Azure API Management chooses them.
//!
//! A [`Router`] is built once per configuration from plain [`ApiSpec`]s (this crate
//! does not depend on the configuration model, tokio or hyper) and is then immutable and
//! shared. Building validates everything and reports every problem at once
//! ([`BuildErrors`]); routing cannot fail, it answers a [`RouteMatch`].
//!
//! ```
//! use gatehouse_router::{ApiSpec, RouteMatch, Router};
//! use http::Method;
//!
//! let router = Router::build([
//!     ApiSpec::new(0, "users", "v1/users")
//!         .operation("list", "GET", "/")
//!         .operation("get", "GET", "/{id}")
//!         .operation("me", "GET", "/me"),
//! ])?;
//!
//! let RouteMatch::Matched(route) = router.route(None, &Method::GET, "/v1/users/42") else {
//!     panic!("no match");
//! };
//! assert_eq!((route.api, route.operation), (0, 1));
//! assert_eq!(route.params.get("id"), Some("42"));
//! assert_eq!(route.operation_path("/v1/users/42"), "/42");
//!
//! // Literal beats parameter.
//! let route = router.route(None, &Method::GET, "/v1/users/me").into_route();
//! assert_eq!(route.map(|r| r.operation), Some(2));
//! # Ok::<(), gatehouse_router::BuildErrors>(())
//! ```
//!
//! # Matching rules
//!
//! The most specific match wins, at each level in turn:
//!
//! 1. **Host.** An API with exact hostnames (`api.example.com`) beats one with a
//!    wildcard (`*.example.com`, exactly one more label), which beats one with no
//!    hostnames (any host). Host names are compared ignoring case, and a request's
//!    `:port` and trailing `.` are ignored. If no API of the most specific host tier has
//!    a matching path prefix, the next tier is tried.
//! 2. **API.** Among the APIs of that tier, the longest path prefix wins, on segment
//!    boundaries: API `echo` matches `/echo` and `/echo/x`, never `/echoes`. An empty
//!    path is the root. Once an API is chosen it is final: if none of its operations
//!    matches, the answer is [`RouteMatch::OperationNotFound`], not a shorter API.
//! 3. **Operation.** Templates are compared segment by segment, left to right: a
//!    literal beats a mixed segment (`{name}.json`; more literal text first), which
//!    beats a parameter, which beats a catch-all. Among templates with the same path,
//!    one with more query constraints (`?q={q}`) beats one with fewer, and a named method
//!    beats `*`. If the most specific template does not allow the method, less specific
//!    ones are tried; if templates matched but no method did, the answer is
//!    [`RouteMatch::MethodMismatch`] (APIM answers 404 for both).
//!
//! Paths and templates:
//!
//! - The path is split into segments on the raw `/`; a `%2F` inside a segment stays in
//!   that segment. Literals are compared *decoded* (`/%61pi` matches `api`), so an
//!   encoded spelling cannot reach a less specific operation than the plain one.
//!   Literal comparison ignores ASCII case by default, as APIM does
//!   ([`PathCase::Sensitive`] turns that off).
//! - One trailing `/` is ignored: `/users/` matches the template `/users`. An empty
//!   segment (`/a//b`) matches only a catch-all.
//! - Parameter values are percent-decoded; bytes that do not form UTF-8 after decoding
//!   become U+FFFD, never a panic. A parameter matches at least one byte.
//! - A template's query part is matched against the request's query parameters:
//!   `name={param}` requires `name` and captures it, `name=value` requires that value;
//!   other request parameters are ignored. Query keys follow [`PathCase`]; values are
//!   compared exactly, after form-decoding (`+` is a space).
//!
//! What it does not do: normalize `.`/`..` segments or duplicate slashes (the gateway
//! should reject or normalize such paths before routing, or an API boundary can be
//! crossed at the backend), match on headers, or pick a backend.
//!
//! # Cost
//!
//! Building is linear in the total size of the configuration. A lookup does one hash
//! probe per host tier tried and one per path segment of the API prefix, then walks
//! one API's operation trie, where each node is entered at most once. None of this
//! depends on the number of APIs: 10,000 APIs route as fast as 10 (see
//! `benches/router.rs`). The lookup allocates nothing until it has a match, then only
//! the parameter values.

mod error;
mod host;
mod route;
mod spec;
mod table;
mod template;
mod text;

#[cfg(test)]
mod prop_tests;

pub use error::{BuildError, BuildErrors, TemplateError};
pub use route::{Params, ParamsIter, Route, RouteMatch};
pub use spec::{ApiSpec, OperationSpec, PathCase, RouterOptions};
pub use table::Router;
pub use template::{MAX_TEMPLATE_SEGMENTS, Template};
