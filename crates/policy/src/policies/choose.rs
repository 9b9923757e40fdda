//! `choose`: runs the policies of the first `<when>` whose condition is true, or those
//! of `<otherwise>` (any section).
//!
//! ```xml
//! <choose>
//!     <when condition="@(context.Variables.GetValueOrDefault<bool>("isMobile"))">
//!         <set-header name="X-Client" exists-action="override"><value>mobile</value></set-header>
//!     </when>
//!     <otherwise>
//!         <set-header name="X-Client" exists-action="override"><value>desktop</value></set-header>
//!     </otherwise>
//! </choose>
//! ```
//!
//! A condition is a policy expression (or the text `true`/`false`) and must give a
//! `bool`; anything else fails the request with `ExpressionValueEvaluationFailure`, as
//! in APIM. The branches hold any policy allowed in the section, `choose` included.

use std::ops::Range;

use crate::document::{ElementReader, Policy, PolicyNode};
use crate::error::PolicyError;
use crate::expression::{PolicyExpression, TextValue};
use crate::reader::RawValue;
use crate::registry::{CompiledStep, StepFuture, Steps, any_async};
use crate::registry::prelude::*;

/// Parsed `<choose>`: every branch's policies in one list (so walks over the document
/// see them all), each branch a range of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    policies: Vec<Policy>,
    /// `<when>`s in order: the condition and the branch's policies.
    whens: Vec<(RawValue, Range<usize>)>,
    otherwise: Option<Range<usize>>,
}

/// Compiled `<choose>`.
pub(crate) struct Choose {
    whens: Box<[(Condition, Steps)]>,
    otherwise: Steps,
}

/// A `condition` attribute (`choose`'s `<when>`, `retry`): a policy expression giving a
/// bool, or the text `true` or `false`.
pub(crate) enum Condition {
    Fixed(bool),
    Computed(PolicyExpression),
}

impl Condition {
    /// Compiles `raw`; any other text is refused at load.
    pub(crate) fn compile(raw: &RawValue, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Ok(match cx.context.text_value(cx.site, raw)? {
            TextValue::Computed(expression) => Self::Computed(expression),
            TextValue::Fixed(text) => match text.text.trim().to_ascii_lowercase().as_str() {
                "true" => Self::Fixed(true),
                "false" => Self::Fixed(false),
                _ => {
                    return Err(cx.site.invalid(
                        raw.position,
                        format!(
                            "`condition` must be a policy expression giving a bool (`@(...)`), or `true` or `false`; found {}",
                            text.shown()
                        ),
                    ));
                }
            },
        })
    }

    /// Whether the condition holds for the request as it is; one that fails or is not a
    /// bool fails the request (`ExpressionValueEvaluationFailure`), as in APIM.
    pub(crate) fn holds(
        &self,
        meta: &StepMeta,
        run: &Run<'_, '_, '_>,
        what: &str,
    ) -> Result<bool, Flow> {
        match self {
            Self::Fixed(value) => Ok(*value),
            Self::Computed(expression) => match expression.evaluate(&run.host()) {
                Ok(gatehouse_expr::Value::Bool(value)) => Ok(value),
                Ok(other) => Err(meta.fail(
                    run.section(),
                    "ExpressionValueEvaluationFailure",
                    format!(
                        "Expression evaluation failed. {what} gave {}, not a bool.",
                        other.type_name()
                    ),
                    PolicyResponse::json_error(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal server error",
                    ),
                )),
                Err(failure) => Err(failure.into_flow(meta, run.section())),
            },
        }
    }
}

impl PolicyDefinition for Choose {
    const NAME: &'static str = "choose";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        let mut config = Config {
            policies: Vec::new(),
            whens: Vec::new(),
            otherwise: None,
        };
        let mut otherwise_seen = false;
        for (index, child) in reader.element.children.iter().enumerate() {
            let mut branch = reader.child(child);
            let condition = match child.name.as_str() {
                "when" => {
                    if otherwise_seen {
                        return Err(reader.structure(
                            child.position,
                            "<when> must come before <otherwise>",
                        ));
                    }
                    Some(branch.required("condition")?)
                }
                "otherwise" => {
                    reader.at_most_once(&mut otherwise_seen, child)?;
                    None
                }
                _ => return Err(reader.unexpected_child(child, "<when> or <otherwise>")),
            };
            branch.finish()?;
            branch.no_text()?;
            let start = config.policies.len();
            config
                .policies
                .extend(
                    cx.within(&child.name, index, || cx.nodes(&child.children, false))?
                        .into_iter()
                        .filter_map(
                    |node| match node {
                        PolicyNode::Policy(policy) => Some(*policy),
                        PolicyNode::Base(_) => None, // refused by `nodes` here
                    },
                ));
            let range = start..config.policies.len();
            match condition {
                Some(condition) => config.whens.push((condition, range)),
                None => config.otherwise = Some(range),
            }
        }
        if config.whens.is_empty() {
            return Err(reader.structure(
                reader.element.position,
                "<choose> needs at least one <when condition=\"...\">",
            ));
        }
        Ok(config)
    }

    fn nested(config: &Config) -> &[Policy] {
        &config.policies
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let whens = config
            .whens
            .iter()
            .map(|(condition, range)| {
                let condition = Condition::compile(condition, cx)?;
                Ok((condition, cx.nested(&config.policies[range.clone()])?))
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let otherwise = match &config.otherwise {
            Some(range) => cx.nested(&config.policies[range.clone()])?,
            None => Steps::default(),
        };
        Ok(Self {
            whens: whens.into_boxed_slice(),
            otherwise,
        })
    }
}

impl Step for Choose {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        match self.branch(meta, run) {
            Ok(steps) => run.run(steps),
            Err(flow) => flow,
        }
    }

    fn is_async(&self) -> bool {
        self.whens.iter().any(|(_, steps)| any_async(steps)) || any_async(&self.otherwise)
    }

    fn wait_children<'s>(
        &'s self,
        meta: &StepMeta,
        run: &Run<'_, '_, '_>,
    ) -> Option<Result<&'s [CompiledStep], Flow>> {
        Some(self.branch(meta, run).map(|steps| &**steps))
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        match self.branch(meta, run) {
            Ok(steps) => run.run_async(steps),
            Err(flow) => Box::pin(std::future::ready(flow)),
        }
    }
}

impl Choose {
    /// The branch whose condition holds first (or `otherwise`); a condition that fails
    /// or is not a bool fails the request.
    fn branch(&self, meta: &StepMeta, run: &Run<'_, '_, '_>) -> Result<&Steps, Flow> {
        for (condition, steps) in &self.whens {
            let chosen = condition.holds(meta, run, "A <when> condition")?;
            if chosen {
                return Ok(steps);
            }
        }
        Ok(&self.otherwise)
    }
}

#[cfg(test)]
#[path = "choose_tests.rs"]
mod tests;
