//! `wait`: runs the `send-request` calls it holds at the same time and waits for all of
//! them, or for the first to answer (inbound, backend, outbound).
//!
//! ```xml
//! <wait for="all">
//!     <send-request mode="new" response-variable-name="stock" timeout="5">
//!         <set-url>https://stock.internal/items/42</set-url>
//!     </send-request>
//!     <send-request mode="new" response-variable-name="price" timeout="5">
//!         <set-url>https://prices.internal/items/42</set-url>
//!     </send-request>
//! </wait>
//! ```
//!
//! `for="all"` (the default) waits for every call, then handles the answers in
//! document order (a failed call without `ignore-error` fails the request once all have
//! answered). `for="any"` handles the first answer and abandons the other calls (their
//! variables are not set). A `choose` child picks its branch when `wait` starts, and
//! the `send-request`s of that branch run with the others; its branches may hold only
//! `send-request`s and `cache-lookup-value`s. A `cache-lookup-value` child answers from
//! the gateway's memory at once, before the calls are awaited.

use std::task::Poll;

use crate::document::{ElementReader, Policy, PolicyNode};
use crate::error::{ErrorKind, PolicyError};
use crate::reader::RawValue;
use crate::registry::{CompiledStep, StepFuture, Steps};
use crate::registry::prelude::*;
use crate::services::{CallError, CallResponse};

/// Parsed `<wait>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    for_: Option<RawValue>,
    policies: Vec<Policy>,
}

/// Compiled `<wait>`.
pub(crate) struct Wait {
    /// `for="all"`.
    all: bool,
    steps: Steps,
}

impl PolicyDefinition for Wait {
    const NAME: &'static str = "wait";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        let for_ = reader.optional("for");
        let policies: Vec<Policy> = cx
            .nodes(&reader.element.children, false)?
            .into_iter()
            .filter_map(|node| match node {
                PolicyNode::Policy(policy) => Some(*policy),
                PolicyNode::Base(_) => None, // refused by `nodes` here
            })
            .collect();
        if policies.is_empty() {
            return Err(reader.structure(
                reader.element.position,
                "<wait> needs at least one <send-request> to wait for",
            ));
        }
        Ok(Config { for_, policies })
    }

    fn nested(config: &Config) -> &[Policy] {
        &config.policies
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let all = match &config.for_ {
            None => true,
            Some(raw) => {
                let text = cx.context.literal(cx.site, raw)?;
                match text.text.trim() {
                    "all" => true,
                    "any" => false,
                    _ => {
                        return Err(cx.site.invalid(
                            raw.position,
                            format!("`for` must be `all` or `any`, found {}", text.shown()),
                        ));
                    }
                }
            }
        };
        // `send-request`s, `cache-lookup-value`s, and `choose`s whose branches hold only
        // those.
        let allowed = |name: &str| matches!(name, "send-request" | "cache-lookup-value");
        let refused = config.policies.iter().find_map(|policy| match policy.name() {
            "choose" => policy
                .kind
                .nested()
                .iter()
                .find(|inner| !allowed(inner.name())),
            name if allowed(name) => None,
            _ => Some(policy),
        });
        if let Some(other) = refused {
            return Err(other.site().err(
                other.position,
                ErrorKind::NotSupported,
                format!(
                    "<{}> inside <wait> is not supported yet by Gatehouse; <wait> holds <send-request> and <cache-lookup-value> policies, and <choose> policies whose branches hold only those",
                    other.name()
                ),
            ));
        }
        Ok(Self {
            all,
            steps: cx.nested(&config.policies)?,
        })
    }
}

impl Step for Wait {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        meta.cannot_wait(run.section(), "BackendConnectionFailure")
    }

    fn is_async(&self) -> bool {
        true
    }

    fn apply_async<'s>(
        &'s self,
        _meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            // Each `choose` picks its branch first, on the request as `wait` starts.
            let mut calls: Vec<&CompiledStep> = Vec::with_capacity(self.steps.len());
            for step in &self.steps {
                match step.step.wait_children(&step.meta, run) {
                    Some(Ok(chosen)) => calls.extend(chosen),
                    Some(Err(flow)) => return flow,
                    None => calls.push(step),
                }
            }
            let mut started = Vec::with_capacity(calls.len());
            for step in calls {
                match step.step.start_call(&step.meta, run) {
                    Some(Ok(call)) => started.push((step, Some(call.call), call.origin)),
                    Some(Err(flow)) => return flow,
                    // Not a call (`cache-lookup-value`): it answers at once.
                    None => {
                        let flow = step.step.apply(&step.meta, run);
                        if flow != Flow::Continue {
                            return flow;
                        }
                    }
                }
            }
            let mut answers: Vec<Option<Result<CallResponse, CallError>>> =
                started.iter().map(|_| None).collect();
            let all = self.all;
            std::future::poll_fn(|cx| {
                let mut waiting = false;
                for ((_, call, _), answer) in started.iter_mut().zip(answers.iter_mut()) {
                    if let Some(future) = call {
                        match future.as_mut().poll(cx) {
                            Poll::Ready(result) => {
                                *answer = Some(result);
                                *call = None;
                                if !all {
                                    return Poll::Ready(());
                                }
                            }
                            Poll::Pending => waiting = true,
                        }
                    }
                }
                if waiting { Poll::Pending } else { Poll::Ready(()) }
            })
            .await;
            // In document order; with `any`, only the call that answered.
            for ((step, _, origin), answer) in started.iter().zip(answers) {
                let Some(answer) = answer else { continue };
                let flow = step.step.finish_call(&step.meta, run, answer, origin);
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Flow::Continue
        })
    }
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
