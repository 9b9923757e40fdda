//! `send-one-way-request`: sends a request to another service without waiting for its
//! answer (inbound, backend, outbound, on-error).
//!
//! ```xml
//! <send-one-way-request mode="new" timeout="10">
//!     <set-url>https://hooks.example.com/audit</set-url>
//!     <set-method>POST</set-method>
//!     <set-body>@(context.Request.Method + " " + context.Request.Url.Path)</set-body>
//! </send-one-way-request>
//! ```
//!
//! The call is built as `send-request` builds it (`mode` `new` or `copy`, `timeout`, and
//! the `set-url`, `set-method`, `set-header` and `set-body` children, whose values may
//! be policy expressions), then handed to the gateway, which makes it in the
//! background: the request goes on at once, and the call's outcome never reaches it.
//! The gateway bounds the calls in flight, and logs and counts each outcome
//! (`gatehouse_one_way_requests_total`). An expression that fails while the call is
//! built fails the request, as in `send-request`.

use http::StatusCode;

use super::send_request::{CallTemplate, Config};
use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::registry::prelude::*;

/// Compiled `<send-one-way-request>`.
#[derive(Debug)]
pub(crate) struct SendOneWayRequest {
    call: CallTemplate,
}

impl PolicyDefinition for SendOneWayRequest {
    const NAME: &'static str = "send-one-way-request";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader, cx, true)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Ok(Self {
            call: CallTemplate::compile(config, cx)?,
        })
    }
}

impl Step for SendOneWayRequest {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let section = run.section();
        let call = match self.call.outgoing(&run.host(), meta, section) {
            Ok(call) => call,
            Err(flow) => return flow,
        };
        let started = match run.exec.facts.services {
            Some(services) => services.send_one_way(call),
            None => Err(crate::services::CallError::Unavailable),
        };
        match started {
            Ok(()) => Flow::Continue,
            Err(error) => meta.fail(
                section,
                "BackendConnectionFailure",
                format!("send-one-way-request: {error}"),
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            ),
        }
    }
}

#[cfg(test)]
#[path = "send_one_way_request_tests.rs"]
mod tests;
