//! APIM policy documents for Gatehouse: parse, merge scopes, compile into an executable
//! pipeline.
//!
//! This crate is pure: no I/O, no async runtime, no clock. The gateway hands in text,
//! configuration and the time; it gets back typed errors, an immutable [`Pipeline`] per
//! operation and, per request, a [`Flow`] from each phase.
//!
//! # Loading
//!
//! 1. [`parse`] reads one scope's document. Real APIM documents are not well-formed
//!    XML (expressions are pasted raw), so the reader first sets `@(...)`/`@{...}` aside,
//!    then reads XML, keeping line and column for everything. Structure is checked
//!    here: unknown elements and attributes, missing required ones, misplaced `<base/>`.
//! 2. [`compile`] merges the scopes (global → product → API → operation; in each
//!    section `<base/>` marks where the parent's policies go, a section without it
//!    drops them, a missing section inherits them whole), checks that each policy is
//!    allowed in its section, substitutes `{{named values}}`, and pre-parses every
//!    value (header names, status codes, URLs, IP ranges, durations). Nothing is
//!    parsed per request. Every error is a [`PolicyError`] with origin, line, column,
//!    element and a message that says how to fix it; secret named values never
//!    appear in one.
//!
//! Policy expressions are compiled here too (with `gatehouse-expr`, named values
//! substituted first) where a policy takes them, and evaluated per request against the
//! request's context (`context.Request`, `context.Variables`, `context.LastError`, …);
//! elsewhere they are rejected at compile time with their position, as are context
//! members Gatehouse does not serve yet. `docs/expressions.md` lists both.
//! Unknown policies are an error; policies APIM has and Gatehouse does not implement
//! yet are a distinct [`ErrorKind::NotSupported`] error. `docs/policies.md` lists
//! every supported policy and attribute.
//!
//! # Running a request
//!
//! The gateway creates a [`RequestState`] and [`RequestFacts`] per request (the latter
//! with the connection's [`ClientCertificate`], if the client sent one in the TLS
//! handshake) and calls the phases in this order:
//!
//! 1. [`Pipeline::inbound`] — on the request as received. `Continue`: go on.
//!    `Respond`: send that response, nothing else runs (not even outbound). `Fail`: go
//!    to step 5.
//! 2. [`Pipeline::backend`] — just before forwarding (again for each retry). Same
//!    outcomes.
//! 3. The gateway forwards `RequestState`'s method, path, query and headers to
//!    `RequestState::backend` (or the API's backend) with `RequestState::forward`'s
//!    settings. When the merged backend section has no `forward-request`, these are
//!    the defaults: Gatehouse always forwards, as APIM does with its default global
//!    policy. A connection failure or timeout goes to step 5 with the gateway's own
//!    [`PolicyErrorInfo`]; with `fail_on_error_status_code`, so does a 4xx/5xx.
//! 4. [`Pipeline::outbound`] — on the backend's response head. `Continue`: send it
//!    with the backend's body. `Respond` replaces it. `Fail`: step 5.
//! 5. [`Pipeline::on_error`] — with the error and a [`ResponseState`] made from the
//!    failure's response. `Continue`: send that response (the failure's body);
//!    `Respond`: send that instead; `Fail`: send its response as is.
//! 6. When the response is complete (or abandoned), call [`Counters::settle`] with
//!    `RequestState::deferred` (bandwidth quotas) and drop `RequestState::held`
//!    (concurrency permits): both live until then, not just until the policies ran.
//!
//! Headers policies add for the client (`RequestState::response_headers`: CORS,
//! rate-limit counters) are moved into whichever response the phase that ends the
//! request produces; the gateway does not handle them.
//!
//! [`Counters`] lives in the gateway, outside any pipeline, so configuration reloads
//! keep rate limits and quotas; see [`counters`].

mod body;
mod certificate;
mod compile;
mod configuration;
mod context;
pub mod counters;
mod document;
mod error;
mod expression;
mod key;
mod liquid;
mod merge;
mod pipeline;
mod policies;
mod reader;
mod registry;
mod services;
pub mod value_cache;

#[cfg(test)]
mod test_util;

#[cfg(test)]
#[path = "proptest_tests.rs"]
mod proptest_tests;

pub use body::{BufferedBody, ContextReads};
pub use certificate::ClientCertificate;
pub use configuration::{PipelineKey, check_configuration, compile_configuration};
pub use context::{CompileContext, ExpressionCache, NamedValues};
pub use counters::{ConcurrencyPermit, Counters, DeferredCharge};
pub use document::{Policy, PolicyDocument, PolicyNode, Section, SectionKind};
pub use error::{ErrorKind, PolicyError, Position};
pub use expression::Variables;
pub use gatehouse_expr::Value;
pub use pipeline::{
    BackendTarget, DeploymentFacts, Flow, ForwardSettings, HttpVersion, MAX_RESPONSES, OriginalUrl,
    Pipeline, PolicyErrorInfo, PolicyFailure, PolicyResponse, ReceivedResponse, RequestFacts,
    RequestState, ResponseState, SubscriptionFacts, TraceEntry, TraceSeverity,
};
pub use policies::retry::RetryDecision;
pub use services::{
    CallError, CallFuture, CallResponse, OutgoingCall, PolicyServices, SleepFuture, TokenFuture,
};

/// Parses one scope's policy document.
///
/// `origin` names the document in errors, e.g. `gateway.yaml: apis[echo].policy`.
/// The root must be `<policies>`; a `<fragment>` root is read (so its errors show) but
/// cannot be compiled yet.
///
/// # Errors
///
/// A [`PolicyError`] for unreadable text (XML syntax, an unterminated expression) or a
/// wrong structure (unknown element or attribute, missing required attribute, duplicate
/// section or `<base/>`). Values are checked by [`compile`].
pub fn parse(origin: &str, xml: &str) -> Result<PolicyDocument, PolicyError> {
    parse_all(origin, xml).map_err(first_problem)
}

/// [`parse`], reporting every problem it can find rather than the first: each policy
/// that cannot be read is reported and the reading goes on. XML that cannot be read at
/// all, and a wrong root or section structure, stop it (one problem then).
///
/// # Errors
///
/// The problems, in document order; never empty.
pub fn parse_all(origin: &str, xml: &str) -> Result<PolicyDocument, Vec<PolicyError>> {
    let root = reader::read(origin, xml).map_err(|problem| vec![problem])?;
    document::from_element(origin, &root)
}

/// What [`check`] found in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentCheck {
    /// Every problem found, in document order; none when the document is accepted.
    pub problems: Vec<PolicyError>,
    /// The policies the document uses (element names, each once, in document order;
    /// only of the policies that could be read).
    pub policies: Vec<String>,
    /// How many policy expressions (`@(...)`, `@{...}`) it holds.
    pub expressions: usize,
}

/// Reads and compiles one standalone document with `context`, exactly as a gateway and
/// the control plane do, and reports every problem found: `gatehouse policy check`.
#[must_use]
pub fn check(origin: &str, xml: &str, context: &CompileContext<'_>) -> DocumentCheck {
    let (root, expressions) = match reader::read_counting(origin, xml) {
        Ok(read) => read,
        Err(problem) => {
            return DocumentCheck {
                problems: vec![problem],
                policies: Vec::new(),
                expressions: 0,
            };
        }
    };
    let (document, mut problems) = document::from_element_partial(origin, &root);
    let mut policies = Vec::new();
    if let Some(document) = &document {
        document.visit_policies(&mut |policy| {
            if !policies.iter().any(|name| name == policy.name()) {
                policies.push(policy.name().to_owned());
            }
            if let Some(mapped) = policies::find(policy.name()).and_then(|r| r.mapped) {
                problems.push(policy.site().err(
                    policy.position,
                    ErrorKind::Mapped,
                    format!("Azure-only policy, mapped: {mapped}"),
                ));
            }
        });
        if !document.is_fragment()
            && let Err(more) = compile::compile_all(&[document], context)
        {
            problems.extend(more);
        }
    }
    problems.sort_by_key(|problem| (problem.position.line, problem.position.column));
    problems.dedup();
    DocumentCheck {
        problems,
        policies,
        expressions,
    }
}

fn first_problem(mut problems: Vec<PolicyError>) -> PolicyError {
    problems.swap_remove(0)
}

/// Merges scopes (outermost first: global, product, API, operation; leave out the ones
/// that have no policy) and compiles them into a [`Pipeline`].
///
/// # Errors
///
/// A [`PolicyError`] for a policy in a section it is not allowed in, a value that is
/// not valid (number, header, URL, unknown backend or certificate id or named value), a
/// policy expression, a feature Gatehouse does not have (certificate revocation
/// checks), or a policy after `forward-request` in the backend section.
pub fn compile(
    scopes: &[&PolicyDocument],
    context: &CompileContext<'_>,
) -> Result<Pipeline, PolicyError> {
    compile::compile_all(scopes, context).map_err(first_problem)
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
