//! `return-response`: ends the request with a response built from its children
//! (inbound, backend, outbound, on-error).
//!
//! ```xml
//! <return-response>
//!     <set-status code="401" reason="Unauthorized" />
//!     <set-header name="WWW-Authenticate" exists-action="override">
//!         <value>Bearer error="invalid_token"</value>
//!     </set-header>
//!     <set-body>{"error":"unauthorized"}</set-body>
//! </return-response>
//! ```
//!
//! Without children the response is an empty `200 OK`, as in APIM. `set-body` takes
//! what the `set-body` policy takes ([`set_body`]). Header values may be expressions
//! too. What holds no expression is built at compile time. With
//! `response-variable-name`, the response starts as the one `send-request` stored in
//! that variable, and each child present changes it.

use std::sync::Arc;

use super::set_body::{self, BodyValue};
use super::{set_header, set_status};
use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::expression::RequestHost;
use crate::pipeline::PolicyResponse;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<return-response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    response_variable_name: Option<RawValue>,
    status: Option<set_status::Config>,
    headers: Vec<set_header::Config>,
    body: Option<set_body::Config>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.no_text()?;
        let mut config = Self {
            response_variable_name: reader.optional("response-variable-name"),
            status: None,
            headers: Vec::new(),
            body: None,
        };
        let (mut status_seen, mut body_seen) = (false, false);
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "set-status" => {
                    reader.at_most_once(&mut status_seen, child)?;
                    config.status = Some(set_status::Config::parse(&mut child_reader)?);
                }
                "set-header" => config
                    .headers
                    .push(set_header::Config::parse(&mut child_reader)?),
                "set-body" => {
                    reader.at_most_once(&mut body_seen, child)?;
                    config.body = Some(set_body::Config::parse(&mut child_reader)?);
                }
                _ => {
                    return Err(
                        reader.unexpected_child(child, "<set-status>, <set-header> or <set-body>")
                    );
                }
            }
            child_reader.finish()?;
        }
        Ok(config)
    }
}

/// Compiled `<return-response>`.
#[derive(Debug)]
pub(crate) struct ReturnResponse {
    /// The response, as far as it is known at load.
    response: PolicyResponse,
    /// When a header value holds an expression: every `<set-header>`, applied in order
    /// per request (the fixed ones are then not in `response`).
    headers: Box<[set_header::SetHeader]>,
    /// A body from an expression, evaluated per request.
    body: Option<BodyValue>,
    /// A status or reason from an expression, evaluated per request.
    status: Option<set_status::SetStatus>,
    /// With `response-variable-name`: the response comes from that variable (a
    /// `send-request` response) and the children change it.
    from_variable: Option<FromVariable>,
}

/// `return-response response-variable-name`: the stored response and what the
/// children change in it, each only if present.
#[derive(Debug)]
struct FromVariable {
    variable: Arc<str>,
    status: Option<set_status::SetStatus>,
    headers: Box<[set_header::SetHeader]>,
    body: Option<BodyValue>,
}

impl ReturnResponse {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        if let Some(raw) = &config.response_variable_name {
            let variable = cx.literal(site, raw)?;
            let variable = variable.text.trim();
            if variable.is_empty() {
                return Err(
                    site.invalid(raw.position, "`response-variable-name` must not be empty")
                );
            }
            let status = config
                .status
                .as_ref()
                .map(|status| set_status::SetStatus::compile(status, site, cx))
                .transpose()?;
            let headers = config
                .headers
                .iter()
                .map(|header| set_header::SetHeader::compile(header, site, cx))
                .collect::<Result<Vec<_>, _>>()?
                .into_boxed_slice();
            let body = config
                .body
                .as_ref()
                .map(|body| body.compile(site, cx))
                .transpose()?;
            return Ok(Self {
                response: PolicyResponse::empty(http::StatusCode::OK),
                headers: Box::default(),
                body: None,
                status: None,
                from_variable: Some(FromVariable {
                    variable: Arc::from(variable),
                    status,
                    headers,
                    body,
                }),
            });
        }
        let mut response = PolicyResponse::empty(http::StatusCode::OK);
        let mut computed_status = None;
        if let Some(status) = &config.status {
            match set_status::SetStatus::compile(status, site, cx)? {
                set_status::SetStatus::Fixed { status, reason } => {
                    response.status = status;
                    response.reason = reason;
                }
                computed @ set_status::SetStatus::Computed { .. } => {
                    computed_status = Some(computed);
                }
            }
        }
        let headers = config
            .headers
            .iter()
            .map(|header| set_header::SetHeader::compile(header, site, cx))
            .collect::<Result<Vec<_>, _>>()?;
        let headers = if headers.iter().any(set_header::SetHeader::is_computed) {
            headers.into_boxed_slice()
        } else {
            for header in &headers {
                header.apply(&mut response.headers);
            }
            Box::default()
        };
        let mut computed_body = None;
        if let Some(body) = &config.body {
            match body.compile(site, cx)? {
                BodyValue::Fixed(bytes) => response.body = bytes,
                computed @ BodyValue::Computed(_) => computed_body = Some(computed),
            }
        }
        Ok(Self {
            response,
            headers,
            body: computed_body,
            status: computed_status,
            from_variable: None,
        })
    }

    /// The response stored in the variable, changed by the children.
    fn response_from_variable(
        from: &FromVariable,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<PolicyResponse, Flow> {
        let stored = match host.request.variables.get(&from.variable) {
            Some(gatehouse_expr::Value::Object(object)) => host.received_response(object.id()),
            _ => None,
        };
        let Some(stored) = stored else {
            return Err(meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                format!(
                    "return-response: the variable `{}` does not hold a response (set it with send-request)",
                    from.variable
                ),
                PolicyResponse::json_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            ));
        };
        let mut response = PolicyResponse {
            status: stored.status,
            reason: None,
            headers: stored.headers.clone(),
            body: stored.body.to_send(),
        };
        if let Some(status) = &from.status {
            (response.status, response.reason) = status.resolve(host, meta, section)?;
        }
        for header in &from.headers {
            header.apply_with(host, &mut response.headers, meta, section)?;
        }
        if let Some(body) = &from.body {
            response.body = body.render(host, meta, section)?;
        }
        Ok(response)
    }

    /// The response to send when nothing in it is computed (a cheap clone: the body is
    /// shared).
    pub(crate) fn response(&self) -> PolicyResponse {
        self.response.clone()
    }

    /// The response for this request: expressions in header values and the body
    /// evaluated with `host`.
    fn response_for(
        &self,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<PolicyResponse, Flow> {
        let mut response = self.response.clone();
        if let Some(status) = &self.status {
            (response.status, response.reason) = status.resolve(host, meta, section)?;
        }
        for header in &self.headers {
            header.apply_with(host, &mut response.headers, meta, section)?;
        }
        if let Some(body) = &self.body {
            response.body = body.render(host, meta, section)?;
        }
        Ok(response)
    }
}

impl PolicyDefinition for ReturnResponse {
    const NAME: &'static str = "return-response";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for ReturnResponse {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        if let Some(from) = &self.from_variable {
            return match Self::response_from_variable(from, &run.host(), meta, run.section()) {
                Ok(response) => Flow::Respond(Box::new(response)),
                Err(flow) => flow,
            };
        }
        if self.headers.is_empty() && self.body.is_none() && self.status.is_none() {
            return Flow::Respond(Box::new(self.response()));
        }
        match self.response_for(&run.host(), meta, run.section()) {
            Ok(response) => Flow::Respond(Box::new(response)),
            Err(flow) => flow,
        }
    }
}

#[cfg(test)]
#[path = "return_response_tests.rs"]
mod tests;
