//! `send-request`: calls another service and keeps its response for later policies
//! (inbound, backend, outbound, on-error).
//!
//! ```xml
//! <send-request mode="new" response-variable-name="tokenResponse" timeout="20" ignore-error="false">
//!     <set-url>https://auth.example.com/token</set-url>
//!     <set-method>POST</set-method>
//!     <set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>
//!     <set-body>@("{\"client\":\"" + context.Subscription.Id + "\"}")</set-body>
//! </send-request>
//! <set-header name="Authorization" exists-action="override">
//!     <value>@("Bearer " + ((IResponse)context.Variables["tokenResponse"]).Body.As<JObject>()["access_token"])</value>
//! </set-header>
//! ```
//!
//! `mode="new"` (the default) starts from an empty `GET`; `mode="copy"` from a copy of
//! the current request (method, backend URL with the path and query as shaped so far,
//! headers and body; the body is then read whole, as for a policy that reads it). The
//! children, each optional and in APIM's order, change it: `set-url` (required with
//! `new`), `set-method`, `set-header` (any number), `set-body`; values may be policy
//! expressions. The response, whatever its status, is stored in
//! `context.Variables[response-variable-name]` as an `IResponse` (`StatusCode`,
//! `StatusReason`, `Headers`, `Body.As<T>()`), read whole up to the gateway's
//! buffering limit. `timeout` (seconds, default 60) covers the whole call. A call that
//! fails (no connection, timeout, a body over the limit) goes to on-error (source
//! `send-request`, reason `BackendConnectionFailure`), unless `ignore-error="true"`:
//! then the variable is null and the request goes on.
//!
//! This is the first policy whose step waits: [`Step::is_async`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::authentication_managed_identity;
use super::set_body::{self, BodyValue};
use super::set_header::{self, SetHeader};
use crate::body::{BufferedBody, ContextReads};
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError};
use crate::expression::{RequestHost, TextValue, received_object};
use crate::pipeline::{MAX_RESPONSES, ReceivedResponse};
use crate::reader::RawValue;
use crate::registry::{StartedCall, StepFuture};
use crate::registry::prelude::*;
use crate::services::{CallError, CallResponse, OutgoingCall};

/// The longest `timeout` accepted (as `forward-request`'s).
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// Parsed `<send-request>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    mode: Option<RawValue>,
    /// `None` for `send-one-way-request`, which keeps no response.
    response_variable_name: Option<RawValue>,
    timeout: Option<RawValue>,
    ignore_error: Option<RawValue>,
    url: Option<RawValue>,
    method: Option<RawValue>,
    headers: Vec<set_header::Config>,
    body: Option<set_body::Config>,
    identity: Option<authentication_managed_identity::Config>,
}

/// Compiled `<send-request>`.
#[derive(Debug)]
pub(crate) struct SendRequest {
    call: CallTemplate,
    variable: Arc<str>,
    ignore_error: bool,
    /// `<authentication-managed-identity>`: a token for the call, sent as
    /// `Authorization: Bearer …`.
    identity: Option<CallIdentity>,
}

/// The call a `send-request` or `send-one-way-request` makes, compiled: its mode,
/// timeout and children.
#[derive(Debug)]
pub(crate) struct CallTemplate {
    copy: bool,
    timeout: Duration,
    url: Option<TextValue>,
    method: Option<Method>,
    headers: Box<[SetHeader]>,
    body: Option<BodyValue>,
}

/// `<authentication-managed-identity>` inside `<send-request>`.
#[derive(Debug)]
struct CallIdentity {
    resource: TextValue,
    /// Without a token, make the call without one.
    ignore_error: bool,
}

impl PolicyDefinition for SendRequest {
    const NAME: &'static str = "send-request";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader, cx, false)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let site = cx.site;
        let Some(raw_variable) = &config.response_variable_name else {
            return Err(site.err(
                cx.position,
                ErrorKind::Missing,
                "`response-variable-name` is missing",
            ));
        };
        let variable = cx.context.literal(site, raw_variable)?;
        let variable = variable.text.trim();
        if variable.is_empty() {
            return Err(site.invalid(
                raw_variable.position,
                "`response-variable-name` must not be empty",
            ));
        }
        let ignore_error =
            cx.context
                .boolean_or(site, config.ignore_error.as_ref(), "ignore-error", false)?;
        let identity = config
            .identity
            .as_ref()
            .map(|identity| {
                let (resource, ignore_error) = identity.compile_parts(site, cx.context)?;
                Ok::<_, PolicyError>(CallIdentity {
                    resource,
                    ignore_error,
                })
            })
            .transpose()?;
        Ok(Self {
            call: CallTemplate::compile(config, cx)?,
            variable: Arc::from(variable),
            ignore_error,
            identity,
        })
    }
}

impl Config {
    /// Reads a `<send-request>`, or with `one_way` a `<send-one-way-request>` (no
    /// response variable, no `ignore-error`, no token child).
    pub(crate) fn parse(
        reader: &mut ElementReader<'_>,
        cx: &ParseCx<'_>,
        one_way: bool,
    ) -> Result<Self, PolicyError> {
        reader.no_text()?;
        let mut config = Self {
            mode: reader.optional("mode"),
            response_variable_name: if one_way {
                None
            } else {
                Some(reader.required("response-variable-name")?)
            },
            timeout: reader.optional("timeout"),
            ignore_error: if one_way {
                None
            } else {
                reader.optional("ignore-error")
            },
            url: None,
            method: None,
            headers: Vec::new(),
            body: None,
            identity: None,
        };
        let (mut url_seen, mut method_seen, mut body_seen) = (false, false, false);
        let mut identity_seen = false;
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "set-url" => {
                    reader.at_most_once(&mut url_seen, child)?;
                    child_reader.no_children()?;
                    config.url = child_reader.text();
                }
                "set-method" => {
                    reader.at_most_once(&mut method_seen, child)?;
                    child_reader.no_children()?;
                    config.method = child_reader.text();
                }
                "set-header" => config
                    .headers
                    .push(set_header::Config::parse(&mut child_reader)?),
                "set-body" => {
                    reader.at_most_once(&mut body_seen, child)?;
                    config.body = Some(set_body::Config::parse(&mut child_reader)?);
                }
                "authentication-managed-identity" if one_way => {
                    return Err(reader.site.err(
                        child.position,
                        ErrorKind::NotSupported,
                        "<authentication-managed-identity> inside <send-one-way-request> is not supported yet by Gatehouse (it is inside <send-request>)",
                    ));
                }
                "authentication-managed-identity" => {
                    reader.at_most_once(&mut identity_seen, child)?;
                    let identity = <authentication_managed_identity::AuthenticationManagedIdentity as PolicyDefinition>::parse(&mut child_reader, cx)?;
                    if let Some(raw) = identity.output_token_variable_name() {
                        return Err(reader.site.err(
                            raw.position,
                            ErrorKind::NotSupported,
                            "`output-token-variable-name` has no use inside <send-request>: the token goes with the call",
                        ));
                    }
                    config.identity = Some(identity);
                }
                "authentication-certificate" | "proxy" => {
                    return Err(reader.site.err(
                        child.position,
                        ErrorKind::NotSupported,
                        format!(
                            "<{}> inside <{}> is not supported yet by Gatehouse",
                            child.name,
                            reader.element.name
                        ),
                    ));
                }
                _ => {
                    return Err(reader.unexpected_child(
                        child,
                        "<set-url>, <set-method>, <set-header>, <set-body> or <authentication-managed-identity>",
                    ));
                }
            }
            child_reader.finish()?;
        }
        Ok(config)
    }
}

impl CallTemplate {
    /// Compiles the call's mode, timeout and children.
    pub(crate) fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let site = cx.site;
        let copy = match &config.mode {
            None => false,
            Some(raw) => {
                let mode = cx.context.literal(site, raw)?;
                match mode.text.trim().to_ascii_lowercase().as_str() {
                    "new" => false,
                    "copy" => true,
                    _ => {
                        return Err(site.invalid(
                            raw.position,
                            format!("`mode` must be `new` or `copy`, found {}", mode.shown()),
                        ));
                    }
                }
            }
        };
        if copy {
            // The copy carries the request's body: read it whole first.
            cx.context.note_reads(ContextReads {
                request_body: true,
                ..ContextReads::default()
            });
        }
        let timeout = match &config.timeout {
            Some(raw) => Duration::from_secs(cx.context.number(
                site,
                raw,
                "timeout",
                1..=MAX_TIMEOUT_SECONDS,
            )?),
            None => Duration::from_secs(60),
        };
        let url = match &config.url {
            Some(raw) => {
                let value = cx.context.text_value(site, raw)?;
                if let TextValue::Fixed(text) = &value {
                    check_url(text.text.trim()).map_err(|why| {
                        site.invalid(raw.position, format!("<set-url>: {why}: {}", text.shown()))
                    })?;
                }
                Some(value)
            }
            None if copy => None,
            None => {
                return Err(site.err(
                    cx.position,
                    ErrorKind::Structure,
                    format!("<{} mode=\"new\"> needs a <set-url>", cx.site.element),
                ));
            }
        };
        let method = match &config.method {
            Some(raw) => {
                let text = cx.context.literal(site, raw)?;
                let method = Method::from_bytes(text.text.trim().as_bytes()).map_err(|_| {
                    site.invalid(
                        raw.position,
                        format!("<set-method>: not an HTTP method: {}", text.shown()),
                    )
                })?;
                Some(method)
            }
            None => None,
        };
        let headers = config
            .headers
            .iter()
            .map(|header| SetHeader::compile(header, site, cx.context))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        let body = config
            .body
            .as_ref()
            .map(|body| body.compile(site, cx.context))
            .transpose()?;
        Ok(Self {
            copy,
            timeout,
            url,
            method,
            headers,
            body,
        })
    }
}

/// An absolute `http` or `https` URL.
fn check_url(text: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(text).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("not an http or https URL");
    }
    Ok(url)
}

impl CallTemplate {
    /// The call to make, built from the current request (`copy`) or from nothing.
    pub(crate) fn outgoing(
        &self,
        host: &RequestHost<'_>,
        meta: &StepMeta,
        section: SectionKind,
    ) -> Result<OutgoingCall, Flow> {
        let invalid = |message: String| {
            meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                message,
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            )
        };
        let (mut method, mut url, mut headers, mut body) = (
            Method::GET,
            None,
            HeaderMap::new(),
            Bytes::new(),
        );
        if self.copy {
            method = host.request.method.clone();
            headers = host.request.headers.clone();
            body = host
                .request
                .body
                .as_ref()
                .map(BufferedBody::to_send)
                .unwrap_or_default();
            url = host.request_url();
        }
        if let Some(value) = &self.url {
            let text = value
                .render(host)
                .map_err(|failure| failure.into_flow(meta, section))?;
            let parsed = check_url(text.trim()).map_err(|why| {
                let shown = if value.is_secret() {
                    "a value from a secret named value".to_owned()
                } else {
                    format!("`{}`", &*text)
                };
                invalid(format!("<{}> <set-url>: {why}: {shown}", meta.name))
            })?;
            url = Some(parsed);
        }
        let Some(url) = url else {
            return Err(invalid(format!(
                "<{} mode=\"copy\">: the request has no backend URL to copy; give a <set-url>",
                meta.name
            )));
        };
        if let Some(new_method) = &self.method {
            method = new_method.clone();
        }
        for header in &self.headers {
            header.apply_with(host, &mut headers, meta, section)?;
        }
        if let Some(value) = &self.body {
            body = value.render(host, meta, section)?;
        }
        Ok(OutgoingCall {
            method,
            url,
            headers,
            body,
            timeout: self.timeout,
        })
    }
}

impl Step for SendRequest {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        meta.cannot_wait(run.section(), "BackendConnectionFailure")
    }

    fn is_async(&self) -> bool {
        true
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            let started = match self.start_call(meta, run) {
                Some(Ok(started)) => started,
                Some(Err(flow)) => return flow,
                None => return Flow::Continue,
            };
            let answered = started.call.await;
            self.finish_call(meta, run, answered, &started.origin)
        })
    }

    fn start_call<'a>(
        &self,
        meta: &StepMeta,
        run: &Run<'_, '_, 'a>,
    ) -> Option<Result<StartedCall<'a>, Flow>> {
        let host = run.host();
        let mut call = match self.call.outgoing(&host, meta, run.section()) {
            Ok(call) => call,
            Err(flow) => return Some(Err(flow)),
        };
        // Only the origin in messages: the path and query may hold secrets.
        let origin = call.url.origin().ascii_serialization();
        let identity = match &self.identity {
            Some(identity) => match identity.resource.render(&host) {
                Ok(resource) => Some((resource.trim().to_owned(), identity.ignore_error)),
                Err(failure) => return Some(Err(failure.into_flow(meta, run.section()))),
            },
            None => None,
        };
        let call = match (run.exec.facts.services, identity) {
            (Some(services), None) => services.call(call),
            // The token first, then the call with it.
            (Some(services), Some((resource, ignore_error))) => Box::pin(async move {
                match services.token(&resource).await {
                    Ok(token) => {
                        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                            .map_err(|_| {
                                CallError::Refused(
                                    "the token endpoint gave a token that is not a header value"
                                        .to_owned(),
                                )
                            })?;
                        value.set_sensitive(true);
                        call.headers.insert(http::header::AUTHORIZATION, value);
                    }
                    Err(_) if ignore_error => {}
                    Err(error) => return Err(error),
                }
                services.call(call).await
            }),
            (None, _) => Box::pin(std::future::ready(Err(CallError::Unavailable))),
        };
        Some(Ok(StartedCall { call, origin }))
    }

    fn finish_call(
        &self,
        meta: &StepMeta,
        run: &mut Run<'_, '_, '_>,
        answered: Result<CallResponse, CallError>,
        origin: &str,
    ) -> Flow {
        let section = run.section();
        let failure = |message: String| {
            meta.fail(
                section,
                "BackendConnectionFailure",
                message,
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            )
        };
        match answered {
            Ok(_) if run.request.responses.len() >= MAX_RESPONSES => failure(format!(
                "send-request: a request may keep at most {MAX_RESPONSES} responses"
            )),
            Ok(response) => {
                let index = run.request.responses.len();
                run.request.responses.push(ReceivedResponse {
                    status: response.status,
                    headers: response.headers,
                    body: BufferedBody::new(response.body),
                });
                run.request
                    .variables
                    .set(&self.variable, received_object(index));
                Flow::Continue
            }
            Err(_) if self.ignore_error => {
                run.request
                    .variables
                    .set(&self.variable, gatehouse_expr::Value::Null);
                Flow::Continue
            }
            Err(error) => failure(format!("send-request to {origin}: {error}")),
        }
    }
}

#[cfg(test)]
#[path = "send_request_tests.rs"]
mod tests;
