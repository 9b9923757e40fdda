//! The routing table: built once per configuration, then shared read-only by every
//! request.
//!
//! Layout, from the outside in:
//!
//! 1. Host: a map of exact host names and one of wildcard suffixes, each to a prefix
//!    tree, plus the prefix tree of the APIs that answer on any host.
//! 2. API prefix: a trie over the literal segments of API paths. Walking the request
//!    path down it and remembering the last node that holds an API gives the longest
//!    prefix on segment boundaries; each step is one hash probe.
//! 3. Operation: per API, a trie over template segments whose children are tried
//!    literal, then mixed (`{name}.json`, most literal text first), then parameter,
//!    then catch-all. A depth-first walk in that order meets templates in specificity
//!    order, so the first hit wins. Each trie node is entered at most once per lookup,
//!    so the walk is bounded by the size of that one API's trie, never by the number of
//!    APIs.

use std::collections::HashMap;
use std::fmt;

use http::Method;

use crate::host::{HostPattern, request_host, wildcard_suffix};
use crate::template::{Pattern, Segment, Tail, segments_of, split_query, split_segment};
use crate::text::{LiteralMap, Norm, normalize};
use crate::{ApiSpec, BuildError, BuildErrors, Route, RouteMatch, RouterOptions, Template};

/// An immutable routing table: (host, method, path) to API, operation and parameters.
///
/// Build it once per configuration with [`Router::build`], off the request path, and
/// share it (it is `Send + Sync`); see the [crate documentation](crate) for the rules.
pub struct Router {
    fold: bool,
    /// APIs by exact host name (lowercase).
    exact: LiteralMap<PrefixTree>,
    /// APIs by wildcard suffix: `*.example.com` is under `example.com`.
    wildcard: LiteralMap<PrefixTree>,
    /// APIs with no hostnames.
    any: PrefixTree,
    apis: Box<[ApiTable]>,
}

/// A trie over API path segments, for one host (or wildcard, or any host).
#[derive(Debug, Default)]
struct PrefixTree {
    /// `nodes[0]` is the root.
    nodes: Box<[PrefixNode]>,
}

#[derive(Debug)]
struct PrefixNode {
    /// Children by normalized segment.
    children: LiteralMap<usize>,
    /// The API whose path ends here, as a position in `Router::apis`.
    api: Option<usize>,
}

/// The operations of one API.
#[derive(Debug)]
struct ApiTable {
    /// The caller's index.
    index: usize,
    /// `nodes[0]` is the root.
    nodes: Box<[OpNode]>,
    endpoints: Box<[Endpoint]>,
}

#[derive(Debug, Default)]
struct OpNode {
    literals: LiteralMap<usize>,
    /// Mixed segments, most literal text first.
    patterns: Box<[(Pattern, usize)]>,
    param: Option<usize>,
    /// Templates ending here, most specific first (positions in `ApiTable::endpoints`).
    ends: Box<[usize]>,
    /// Templates with a catch-all here, most specific first.
    catch_alls: Box<[usize]>,
}

#[derive(Debug)]
struct Endpoint {
    /// The caller's index.
    operation: usize,
    method: MethodFilter,
    template: Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MethodFilter {
    Any,
    Exact(Method),
}

impl MethodFilter {
    fn allows(&self, method: &Method) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(allowed) => allowed == method,
        }
    }
}

// === impl Router ===

impl Router {
    /// Builds a table with the default (APIM) options.
    ///
    /// # Errors
    ///
    /// Every invalid path, hostname, method or template, every pair of APIs with the same
    /// host and path, and every pair of operations that would match the same requests.
    pub fn build<'a>(apis: impl IntoIterator<Item = ApiSpec<'a>>) -> Result<Self, BuildErrors> {
        Self::build_with(RouterOptions::default(), apis)
    }

    /// Builds a table with the given options.
    ///
    /// # Errors
    ///
    /// As [`Router::build`].
    pub fn build_with<'a>(
        options: RouterOptions,
        apis: impl IntoIterator<Item = ApiSpec<'a>>,
    ) -> Result<Self, BuildErrors> {
        let fold = options.path_case.folds();
        let mut errors = Vec::new();
        let mut tables = Vec::new();
        let mut ids: Vec<&'a str> = Vec::new();
        let mut exact: HashMap<Box<str>, PrefixTreeBuilder> = HashMap::new();
        let mut wildcard: HashMap<Box<str>, PrefixTreeBuilder> = HashMap::new();
        let mut any = PrefixTreeBuilder::default();

        for api in apis {
            let position = tables.len();
            let table = build_api_table(&api, fold, &mut errors);
            let prefix = api_prefix(&api, fold, &mut errors);
            let hosts = api_hosts(&api, &mut errors);
            tables.push(table);
            ids.push(api.id);
            let Some((path, prefix)) = prefix else {
                continue;
            };
            let mut insert = |tree: &mut PrefixTreeBuilder, host: &str| {
                if let Err(first) = tree.insert(&prefix, position) {
                    errors.push(BuildError::DuplicateApiPath {
                        first: ids.get(first).copied().unwrap_or_default().to_owned(),
                        second: api.id.to_owned(),
                        host: host.to_owned(),
                        path: path.to_owned(),
                    });
                }
            };
            if hosts.is_empty() {
                insert(&mut any, "*");
            }
            for host in hosts {
                match host {
                    HostPattern::Exact(name) => {
                        insert(exact.entry(name.clone()).or_default(), &name);
                    }
                    HostPattern::Wildcard(suffix) => insert(
                        wildcard.entry(suffix.clone()).or_default(),
                        &format!("*.{suffix}"),
                    ),
                }
            }
        }

        if let Some(errors) = BuildErrors::new(errors) {
            return Err(errors);
        }
        let freeze_hosts = |hosts: HashMap<Box<str>, PrefixTreeBuilder>| {
            LiteralMap::from_map(
                hosts
                    .into_iter()
                    .map(|(name, tree)| (Box::<[u8]>::from(name.as_bytes()), tree.freeze()))
                    .collect(),
            )
        };
        Ok(Self {
            fold,
            exact: freeze_hosts(exact),
            wildcard: freeze_hosts(wildcard),
            any: any.freeze(),
            apis: tables.into_boxed_slice(),
        })
    }

    /// Routes one request.
    ///
    /// - `host`: the request's host (`Host` header or URI authority), with or without a
    ///   port; `None` matches only APIs without hostnames.
    /// - `path_and_query`: the raw request target's path, optionally with `?query`
    ///   (`/echo/users/1?x=y`). A path not starting with `/` (`*`, an absolute URI)
    ///   matches nothing.
    ///
    /// Does not allocate unless it matches (then only the parameter values).
    pub fn route(&self, host: Option<&str>, method: &Method, path_and_query: &str) -> RouteMatch {
        let (path, query) = split_query(path_and_query);
        if !path.starts_with('/') {
            return RouteMatch::ApiNotFound;
        }
        let Some((position, api_path_len)) = self.find_api(host, path) else {
            return RouteMatch::ApiNotFound;
        };
        let Some(table) = self.apis.get(position) else {
            return RouteMatch::ApiNotFound;
        };
        table.route(method, path, api_path_len, query, self.fold)
    }

    /// Routes a request, taking the host from the URI (HTTP/2 `:authority`, absolute-form
    /// targets) or else the `Host` header.
    pub fn route_request<B>(&self, request: &http::Request<B>) -> RouteMatch {
        let host = request.uri().host().or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|value| value.to_str().ok())
        });
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        self.route(host, request.method(), path_and_query)
    }

    /// A table with no APIs: every request is [`RouteMatch::ApiNotFound`]. What a
    /// gateway serves before its first configuration is loaded.
    pub fn empty() -> Self {
        match Self::build(std::iter::empty()) {
            Ok(router) => router,
            // Building from no APIs has nothing to reject.
            Err(errors) => unreachable!("empty routing table rejected: {errors}"),
        }
    }

    /// The number of APIs in the table.
    pub fn len(&self) -> usize {
        self.apis.len()
    }

    /// Whether the table has no APIs (every request is [`RouteMatch::ApiNotFound`]).
    pub fn is_empty(&self) -> bool {
        self.apis.is_empty()
    }

    /// The API whose prefix is the longest match for `path`, as (position, prefix
    /// length). Host tiers are tried from most to least specific, and a tier with no
    /// matching prefix falls through to the next.
    fn find_api(&self, host: Option<&str>, path: &str) -> Option<(usize, usize)> {
        if let Some(host) = host.map(request_host) {
            let exact = self.exact.get(host.as_bytes(), Norm::HOST);
            if let Some(found) = exact.and_then(|tree| tree.longest(path, self.fold)) {
                return Some(found);
            }
            let wildcard = wildcard_suffix(host)
                .and_then(|suffix| self.wildcard.get(suffix.as_bytes(), Norm::HOST));
            if let Some(found) = wildcard.and_then(|tree| tree.longest(path, self.fold)) {
                return Some(found);
            }
        }
        self.any.longest(path, self.fold)
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("apis", &self.apis.len())
            .field("exact_hosts", &self.exact.len())
            .field("wildcard_hosts", &self.wildcard.len())
            .field(
                "operations",
                &self
                    .apis
                    .iter()
                    .map(|api| api.endpoints.len())
                    .sum::<usize>(),
            )
            .field("case_insensitive", &self.fold)
            .finish_non_exhaustive()
    }
}

// === impl PrefixTree ===

impl PrefixTree {
    /// The last API met walking `path` (which starts with `/`) down the trie.
    fn longest(&self, path: &str, fold: bool) -> Option<(usize, usize)> {
        let mut node = self.nodes.first()?;
        let mut best = node.api.map(|api| (api, 0));
        let mut rest = path.get(1..).unwrap_or("");
        let mut consumed = 0;
        while !rest.is_empty() {
            let (segment, next) = split_segment(rest);
            let Some(child) = node
                .children
                .get(segment.as_bytes(), Norm::path(fold))
                .and_then(|&child| self.nodes.get(child))
            else {
                break;
            };
            node = child;
            consumed += 1 + segment.len();
            if let Some(api) = node.api {
                best = Some((api, consumed));
            }
            rest = next.unwrap_or("");
        }
        best
    }
}

#[derive(Debug, Default)]
struct PrefixTreeBuilder {
    nodes: Vec<PrefixNodeBuilder>,
}

#[derive(Debug, Default)]
struct PrefixNodeBuilder {
    children: HashMap<Box<[u8]>, usize>,
    api: Option<usize>,
}

impl PrefixTreeBuilder {
    /// Puts `api` at the end of `segments`; on a clash, returns the API already there.
    fn insert(&mut self, segments: &[Box<[u8]>], api: usize) -> Result<(), usize> {
        if self.nodes.is_empty() {
            self.nodes.push(PrefixNodeBuilder::default());
        }
        let mut node = 0;
        for segment in segments {
            node = match self.nodes[node].children.get(segment) {
                Some(&child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(PrefixNodeBuilder::default());
                    self.nodes[node].children.insert(segment.clone(), child);
                    child
                }
            };
        }
        match self.nodes[node].api {
            Some(first) => Err(first),
            None => {
                self.nodes[node].api = Some(api);
                Ok(())
            }
        }
    }

    fn freeze(self) -> PrefixTree {
        PrefixTree {
            nodes: self
                .nodes
                .into_iter()
                .map(|node| PrefixNode {
                    children: LiteralMap::from_map(node.children),
                    api: node.api,
                })
                .collect(),
        }
    }
}

/// The API's path as written (trimmed) and as normalized segments.
fn api_prefix<'a>(
    api: &ApiSpec<'a>,
    fold: bool,
    errors: &mut Vec<BuildError>,
) -> Option<(&'a str, Vec<Box<[u8]>>)> {
    let path = api.path.trim_matches('/');
    let invalid = |reason| BuildError::InvalidApiPath {
        api: api.id.to_owned(),
        path: api.path.to_owned(),
        reason,
    };
    if path.contains(['{', '}', '*', '?', '#']) {
        errors.push(invalid(
            "an API path is a fixed prefix: no `{}`, `*`, `?` or `#`; put parameters in operation URL templates",
        ));
        return None;
    }
    if path.is_empty() {
        return Some((path, Vec::new()));
    }
    if path.split('/').any(str::is_empty) {
        errors.push(invalid("empty segment (`//`)"));
        return None;
    }
    let segments = path
        .split('/')
        .map(|segment| normalize(segment.as_bytes(), Norm::path(fold)).into())
        .collect();
    Some((path, segments))
}

/// The API's hostnames, validated and without duplicates.
fn api_hosts(api: &ApiSpec<'_>, errors: &mut Vec<BuildError>) -> Vec<HostPattern> {
    let mut hosts: Vec<HostPattern> = Vec::new();
    for &hostname in &api.hostnames {
        match HostPattern::parse(hostname) {
            Ok(host) if hosts.contains(&host) => {}
            Ok(host) => hosts.push(host),
            Err(reason) => errors.push(BuildError::InvalidHostname {
                api: api.id.to_owned(),
                hostname: hostname.to_owned(),
                reason,
            }),
        }
    }
    hosts
}

// === impl ApiTable ===

impl ApiTable {
    fn route(
        &self,
        method: &Method,
        path: &str,
        api_path_len: usize,
        query: Option<&str>,
        fold: bool,
    ) -> RouteMatch {
        let operation_path = path.get(api_path_len..).unwrap_or("");
        let segments = segments_of(operation_path.strip_prefix('/').unwrap_or(operation_path));
        let mut search = Search {
            table: self,
            method,
            query,
            fold,
            method_mismatch: false,
        };
        match search.find(0, segments) {
            Some(endpoint) => match endpoint.template.capture_parts(operation_path, query, fold) {
                Some(params) => RouteMatch::Matched(Route {
                    api: self.index,
                    operation: endpoint.operation,
                    params,
                    api_path_len,
                }),
                None => {
                    // The trie and `capture_parts` share their matching functions, so
                    // they agree; this arm only keeps a bug from becoming a panic.
                    debug_assert!(
                        false,
                        "trie matched `{}` but capture did not",
                        endpoint.template
                    );
                    RouteMatch::OperationNotFound { api: self.index }
                }
            },
            None if search.method_mismatch => RouteMatch::MethodMismatch { api: self.index },
            None => RouteMatch::OperationNotFound { api: self.index },
        }
    }
}

/// One depth-first walk of an API's operation trie.
struct Search<'t, 'r> {
    table: &'t ApiTable,
    method: &'r Method,
    query: Option<&'r str>,
    fold: bool,
    /// Set when a template matched path and query but not the method.
    method_mismatch: bool,
}

impl<'t> Search<'t, '_> {
    /// The most specific endpoint under `node` for the remaining `segments` (`None`:
    /// the path is used up). Recursion depth is at most the trie depth, which
    /// [`MAX_TEMPLATE_SEGMENTS`](crate::MAX_TEMPLATE_SEGMENTS) bounds.
    fn find(&mut self, node: usize, segments: Option<&str>) -> Option<&'t Endpoint> {
        let node = self.table.nodes.get(node)?;
        let Some(segments) = segments else {
            return self
                .pick(&node.ends)
                .or_else(|| self.pick(&node.catch_alls));
        };
        let (segment, rest) = split_segment(segments);
        if let Some(&child) = node.literals.get(segment.as_bytes(), Norm::path(self.fold))
            && let Some(found) = self.find(child, rest)
        {
            return Some(found);
        }
        for (pattern, child) in &node.patterns {
            if pattern.matches_raw(segment, self.fold)
                && let Some(found) = self.find(*child, rest)
            {
                return Some(found);
            }
        }
        if let Some(child) = node.param
            && !segment.is_empty()
            && let Some(found) = self.find(child, rest)
        {
            return Some(found);
        }
        self.pick(&node.catch_alls)
    }

    /// The first of `endpoints` (most specific first) that the query and method allow.
    fn pick(&mut self, endpoints: &[usize]) -> Option<&'t Endpoint> {
        for endpoint in endpoints
            .iter()
            .filter_map(|&e| self.table.endpoints.get(e))
        {
            if !endpoint.template.query_matches(self.query, self.fold) {
                continue;
            }
            if endpoint.method.allows(self.method) {
                return Some(endpoint);
            }
            self.method_mismatch = true;
        }
        None
    }
}

#[derive(Debug, Default)]
struct OpNodeBuilder {
    literals: HashMap<Box<[u8]>, usize>,
    /// (shape, pattern, child), in insertion order.
    patterns: Vec<(Vec<u8>, Pattern, usize)>,
    param: Option<usize>,
    ends: Vec<usize>,
    catch_alls: Vec<usize>,
}

/// Parses and indexes one API's operations; problems go to `errors`.
fn build_api_table(api: &ApiSpec<'_>, fold: bool, errors: &mut Vec<BuildError>) -> ApiTable {
    let mut nodes = vec![OpNodeBuilder::default()];
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut seen: HashMap<(String, Vec<u8>), &str> = HashMap::new();

    for operation in &api.operations {
        let method = if operation.method == "*" {
            Some(MethodFilter::Any)
        } else {
            Method::from_bytes(operation.method.to_ascii_uppercase().as_bytes())
                .ok()
                .map(MethodFilter::Exact)
        };
        let Some(method) = method else {
            errors.push(BuildError::InvalidMethod {
                api: api.id.to_owned(),
                operation: operation.id.to_owned(),
                method: operation.method.to_owned(),
            });
            continue;
        };
        let template = match Template::parse(operation.url_template) {
            Ok(template) => template,
            Err(source) => {
                errors.push(BuildError::InvalidTemplate {
                    api: api.id.to_owned(),
                    operation: operation.id.to_owned(),
                    template: operation.url_template.to_owned(),
                    source,
                });
                continue;
            }
        };
        let method_key = match &method {
            MethodFilter::Any => "*".to_owned(),
            MethodFilter::Exact(method) => method.as_str().to_owned(),
        };
        if let Some(first) = seen.insert((method_key.clone(), template.shape(fold)), operation.id) {
            errors.push(BuildError::AmbiguousOperations {
                api: api.id.to_owned(),
                first: first.to_owned(),
                second: operation.id.to_owned(),
                method: method_key,
                template: operation.url_template.to_owned(),
            });
            continue;
        }

        let mut node = 0;
        for segment in template.segments() {
            node = child_for(&mut nodes, node, segment, fold);
        }
        let position = endpoints.len();
        match template.tail() {
            Tail::Exact => nodes[node].ends.push(position),
            Tail::CatchAll(_) => nodes[node].catch_alls.push(position),
        }
        endpoints.push(Endpoint {
            operation: operation.index,
            method,
            template,
        });
    }

    // Most specific first: more query constraints, then a named method over `*`, then
    // the order the operations were given in (a stable sort keeps it).
    let order = |ids: &mut Vec<usize>| {
        ids.sort_by_key(|&id| {
            let endpoint = &endpoints[id];
            (
                std::cmp::Reverse(endpoint.template.query_len()),
                endpoint.method == MethodFilter::Any,
            )
        });
    };
    let nodes = nodes
        .into_iter()
        .map(|mut node| {
            order(&mut node.ends);
            order(&mut node.catch_alls);
            node.patterns
                .sort_by_key(|(_, pattern, _)| std::cmp::Reverse(pattern.literal_len()));
            OpNode {
                literals: LiteralMap::from_map(node.literals),
                patterns: node
                    .patterns
                    .into_iter()
                    .map(|(_, pattern, child)| (pattern, child))
                    .collect(),
                param: node.param,
                ends: node.ends.into_boxed_slice(),
                catch_alls: node.catch_alls.into_boxed_slice(),
            }
        })
        .collect();
    ApiTable {
        index: api.index,
        nodes,
        endpoints: endpoints.into_boxed_slice(),
    }
}

/// The child of `node` for `segment`, created if missing.
fn child_for(nodes: &mut Vec<OpNodeBuilder>, node: usize, segment: &Segment, fold: bool) -> usize {
    let next = nodes.len();
    let child = match segment {
        Segment::Literal(literal) => {
            let key: Box<[u8]> = if fold {
                literal.to_ascii_lowercase().into()
            } else {
                literal.clone()
            };
            *nodes[node].literals.entry(key).or_insert(next)
        }
        Segment::Param(_) => *nodes[node].param.get_or_insert(next),
        Segment::Pattern(pattern) => {
            let shape = pattern.shape(fold);
            let patterns = &mut nodes[node].patterns;
            match patterns.iter().find(|(existing, _, _)| *existing == shape) {
                Some(&(_, _, child)) => child,
                None => {
                    patterns.push((shape, pattern.clone(), next));
                    next
                }
            }
        }
    };
    if child == next {
        nodes.push(OpNodeBuilder::default());
    }
    child
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
