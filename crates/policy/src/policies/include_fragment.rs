//! `include-fragment`: runs a policy fragment's policies here (any section).
//!
//! ```xml
//! <include-fragment fragment-id="auth-headers" />
//! ```
//!
//! Fragments are defined under `fragments:` in the configuration (and under
//! `/policy-fragments` of the control plane's API) as `<fragment>` documents. The
//! fragment's policies are compiled where each inclusion is, for its section, exactly
//! as if they were written there: a policy the section does not allow is an error
//! naming the fragment's own line and column. Fragments may include fragments, up to 8
//! deep (a cycle is refused at that depth).

use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::reader::RawValue;
use crate::registry::Steps;
use crate::registry::prelude::*;

/// Parsed `<include-fragment>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    fragment_id: RawValue,
}

/// Compiled `<include-fragment>`: the fragment's policies, compiled for this section.
pub(crate) struct IncludeFragment {
    steps: Steps,
}

impl PolicyDefinition for IncludeFragment {
    const NAME: &'static str = "include-fragment";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        reader.no_children()?;
        Ok(Config {
            fragment_id: reader.required("fragment-id")?,
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let id = cx.context.literal(cx.site, &config.fragment_id)?;
        let id = id.text.trim();
        let Some(fragment) = cx.context.fragment(id) else {
            let known = cx.context.fragment_ids();
            let hint = if known.is_empty() {
                "no fragments are defined".to_owned()
            } else {
                format!("defined: {}", known.join(", "))
            };
            return Err(cx.site.err(
                config.fragment_id.position,
                crate::error::ErrorKind::UnknownFragment,
                format!("unknown policy fragment `{id}`; define it under `fragments` ({hint})"),
            ));
        };
        let Some(inner) = cx.context.inside_fragment() else {
            return Err(cx.site.invalid(
                config.fragment_id.position,
                format!(
                    "policy fragment `{id}` is included more than 8 deep: fragments include each other in a cycle"
                ),
            ));
        };
        let steps = fragment
            .fragment_policies()
            .iter()
            .map(|policy| crate::compile::compile_step(policy, cx.section, &inner))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        Ok(Self { steps })
    }
}

impl Step for IncludeFragment {
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        run.run(&self.steps)
    }

    fn is_async(&self) -> bool {
        crate::registry::any_async(&self.steps)
    }

    fn apply_async<'s>(
        &'s self,
        _meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> crate::registry::StepFuture<'s> {
        run.run_async(&self.steps)
    }
}

#[cfg(test)]
#[path = "include_fragment_tests.rs"]
mod tests;
