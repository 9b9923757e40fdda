//! `trace`: records a message, with metadata, for this request (any section).
//!
//! ```xml
//! <trace source="orders-api" severity="information">
//!     <message>@($"routing {context.Request.Url.Path} to {context.Variables["tier"]}")</message>
//!     <metadata name="tier" value="@((string)context.Variables["tier"])" />
//! </trace>
//! ```
//!
//! APIM sends traces to its request tracing and Application Insights; Gatehouse puts
//! them in [`RequestState::traces`](crate::RequestState) and the gateway writes each as a
//! log line with the request's id (`verbose` at debug level, `information` at info,
//! `error` at error). The message and the metadata values may be policy expressions.
//! A value that holds a secret named value is written as `<secret>`. At most
//! 64 traces are kept per request (more are counted), each message cut at 8 KiB.

use std::sync::Arc;

use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::{RequestHost, TextValue};
use crate::pipeline::{TraceEntry, TraceSeverity};
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// The most traces one request keeps; later ones are counted, not kept.
pub(crate) const MAX_TRACES: usize = 64;
/// The longest message kept, in bytes (cut on a character boundary).
pub(crate) const MAX_MESSAGE: usize = 8 * 1024;

/// Parsed `<trace>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    source: RawValue,
    severity: Option<RawValue>,
    message: RawValue,
    metadata: Vec<(RawValue, RawValue)>,
}

/// Compiled `<trace>`.
#[derive(Debug)]
pub(crate) struct Trace {
    source: Arc<str>,
    severity: TraceSeverity,
    message: TextValue,
    metadata: Box<[(TextValue, TextValue)]>,
}

impl PolicyDefinition for Trace {
    const NAME: &'static str = "trace";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        let source = reader.required("source")?;
        let severity = reader.optional("severity");
        // APIM's first form: the message as the element's text (`<trace source="x">text</trace>`).
        let legacy = reader.element.text.clone();
        if legacy.is_some() && !reader.element.children.is_empty() {
            reader.no_text()?;
        }
        let mut message = legacy;
        let mut metadata = Vec::new();
        let mut message_seen = false;
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "message" => {
                    reader.at_most_once(&mut message_seen, child)?;
                    child_reader.no_children()?;
                    message = Some(child.text.clone().unwrap_or_else(|| RawValue {
                        text: RawText::Literal(String::new()),
                        position: child.position,
                    }));
                }
                "metadata" => {
                    child_reader.no_children()?;
                    child_reader.no_text()?;
                    metadata.push((child_reader.required("name")?, child_reader.required("value")?));
                }
                _ => return Err(reader.unexpected_child(child, "<message> or <metadata>")),
            }
            child_reader.finish()?;
        }
        let Some(message) = message else {
            return Err(reader.site.err(
                reader.element.position,
                crate::error::ErrorKind::Missing,
                "missing required child element <message>",
            ));
        };
        Ok(Config {
            source,
            severity,
            message,
            metadata,
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let source = cx.context.literal(cx.site, &config.source)?;
        let severity = match &config.severity {
            None => TraceSeverity::Verbose,
            Some(raw) => {
                let resolved = cx.context.literal(cx.site, raw)?;
                match resolved.text.trim().to_ascii_lowercase().as_str() {
                    "verbose" => TraceSeverity::Verbose,
                    "information" => TraceSeverity::Information,
                    "error" => TraceSeverity::Error,
                    _ => {
                        return Err(cx.site.invalid(
                            raw.position,
                            format!(
                                "`severity` must be `verbose`, `information` or `error`, found {}",
                                resolved.shown()
                            ),
                        ));
                    }
                }
            }
        };
        let metadata = config
            .metadata
            .iter()
            .map(|(name, value)| {
                Ok((
                    cx.context.text_value(cx.site, name)?,
                    cx.context.text_value(cx.site, value)?,
                ))
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Self {
            source: Arc::from(source.text.trim()),
            severity,
            message: cx.context.text_value(cx.site, &config.message)?,
            metadata: metadata.into_boxed_slice(),
        })
    }
}

/// The text of `value` for the log: `<secret>` when it may hold a secret.
fn shown(value: &TextValue, host: &RequestHost<'_>) -> Result<String, crate::expression::ExpressionFailure> {
    if value.is_secret() {
        return Ok("<secret>".to_owned());
    }
    Ok(value.render(host)?.to_owned())
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Step for Trace {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if run.request.traces.len() >= MAX_TRACES {
            run.request.traces_dropped += 1;
            return Flow::Continue;
        }
        let entry = {
            let host = run.host();
            let message = match shown(&self.message, &host) {
                Ok(message) => cut(message, MAX_MESSAGE),
                Err(failure) => return failure.into_flow(meta, run.section()),
            };
            let mut metadata = Vec::with_capacity(self.metadata.len());
            for (name, value) in &self.metadata {
                match (shown(name, &host), shown(value, &host)) {
                    (Ok(name), Ok(value)) => {
                        metadata.push((cut(name, MAX_MESSAGE), cut(value, MAX_MESSAGE)));
                    }
                    (Err(failure), _) | (_, Err(failure)) => {
                        return failure.into_flow(meta, run.section());
                    }
                }
            }
            TraceEntry {
                source: Arc::clone(&self.source),
                severity: self.severity,
                section: run.section(),
                message,
                metadata,
            }
        };
        run.request.traces.push(entry);
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
