//! `set-query-parameter`: adds, replaces or removes a query parameter of the request
//! (inbound and backend).
//!
//! ```xml
//! <set-query-parameter name="api-key" exists-action="override | skip | append | delete">
//!     <value>12345</value>
//! </set-query-parameter>
//! ```
//!
//! Several `<value>`s become several parameters of the same name. Names and values are
//! form-encoded at compile time; existing parameters are matched by their decoded name.
//! A `<value>` may be a policy expression, evaluated and encoded per request.

use std::borrow::Cow;

use url::form_urlencoded;

use super::{ExistsAction, value_children};
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::expression::{ExpressionFailure, RequestHost, TextValue};
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// Parsed `<set-query-parameter>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    name: RawValue,
    exists_action: Option<RawValue>,
    values: Vec<RawValue>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        Ok(Self {
            name: reader.required("name")?,
            exists_action: reader.optional("exists-action"),
            values: value_children(reader)?,
            position: reader.element.position,
        })
    }
}

/// Compiled `<set-query-parameter>`.
#[derive(Debug)]
pub(crate) struct SetQueryParameter {
    /// Decoded name, compared with decoded names in the query.
    name: String,
    /// `name=value` pairs, encoded, to add.
    pairs: Box<[String]>,
    action: ExistsAction,
    /// Values with policy expressions, rendered and encoded per request (then `pairs`
    /// is empty).
    computed: Option<(String, Box<[TextValue]>)>,
}

impl SetQueryParameter {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let name = cx.literal(site, &config.name)?;
        if name.text.is_empty() {
            return Err(site.invalid(config.name.position, "`name` must not be empty"));
        }
        let action = ExistsAction::compile(cx, site, config.exists_action.as_ref())?;
        if config.values.is_empty() && action != ExistsAction::Delete {
            return Err(site.err(
                config.position,
                ErrorKind::Missing,
                "at least one <value> is required unless exists-action is `delete`",
            ));
        }
        let encoded_name = encode(&name.text);
        if config
            .values
            .iter()
            .any(|value| matches!(value.text, RawText::Expression(_)))
        {
            let values = config
                .values
                .iter()
                .map(|value| cx.text_value(site, value))
                .collect::<Result<Vec<_>, PolicyError>>()?;
            return Ok(Self {
                name: name.text,
                pairs: Box::default(),
                action,
                computed: Some((encoded_name, values.into_boxed_slice())),
            });
        }
        let pairs = config
            .values
            .iter()
            .map(|value| {
                let value = cx.literal(site, value)?;
                Ok(format!("{encoded_name}={}", encode(&value.text)))
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Self {
            name: name.text,
            pairs: pairs.into_boxed_slice(),
            action,
            computed: None,
        })
    }

    /// Applies the policy's fixed values to a raw query string (no `?`).
    pub(crate) fn apply(&self, query: &mut String) {
        self.apply_pairs(query, &self.pairs);
    }

    /// The `name=value` pairs for this request, the expressions' results encoded.
    fn render(&self, host: &RequestHost<'_>) -> Result<Vec<String>, ExpressionFailure> {
        let Some((encoded_name, values)) = &self.computed else {
            return Ok(self.pairs.to_vec());
        };
        values
            .iter()
            .map(|value| Ok(format!("{encoded_name}={}", encode(&value.render(host)?))))
            .collect()
    }

    fn apply_pairs(&self, query: &mut String, pairs: &[String]) {
        let exists = query.split('&').any(|pair| self.matches(pair));
        if self.action == ExistsAction::Skip && exists {
            return;
        }
        let mut out = String::with_capacity(
            query.len() + pairs.iter().map(|pair| pair.len() + 1).sum::<usize>(),
        );
        let drop_existing = matches!(self.action, ExistsAction::Override | ExistsAction::Delete);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            if drop_existing && self.matches(pair) {
                continue;
            }
            push_pair(&mut out, pair);
        }
        if self.action != ExistsAction::Delete {
            for pair in pairs {
                push_pair(&mut out, pair);
            }
        }
        *query = out;
    }

    fn matches(&self, pair: &str) -> bool {
        let raw = pair.split_once('=').map_or(pair, |(name, _)| name);
        decode(raw) == self.name
    }
}

fn push_pair(out: &mut String, pair: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(pair);
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    form_urlencoded::parse(raw.as_bytes())
        .next()
        .map_or(Cow::Borrowed(""), |(name, _)| Cow::Owned(name.into_owned()))
}

impl PolicyDefinition for SetQueryParameter {
    const NAME: &'static str = "set-query-parameter";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for SetQueryParameter {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if self.computed.is_none() || self.action == ExistsAction::Delete {
            self.apply(&mut run.request.query);
            return Flow::Continue;
        }
        match self.render(&run.host()) {
            Ok(pairs) => {
                self.apply_pairs(&mut run.request.query, &pairs);
                Flow::Continue
            }
            Err(failure) => failure.into_flow(meta, run.section()),
        }
    }
}

#[cfg(test)]
#[path = "set_query_parameter_tests.rs"]
mod tests;
