//! Compiling merged sections into a [`Pipeline`]: section rules, then each policy's
//! own compile step.

use std::cell::Cell;
use std::sync::Arc;

use crate::body::ContextReads;
use crate::context::CompileContext;
use crate::document::{Policy, PolicyDocument, SectionKind};
use crate::error::{ErrorKind, PolicyError};
use crate::merge::merge;
use crate::pipeline::{Pipeline, ScopeFacts, StepMeta};
use crate::registry::{CompiledStep, StepCx, Steps, any_async};

/// See [`crate::compile`]: every policy is compiled, and every problem reported (in
/// the order the policies run), not only the first.
pub(crate) fn compile_all(
    scopes: &[&PolicyDocument],
    cx: &CompileContext<'_>,
) -> Result<Pipeline, Vec<PolicyError>> {
    if let Some(fragment) = scopes.iter().find(|document| document.is_fragment()) {
        return Err(vec![PolicyError::new(
            fragment.origin(),
            fragment.position(),
            Some("fragment"),
            ErrorKind::Structure,
            "a <fragment> is not a scope's policy: define it under `fragments` and include it with <include-fragment fragment-id=\"...\"/>; a scope's policy has a <policies> root",
        )]);
    }
    let mut problems = Vec::new();
    // Which bodies the expressions read, so the gateway buffers just those.
    let context_reads = Cell::new(ContextReads::default());
    let cx = &cx.recording_reads(&context_reads);
    let backend = merge(scopes, SectionKind::Backend);
    if let Err(problem) = check_forward_request_is_last(&backend, &mut None) {
        problems.push(problem);
    }
    let inbound = steps(
        &merge(scopes, SectionKind::Inbound),
        SectionKind::Inbound,
        cx,
        &mut problems,
    );
    let backend = steps(&backend, SectionKind::Backend, cx, &mut problems);
    let outbound = steps(
        &merge(scopes, SectionKind::Outbound),
        SectionKind::Outbound,
        cx,
        &mut problems,
    );
    let on_error = steps(
        &merge(scopes, SectionKind::OnError),
        SectionKind::OnError,
        cx,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let is_async = [&inbound, &backend, &outbound, &on_error]
        .into_iter()
        .any(|steps| any_async(steps));
    Ok(Pipeline {
        inbound,
        backend,
        outbound,
        on_error,
        context_reads: context_reads.get(),
        scope: ScopeFacts::of(cx),
        is_async,
    })
}

/// Compiles each policy of a section; those that fail are reported in `problems`.
fn steps(
    policies: &[&Policy],
    section: SectionKind,
    cx: &CompileContext<'_>,
    problems: &mut Vec<PolicyError>,
) -> Steps {
    policies
        .iter()
        .filter_map(|policy| {
            compile_step(policy, section, cx)
                .map_err(|problem| problems.push(problem))
                .ok()
        })
        .collect()
}

fn meta(policy: &Policy) -> StepMeta {
    StepMeta {
        name: policy.name(),
        origin: Arc::clone(&policy.origin),
        position: policy.position,
        path: Arc::clone(&policy.path),
        id: policy.id.as_deref().map(Arc::from),
    }
}

fn check_section(policy: &Policy, section: SectionKind) -> Result<(), PolicyError> {
    let allowed = policy.kind.sections();
    if allowed.contains(&section) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|section| section.name()).collect();
    Err(policy.site().err(
        policy.position,
        ErrorKind::WrongSection,
        format!(
            "this policy cannot be used in the `{section}` section; it is allowed in: {}",
            names.join(", ")
        ),
    ))
}

/// The gateway forwards when the backend section ends, so nothing may follow
/// `forward-request` there (nested ones included).
fn check_forward_request_is_last<'p>(
    policies: &[&'p Policy],
    forward: &mut Option<&'p Policy>,
) -> Result<(), PolicyError> {
    for policy in policies {
        if let Some(previous) = forward {
            return Err(policy.site().err(
                policy.position,
                ErrorKind::Structure,
                format!(
                    "no policy may follow <forward-request> ({}:{}) in the backend section: the request is forwarded when the section ends; move this policy to outbound",
                    previous.origin(),
                    previous.position
                ),
            ));
        }
        if policy.name() == "forward-request" {
            *forward = Some(policy);
        }
        let nested: Vec<&Policy> = policy.kind.nested().iter().collect();
        check_forward_request_is_last(&nested, forward)?;
    }
    Ok(())
}

/// Compiles one policy for `section`: the section check, then the policy's own
/// compile step.
pub(crate) fn compile_step(
    policy: &Policy,
    section: SectionKind,
    cx: &CompileContext<'_>,
) -> Result<CompiledStep, PolicyError> {
    check_section(policy, section)?;
    let step = policy.kind.compile(&StepCx {
        site: policy.site(),
        position: policy.position,
        section,
        context: cx,
    })?;
    Ok(CompiledStep {
        meta: meta(policy),
        is_async: step.is_async(),
        step,
    })
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
