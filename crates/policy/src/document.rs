//! The typed policy document: sections, `<base/>` markers and policies, each with its
//! position.
//!
//! [`PolicyDocument`] is what [`crate::parse`] returns. Reading checks structure only:
//! known elements, known attributes, required attributes and children. Values
//! (numbers, header names, URLs, `{{named values}}`, expressions) are checked by
//! [`crate::compile`], which knows the named values and backends.

use std::sync::Arc;

use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::policies;
use crate::reader::{Element, RawText, RawValue};
use crate::registry::ParsedKind;

/// A parsed policy document of one scope (global, product, API or operation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    origin: Arc<str>,
    fragment: bool,
    /// A `<fragment>`'s policies, in order.
    fragment_policies: Vec<Policy>,
    inbound: Option<Section>,
    backend: Option<Section>,
    outbound: Option<Section>,
    on_error: Option<Section>,
    position: Position,
}

impl PolicyDocument {
    /// Where the document came from, as given to [`crate::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the root is `<fragment>` (a policy fragment) rather than `<policies>`.
    pub fn is_fragment(&self) -> bool {
        self.fragment
    }

    /// A `<fragment>`'s policies (none for a `<policies>` document).
    pub(crate) fn fragment_policies(&self) -> &[Policy] {
        &self.fragment_policies
    }

    /// One section; `None` when the document does not have it (it then inherits the
    /// parent scope's section whole).
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        match kind {
            SectionKind::Inbound => self.inbound.as_ref(),
            SectionKind::Backend => self.backend.as_ref(),
            SectionKind::Outbound => self.outbound.as_ref(),
            SectionKind::OnError => self.on_error.as_ref(),
        }
    }

    /// Position of the root element.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Calls `visit` with every policy, in document order, nested ones (inside
    /// `limit-concurrency`) after their parent.
    pub fn visit_policies(&self, visit: &mut impl FnMut(&Policy)) {
        fn walk(policy: &Policy, visit: &mut impl FnMut(&Policy)) {
            visit(policy);
            for nested in policy.kind.nested() {
                walk(nested, visit);
            }
        }
        for policy in &self.fragment_policies {
            walk(policy, visit);
        }
        for kind in [
            SectionKind::Inbound,
            SectionKind::Backend,
            SectionKind::Outbound,
            SectionKind::OnError,
        ] {
            for node in self.section(kind).map(Section::nodes).unwrap_or_default() {
                if let PolicyNode::Policy(policy) = node {
                    walk(policy, visit);
                }
            }
        }
    }
}

/// The four sections of a policy document, in the order a request meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// `<inbound>`: runs on the request before anything is sent to the backend.
    Inbound,
    /// `<backend>`: runs just before the request is forwarded.
    Backend,
    /// `<outbound>`: runs on the backend's response.
    Outbound,
    /// `<on-error>`: runs when a policy or the gateway raises an error.
    OnError,
}

impl SectionKind {
    /// All sections in request order.
    pub const ALL: [Self; 4] = [Self::Inbound, Self::Backend, Self::Outbound, Self::OnError];

    /// The element name (`inbound`, `backend`, `outbound`, `on-error`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Backend => "backend",
            Self::Outbound => "outbound",
            Self::OnError => "on-error",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for SectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One section of a document: its policies and `<base/>` marker, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    position: Position,
    nodes: Vec<PolicyNode>,
}

impl Section {
    /// The section's children in document order.
    pub fn nodes(&self) -> &[PolicyNode] {
        &self.nodes
    }

    /// Position of the section element.
    pub fn position(&self) -> Position {
        self.position
    }
}

/// A child of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyNode {
    /// `<base/>`: the parent scope's (already merged) section goes here.
    Base(Position),
    /// A policy.
    Policy(Box<Policy>),
}

/// One policy element, parsed (attributes checked, values not yet compiled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) origin: Arc<str>,
    pub(crate) position: Position,
    /// Where the element is in its section (`choose[3]\when[2]\set-header[1]`), for
    /// `context.LastError.Path`.
    pub(crate) path: Arc<str>,
    /// APIM's optional `id` attribute, reported in errors raised by the policy.
    pub(crate) id: Option<String>,
    pub(crate) kind: ParsedKind,
}

impl Policy {
    /// The element name, e.g. `rate-limit-by-key`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Where the element starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The document this policy came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn site(&self) -> Site<'_> {
        Site::new(&self.origin, self.kind.name())
    }
}

/// Every policy element APIM documents, so an unimplemented one is reported as "not
/// supported yet" rather than as a typo.
pub(crate) const APIM_POLICIES: &[&str] = &[
    "authentication-basic",
    "authentication-certificate",
    "authentication-managed-identity",
    "azure-openai-emit-token-metric",
    "azure-openai-semantic-cache-lookup",
    "azure-openai-semantic-cache-store",
    "azure-openai-token-limit",
    "cache-lookup",
    "cache-lookup-value",
    "cache-remove-value",
    "cache-store",
    "cache-store-value",
    "check-header",
    "choose",
    "cors",
    "cosmosdb-data-source",
    "cross-domain",
    "emit-metric",
    "find-and-replace",
    "forward-request",
    "get-authorization-context",
    "http-data-source",
    "include-fragment",
    "invoke-dapr-binding",
    "ip-filter",
    "json-to-xml",
    "jsonp",
    "limit-concurrency",
    "llm-content-safety",
    "llm-emit-token-metric",
    "llm-semantic-cache-lookup",
    "llm-semantic-cache-store",
    "llm-token-limit",
    "log-to-eventhub",
    "mock-response",
    "proxy",
    "publish-event",
    "publish-to-dapr",
    "quota",
    "quota-by-key",
    "rate-limit",
    "rate-limit-by-key",
    "redirect-content-urls",
    "retry",
    "return-response",
    "rewrite-uri",
    "send-one-way-request",
    "send-request",
    "send-service-bus-message",
    "set-backend-service",
    "set-body",
    "set-header",
    "set-method",
    "set-query-parameter",
    "set-status",
    "set-variable",
    "sql-data-source",
    "trace",
    "validate-azure-ad-token",
    "validate-client-certificate",
    "validate-content",
    "validate-graphql-request",
    "validate-headers",
    "validate-jwt",
    "validate-odata-request",
    "validate-parameters",
    "validate-status-code",
    "wait",
    "xml-to-json",
    "xsl-transform",
];

/// Reads the root element into a document, reporting every problem it can: a policy
/// that cannot be read is reported and left out, and the reading goes on with the next
/// one. Problems in the document's own structure (its root, its sections) stop it.
pub(crate) fn from_element(
    origin: &str,
    root: &Element,
) -> Result<PolicyDocument, Vec<PolicyError>> {
    match from_element_partial(origin, root) {
        (Some(document), problems) if problems.is_empty() => Ok(document),
        (_, problems) => Err(problems),
    }
}

/// [`from_element`], also giving back what could be read when some policies could not:
/// the document without them (`None` when its own structure is wrong), so the rest can
/// still be compiled and checked. The problems are in document order.
pub(crate) fn from_element_partial(
    origin: &str,
    root: &Element,
) -> (Option<PolicyDocument>, Vec<PolicyError>) {
    let origin: Arc<str> = Arc::from(origin);
    let cx = ParseCx {
        origin: &origin,
        problems: std::cell::RefCell::new(Vec::new()),
        path: std::cell::RefCell::new(String::new()),
    };
    let read = read_document(&cx, &origin, root);
    let mut problems = cx.problems.into_inner();
    let document = match read {
        Ok(document) => Some(document),
        Err(error) => {
            problems.push(error);
            None
        }
    };
    problems.sort_by_key(|problem| (problem.position.line, problem.position.column));
    (document, problems)
}

fn read_document(
    cx: &ParseCx<'_>,
    origin: &Arc<str>,
    root: &Element,
) -> Result<PolicyDocument, PolicyError> {
    let origin = Arc::clone(origin);
    let mut document = PolicyDocument {
        origin: Arc::clone(&origin),
        fragment: false,
        fragment_policies: Vec::new(),
        inbound: None,
        backend: None,
        outbound: None,
        on_error: None,
        position: root.position,
    };
    let reader = ElementReader::new(root, Site::new(&origin, &root.name), false);
    match root.name.as_str() {
        "policies" => {
            reader.finish()?;
            reader.no_text()?;
            for child in &root.children {
                let Some(kind) = SectionKind::from_name(&child.name) else {
                    return Err(reader.unexpected_child(
                        child,
                        "a section: <inbound>, <backend>, <outbound> or <on-error>",
                    ));
                };
                let slot = match kind {
                    SectionKind::Inbound => &mut document.inbound,
                    SectionKind::Backend => &mut document.backend,
                    SectionKind::Outbound => &mut document.outbound,
                    SectionKind::OnError => &mut document.on_error,
                };
                if slot.is_some() {
                    return Err(PolicyError::new(
                        &origin,
                        child.position,
                        Some(&child.name),
                        ErrorKind::Structure,
                        "this section appears twice; merge the two into one",
                    ));
                }
                let section_reader =
                    ElementReader::new(child, Site::new(&origin, &child.name), false);
                section_reader.finish()?;
                section_reader.no_text()?;
                *slot = Some(Section {
                    position: child.position,
                    nodes: cx.nodes(&child.children, true)?,
                });
            }
        }
        "fragment" => {
            reader.finish()?;
            reader.no_text()?;
            document.fragment = true;
            // `<include-fragment>` compiles them where it is, for its section.
            document.fragment_policies = cx
                .nodes(&root.children, false)?
                .into_iter()
                .filter_map(|node| match node {
                    PolicyNode::Policy(policy) => Some(*policy),
                    PolicyNode::Base(_) => None, // refused by `nodes` here
                })
                .collect();
        }
        other => {
            return Err(PolicyError::new(
                &origin,
                root.position,
                Some(other),
                ErrorKind::Structure,
                "the root element must be <policies> (or <fragment> for a policy fragment)",
            ));
        }
    }
    Ok(document)
}

/// What reading one policy needs from its document.
pub(crate) struct ParseCx<'a> {
    pub(crate) origin: &'a Arc<str>,
    /// The policies that could not be read, in document order; reading goes on without
    /// them, so one run reports them all.
    problems: std::cell::RefCell<Vec<PolicyError>>,
    /// Where the element being read is, as APIM's `context.LastError.Path` writes it:
    /// `choose[3]`, `when[2]`, … from the section down (1-based among the siblings).
    path: std::cell::RefCell<String>,
}

impl ParseCx<'_> {
    /// Reads a list of policies; `base_allowed` only directly inside a section.
    pub(crate) fn nodes(
        &self,
        elements: &[Element],
        base_allowed: bool,
    ) -> Result<Vec<PolicyNode>, PolicyError> {
        let mut nodes = Vec::with_capacity(elements.len());
        let mut base_seen = false;
        for (index, element) in elements.iter().enumerate() {
            if element.name == "base" {
                let reader = ElementReader::new(element, Site::new(self.origin, "base"), false);
                if !base_allowed {
                    return Err(reader.structure(
                        element.position,
                        "<base/> is only allowed directly inside <inbound>, <backend>, <outbound> or <on-error>",
                    ));
                }
                if base_seen {
                    return Err(reader.structure(
                        element.position,
                        "only one <base/> is allowed per section; remove this one",
                    ));
                }
                reader.finish()?;
                reader.no_text()?;
                reader.no_children()?;
                base_seen = true;
                nodes.push(PolicyNode::Base(element.position));
            } else {
                let read = self.within(&element.name, index, || self.policy(element));
                match read {
                    Ok(policy) => nodes.push(PolicyNode::Policy(Box::new(policy))),
                    Err(problem) => self.problems.borrow_mut().push(problem),
                }
            }
        }
        Ok(nodes)
    }

    /// Runs `read` with `name[index + 1]` added to the element path (a container
    /// policy's branches: `when[2]`).
    pub(crate) fn within<T>(&self, name: &str, index: usize, read: impl FnOnce() -> T) -> T {
        let outer = {
            let mut path = self.path.borrow_mut();
            let outer = path.len();
            if outer > 0 {
                path.push('\\');
            }
            path.push_str(name);
            path.push('[');
            push_decimal(&mut path, index + 1);
            path.push(']');
            outer
        };
        let result = read();
        self.path.borrow_mut().truncate(outer);
        result
    }

    fn policy(&self, element: &Element) -> Result<Policy, PolicyError> {
        let path: Arc<str> = Arc::from(self.path.borrow().as_str());
        let name = element.name.as_str();
        let site = Site::new(self.origin, name);
        let mut reader = ElementReader::new(element, site, true);
        let Some(kind) = policies::parse(&mut reader, self)? else {
            return Err(unknown_policy(site, element));
        };
        let id = match reader.optional("id") {
            None => None,
            Some(RawValue {
                text: RawText::Literal(id),
                ..
            }) => Some(id),
            Some(value) => {
                return Err(site.not_supported(
                    value.position,
                    "the `id` attribute must be plain text; policy expressions are not supported yet",
                ));
            }
        };
        reader.finish()?;
        Ok(Policy {
            origin: Arc::clone(self.origin),
            position: element.position,
            path,
            id,
            kind,
        })
    }
}

/// Appends `n` in decimal (read per policy element: no formatter).
fn push_decimal(out: &mut String, n: usize) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    // A digit: `n % 10` is below 10.
    out.push(char::from(b'0' + u8::try_from(n % 10).unwrap_or(0)));
}

fn unknown_policy(site: Site<'_>, element: &Element) -> PolicyError {
    let name = element.name.as_str();
    if APIM_POLICIES.contains(&name) {
        return site.not_supported(
            element.position,
            format!("policy `<{name}>` is not supported yet by Gatehouse; docs/policies.md lists what is"),
        );
    }
    let suggestion = policies::REGISTRY
        .iter()
        .map(|registration| &registration.name)
        .chain(APIM_POLICIES)
        .filter(|candidate| edit_distance(candidate, name) <= 2)
        .min_by_key(|candidate| edit_distance(candidate, name))
        .map(|candidate| format!("; did you mean <{candidate}>?"))
        .unwrap_or_default();
    site.err(
        element.position,
        ErrorKind::UnknownElement,
        format!("unknown policy element{suggestion}"),
    )
}

/// Levenshtein distance, for "did you mean" hints on short names.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Reads one element's attributes and children, remembering which attributes were
/// asked for so the rest can be reported as unknown.
pub(crate) struct ElementReader<'e> {
    pub(crate) element: &'e Element,
    pub(crate) site: Site<'e>,
    requested: Vec<&'static str>,
    id_allowed: bool,
}

impl<'e> ElementReader<'e> {
    /// `site` names the policy (errors on child elements still name the policy);
    /// `id_allowed` for policy elements, which all accept APIM's `id` attribute.
    pub(crate) fn new(element: &'e Element, site: Site<'e>, id_allowed: bool) -> Self {
        Self {
            element,
            site,
            requested: Vec::new(),
            id_allowed,
        }
    }

    /// A reader for a child element, reporting errors against the same policy.
    pub(crate) fn child(&self, element: &'e Element) -> Self {
        Self::new(element, self.site, false)
    }

    fn find(&self, name: &str) -> Option<&'e RawValue> {
        self.element
            .attributes
            .iter()
            .find(|attribute| attribute.name == name)
            .map(|attribute| &attribute.value)
    }

    /// An optional attribute.
    pub(crate) fn optional(&mut self, name: &'static str) -> Option<RawValue> {
        self.requested.push(name);
        self.find(name).cloned()
    }

    /// A required attribute.
    pub(crate) fn required(&mut self, name: &'static str) -> Result<RawValue, PolicyError> {
        self.optional(name).ok_or_else(|| {
            self.site.err(
                self.element.position,
                ErrorKind::Missing,
                format!("{}missing required attribute `{name}`", self.on()),
            )
        })
    }

    /// An attribute APIM has but Gatehouse does not implement yet: an error if present.
    pub(crate) fn unsupported(&mut self, name: &'static str, why: &str) -> Result<(), PolicyError> {
        match self.optional(name) {
            Some(value) => Err(self.site.not_supported(
                value.position,
                format!("attribute `{name}` is not supported yet by Gatehouse{why}"),
            )),
            None => Ok(()),
        }
    }

    /// " on <child>" when reading a child element of the policy, for messages.
    fn on(&self) -> String {
        if self.element.name == self.site.element {
            String::new()
        } else {
            format!("<{}>: ", self.element.name)
        }
    }

    /// Fails on the first attribute nobody asked for.
    pub(crate) fn finish(&self) -> Result<(), PolicyError> {
        for attribute in &self.element.attributes {
            let name = attribute.name.as_str();
            if self.requested.contains(&name) || (self.id_allowed && name == "id") {
                continue;
            }
            let expected = if self.requested.is_empty() {
                format!("<{}> takes no attributes", self.element.name)
            } else {
                let mut names: Vec<&str> = self.requested.clone();
                names.sort_unstable();
                names.dedup();
                format!("supported: {}", names.join(", "))
            };
            return Err(self.site.err(
                attribute.position,
                ErrorKind::UnknownAttribute,
                format!("{}unknown attribute `{name}`; {expected}", self.on()),
            ));
        }
        Ok(())
    }

    /// The element's text, if any.
    pub(crate) fn text(&self) -> Option<RawValue> {
        self.element.text.clone()
    }

    /// Fails if the element has text.
    pub(crate) fn no_text(&self) -> Result<(), PolicyError> {
        match &self.element.text {
            Some(text) => Err(self.structure(
                text.position,
                format!(
                    "{}unexpected text inside <{}>",
                    self.on(),
                    self.element.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Fails if the element has child elements.
    pub(crate) fn no_children(&self) -> Result<(), PolicyError> {
        match self.element.children.first() {
            Some(child) => Err(self.structure(
                child.position,
                format!(
                    "<{}> takes no child elements, found <{}>",
                    self.element.name, child.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// The error for a child element that does not belong here.
    pub(crate) fn unexpected_child(&self, child: &Element, expected: &str) -> PolicyError {
        self.structure(
            child.position,
            format!(
                "unexpected element <{}> inside <{}>; expected {expected}",
                child.name, self.element.name
            ),
        )
    }

    /// A structure error at `position`.
    pub(crate) fn structure(&self, position: Position, message: impl Into<String>) -> PolicyError {
        self.site.err(position, ErrorKind::Structure, message)
    }

    /// A child that may appear at most once: fails on the second.
    pub(crate) fn at_most_once(&self, seen: &mut bool, child: &Element) -> Result<(), PolicyError> {
        if std::mem::replace(seen, true) {
            return Err(self.structure(
                child.position,
                format!(
                    "<{}> may appear only once inside <{}>",
                    child.name, self.element.name
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
