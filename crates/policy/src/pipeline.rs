//! The executable pipeline and the per-request state it works on.
//!
//! A [`Pipeline`] is built once per operation by [`crate::compile`] and shared by all
//! requests (it is immutable, `Send + Sync`). Per request the gateway creates a
//! [`RequestState`] and calls the phases in order; see the crate documentation for the
//! whole sequence and what each [`Flow`] means.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::body::{BufferedBody, ContextReads};
use crate::certificate::ClientCertificate;
use crate::counters::{
    CellKey, ConcurrencyPermit, Counters, DeferredCharge, QuotaLimit, RateLimit,
};
use crate::document::SectionKind;
use crate::error::Position;
use crate::expression::{PolicyExpression, Variables};
use crate::key::NullReference;
use crate::policies::retry::{PendingRetry, RetryDecision};
use crate::registry::{CompiledStep, Run, Steps};
use crate::services::PolicyServices;

/// What the gateway knows about a request that policies read but never change.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The client's address (after any trusted proxy handling the gateway does).
    pub client_ip: IpAddr,
    /// The subscription the request was authorised with, if any.
    pub subscription: Option<SubscriptionFacts<'a>>,
    /// The operation's URL template parameters matched in this request, by name, with
    /// values decoded (as the router returns them). `rewrite-uri` reads them and
    /// encodes each again for where it lands.
    pub route_params: &'a [(&'a str, &'a str)],
    /// The time, as a [`Duration`] since the Unix epoch, read once per request by the
    /// caller. Counters and certificate validity checks use it; nothing in this crate
    /// reads a clock.
    pub now: Duration,
    /// The certificate the client presented in the TLS handshake of the connection the
    /// request came on (`context.Request.Certificate`); `None` over plain HTTP, or when
    /// the hostname does not ask for one or the client sent none.
    /// `validate-client-certificate` and the certificate counter-key idioms read it.
    pub client_certificate: Option<&'a ClientCertificate>,
    /// The URL as the client sent it (`context.Request.OriginalUrl`).
    pub original_url: OriginalUrl<'a>,
    /// The request's id (`context.RequestId`): made by the gateway before inbound when
    /// [`Pipeline::context_reads`] says an expression reads it; `None` otherwise.
    pub request_id: Option<&'a str>,
    /// What policies may call (`send-request`); `None` where nothing may be called.
    pub services: Option<&'a dyn PolicyServices>,
    /// Where the gateway runs (`context.Deployment`).
    pub deployment: DeploymentFacts<'a>,
}

/// The gateway a request is served by (`context.Deployment`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeploymentFacts<'a> {
    /// The gateway's id (`GatewayId`, `Gateway.Id`); empty when the configuration names
    /// none.
    pub gateway_id: &'a str,
    /// The gateway's `location` (`Region`); empty when it has none.
    pub region: &'a str,
}

/// The URL a request came with, as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct OriginalUrl<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host the request was routed by, with its port when the client gave one
    /// (`api.example.com:8443`).
    pub host: &'a str,
    /// The path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query without `?`, as sent (the subscription key included, if it came
    /// there).
    pub query: &'a str,
}

impl Default for OriginalUrl<'_> {
    fn default() -> Self {
        Self {
            scheme: "http",
            host: "localhost",
            path: "/",
            query: "",
        }
    }
}

/// The subscription a request was made with.
#[derive(Clone, Copy)]
pub struct SubscriptionFacts<'a> {
    /// The subscription id.
    pub id: &'a str,
    /// The key the client presented (used by `counter-key` idioms; never printed).
    pub key: &'a str,
    /// The product the subscription belongs to, for product-scoped subscriptions.
    pub product_id: Option<&'a str>,
    /// That product's display name (its id when it has none).
    pub product_name: Option<&'a str>,
    /// The subscription's display name (its id when it has none).
    pub name: &'a str,
}

impl fmt::Debug for SubscriptionFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionFacts")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .field("product_id", &self.product_id)
            .field("name", &self.name)
            .finish()
    }
}

/// The request as policies shape it, plus what they ask of the gateway.
///
/// Created by the gateway for each request with [`RequestState::new`] and passed to
/// every phase. After the backend phase the gateway forwards `method`, `path`, `query`
/// and `headers` to `backend` (or the API's own backend) with `forward`'s settings.
pub struct RequestState {
    /// The method to send to the backend (`set-method`).
    pub method: Method,
    /// The path relative to the backend base URL, starting with `/` (`rewrite-uri`).
    pub path: String,
    /// The raw query string without `?` (`rewrite-uri`, `set-query-parameter`).
    pub query: String,
    /// The request headers to send (`set-header` in inbound and backend).
    pub headers: HeaderMap,
    /// The request body, when the gateway read it whole for the policies
    /// ([`Pipeline::context_reads`]) or `set-body` replaced it; `None`: it streams from the
    /// client as received. When `Some`, the gateway sends [`BufferedBody::to_send`].
    pub body: Option<BufferedBody>,
    /// The backend chosen by `set-backend-service`; `None` keeps the API's.
    pub backend: Option<Arc<BackendTarget>>,
    /// How to forward (`forward-request`); the defaults when no policy says otherwise.
    pub forward: ForwardSettings,
    /// Headers policies add to whatever response the client ends up getting (CORS
    /// headers, rate-limit counters). The pipeline moves them into the response itself
    /// at the end of the phase that produces it; the gateway need not touch them.
    pub response_headers: HeaderMap,
    /// Concurrency permits to hold until the response has been sent completely (or
    /// the request is dropped): drop them, or this state, then.
    pub held: Vec<ConcurrencyPermit>,
    /// Bandwidth charges to settle with [`Counters::settle`] once the response is
    /// complete.
    pub deferred: Vec<DeferredCharge>,
    /// `context.Variables`: set by `set-variable`, read by expressions, kept for the
    /// whole request (inbound to outbound and on-error).
    pub variables: Variables,
    /// Counts whose `increment-condition` is an expression, decided once the response
    /// is known (the pipeline settles them at the end of the phase that produces it).
    pub(crate) pending_counts: Vec<PendingCount>,
    /// Responses `send-request` received, which `context.Variables` refer to; at most
    /// [`MAX_RESPONSES`] per request.
    pub responses: Vec<ReceivedResponse>,
    /// What `trace` policies recorded, for the gateway to log (and drain) with the
    /// request's id; at most 64 per request.
    pub traces: Vec<TraceEntry>,
    /// Traces not kept because the request already had the most it may keep.
    pub traces_dropped: u32,
    /// A CORS preflight no `cors` policy has answered yet (`terminate-unmatched-request`
    /// false); answered with an empty 200 at the end of inbound.
    pub(crate) cors_preflight_unanswered: bool,
    /// A `retry` around `forward-request` that ran (see [`RequestState::retries_forward`]).
    pub(crate) retry: Option<PendingRetry>,
}

impl RequestState {
    /// The state for a request as received: `path` relative to the API (the backend
    /// base URL is prepended when forwarding), `query` raw without `?`.
    pub fn new(
        method: Method,
        path: impl Into<String>,
        query: impl Into<String>,
        headers: HeaderMap,
    ) -> Self {
        Self {
            method,
            path: path.into(),
            query: query.into(),
            headers,
            body: None,
            backend: None,
            forward: ForwardSettings::default(),
            response_headers: HeaderMap::new(),
            held: Vec::new(),
            deferred: Vec::new(),
            variables: Variables::default(),
            pending_counts: Vec::new(),
            responses: Vec::new(),
            traces: Vec::new(),
            traces_dropped: 0,
            cors_preflight_unanswered: false,
            retry: None,
        }
    }

    /// Whether the backend section ended in a `retry` around `forward-request`: then
    /// keep the request's headers and whole body to send again, and ask
    /// [`Pipeline::retry_forward`] after each answer.
    pub fn retries_forward(&self) -> bool {
        self.retry.is_some()
    }
}

impl fmt::Debug for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may carry credentials: names only.
        f.debug_struct("RequestState")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &HeaderNames(&self.headers))
            .field("backend", &self.backend)
            .field("forward", &self.forward)
            .field("response_headers", &HeaderNames(&self.response_headers))
            .field("held", &self.held.len())
            .field("deferred", &self.deferred.len())
            .field("variables", &self.variables.len())
            .finish_non_exhaustive()
    }
}

struct HeaderNames<'a>(&'a HeaderMap);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The response as outbound and on-error policies shape it.
#[derive(Debug)]
pub struct ResponseState {
    /// Status to send (`set-status`).
    pub status: StatusCode,
    /// Reason phrase to send over HTTP/1.1 (`set-status reason`); `None` for the
    /// standard one.
    pub reason: Option<Arc<str>>,
    /// Response headers (`set-header` in outbound and on-error).
    pub headers: HeaderMap,
    /// The body, when the gateway read the backend's whole for the policies
    /// ([`Pipeline::context_reads`]), on-error runs on a failure's body, or `set-body`
    /// replaced it; `None`: the backend's body streams as received. When `Some`, the
    /// gateway sends [`BufferedBody::to_send`].
    pub body: Option<BufferedBody>,
}

impl ResponseState {
    /// A response state from the backend's (or the failure's) status and headers.
    pub fn new(status: StatusCode, headers: HeaderMap) -> Self {
        Self {
            status,
            reason: None,
            headers,
            body: None,
        }
    }
}

/// A rate limit or quota count waiting for its `increment-condition`.
#[derive(Debug)]
pub(crate) struct PendingCount {
    pub(crate) counter: PendingCounter,
    pub(crate) increment: u32,
    pub(crate) condition: Arc<PolicyExpression>,
    /// The policy, for the trace a failing condition leaves.
    pub(crate) meta: StepMeta,
}

/// Which counter a [`PendingCount`] adds to.
#[derive(Debug)]
pub(crate) enum PendingCounter {
    Rate { cell: CellKey, limit: RateLimit },
    Quota { cell: CellKey, limit: QuotaLimit },
}

/// Decides the pending counts with the response the client gets: each whose condition
/// holds is added (as far as its limit still has room); a condition that fails to
/// evaluate counts nothing and leaves an error trace, which the gateway logs.
fn settle_counts(exec: &Exec<'_, '_>, request: &mut RequestState, response: &ResponseState) {
    if request.pending_counts.is_empty() {
        return;
    }
    let pending = std::mem::take(&mut request.pending_counts);
    for count in pending {
        let host = crate::expression::RequestHost {
            facts: exec.facts,
            scope: exec.scope,
            request,
            response: Some(response),
            last_error: exec.last_error,
        };
        match count.condition.evaluate(&host) {
            Ok(gatehouse_expr::Value::Bool(true)) => match count.counter {
                PendingCounter::Rate { cell, limit } => {
                    exec.counters
                        .rate(cell, limit, count.increment, true, exec.facts.now);
                }
                PendingCounter::Quota { cell, limit } => {
                    if let crate::counters::QuotaOutcome::Allowed { charge } =
                        exec.counters
                            .quota(cell, limit, count.increment, true, exec.facts.now)
                    {
                        request.deferred.extend(charge);
                    }
                }
            },
            Ok(gatehouse_expr::Value::Bool(false)) => {}
            Ok(other) => record_condition_failure(
                request,
                &count.meta,
                exec.section,
                format!(
                    "increment-condition gave {}, not a bool; the request was not counted",
                    other.type_name()
                ),
            ),
            Err(failure) => record_condition_failure(
                request,
                &count.meta,
                exec.section,
                format!(
                    "increment-condition failed; the request was not counted: {} (expression at {}:{})",
                    failure.describe(),
                    count.meta.origin,
                    count.meta.position
                ),
            ),
        }
    }
}

fn record_condition_failure(
    request: &mut RequestState,
    meta: &StepMeta,
    section: SectionKind,
    message: String,
) {
    if request.traces.len() < crate::policies::trace::MAX_TRACES {
        request.traces.push(TraceEntry {
            source: Arc::from(meta.name),
            severity: TraceSeverity::Error,
            section,
            message,
            metadata: Vec::new(),
        });
    } else {
        request.traces_dropped = request.traces_dropped.saturating_add(1);
    }
}

/// How many responses `send-request` may keep per request.
pub const MAX_RESPONSES: usize = 16;

/// A response `send-request` received (`IResponse` in expressions), kept for the rest
/// of the request.
#[derive(Debug)]
pub struct ReceivedResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, read whole.
    pub body: BufferedBody,
}

/// One `trace` policy's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// The `source` attribute.
    pub source: Arc<str>,
    /// The `severity` attribute.
    pub severity: TraceSeverity,
    /// The section the trace ran in.
    pub section: SectionKind,
    /// The message (secret values shown as `<secret>`).
    pub message: String,
    /// `<metadata>` name/value pairs, likewise.
    pub metadata: Vec<(String, String)>,
}

/// `trace`'s `severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSeverity {
    /// `verbose` (the default).
    Verbose,
    /// `information`.
    Information,
    /// `error`.
    Error,
}

impl TraceSeverity {
    /// APIM's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verbose => "verbose",
            Self::Information => "information",
            Self::Error => "error",
        }
    }
}

/// A backend chosen by `set-backend-service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTarget {
    /// Base URL; the request path is appended to its path.
    pub url: Url,
    /// The configured backend's id when chosen with `backend-id` (so the gateway can
    /// use its timeouts and connection pool); `None` for `base-url`.
    pub backend_id: Option<Arc<str>>,
}

/// HTTP version for the backend request (`forward-request http-version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 (`1`, the default).
    #[default]
    Http1,
    /// HTTP/2 only (`2`).
    Http2,
    /// HTTP/2, falling back to HTTP/1.1 when the backend does not speak it (`2or1`).
    Http2OrHttp1,
}

/// How the gateway forwards the request (`forward-request`).
///
/// When the merged backend section has no `forward-request`, the gateway still
/// forwards, with these defaults (APIM puts `<forward-request/>` in the global scope
/// by default; Gatehouse makes that implicit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardSettings {
    /// Time to wait for the response head; `None`: the backend's `responseTimeout`
    /// (300 s by default, as APIM's `timeout`).
    pub timeout: Option<Duration>,
    /// Time to hold a request body back waiting for the backend's `100 Continue`
    /// (`continue-timeout`; the request then carries `Expect: 100-continue`); `None`:
    /// the body is sent at once.
    pub continue_timeout: Option<Duration>,
    /// HTTP version to use towards the backend.
    pub http_version: HttpVersion,
    /// Follow backend redirects instead of returning them (default false).
    pub follow_redirects: bool,
    /// Buffer the request body so a retry can resend it (default false).
    pub buffer_request_body: bool,
    /// Collect response chunks up to 8 KiB before sending them (`buffer-response="true"`);
    /// default false: each chunk is sent as it arrives (APIM's default is true).
    pub buffer_response: bool,
    /// Treat backend 400–599 responses as errors and run on-error (default false).
    pub fail_on_error_status_code: bool,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            timeout: None,
            continue_timeout: None,
            http_version: HttpVersion::Http1,
            follow_redirects: false,
            buffer_request_body: false,
            buffer_response: false,
            fail_on_error_status_code: false,
        }
    }
}

/// A complete response a policy produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResponse {
    /// Status code.
    pub status: StatusCode,
    /// Reason phrase for HTTP/1.1; `None` for the standard one.
    pub reason: Option<Arc<str>>,
    /// Headers (the gateway adds `Content-Length` and its own headers).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl PolicyResponse {
    /// An empty response with `status`.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            reason: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// APIM's error body: `{"statusCode":N,"message":"…"}` as JSON.
    pub fn json_error(status: StatusCode, message: &str) -> Self {
        let body = format!(
            "{{\"statusCode\":{},\"message\":{}}}",
            status.as_u16(),
            json_string(message)
        );
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self {
            status,
            reason: None,
            headers,
            body: Bytes::from(body),
        }
    }
}

/// Quotes and escapes `text` as a JSON string.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                use fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(control));
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// What went wrong, as APIM's `context.LastError` describes it. Passed to
/// [`Pipeline::on_error`]; for logs and metrics use `source` and `reason`, which come
/// from a closed set, never `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrorInfo {
    /// The policy (`rate-limit`) or built-in step (`forward-request`,
    /// `configuration`) that failed.
    pub source: &'static str,
    /// A machine-friendly code: `RateLimitExceeded`, `QuotaExceeded`,
    /// `CallerIpNotAllowed`, `HeaderNotFound`, …
    pub reason: &'static str,
    /// A human-readable description.
    pub message: Cow<'static, str>,
    /// The section the error happened in, if it happened in one.
    pub section: Option<SectionKind>,
    /// The failing policy's `id` attribute, if it has one.
    pub policy_id: Option<Arc<str>>,
    /// The scope of the document the failing policy is in (`global`, `product`, `api`,
    /// `operation`); `None` for the gateway's own steps and for a policy in a fragment.
    pub scope: Option<&'static str>,
    /// Where the failing policy is in its section, as APIM writes it
    /// (`choose[3]\when[2]\set-header[1]`: element names with their 1-based position
    /// among their siblings); `None` for the gateway's own steps.
    pub path: Option<Arc<str>>,
}

/// A policy refused the request: the error for on-error, and the response to send if
/// on-error does not replace it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFailure {
    /// What went wrong.
    pub error: PolicyErrorInfo,
    /// The response APIM would send (e.g. 429 with `Retry-After` and a JSON body).
    pub response: PolicyResponse,
}

/// What a phase decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// Go on to the next phase.
    Continue,
    /// Send this response now; no further phase runs, not even outbound
    /// (`return-response`, `mock-response`, an answered CORS preflight).
    Respond(Box<PolicyResponse>),
    /// A policy refused the request (rate limit, quota, IP filter, …): run
    /// [`Pipeline::on_error`] with the error and a [`ResponseState`] made from the
    /// failure's response, then send that response (with the failure's body) unless
    /// on-error responds itself. A failure raised *by* on-error is sent as it is.
    Fail(Box<PolicyFailure>),
}

/// The compiled policies of one operation: four lists of steps.
///
/// Build it with [`crate::compile`]; run it with the phase methods, in the order the
/// crate documentation gives.
pub struct Pipeline {
    pub(crate) inbound: Steps,
    pub(crate) backend: Steps,
    pub(crate) outbound: Steps,
    pub(crate) on_error: Steps,
    /// What expressions read that the gateway prepares on demand (found at load).
    pub(crate) context_reads: ContextReads,
    /// The API and operation the pipeline serves.
    pub(crate) scope: ScopeFacts,
    /// Whether a step of any section may wait (`send-request`).
    pub(crate) is_async: bool,
}

/// What a pipeline knows of the API and operation it serves (`context.Api`,
/// `context.Operation`): taken from the configuration when it is compiled, so requests
/// pay nothing for them.
#[derive(Debug, Default)]
pub(crate) struct ScopeFacts {
    pub(crate) api: Option<ApiFacts>,
    pub(crate) operation: Option<OperationFacts>,
}

/// `context.Api`.
#[derive(Debug)]
pub(crate) struct ApiFacts {
    pub(crate) id: Arc<str>,
    /// The display name, or the id.
    pub(crate) name: Arc<str>,
    /// The API's URL suffix (`path`).
    pub(crate) path: Arc<str>,
    /// `serviceUrl`, when the API has one that parses.
    pub(crate) service_url: Option<Url>,
}

/// `context.Operation`.
#[derive(Debug)]
pub(crate) struct OperationFacts {
    pub(crate) id: Arc<str>,
    /// The display name, or the id.
    pub(crate) name: Arc<str>,
    pub(crate) method: Arc<str>,
    pub(crate) url_template: Arc<str>,
}

impl ScopeFacts {
    /// The facts of `cx`'s API and operation.
    pub(crate) fn of(cx: &crate::context::CompileContext<'_>) -> Self {
        Self {
            api: cx.api().map(|api| ApiFacts {
                id: Arc::from(api.id.as_str()),
                name: Arc::from(api.display_name.as_deref().unwrap_or(&api.id)),
                path: Arc::from(api.path.as_str()),
                service_url: api
                    .service_url
                    .as_deref()
                    .and_then(|url| Url::parse(url).ok()),
            }),
            operation: cx.operation().map(|operation| OperationFacts {
                id: Arc::from(operation.id.as_str()),
                name: Arc::from(operation.display_name.as_deref().unwrap_or(&operation.id)),
                method: Arc::from(operation.method.as_str()),
                url_template: Arc::from(operation.url_template.as_str()),
            }),
        }
    }
}

/// What every step sees while it runs.
pub(crate) struct Exec<'r, 'a> {
    pub(crate) facts: &'r RequestFacts<'a>,
    /// The API and operation the pipeline serves.
    pub(crate) scope: &'r ScopeFacts,
    pub(crate) counters: &'r Counters,
    pub(crate) section: SectionKind,
    /// `context.LastError` in on-error.
    pub(crate) last_error: Option<&'r PolicyErrorInfo>,
}

impl Pipeline {
    /// Runs the inbound section: once per request, before anything is sent to the
    /// backend. On [`Flow::Continue`] go on to [`Pipeline::backend`].
    pub fn inbound(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Inbound, None);
        let flow = run_request(&self.inbound, &exec, request);
        finish_inbound(&exec, flow, request)
    }

    /// Runs the backend section: just before forwarding, once per backend call. On
    /// [`Flow::Continue`] forward the request as [`RequestState`] describes it.
    pub fn backend(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Backend, None);
        let flow = run_request(&self.backend, &exec, request);
        finish_request_phase(&exec, flow, request)
    }

    /// Runs the outbound section on the backend's response head. On
    /// [`Flow::Continue`] send `response` with the backend's body.
    pub fn outbound(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
        response: &mut ResponseState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Outbound, None);
        let flow = run_response(&self.outbound, &exec, request, response);
        finish_response_phase(&exec, flow, request, response)
    }

    /// Runs the on-error section after a [`Flow::Fail`] from any phase, or an error of
    /// the gateway's own (backend unreachable, timeout) described by `error`.
    /// `response` starts as the failure's response (or the gateway's error response).
    /// On [`Flow::Continue`] send `response`; on [`Flow::Respond`] send that instead;
    /// on [`Flow::Fail`] send the failure's response without running on-error again.
    pub fn on_error(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
        error: &PolicyErrorInfo,
        response: &mut ResponseState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::OnError, Some(error));
        let flow = run_response(&self.on_error, &exec, request, response);
        finish_response_phase(&exec, flow, request, response)
    }

    /// After an answer to a request whose backend section ended in a `retry` around
    /// `forward-request` ([`RequestState::retries_forward`]), made after `retries`
    /// retries: evaluates the condition on `response` (the answer's status and headers;
    /// `None` when the backend could not be reached, which is retried while retries
    /// remain), waits on the services' timer, and runs the retry's policies again.
    /// [`RetryDecision::Again`]: forward the request again as it now is.
    pub async fn retry_forward(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
        response: Option<&mut ResponseState>,
        retries: u32,
    ) -> RetryDecision {
        let Some(pending) = request.retry.clone() else {
            return RetryDecision::Done;
        };
        let exec = self.exec(facts, counters, SectionKind::Backend, None);
        match pending
            .after_answer(&exec, request, response, retries)
            .await
        {
            RetryDecision::Stop(flow) => {
                RetryDecision::Stop(finish_request_phase(&exec, flow, request))
            }
            decision => decision,
        }
    }

    /// The bodies this pipeline's expressions read: the gateway reads those whole (up
    /// to its buffering limit) into [`RequestState::body`] before inbound and
    /// [`ResponseState::body`] before outbound; other bodies stream.
    pub fn context_reads(&self) -> ContextReads {
        self.context_reads
    }

    /// Whether a step may wait (`send-request`): then run the phases with the `_async`
    /// methods. Otherwise the plain ones run the pipeline without any future.
    pub fn is_async(&self) -> bool {
        self.is_async
    }

    /// [`Pipeline::inbound`] for a pipeline that may wait.
    pub async fn inbound_async(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Inbound, None);
        let flow = run_steps_async(&self.inbound, &exec, request, None).await;
        finish_inbound(&exec, flow, request)
    }

    /// [`Pipeline::backend`] for a pipeline that may wait.
    pub async fn backend_async(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Backend, None);
        let flow = run_steps_async(&self.backend, &exec, request, None).await;
        finish_request_phase(&exec, flow, request)
    }

    /// [`Pipeline::outbound`] for a pipeline that may wait.
    pub async fn outbound_async(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
        response: &mut ResponseState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::Outbound, None);
        let flow = run_steps_async(&self.outbound, &exec, request, Some(&mut *response)).await;
        finish_response_phase(&exec, flow, request, response)
    }

    /// [`Pipeline::on_error`] for a pipeline that may wait.
    pub async fn on_error_async(
        &self,
        facts: &RequestFacts<'_>,
        counters: &Counters,
        request: &mut RequestState,
        error: &PolicyErrorInfo,
        response: &mut ResponseState,
    ) -> Flow {
        let exec = self.exec(facts, counters, SectionKind::OnError, Some(error));
        let flow = run_steps_async(&self.on_error, &exec, request, Some(&mut *response)).await;
        finish_response_phase(&exec, flow, request, response)
    }

    fn exec<'r, 'a>(
        &'r self,
        facts: &'r RequestFacts<'a>,
        counters: &'r Counters,
        section: SectionKind,
        last_error: Option<&'r PolicyErrorInfo>,
    ) -> Exec<'r, 'a> {
        Exec {
            facts,
            scope: &self.scope,
            counters,
            section,
            last_error,
        }
    }

    /// Whether any step of a section is present (for tracing; an empty section costs
    /// nothing to run).
    pub fn is_empty(&self, section: SectionKind) -> bool {
        match section {
            SectionKind::Inbound => self.inbound.is_empty(),
            SectionKind::Backend => self.backend.is_empty(),
            SectionKind::Outbound => self.outbound.is_empty(),
            SectionKind::OnError => self.on_error.is_empty(),
        }
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Steps may hold secret values: show which policies run where, not their values.
        f.debug_struct("Pipeline")
            .field("inbound", &StepList::new(&self.inbound))
            .field("backend", &StepList::new(&self.backend))
            .field("outbound", &StepList::new(&self.outbound))
            .field("on_error", &StepList::new(&self.on_error))
            .finish()
    }
}

struct StepList(Vec<String>);

impl StepList {
    fn new(steps: &[CompiledStep]) -> Self {
        Self(steps.iter().map(|step| step.meta.describe()).collect())
    }
}

impl fmt::Debug for StepList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// Identity of a compiled step, for errors raised at run time and for `Debug`.
#[derive(Debug, Clone)]
pub(crate) struct StepMeta {
    pub(crate) name: &'static str,
    pub(crate) origin: Arc<str>,
    pub(crate) position: Position,
    /// The element path in its section, for `context.LastError.Path`.
    pub(crate) path: Arc<str>,
    pub(crate) id: Option<Arc<str>>,
}

impl StepMeta {
    fn describe(&self) -> String {
        format!("<{}> {}:{}", self.name, self.origin, self.position)
    }

    /// A [`Flow::Fail`] raised by this step.
    pub(crate) fn fail(
        &self,
        section: SectionKind,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
        response: PolicyResponse,
    ) -> Flow {
        self.fail_from(self.name, section, reason, message, response)
    }

    /// A [`Flow::Fail`] with an explicit APIM source name (APIM reports `quota-by-key`
    /// failures with source `quota`, for instance).
    pub(crate) fn fail_from(
        &self,
        source: &'static str,
        section: SectionKind,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
        response: PolicyResponse,
    ) -> Flow {
        Flow::Fail(Box::new(PolicyFailure {
            error: PolicyErrorInfo {
                source,
                reason,
                message: message.into(),
                section: Some(section),
                policy_id: self.id.clone(),
                scope: scope_of(&self.origin),
                path: Some(Arc::clone(&self.path)),
            },
            response,
        }))
    }

    /// What a step that waits does in a synchronous run, which cannot wait: it fails,
    /// 500 (only a caller that ignored [`Pipeline::is_async`] gets here).
    pub(crate) fn cannot_wait(&self, section: SectionKind, reason: &'static str) -> Flow {
        self.fail(
            section,
            reason,
            format!("{} cannot run in a synchronous pipeline run", self.name),
            PolicyResponse::json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        )
    }

    /// APIM's failure for an expression that dereferences a missing object (the
    /// subscription, the client certificate).
    pub(crate) fn null_reference(&self, section: SectionKind, missing: NullReference) -> Flow {
        let message = match missing {
            NullReference::Subscription => {
                "Expression evaluation failed. Object reference not set to an instance of an object (no subscription)."
            }
            NullReference::Certificate => {
                "Expression evaluation failed. Object reference not set to an instance of an object (no client certificate)."
            }
        };
        self.fail(
            section,
            "ExpressionValueEvaluationFailure",
            message,
            PolicyResponse::json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        )
    }
}

/// Runs `steps` as a future (the pipeline has a step that waits).
async fn run_steps_async(
    steps: &[CompiledStep],
    exec: &Exec<'_, '_>,
    request: &mut RequestState,
    response: Option<&mut ResponseState>,
) -> Flow {
    Run {
        exec,
        request,
        response,
    }
    .run_async(steps)
    .await
}

fn run_request(steps: &[CompiledStep], exec: &Exec<'_, '_>, request: &mut RequestState) -> Flow {
    Run {
        exec,
        request,
        response: None,
    }
    .run(steps)
}

fn run_response(
    steps: &[CompiledStep],
    exec: &Exec<'_, '_>,
    request: &mut RequestState,
    response: &mut ResponseState,
) -> Flow {
    Run {
        exec,
        request,
        response: Some(response),
    }
    .run(steps)
}

/// The end of inbound: a preflight no `cors` policy answered gets APIM's empty 200.
fn finish_inbound(exec: &Exec<'_, '_>, mut flow: Flow, request: &mut RequestState) -> Flow {
    if flow == Flow::Continue && std::mem::take(&mut request.cors_preflight_unanswered) {
        flow = Flow::Respond(Box::new(PolicyResponse::empty(StatusCode::OK)));
    }
    finish_request_phase(exec, flow, request)
}

fn finish_request_phase(exec: &Exec<'_, '_>, flow: Flow, request: &mut RequestState) -> Flow {
    match flow {
        Flow::Continue => Flow::Continue,
        Flow::Respond(mut response) => {
            move_headers(&mut request.response_headers, &mut response.headers);
            settle_with(exec, request, &response);
            Flow::Respond(response)
        }
        Flow::Fail(mut failure) => {
            move_headers(&mut request.response_headers, &mut failure.response.headers);
            // A failure raised by on-error is what the client gets; others go to
            // on-error first, which settles.
            if exec.section == SectionKind::OnError {
                settle_with(exec, request, &failure.response);
            }
            Flow::Fail(failure)
        }
    }
}

fn finish_response_phase(
    exec: &Exec<'_, '_>,
    flow: Flow,
    request: &mut RequestState,
    response: &mut ResponseState,
) -> Flow {
    match flow {
        Flow::Continue => {
            move_headers(&mut request.response_headers, &mut response.headers);
            settle_counts(exec, request, response);
            Flow::Continue
        }
        other => finish_request_phase(exec, other, request),
    }
}

/// [`settle_counts`] with a response a policy made.
fn settle_with(exec: &Exec<'_, '_>, request: &mut RequestState, response: &PolicyResponse) {
    if request.pending_counts.is_empty() {
        return;
    }
    let mut state = ResponseState::new(response.status, response.headers.clone());
    state.reason.clone_from(&response.reason);
    state.body = Some(BufferedBody::new(response.body.clone()));
    settle_counts(exec, request, &state);
}

/// Moves policy-added response headers into a response: each name replaces what the
/// response had, except `Vary`, which is added to.
fn move_headers(from: &mut HeaderMap, into: &mut HeaderMap) {
    if from.is_empty() {
        return;
    }
    let mut current: Option<HeaderName> = None;
    for (name, value) in from.drain() {
        if let Some(name) = name {
            if name != VARY {
                into.remove(&name);
            }
            current = Some(name);
        }
        if let Some(name) = &current {
            into.append(name.clone(), value);
        }
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

/// The scope of the document `origin` names (`…: apis[a].operations[o].policy` is
/// `operation`), as the configuration walk names documents; `None` for a fragment or a
/// document named otherwise (a file given to `gatehouse policy check`).
fn scope_of(origin: &str) -> Option<&'static str> {
    let place = origin.rsplit(": ").next().unwrap_or(origin);
    if place.starts_with("apis[") && place.contains("].operations[") {
        Some("operation")
    } else if place.starts_with("apis[") {
        Some("api")
    } else if place.starts_with("products[") {
        Some("product")
    } else if place == "policy" {
        Some("global")
    } else {
        None
    }
}
