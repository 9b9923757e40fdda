//! `log-to-eventhub`: APIM sends a message to an Azure Event Hubs logger. Gatehouse has
//! no Azure behind it and maps the policy to a local log sink (DESIGN.md: Azure-only
//! policies load, mapped to an open equivalent): the message is written as a line of the
//! gateway's log, like a `trace`, with the logger's id (any section).
//!
//! ```xml
//! <log-to-eventhub logger-id="audit" partition-key="@(context.Subscription?.Id)">
//!     @($"{context.Request.Method} {context.Request.Url.Path}")
//! </log-to-eventhub>
//! ```
//!
//! The text (the message) and `partition-id` / `partition-key` may be policy
//! expressions; the partition attributes are written as metadata. `gatehouse policy
//! check` warns that the policy is mapped.

use std::sync::Arc;

use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::{RequestHost, TextValue};
use crate::pipeline::{TraceEntry, TraceSeverity};
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// Parsed `<log-to-eventhub>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    logger_id: RawValue,
    partition_id: Option<RawValue>,
    partition_key: Option<RawValue>,
    message: RawValue,
}

/// Compiled `<log-to-eventhub>`.
#[derive(Debug)]
pub(crate) struct LogToEventhub {
    source: Arc<str>,
    message: TextValue,
    partition: Option<(&'static str, TextValue)>,
}

impl PolicyDefinition for LogToEventhub {
    const NAME: &'static str = "log-to-eventhub";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    const MAPPED: Option<&'static str> = Some(
        "Azure Event Hubs is not available: Gatehouse writes each message as a line of the gateway's log (target gatehouse::policy_trace, source `log-to-eventhub:<logger-id>`)",
    );
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        let logger_id = reader.required("logger-id")?;
        let partition_id = reader.optional("partition-id");
        let partition_key = reader.optional("partition-key");
        if let (Some(_), Some(key)) = (&partition_id, &partition_key) {
            return Err(reader.site.invalid(
                key.position,
                "use either `partition-id` or `partition-key`, not both",
            ));
        }
        let message = reader.text().unwrap_or_else(|| RawValue {
            text: RawText::Literal(String::new()),
            position: reader.element.position,
        });
        Ok(Config {
            logger_id,
            partition_id,
            partition_key,
            message,
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let logger = cx.context.literal(cx.site, &config.logger_id)?;
        let partition = match (&config.partition_id, &config.partition_key) {
            (Some(id), _) => Some(("partition-id", cx.context.text_value(cx.site, id)?)),
            (None, Some(key)) => Some(("partition-key", cx.context.text_value(cx.site, key)?)),
            (None, None) => None,
        };
        Ok(Self {
            source: Arc::from(format!("log-to-eventhub:{}", logger.text.trim())),
            message: cx.context.text_value(cx.site, &config.message)?,
            partition,
        })
    }
}

fn shown(value: &TextValue, host: &RequestHost<'_>) -> Result<String, crate::expression::ExpressionFailure> {
    if value.is_secret() {
        return Ok("<secret>".to_owned());
    }
    Ok(value.render(host)?.trim().to_owned())
}

impl Step for LogToEventhub {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if run.request.traces.len() >= super::trace::MAX_TRACES {
            run.request.traces_dropped += 1;
            return Flow::Continue;
        }
        let entry = {
            let host = run.host();
            let message = match shown(&self.message, &host) {
                Ok(message) => message,
                Err(failure) => return failure.into_flow(meta, run.section()),
            };
            let mut metadata = Vec::new();
            if let Some((name, value)) = &self.partition {
                match shown(value, &host) {
                    Ok(value) => metadata.push(((*name).to_owned(), value)),
                    Err(failure) => return failure.into_flow(meta, run.section()),
                }
            }
            TraceEntry {
                source: Arc::clone(&self.source),
                severity: TraceSeverity::Information,
                section: run.section(),
                message: super::trace::cut(message, super::trace::MAX_MESSAGE),
                metadata,
            }
        };
        run.request.traces.push(entry);
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "log_to_eventhub_tests.rs"]
mod tests;
