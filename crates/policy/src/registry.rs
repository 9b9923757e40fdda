//! One registration per policy: what the reader, the compiler, `gatehouse policy check`
//! and the docs table know about a policy comes from its file alone.
//!
//! A policy file defines a type that implements [`PolicyDefinition`] (its element
//! name, the sections it may appear in, how its element is read and how it compiles)
//! and [`Step`] (what it does to a request or response), and adds one line to the
//! `policies!` list in `policies/mod.rs`. Nothing else names it: the reader finds it in
//! [`REGISTRY`](crate::policies::REGISTRY) by element name, the document keeps its
//! parsed form behind [`ParsedPolicy`], and the pipeline runs its compiled form as a
//! `dyn Step`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::context::CompileContext;
use crate::document::{ElementReader, ParseCx, Policy, SectionKind};
use crate::error::{PolicyError, Position, Site};
use crate::expression::RequestHost;
use crate::pipeline::{Exec, Flow, RequestState, ResponseState, StepMeta};
use crate::services::{CallError, CallResponse};

/// What a policy file needs: `use crate::registry::prelude::*;`.
pub(crate) mod prelude {
    pub(crate) use super::{PolicyDefinition, Run, Step, StepCx};
    pub(crate) use crate::document::SectionKind::{Backend, Inbound, OnError, Outbound};
    pub(crate) use crate::document::{ParseCx, SectionKind};
    pub(crate) use crate::pipeline::{Flow, PolicyResponse, StepMeta};
}

/// What a policy file implements: how its element is read and compiled.
pub(crate) trait PolicyDefinition: Step + Sized + 'static {
    /// The element name (`set-header`).
    const NAME: &'static str;
    /// The sections APIM allows the policy in (checked before [`Self::compile`]).
    const SECTIONS: &'static [SectionKind];
    /// For an Azure-only policy Gatehouse maps to an open equivalent: what it does
    /// instead (`gatehouse policy check` warns with it).
    const MAPPED: Option<&'static str> = None;
    /// The element as read: structure checked, values still raw (named values and
    /// expressions are resolved by [`Self::compile`], which knows them).
    type Config: fmt::Debug + Clone + PartialEq + Eq + Send + Sync + 'static;

    /// Reads the element: known attributes and children, required ones present.
    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>)
    -> Result<Self::Config, PolicyError>;

    /// Policies nested inside this one (`limit-concurrency`'s), so walks over a
    /// document (which policies it uses, where `forward-request` is) see them.
    fn nested(_config: &Self::Config) -> &[Policy] {
        &[]
    }

    /// Checks and pre-parses every value for the section the policy landed in.
    fn compile(config: &Self::Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError>;
}

/// What a compiled policy does when a request runs through its section.
///
/// Most steps are synchronous: [`Step::apply`]. A step that waits for something outside
/// the request (`send-request`'s call) says so with [`Step::is_async`] and does its
/// work in [`Step::apply_async`]; so does a step that holds such steps (`choose`).
/// Pipelines without one run entirely synchronously and pay nothing for the others.
pub(crate) trait Step: Send + Sync {
    /// Applies the step. `meta` identifies it (for the errors it raises). For an async
    /// step this is only called by a synchronous run, which cannot wait: it fails.
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow;

    /// Whether the step may wait (it, or a step nested in it, does I/O).
    fn is_async(&self) -> bool {
        false
    }

    /// Applies a step that may wait; only called when [`Step::is_async`].
    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        Box::pin(std::future::ready(self.apply(meta, run)))
    }

    /// For `wait`: starts the step's call without holding the run, so that several
    /// run at once; `None` for a step that is not a call (`send-request` is).
    fn start_call<'a>(
        &self,
        meta: &StepMeta,
        run: &Run<'_, '_, 'a>,
    ) -> Option<Result<StartedCall<'a>, Flow>> {
        let _ = (meta, run);
        None
    }

    /// For `wait`: the calls a step that holds calls (`choose`) makes here, chosen on the
    /// request as it is; `None` for a step that is a call itself or holds none.
    fn wait_children<'s>(
        &'s self,
        meta: &StepMeta,
        run: &Run<'_, '_, '_>,
    ) -> Option<Result<&'s [CompiledStep], Flow>> {
        let _ = (meta, run);
        None
    }

    /// Ends a call [`Step::start_call`] started, with what it answered.
    fn finish_call(
        &self,
        meta: &StepMeta,
        run: &mut Run<'_, '_, '_>,
        answered: Result<CallResponse, CallError>,
        origin: &str,
    ) -> Flow {
        let _ = (meta, run, answered, origin);
        Flow::Continue
    }
}

/// A call a step started ([`Step::start_call`]).
pub(crate) struct StartedCall<'a> {
    /// The call, answering later.
    pub(crate) call: crate::CallFuture<'a>,
    /// Its target's origin, for messages (never the path or query).
    pub(crate) origin: String,
}

/// What an async step's application is.
pub(crate) type StepFuture<'s> = Pin<Box<dyn Future<Output = Flow> + Send + 's>>;

/// Whether any of `steps` may wait.
pub(crate) fn any_async(steps: &[CompiledStep]) -> bool {
    steps.iter().any(|step| step.is_async)
}

/// What a policy compiles with: where it is, the section, the named values and
/// backends, and a way to compile the policies nested in it.
pub(crate) struct StepCx<'c, 'a> {
    /// The policy's element, for errors.
    pub(crate) site: Site<'c>,
    /// Where the element starts.
    pub(crate) position: Position,
    /// The section the policy runs in.
    pub(crate) section: SectionKind,
    /// Named values, backends, certificates.
    pub(crate) context: &'c CompileContext<'a>,
}

impl StepCx<'_, '_> {
    /// Compiles policies nested in this one, for the same section.
    pub(crate) fn nested(&self, policies: &[Policy]) -> Result<Steps, PolicyError> {
        policies
            .iter()
            .map(|policy| crate::compile::compile_step(policy, self.section, self.context))
            .collect::<Result<Vec<_>, _>>()
            .map(Vec::into_boxed_slice)
    }
}

/// A compiled policy, ready to run.
pub(crate) struct CompiledStep {
    pub(crate) meta: StepMeta,
    pub(crate) step: Box<dyn Step>,
    /// [`Step::is_async`], asked once.
    pub(crate) is_async: bool,
}

/// The compiled policies of a section (or of a policy's body), in order.
pub(crate) type Steps = Box<[CompiledStep]>;

/// The request as a section runs over it.
pub(crate) struct Run<'r, 'e, 'a> {
    /// The facts, counters and section.
    pub(crate) exec: &'r Exec<'e, 'a>,
    /// The request (inbound and backend change it; later sections read it).
    pub(crate) request: &'r mut RequestState,
    /// The response, in outbound and on-error.
    pub(crate) response: Option<&'r mut ResponseState>,
}

impl Run<'_, '_, '_> {
    /// The section running.
    pub(crate) fn section(&self) -> SectionKind {
        self.exec.section
    }

    /// The request's context for policy expressions, as the policies have shaped it so
    /// far.
    pub(crate) fn host(&self) -> RequestHost<'_> {
        RequestHost {
            facts: self.exec.facts,
            scope: self.exec.scope,
            request: self.request,
            response: self.response.as_deref(),
            last_error: self.exec.last_error,
        }
    }

    /// The headers the section works on: the response's in outbound and on-error, the
    /// request's before.
    pub(crate) fn headers_mut(&mut self) -> &mut http::HeaderMap {
        match &mut self.response {
            Some(response) => &mut response.headers,
            None => &mut self.request.headers,
        }
    }

    /// Runs `steps` in order until one does not continue.
    pub(crate) fn run(&mut self, steps: &[CompiledStep]) -> Flow {
        for step in steps {
            let flow = step.step.apply(&step.meta, self);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// Runs `steps` in order until one does not continue, waiting on those that wait.
    pub(crate) fn run_async<'s>(&'s mut self, steps: &'s [CompiledStep]) -> StepFuture<'s> {
        Box::pin(async move {
            for step in steps {
                let flow = if step.is_async {
                    step.step.apply_async(&step.meta, self).await
                } else {
                    step.step.apply(&step.meta, self)
                };
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Flow::Continue
        })
    }
}

/// A policy's entry in the registry.
pub(crate) struct Registration {
    /// The element name.
    pub(crate) name: &'static str,
    /// See [`PolicyDefinition::MAPPED`].
    pub(crate) mapped: Option<&'static str>,
    parse: ParseFn,
}

type ParseFn = fn(&mut ElementReader<'_>, &ParseCx<'_>) -> Result<ParsedKind, PolicyError>;

impl Registration {
    /// Reads the element with the policy's own parser.
    pub(crate) fn parse(
        &self,
        reader: &mut ElementReader<'_>,
        cx: &ParseCx<'_>,
    ) -> Result<ParsedKind, PolicyError> {
        (self.parse)(reader, cx)
    }
}

/// The registration of policy `P`.
pub(crate) const fn register<P: PolicyDefinition>() -> Registration {
    Registration {
        name: P::NAME,
        mapped: P::MAPPED,
        parse: parse_as::<P>,
    }
}

fn parse_as<P: PolicyDefinition>(
    reader: &mut ElementReader<'_>,
    cx: &ParseCx<'_>,
) -> Result<ParsedKind, PolicyError> {
    let config = P::parse(reader, cx)?;
    Ok(ParsedKind(Arc::new(Parsed::<P>(config))))
}

/// A policy element as read, whichever policy it is.
pub(crate) trait ParsedPolicy: Send + Sync {
    fn name(&self) -> &'static str;
    fn sections(&self) -> &'static [SectionKind];
    fn nested(&self) -> &[Policy];
    fn compile(&self, cx: &StepCx<'_, '_>) -> Result<Box<dyn Step>, PolicyError>;
    fn as_any(&self) -> &dyn Any;
    fn eq_dyn(&self, other: &dyn ParsedPolicy) -> bool;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

struct Parsed<P: PolicyDefinition>(P::Config);

impl<P: PolicyDefinition> ParsedPolicy for Parsed<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn sections(&self) -> &'static [SectionKind] {
        P::SECTIONS
    }

    fn nested(&self) -> &[Policy] {
        P::nested(&self.0)
    }

    fn compile(&self, cx: &StepCx<'_, '_>) -> Result<Box<dyn Step>, PolicyError> {
        Ok(Box::new(P::compile(&self.0, cx)?))
    }

    fn as_any(&self) -> &dyn Any {
        &self.0
    }

    fn eq_dyn(&self, other: &dyn ParsedPolicy) -> bool {
        other
            .as_any()
            .downcast_ref::<P::Config>()
            .is_some_and(|config| *config == self.0)
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A parsed policy of any kind: cheap to clone, compared by value.
#[derive(Clone)]
pub(crate) struct ParsedKind(Arc<dyn ParsedPolicy>);

impl ParsedKind {
    /// The element name.
    pub(crate) fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The sections the policy may appear in.
    pub(crate) fn sections(&self) -> &'static [SectionKind] {
        self.0.sections()
    }

    /// Policies nested in this one.
    pub(crate) fn nested(&self) -> &[Policy] {
        self.0.nested()
    }

    /// Compiles it for `cx`'s section.
    pub(crate) fn compile(&self, cx: &StepCx<'_, '_>) -> Result<Box<dyn Step>, PolicyError> {
        self.0.compile(cx)
    }
}

impl PartialEq for ParsedKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.0.eq_dyn(other.0.as_ref())
    }
}

impl Eq for ParsedKind {}

impl fmt::Debug for ParsedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}
