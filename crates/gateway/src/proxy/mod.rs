//! The request path.
//!
//! [`handle`] owns the order of the phases, top to bottom:
//!
//! 1. **health**: `GET /status-0123456789abcdef` answers 200 before anything else (APIM's
//!    probe path), so probes never depend on configuration.
//! 2. **route**: host + path + method → API → operation ([`gatehouse_router`]).
//! 3. **protocol** and **subscription**: the key is read from the API's header or query
//!    parameter, checked, and removed before forwarding. The subscription picks the
//!    product whose policy applies, so it must come before the pipeline is chosen.
//! 4. **inbound** policies; a policy may answer (`return-response`, rate limit, …).
//! 5. **backend** policies, then the **forward** to the backend with the request body
//!    streamed through.
//! 6. **outbound** policies on the response head; the body streams through.
//! 7. **on-error** policies when the backend exchange fails.
//! 8. **log**: metrics and one access-log line when the response body ends, is cut
//!    short, or the client goes away ([`Exchange`]'s `Drop`), so every request is
//!    counted exactly once.
//!
//! A WebSocket handshake to a WebSocket API goes through the same phases; when the
//! backend answers 101, so does the gateway, and a relay takes both connections over
//! until they close ([`websocket`]).

pub mod body;
pub mod calls;
pub mod client;
pub mod error;
pub mod framing;
pub mod grpc;
pub mod headers;
pub mod redirect;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tokio::time::Instant;

use gatehouse_model::SubscriptionState;
use gatehouse_policy::{
    BufferedBody, ConcurrencyPermit, DeferredCharge, Flow, HttpVersion, OriginalUrl,
    PolicyErrorInfo, PolicyFailure, PolicyResponse, RequestFacts, RequestState, ResponseState,
    RetryDecision, SectionKind, SubscriptionFacts,
};
use gatehouse_router::RouteMatch;

use self::body::{
    BodyReadTimeout, BodyTimeout, BodyTooLarge, ClientBody, ClientBodyError, CollectError,
    RequestBody, ResponseBody, collect_at_most,
};
use self::client::BackendProtocol;
use self::error::{ErrorReason, ProxyError, error_response};
use crate::GatewayState;
use crate::compiled::{CompiledApi, CompiledConfig, CompiledOperation};
use crate::handshake::ConnectionTls;
use crate::metrics::{OperationMetrics, ResponseSource};
use crate::server::Limits;
use crate::subscriptions::{ResolvedScope, SubscriptionEntry};

/// What the gateway knows about a client connection, computed once at accept.
#[derive(Debug)]
pub struct ClientConn {
    /// The client's address.
    pub peer: SocketAddr,
    /// Its `X-Forwarded-For` value.
    pub forwarded_for: HeaderValue,
    /// What its TLS handshake negotiated; `None` on the plain HTTP listener.
    pub tls: Option<ConnectionTls>,
    /// What WebSocket relays on it need (see [`websocket`]).
    pub(crate) upgrades: websocket::ConnectionUpgrades,
}

impl ClientConn {
    /// Describes a new plain-HTTP connection.
    #[must_use]
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            forwarded_for: headers::forwarded_for_value(peer.ip()),
            tls: None,
            upgrades: websocket::ConnectionUpgrades::default(),
        }
    }

    /// Describes a new connection of the HTTPS listener.
    #[must_use]
    pub fn with_tls(peer: SocketAddr, tls: ConnectionTls) -> Self {
        Self {
            tls: Some(tls),
            ..Self::new(peer)
        }
    }

    /// `http` or `https`: the scheme the client used (`X-Forwarded-Proto`).
    #[must_use]
    pub const fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// APIM's health probe path, answered on the data port.
pub const HEALTH_PATH: &str = "/status-0123456789abcdef";

/// Handles one client request, whatever its protocol (HTTP/1.1, HTTP/2, HTTP/3: see
/// [`ClientBody`]). Never fails: every error becomes a response.
pub async fn handle(
    state: &Arc<GatewayState>,
    limits: &Limits,
    conn: &Arc<ClientConn>,
    request: Request<ClientBody>,
) -> Response<ResponseBody> {
    let peer = conn.peer;
    if request.uri().path() == HEALTH_PATH {
        return health_response();
    }
    // One snapshot for the whole request: a reload mid-request does not affect it.
    let config = state.config.load_full();
    let mut exchange = Exchange::start(state, &config, peer, &request);
    let grpc_call = grpc::is_grpc(request.headers());
    let result = proxy(
        &config,
        state,
        limits,
        conn,
        request,
        grpc_call,
        &mut exchange,
    )
    .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            log_error(&mut exchange, &error);
            exchange.error_reason = Some(error.reason());
            let mut response = error_response(&error).map(ResponseBody::full);
            response
                .extensions_mut()
                .insert(grpc::LocalMessage(error.client_message()));
            response
        }
    };
    // What the gateway answered itself goes to a gRPC client as a gRPC status.
    if grpc_call && exchange.answered_locally() && !grpc::is_grpc(response.headers()) {
        response = grpc::local_reply(response);
        exchange.grpc_status = grpc::status(response.headers());
    }
    // hyper closes an HTTP/1.1 connection after a response saying so; HTTP/2 has no
    // such header (the stream ends alone).
    if exchange.version < http::Version::HTTP_2
        && exchange
            .error_reason
            .is_some_and(ErrorReason::closes_connection)
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    exchange.finish(response)
}

fn health_response() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A policy that failed the request: a server-side failure (an expression that
/// failed, a token or a call that could not be had: 5xx) is logged at WARN with the
/// policy's message (which never holds a secret); a refusal (429, 401, 403) only at
/// DEBUG, as the gateway's own refusals are.
fn log_policy_failure(exchange: &mut Exchange, failure: &PolicyFailure) {
    let status = failure.response.status;
    let error = &failure.error;
    if status.is_server_error() {
        exchange.error_reason = Some(ErrorReason::PolicyError);
        tracing::warn!(request_id = %exchange.request_id(), source = error.source, reason = error.reason, policy_id = error.policy_id.as_deref(), status = status.as_u16(), message = %error.message, "a policy failed the request");
    } else {
        tracing::debug!(request_id = %exchange.request_id(), source = error.source, reason = error.reason, status = status.as_u16(), message = %error.message, "a policy refused the request");
    }
}

fn log_error(exchange: &mut Exchange, error: &ProxyError) {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(request_id = %exchange.request_id(), reason = error.reason().as_str(), status = status.as_u16(), error = %error, "request failed");
    } else {
        tracing::debug!(request_id = %exchange.request_id(), reason = error.reason().as_str(), status = status.as_u16(), error = %error, "request rejected");
    }
}

async fn proxy(
    config: &Arc<CompiledConfig>,
    state: &Arc<GatewayState>,
    limits: &Limits,
    conn: &Arc<ClientConn>,
    request: Request<ClientBody>,
    grpc_call: bool,
    exchange: &mut Exchange,
) -> Result<Response<ResponseBody>, ProxyError> {
    let peer = conn.peer;
    let (mut parts, incoming) = request.into_parts();

    // --- framing ---
    // hyper has already refused the worst (see `framing`); this is what it accepts but
    // the gateway cannot forward faithfully.
    if let Err(error) = check_transfer_encoding(&parts)
        .and_then(|()| check_host(&parts))
        .and_then(|()| check_target_length(&parts, limits.max_request_line_bytes))
    {
        state.metrics.malformed_requests.inc();
        return Err(error);
    }

    // --- WebSocket handshake ([`websocket`]); an HTTP/2 one is routed as its GET ---
    let handshake = websocket::Handshake::detect(&mut parts);

    // --- route ---
    // Dot segments are refused rather than normalised: a backend that resolves `..`
    // would otherwise see a different resource than the one the route (and its
    // policies) was chosen for.
    if has_dot_segment(parts.uri.path()) {
        return Err(ProxyError::InvalidPath);
    }
    let host = request_host(&parts.uri, &parts.headers);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let route = match config
        .router
        .route(Some(host), &parts.method, path_and_query)
    {
        RouteMatch::Matched(route) => route,
        RouteMatch::MethodMismatch { api: index } if is_cors_preflight(&parts) => {
            let api = &config.apis[index];
            exchange.metrics = api.unmatched_metrics.clone();
            exchange.api = Some(api.id.clone());
            return answer_preflight(state, api, peer, &parts, config.deployment.facts())
                .ok_or_else(|| ProxyError::OperationNotFound {
                    api: api.id.to_string(),
                });
        }
        RouteMatch::OperationNotFound { api } | RouteMatch::MethodMismatch { api } => {
            let api = &config.apis[api];
            exchange.metrics = api.unmatched_metrics.clone();
            exchange.api = Some(api.id.clone());
            let error = ProxyError::OperationNotFound {
                api: api.id.to_string(),
            };
            // APIM runs the API's on-error (global and API scopes) for it too.
            let original_host = parts.headers.get(header::HOST).cloned();
            let calls = calls::PolicyCalls::new(config, limits, exchange.started, state);
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            let request = BuiltinFailure {
                parts: &mut parts,
                path,
                query,
                params: &[],
                original_host: original_host.as_ref(),
            };
            return builtin_failure_on_error(
                &api.preflight,
                state,
                conn,
                &calls,
                request,
                exchange,
                error,
                "configuration",
            )
            .await;
        }
        RouteMatch::ApiNotFound => return Err(ProxyError::ApiNotFound),
    };
    let api: &CompiledApi = &config.apis[route.api];
    let operation: &CompiledOperation = &api.operations[route.operation];
    exchange.api = Some(api.id.clone());
    exchange.operation = Some(operation.id.clone());
    exchange.metrics = operation.metrics.clone();

    // --- CORS preflight ---
    // Before the subscription check: browsers send preflights without credentials, so
    // the API's `cors` policy (global or API scope) must be able to answer them.
    if is_cors_preflight(&parts)
        && let Some(response) =
            answer_preflight(state, api, peer, &parts, config.deployment.facts())
    {
        exchange.policy_answered = true;
        return Ok(response);
    }

    // --- protocol ---
    let allowed = if conn.tls.is_some() {
        api.allows_https
    } else {
        api.allows_http
    };
    if !allowed {
        return Err(ProxyError::ProtocolNotAllowed {
            api: api.id.to_string(),
            protocol: conn.scheme(),
        });
    }

    // The host the request was routed by: the target's authority (absolute form, or
    // HTTP/2's `:authority`) wins over `Host`, as it does for routing (RFC 9112 §3.2.2).
    let original_host = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .or_else(|| parts.headers.get(header::HOST).cloned());
    // What `send-request` calls go through.
    let calls = calls::PolicyCalls::new(config, limits, exchange.started, state);

    // --- subscription ---
    // Before the pipeline: the subscription's product decides which product policy runs.
    let (key, query) = take_subscription_key(api, &mut parts.headers, parts.uri.query());
    let subscription = match authorize(config, api, route.api, key.as_deref()) {
        Ok(subscription) => subscription,
        Err(error) => {
            // APIM runs on-error for its built-in steps too: a policy may rewrite the
            // 401/403 (the common pattern).
            let params: Vec<(&str, &str)> = route.params.iter().collect();
            let path = route.operation_path(parts.uri.path()).to_owned();
            let request = BuiltinFailure {
                parts: &mut parts,
                path,
                query: query.unwrap_or_default(),
                params: &params,
                original_host: original_host.as_ref(),
            };
            return builtin_failure_on_error(
                operation.pipeline_for(None),
                state,
                conn,
                &calls,
                request,
                exchange,
                error,
                "authorization",
            )
            .await;
        }
    };
    if let Some(entry) = &subscription {
        exchange.subscription = Some(entry.id.clone());
    }
    let product = subscription.as_ref().and_then(|s| match s.scope {
        ResolvedScope::Product(p) => Some(p),
        ResolvedScope::Api(_) | ResolvedScope::AllApis => None,
    });
    let pipeline = operation.pipeline_for(product.or(api.open_product));
    let context_reads = pipeline.context_reads();

    // --- request state for the policies ---
    let params: Vec<(&str, &str)> = route.params.iter().collect();
    let client_ip = peer.ip();
    let subscription_facts = subscription.as_ref().map(|s| SubscriptionFacts {
        id: &s.id,
        key: key.as_deref().unwrap_or_default(),
        product_id: product.map(|p| &*config.products[p].id),
        product_name: product.map(|p| &*config.products[p].name),
        name: &s.name,
    });
    // Made now only when an expression reads it (it is made lazily otherwise).
    let request_id = context_reads
        .request_id
        .then(|| exchange.request_id().to_owned());
    let facts = RequestFacts {
        client_ip,
        subscription: subscription_facts,
        route_params: &params,
        now: state.now(),
        client_certificate: conn
            .tls
            .as_ref()
            .and_then(|tls| tls.client_certificate.as_ref()),
        original_url: original_url(&parts.uri, original_host.as_ref(), conn.scheme()),
        request_id: request_id.as_deref(),
        services: Some(&calls),
        deployment: config.deployment.facts(),
    };
    let call = CallKind {
        grpc: grpc_call,
        accepts_trailers: grpc::accepts_trailers(&parts.headers),
    };
    headers::remove_hop_by_hop(&mut parts.headers);
    let mut request_state = RequestState::new(
        parts.method.clone(),
        route.operation_path(parts.uri.path()),
        query.unwrap_or_default(),
        std::mem::take(&mut parts.headers),
    );
    let counters = &state.counters;

    // --- bodies the policies read ---
    // Read whole (bounded) only when an expression in this pipeline reads one (found at
    // load); otherwise bodies stream.
    let mut incoming = Some(incoming);
    if context_reads.request_body
        && let Some(body) = incoming.take()
        // A body that is malformed, too slow or too large: on-error runs for it, as when
        // it fails while being forwarded (`ClientConnectionFailure`).
        && let Err(error) = buffer_request_body(body, &mut request_state, limits, exchange).await
    {
        let failed = GatewayFailure {
            error: &error,
            source: "forward-request",
            section: SectionKind::Inbound,
        };
        return Ok(on_error_for(
            pipeline,
            &facts,
            counters,
            &mut request_state,
            exchange,
            failed,
        )
        .await);
    }

    // --- inbound, then backend ---
    // Both run before anything is sent: a policy may answer or refuse here.
    // A pipeline whose policies wait (`send-request`) runs as a future; the others run
    // straight through.
    let waits = pipeline.is_async();
    let mut flow = if waits {
        pipeline
            .inbound_async(&facts, counters, &mut request_state)
            .await
    } else {
        pipeline.inbound(&facts, counters, &mut request_state)
    };
    if matches!(flow, Flow::Continue) {
        flow = if waits {
            pipeline
                .backend_async(&facts, counters, &mut request_state)
                .await
        } else {
            pipeline.backend(&facts, counters, &mut request_state)
        };
    }
    let early = match flow {
        Flow::Continue => None,
        Flow::Respond(response) => Some(*response),
        Flow::Fail(failure) => {
            log_policy_failure(exchange, &failure);
            Some(run_on_error(pipeline, &facts, counters, &mut request_state, *failure).await)
        }
    };
    exchange.keep_policy_state(&mut request_state);
    if let Some(response) = early {
        exchange.policy_answered = true;
        return Ok(policy_response(response));
    }

    // --- WebSocket: the handshake goes to the backend as one ([`websocket`]) ---
    let websocket = match handshake {
        Some(kind) => websocket::Relay::prepare(
            kind,
            state,
            api,
            limits,
            &mut parts.extensions,
            &mut request_state,
        )?,
        None => None,
    };

    // --- forward ---
    // A `retry` around `forward-request` sends the same body again: read it whole first
    // (bounded, as for a policy that reads it).
    let mut incoming = incoming;
    if request_state.retries_forward()
        && request_state.body.is_none()
        && let Some(body) = incoming.take()
        && let Err(error) = buffer_request_body(body, &mut request_state, limits, exchange).await
    {
        let failed = GatewayFailure {
            error: &error,
            source: "forward-request",
            section: SectionKind::Backend,
        };
        return Ok(on_error_for(
            pipeline,
            &facts,
            counters,
            &mut request_state,
            exchange,
            failed,
        )
        .await);
    }
    let mut retries = 0;
    // Forwarding takes the headers: kept when a retry sends them again, or when outbound
    // or on-error may read them (`context.Request.Headers` is the request as forwarded).
    let keep_headers = request_state.retries_forward()
        || !pipeline.is_empty(SectionKind::Outbound)
        || !pipeline.is_empty(SectionKind::OnError);
    let forwarded = loop {
        let headers = keep_headers.then(|| request_state.headers.clone());
        let forwarded = forward(
            config,
            api,
            limits,
            conn,
            original_host.as_ref(),
            call,
            &mut request_state,
            incoming.take(),
            exchange,
        )
        .await;
        if let Some(headers) = headers {
            request_state.headers = headers;
        }
        if !request_state.retries_forward() {
            break forwarded;
        }
        // The retry's condition reads the answer's status and headers; a backend that
        // did not answer is retried while retries remain.
        let mut answer = match &forwarded {
            Ok(response) => Some(ResponseState::new(
                response.status(),
                response.headers().clone(),
            )),
            Err(error) if error.reason().is_backend_failure() => None,
            Err(_) => break forwarded,
        };
        match pipeline
            .retry_forward(
                &facts,
                counters,
                &mut request_state,
                answer.as_mut(),
                retries,
            )
            .await
        {
            RetryDecision::Done => break forwarded,
            RetryDecision::Again => {
                retries += 1;
                state.metrics.backend_retries.inc();
            }
            RetryDecision::Stop(flow) => {
                exchange.keep_policy_state(&mut request_state);
                return Ok(match flow {
                    Flow::Respond(response) => {
                        exchange.policy_answered = true;
                        policy_response(*response)
                    }
                    Flow::Fail(failure) => {
                        exchange.error_reason = Some(ErrorReason::PolicyError);
                        log_policy_failure(exchange, &failure);
                        policy_response(
                            run_on_error(pipeline, &facts, counters, &mut request_state, *failure)
                                .await,
                        )
                    }
                    Flow::Continue => break forwarded,
                });
            }
        }
    };
    let backend_response = match forwarded {
        Ok(response) => response,
        Err(error) => {
            // --- on-error ---
            let failed = GatewayFailure {
                error: &error,
                source: "forward-request",
                section: SectionKind::Backend,
            };
            return Ok(on_error_for(
                pipeline,
                &facts,
                counters,
                &mut request_state,
                exchange,
                failed,
            )
            .await);
        }
    };

    // --- outbound ---
    let (mut response_parts, backend_body) = backend_response.into_parts();
    exchange.backend_status = Some(response_parts.status.as_u16());
    if call.grpc {
        // A trailers-only response carries it in the head; otherwise the trailers do.
        exchange.grpc_status = grpc::status(&response_parts.headers);
    }
    headers::remove_hop_by_hop(&mut response_parts.headers);
    let mut response_state = ResponseState::new(
        response_parts.status,
        std::mem::take(&mut response_parts.headers),
    );
    // An expression reads the response body: read it whole first (not for a protocol
    // switch or a gRPC stream, whose bodies are not messages).
    let mut backend_body = Some(backend_body);
    if context_reads.response_body
        && !call.grpc
        && response_state.status != StatusCode::SWITCHING_PROTOCOLS
        && let Some(body) = backend_body.take()
    {
        match read_response_for_policies(body, &response_state.headers, &api.id, limits).await {
            Ok(bytes) => response_state.body = Some(BufferedBody::new(bytes)),
            Err(error) => {
                let failed = GatewayFailure {
                    error: &error,
                    source: "forward-request",
                    section: SectionKind::Backend,
                };
                return Ok(on_error_for(
                    pipeline,
                    &facts,
                    counters,
                    &mut request_state,
                    exchange,
                    failed,
                )
                .await);
            }
        }
    }
    // `forward-request fail-on-error-status-code`: a backend 4xx or 5xx runs on-error
    // instead of outbound, on the backend's response (whose body is sent unless
    // on-error answers itself).
    let backend_failed = request_state.forward.fail_on_error_status_code
        && (response_state.status.is_client_error() || response_state.status.is_server_error());
    let flow = if backend_failed {
        let error = PolicyErrorInfo {
            source: "forward-request",
            reason: "BackendErrorStatusCode",
            message: format!("The backend answered {}.", response_state.status).into(),
            section: Some(SectionKind::Backend),
            policy_id: None,
            scope: None,
            path: None,
        };
        if waits {
            pipeline
                .on_error_async(
                    &facts,
                    counters,
                    &mut request_state,
                    &error,
                    &mut response_state,
                )
                .await
        } else {
            pipeline.on_error(
                &facts,
                counters,
                &mut request_state,
                &error,
                &mut response_state,
            )
        }
    } else if waits {
        pipeline
            .outbound_async(&facts, counters, &mut request_state, &mut response_state)
            .await
    } else {
        pipeline.outbound(&facts, counters, &mut request_state, &mut response_state)
    };
    exchange.keep_policy_state(&mut request_state);
    match flow {
        Flow::Continue => {}
        Flow::Respond(response) => {
            exchange.policy_answered = true;
            return Ok(policy_response(*response));
        }
        // A failure raised by on-error itself is sent as it is.
        Flow::Fail(failure) if backend_failed => {
            exchange.error_reason = Some(ErrorReason::PolicyError);
            return Ok(policy_response(failure.response));
        }
        Flow::Fail(failure) => {
            exchange.error_reason = Some(ErrorReason::PolicyError);
            log_policy_failure(exchange, &failure);
            let response =
                run_on_error(pipeline, &facts, counters, &mut request_state, *failure).await;
            exchange.keep_policy_state(&mut request_state);
            return Ok(policy_response(response));
        }
    }
    // A policy's reason phrase replaces the backend's; so does the standard phrase of a
    // status a policy changed.
    if response_state.reason.is_some() || response_state.status != response_parts.status {
        set_reason_phrase(
            &mut response_parts.extensions,
            response_state.reason.as_deref(),
        );
    }
    response_parts.status = response_state.status;
    response_parts.headers = response_state.headers;
    // A body read whole for the policies, or replaced by `set-body`, goes whole.
    if let Some(body) = response_state.body {
        let bytes = body.to_send();
        set_body_length(&mut response_parts.headers, bytes.len());
        response_parts.version = http::Version::HTTP_11;
        return Ok(Response::from_parts(
            response_parts,
            ResponseBody::full(bytes),
        ));
    }
    let Some(backend_body) = backend_body else {
        // Read for the policies above, so `response_state.body` was set.
        return Ok(Response::from_parts(response_parts, ResponseBody::empty()));
    };
    // The client's connection has its own version: hyper writes the status line with
    // the response's, so a backend's HTTP/1.0 would reach an HTTP/1.1 client as
    // `HTTP/1.0 200`. HTTP/1.1 here; hyper lowers it for HTTP/1.0 clients.
    response_parts.version = http::Version::HTTP_11;
    // --- WebSocket: the backend switched protocols, so does the client ([`websocket`]) ---
    if let Some(relay) = websocket
        && relay.switch(&mut response_parts, conn, limits, exchange)?
    {
        return Ok(Response::from_parts(response_parts, ResponseBody::empty()));
    }
    // `buffer-response="true"`: chunks collected up to 8 KiB (not for gRPC streams,
    // whose messages must go as they come).
    let body = if request_state.forward.buffer_response && !call.grpc {
        ResponseBody::backend_coalesced(backend_body)
    } else {
        ResponseBody::backend(backend_body)
    };
    Ok(Response::from_parts(response_parts, body))
}

/// The request a built-in step refused, for [`builtin_failure_on_error`].
struct BuiltinFailure<'p> {
    parts: &'p mut http::request::Parts,
    /// The path policies see (relative to the API).
    path: String,
    /// The query without the subscription key.
    query: String,
    params: &'p [(&'p str, &'p str)],
    original_host: Option<&'p HeaderValue>,
}

/// APIM runs on-error for the errors of its built-in steps too (no operation matched,
/// a missing or invalid subscription key), with their predefined `context.LastError`:
/// a policy may rewrite the gateway's answer. Without an on-error section, the error
/// stands.
#[allow(
    clippy::too_many_arguments,
    reason = "the refused request's parts, as the two callers have them"
)]
async fn builtin_failure_on_error(
    pipeline: &gatehouse_policy::Pipeline,
    state: &GatewayState,
    conn: &ClientConn,
    calls: &calls::PolicyCalls<'_>,
    request: BuiltinFailure<'_>,
    exchange: &mut Exchange,
    error: ProxyError,
    source: &'static str,
) -> Result<Response<ResponseBody>, ProxyError> {
    if pipeline.is_empty(SectionKind::OnError) {
        return Err(error);
    }
    let BuiltinFailure {
        parts,
        path,
        query,
        params,
        original_host,
    } = request;
    let request_id = pipeline
        .context_reads()
        .request_id
        .then(|| exchange.request_id().to_owned());
    let facts = RequestFacts {
        client_ip: conn.peer.ip(),
        subscription: None,
        route_params: params,
        now: state.now(),
        client_certificate: conn
            .tls
            .as_ref()
            .and_then(|tls| tls.client_certificate.as_ref()),
        original_url: original_url(&parts.uri, original_host, conn.scheme()),
        request_id: request_id.as_deref(),
        services: Some(calls),
        deployment: calls.deployment(),
    };
    headers::remove_hop_by_hop(&mut parts.headers);
    let mut request_state = RequestState::new(
        parts.method.clone(),
        path,
        query,
        std::mem::take(&mut parts.headers),
    );
    let failed = GatewayFailure {
        error: &error,
        source,
        section: SectionKind::Inbound,
    };
    Ok(on_error_for(
        pipeline,
        &facts,
        &state.counters,
        &mut request_state,
        exchange,
        failed,
    )
    .await)
}

/// A gateway error on-error runs for: the error, and the source and section
/// `context.LastError` names.
struct GatewayFailure<'e> {
    error: &'e ProxyError,
    source: &'static str,
    section: SectionKind,
}

/// Answers a gateway error once the request state exists: logged and counted as the
/// error it is, then on-error runs with it (APIM runs on-error for its built-in steps'
/// errors too) and its answer is what the client gets.
async fn on_error_for(
    pipeline: &gatehouse_policy::Pipeline,
    facts: &RequestFacts<'_>,
    counters: &gatehouse_policy::Counters,
    request_state: &mut RequestState,
    exchange: &mut Exchange,
    failed: GatewayFailure<'_>,
) -> Response<ResponseBody> {
    let GatewayFailure {
        error,
        source,
        section,
    } = failed;
    log_error(exchange, error);
    exchange.error_reason = Some(error.reason());
    let failure = failure_of(error, source, section);
    let response = run_on_error(pipeline, facts, counters, request_state, failure).await;
    exchange.keep_policy_state(request_state);
    policy_response(response)
}

/// Runs on-error for a failure and returns what the client gets: on-error's own
/// response, or the failure's body with the status and headers on-error left.
async fn run_on_error(
    pipeline: &gatehouse_policy::Pipeline,
    facts: &RequestFacts<'_>,
    counters: &gatehouse_policy::Counters,
    request_state: &mut RequestState,
    failure: PolicyFailure,
) -> PolicyResponse {
    let PolicyFailure { error, response } = failure;
    let PolicyResponse {
        status,
        reason,
        headers,
        body,
    } = response;
    let mut response_state = ResponseState::new(status, headers);
    response_state.reason = reason;
    response_state.body = Some(BufferedBody::new(body));
    let flow = if pipeline.is_async() {
        pipeline
            .on_error_async(facts, counters, request_state, &error, &mut response_state)
            .await
    } else {
        pipeline.on_error(facts, counters, request_state, &error, &mut response_state)
    };
    match flow {
        Flow::Continue => PolicyResponse {
            status: response_state.status,
            reason: response_state.reason,
            headers: response_state.headers,
            body: response_state
                .body
                .map(|body| body.to_send())
                .unwrap_or_default(),
        },
        Flow::Respond(response) => *response,
        // A failure raised by on-error itself is sent as it is.
        Flow::Fail(failure) => failure.response,
    }
}

/// `context.Request.OriginalUrl`: the URL as the client sent it, with the host it was
/// routed by.
fn original_url<'a>(
    uri: &'a Uri,
    host: Option<&'a HeaderValue>,
    scheme: &'static str,
) -> OriginalUrl<'a> {
    OriginalUrl {
        scheme,
        host: host.and_then(|host| host.to_str().ok()).unwrap_or_default(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
    }
}

/// A gateway error as the failure on-error runs for (`context.LastError`, in APIM's
/// words where APIM has them) and the response it starts from.
fn failure_of(error: &ProxyError, source: &'static str, section: SectionKind) -> PolicyFailure {
    PolicyFailure {
        error: PolicyErrorInfo {
            source,
            reason: error.reason().last_error_reason(),
            message: error.client_message().into(),
            section: Some(section),
            policy_id: None,
            scope: None,
            path: None,
        },
        response: gateway_error_response(error),
    }
}

/// The gateway's own error response, as a policy response on-error can change.
fn gateway_error_response(error: &ProxyError) -> PolicyResponse {
    let (parts, body) = error_response(error).into_parts();
    PolicyResponse {
        status: parts.status,
        reason: None,
        headers: parts.headers,
        body,
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::OPTIONS
        && parts.headers.contains_key(header::ORIGIN)
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Runs the API-level inbound policies on a preflight no operation matched; `None`
/// when no `cors` policy answers it.
fn answer_preflight(
    state: &GatewayState,
    api: &CompiledApi,
    peer: SocketAddr,
    parts: &http::request::Parts,
    deployment: gatehouse_policy::DeploymentFacts<'_>,
) -> Option<Response<ResponseBody>> {
    let facts = RequestFacts {
        client_ip: peer.ip(),
        subscription: None,
        route_params: &[],
        now: state.now(),
        client_certificate: None,
        original_url: OriginalUrl {
            scheme: "http",
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or_default(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
        },
        request_id: None,
        services: None,
        deployment,
    };
    let mut request_state = RequestState::new(
        parts.method.clone(),
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        parts.headers.clone(),
    );
    match api
        .preflight
        .inbound(&facts, &state.counters, &mut request_state)
    {
        Flow::Respond(response) => Some(policy_response(*response)),
        Flow::Continue | Flow::Fail(_) => None,
    }
}

/// What the client's request asks of the call beyond its headers, read before
/// hop-by-hop headers are removed.
#[derive(Clone, Copy, Debug)]
struct CallKind {
    /// A gRPC call (see [`grpc`]): HTTP/2 to the backend.
    grpc: bool,
    /// The client sent `te: trailers`; the backend gets it too.
    accepts_trailers: bool,
}

/// Sends the request to the backend and waits for its response head.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
async fn forward(
    config: &CompiledConfig,
    api: &CompiledApi,
    limits: &Limits,
    conn: &ClientConn,
    original_host: Option<&HeaderValue>,
    call: CallKind,
    request_state: &mut RequestState,
    incoming: Option<ClientBody>,
    exchange: &mut Exchange,
) -> Result<Response<Incoming>, ProxyError> {
    // `set-backend-service` wins over the API's backend; a named backend brings its
    // own timeouts.
    // A backend's TLS settings go with its URL only: a `base-url` override gets the
    // defaults (system roots), never another backend's CA or client certificate.
    let (url, settings, host, tls) = match request_state.backend.as_deref() {
        Some(target) => {
            let named = target
                .backend_id
                .as_deref()
                .and_then(|id| config.backends.get(id));
            (
                &target.url,
                named.or(api.backend.as_ref()),
                None,
                named.and_then(|backend| backend.tls.as_deref()),
            )
        }
        None => match api.backend.as_ref() {
            Some(backend) => (
                &backend.url,
                Some(backend),
                Some(&backend.host),
                backend.tls.as_deref(),
            ),
            None => {
                return Err(ProxyError::NoBackend {
                    api: api.id.to_string(),
                });
            }
        },
    };
    let uri = backend_uri(url, &request_state.path, &request_state.query)?;
    // Cheap: an `Authority` shares the URI's buffer.
    let authority = uri.authority().cloned();
    let connect_timeout = settings.map_or(gatehouse_model::DEFAULT_CONNECT_TIMEOUT, |b| {
        b.connect_timeout
    });
    let mut response_timeout = request_state
        .forward
        .timeout
        .or(settings.map(|b| b.response_timeout))
        .unwrap_or(gatehouse_model::DEFAULT_RESPONSE_TIMEOUT);
    if call.grpc
        && let Some(deadline) = grpc::timeout(&request_state.headers)
    {
        response_timeout = response_timeout.min(deadline);
    }

    if let (Some(limit), Some(length)) = (
        limits.max_request_body_bytes,
        content_length(&request_state.headers),
    ) && length > limit
    {
        return Err(ProxyError::RequestBodyTooLarge { limit });
    }

    let mut headers = std::mem::take(&mut request_state.headers);
    headers::set_forwarded(
        &mut headers,
        &conn.forwarded_for,
        conn.scheme(),
        original_host,
    );
    // Backends see their own host name, as APIM sends it (precomputed per backend; a
    // `set-backend-service` URL is computed here).
    let host = match host {
        Some(host) => Some(host.clone()),
        None => authority
            .as_ref()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    if call.accepts_trailers {
        // The one `TE` value that survives a hop: the gateway passes trailers through.
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    // `follow-redirects`: later hops need the request's headers again (the body is
    // streamed and not kept; see `redirect`).
    let redirect_template = request_state.forward.follow_redirects.then(|| {
        let had_body = match (&request_state.body, &incoming) {
            (Some(body), _) => !body.is_empty(),
            (None, Some(incoming)) => !hyper::body::Body::is_end_stream(incoming),
            (None, None) => false,
        };
        (headers.clone(), had_body)
    });
    let (body, buffered) = match (&request_state.body, incoming) {
        // Read whole for the policies, or replaced by `set-body`: sent with its length
        // (and kept for a redirect that needs it again).
        (Some(policy_body), _) => {
            let bytes = policy_body.to_send();
            set_body_length(&mut headers, bytes.len());
            (
                RequestBody::Buffered {
                    data: Some(bytes.clone()),
                },
                Some(bytes),
            )
        }
        (None, Some(incoming)) => {
            let streamed = client_body(incoming, limits, exchange);
            // `buffer-request-body`: read the whole body first (bounded), send it with
            // its length, and keep it for a redirect that needs it again.
            if request_state.forward.buffer_request_body {
                let bytes = read_whole(streamed, limits.max_buffered_body_bytes).await?;
                set_body_length(&mut headers, bytes.len());
                (
                    RequestBody::Buffered {
                        data: Some(bytes.clone()),
                    },
                    Some(bytes),
                )
            } else {
                (streamed, None)
            }
        }
        (None, None) => (RequestBody::Empty, None),
    };
    // `continue-timeout`: ask the backend first and hold the body until it says go.
    let continue_signal = request_state
        .forward
        .continue_timeout
        .filter(|_| !call.grpc && !hyper::body::Body::is_end_stream(&body))
        .map(|timeout| {
            headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
            (Arc::new(body::ContinueSignal::default()), timeout)
        });
    let body = match &continue_signal {
        Some((signal, timeout)) => body.await_continue(signal.clone(), *timeout),
        None => body,
    };
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = request_state.method.clone();
    *outgoing.uri_mut() = uri;
    *outgoing.headers_mut() = headers;
    if let Some((signal, _)) = &continue_signal {
        let signal = signal.clone();
        hyper::ext::on_informational(&mut outgoing, move |interim| {
            if interim.status() == StatusCode::CONTINUE {
                signal.open();
            }
        });
    }

    let tls = match tls {
        Some(tls) => Some(tls),
        None if url.scheme() == "https" => match &config.default_backend_tls {
            Ok(tls) => Some(&**tls),
            Err(reason) => {
                return Err(ProxyError::BackendConnect {
                    backend: authority
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    source: Box::new(std::io::Error::other(format!(
                        "no trusted CA certificates for an https backend: {reason}"
                    ))),
                });
            }
        },
        None => None,
    };
    let protocol = if call.grpc {
        BackendProtocol::Http2
    } else {
        match request_state.forward.http_version {
            HttpVersion::Http1 => BackendProtocol::Http1,
            HttpVersion::Http2 => BackendProtocol::Http2,
            HttpVersion::Http2OrHttp1 => BackendProtocol::Http2OrHttp1,
        }
    };
    let client = client::client_for(connect_timeout, tls, protocol);
    // Where the first request went: only kept when redirects may be followed.
    let first = redirect_template.map(|(template, had_body)| {
        (
            template,
            had_body,
            outgoing.uri().clone(),
            outgoing.method().clone(),
        )
    });
    let sent_at = Instant::now();
    let response = send(&client, outgoing, response_timeout, connect_timeout).await;
    exchange.backend_duration = Some(sent_at.elapsed());
    if let Some((signal, _)) = continue_signal {
        // A final answer before `100 Continue`: the backend has decided; the held body
        // is sent so the connection stays usable (RFC 9110 §10.1.1 allows either).
        signal.open();
    }
    let mut response = response?;
    let Some((template, mut had_body, mut uri, mut method)) = first else {
        return Ok(response);
    };
    // --- follow-redirects ---
    for _ in 0..redirect::MAX_REDIRECTS {
        let Some(hop) = redirect::next_hop(
            response.status(),
            response.headers().get(header::LOCATION),
            &uri,
            &method,
            had_body,
            buffered.is_some(),
        ) else {
            break;
        };
        let mut headers = template.clone();
        if let Some(authority) = hop.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
        if !hop.same_origin {
            // Credentials meant for the configured backend stay with it.
            headers.remove(header::AUTHORIZATION);
        }
        if hop.method != method {
            // The body is dropped with the method change (303, or POST after 301/302).
            for name in [
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::TRANSFER_ENCODING,
            ] {
                headers.remove(name);
            }
        }
        // Another origin gets the defaults (system roots), never the configured
        // backend's CA or client certificate.
        let hop_client = if hop.same_origin {
            client.clone()
        } else if hop.uri.scheme_str() == Some("https") {
            match &config.default_backend_tls {
                Ok(tls) => client::client_for(connect_timeout, Some(&**tls), protocol),
                Err(_) => break,
            }
        } else {
            client::client_for(connect_timeout, None, protocol)
        };
        let body = match (&buffered, hop.keeps_body) {
            (Some(bytes), true) => RequestBody::Buffered {
                data: Some(bytes.clone()),
            },
            _ => RequestBody::Empty,
        };
        let mut next = Request::new(body);
        *next.method_mut() = hop.method.clone();
        *next.uri_mut() = hop.uri.clone();
        *next.headers_mut() = headers;
        let sent_at = Instant::now();
        let answered = send(&hop_client, next, response_timeout, connect_timeout).await;
        exchange.backend_duration = Some(sent_at.elapsed());
        response = answered?;
        uri = hop.uri;
        method = hop.method;
        had_body = hop.keeps_body;
    }
    Ok(response)
}

/// The client's body as the gateway forwards (or reads) it: limited to
/// `--max-request-body-bytes`, counted, with the idle timeout.
fn client_body(incoming: ClientBody, limits: &Limits, exchange: &Exchange) -> RequestBody {
    RequestBody::client(
        incoming,
        limits.max_request_body_bytes,
        exchange.bytes_received.clone(),
        BodyTimeout {
            timeout: limits.body_read_timeout,
            expired: exchange.state.metrics.client_body_timeouts.clone(),
        },
    )
}

/// A body sent whole: its length, no `Transfer-Encoding`.
fn set_body_length(headers: &mut http::HeaderMap, length: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
}

/// Reads the client's body whole into `request_state` (see
/// [`read_request_for_policies`]).
async fn buffer_request_body(
    incoming: ClientBody,
    request_state: &mut RequestState,
    limits: &Limits,
    exchange: &Exchange,
) -> Result<(), ProxyError> {
    let bytes =
        read_request_for_policies(incoming, &request_state.headers, limits, exchange).await?;
    request_state.body = Some(BufferedBody::new(bytes));
    Ok(())
}

/// Reads the client's body whole before inbound, because an expression in the pipeline
/// reads it (`context.Request.Body`): at most `--max-buffered-body-bytes` (413 past
/// it, before anything reaches the backend).
async fn read_request_for_policies(
    incoming: ClientBody,
    headers: &http::HeaderMap,
    limits: &Limits,
    exchange: &Exchange,
) -> Result<bytes::Bytes, ProxyError> {
    let limit = limits.max_buffered_body_bytes;
    if content_length(headers).is_some_and(|length| length > limit) {
        return Err(ProxyError::RequestBodyTooLarge { limit });
    }
    read_whole(client_body(incoming, limits, exchange), limit).await
}

/// Reads the backend's body whole before outbound, because an expression in the
/// pipeline reads it (`context.Response.Body`): at most `--max-buffered-body-bytes`
/// (502 past it, logged), within the body read timeout.
async fn read_response_for_policies(
    body: Incoming,
    headers: &http::HeaderMap,
    api: &str,
    limits: &Limits,
) -> Result<bytes::Bytes, ProxyError> {
    let limit = limits.max_buffered_body_bytes;
    let too_large = || ProxyError::ResponseBodyTooLarge {
        api: api.to_owned(),
        limit,
    };
    if content_length(headers).is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    match tokio::time::timeout(limits.body_read_timeout, collect_at_most(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(CollectError::TooLarge)) => Err(too_large()),
        Ok(Err(CollectError::Failed(error))) => Err(ProxyError::BackendProtocol {
            backend: format!("of API `{api}`"),
            source: error,
        }),
        Err(_) => Err(ProxyError::BackendTimeout {
            backend: format!("of API `{api}`"),
            timeout: limits.body_read_timeout,
        }),
    }
}

/// Reads a request body whole (`buffer-request-body`), at most `limit` bytes; the
/// body's own limits and timeouts still apply.
async fn read_whole(body: RequestBody, limit: u64) -> Result<bytes::Bytes, ProxyError> {
    match collect_at_most(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(CollectError::TooLarge) => Err(ProxyError::RequestBodyTooLarge { limit }),
        Err(CollectError::Failed(error)) => Err(
            if let Some(too_large) = error.downcast_ref::<BodyTooLarge>() {
                ProxyError::RequestBodyTooLarge {
                    limit: too_large.limit,
                }
            } else if let Some(timeout) = error.downcast_ref::<BodyReadTimeout>() {
                ProxyError::ClientBodyTimeout {
                    timeout: timeout.timeout,
                }
            } else {
                ProxyError::ClientBody {
                    reason: error.to_string(),
                }
            },
        ),
    }
}

/// Sends one request to a backend and waits (at most `response_timeout`) for its
/// response head.
async fn send(
    client: &client::BackendClient,
    request: Request<RequestBody>,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> Result<Response<Incoming>, ProxyError> {
    let backend = request
        .uri()
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    match tokio::time::timeout(response_timeout, client.request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(classify_client_error(error, backend, connect_timeout)),
        Err(_) => Err(ProxyError::BackendTimeout {
            backend,
            timeout: response_timeout,
        }),
    }
}

fn classify_client_error(
    error: hyper_util::client::legacy::Error,
    backend: String,
    connect_timeout: Duration,
) -> ProxyError {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(too_large) = cause.downcast_ref::<BodyTooLarge>() {
            return ProxyError::RequestBodyTooLarge {
                limit: too_large.limit,
            };
        }
        if let Some(ClientBodyError(body_error)) = cause.downcast_ref::<ClientBodyError>() {
            return ProxyError::ClientBody {
                reason: body_error.to_string(),
            };
        }
        if let Some(timeout) = cause.downcast_ref::<BodyReadTimeout>() {
            return ProxyError::ClientBodyTimeout {
                timeout: timeout.timeout,
            };
        }
        if let Some(tls) = gatehouse_tls::as_rustls_error(cause) {
            return ProxyError::BackendTls {
                backend,
                reason: tls.to_string(),
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
            && error.is_connect()
        {
            return ProxyError::BackendConnectTimeout {
                backend,
                timeout: connect_timeout,
            };
        }
        source = cause.source();
    }
    if error.is_connect() {
        ProxyError::BackendConnect {
            backend,
            source: Box::new(error),
        }
    } else {
        ProxyError::BackendProtocol {
            backend,
            source: Box::new(error),
        }
    }
}

/// An HTTP/1.1 request's `Transfer-Encoding`, when present, must be exactly one
/// `chunked`. hyper refuses a final coding other than `chunked` (`chunked, identity`,
/// `gzip`) itself but accepts `gzip, chunked` and `chunked` twice: the gateway drops
/// hop-by-hop headers, so the backend would get a body still gzip-coded without being
/// told, or a doubly chunked one. (HTTP/2 has no `Transfer-Encoding`.)
fn check_transfer_encoding(parts: &http::request::Parts) -> Result<(), ProxyError> {
    if parts.version >= http::Version::HTTP_2 {
        return Ok(());
    }
    let mut values = parts.headers.get_all(header::TRANSFER_ENCODING).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(()),
        (Some(value), None)
            if value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked") =>
        {
            Ok(())
        }
        _ => Err(ProxyError::InvalidTransferEncoding),
    }
}

/// HTTP/2 and HTTP/3 carry the target in `:path`, which no parser below bounds on
/// its own (HTTP/1.1 request lines are refused by `framing` before hyper parses them).
fn check_target_length(parts: &http::request::Parts, limit: usize) -> Result<(), ProxyError> {
    let length = parts
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > limit {
        Err(ProxyError::UriTooLong { limit })
    } else {
        Ok(())
    }
}

/// RFC 9112 §3.2 and RFC 9110 §7.2: a request with more than one `Host`, an HTTP/1.1
/// request without one, or one whose value is not `host[:port]` gets 400. (With an
/// absolute-form target, the target's authority is what routes; `Host` must still be
/// there and valid.)
fn check_host(parts: &http::request::Parts) -> Result<(), ProxyError> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(ProxyError::InvalidHost("more than one Host header")),
        (None, _) if parts.version == http::Version::HTTP_11 => Err(ProxyError::InvalidHost(
            "an HTTP/1.1 request must have a Host header",
        )),
        (None, _) => Ok(()),
        (Some(host), None) if is_host_value(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err(ProxyError::InvalidHost(
            "the value is not a host name and port",
        )),
    }
}

/// Whether `value` can be `Host`'s value (RFC 9110 §7.2: `uri-host [ ":" port ]`): the
/// characters of a reg-name, an IPv4 address or a bracketed IPv6 literal, then
/// digits after the last colon outside brackets. Empty is allowed (a target without an
/// authority). Checked byte by byte, without parsing a URI: it runs on every request.
fn is_host_value(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        // A colon inside `[...]` belongs to an IPv6 literal.
        Some(colon) if !value[colon..].contains(&b']') => (&value[..colon], &value[colon + 1..]),
        _ => (value, &b""[..]),
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => literal
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        _ => host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)),
    };
    host_ok && port.iter().all(u8::is_ascii_digit)
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Joins the backend base URL, the operation path and the query.
fn backend_uri(base: &url::Url, path: &str, query: &str) -> Result<Uri, ProxyError> {
    let base_path = base.path().trim_end_matches('/');
    let mut target = String::with_capacity(base.as_str().len() + path.len() + query.len() + 2);
    target.push_str(base.scheme());
    target.push_str("://");
    target.push_str(base.host_str().unwrap_or_default());
    if let Some(port) = base.port() {
        target.push(':');
        target.push_str(itoa::Buffer::new().format(port));
    }
    target.push_str(base_path);
    if path.is_empty() || !path.starts_with('/') {
        target.push('/');
    }
    target.push_str(path);
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    // The error names the backend and what is wrong, never the path or query: they
    // may hold secret named values (`?code={{fnkey}}`) or a client's data.
    target
        .parse::<Uri>()
        .map_err(|error| ProxyError::InvalidBackendUrl {
            backend: base.origin().ascii_serialization(),
            reason: error.to_string(),
        })
}

/// Whether a path has a `.` or `..` segment, literally or percent-encoded (`%2e`).
/// Allocation-free: it runs on every request.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let mut rest = segment.as_bytes();
        let mut dots = 0;
        while let Some(&first) = rest.first() {
            if first == b'.' {
                rest = &rest[1..];
            } else if let [b'%', b'2', e, tail @ ..] = rest
                && e.eq_ignore_ascii_case(&b'e')
            {
                rest = tail;
            } else {
                return false;
            }
            dots += 1;
            if dots > 2 {
                return false;
            }
        }
        dots > 0
    })
}

/// The request's host: `Host` for HTTP/1.1, `:authority` for HTTP/2.
fn request_host<'a>(uri: &'a Uri, headers: &'a http::HeaderMap) -> &'a str {
    uri.host()
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or_default()
}

/// Finds the subscription key (header first, then query parameter, as APIM does),
/// removes it from the request, and returns it with the query string left over.
fn take_subscription_key(
    api: &CompiledApi,
    headers: &mut http::HeaderMap,
    query: Option<&str>,
) -> (Option<String>, Option<String>) {
    let from_header = headers
        .remove(&api.key_header)
        .and_then(|v| v.to_str().ok().map(str::to_owned));
    let Some(query) = query else {
        return (from_header, None);
    };
    let mut key = from_header;
    let mut rest = String::new();
    let mut removed = false;
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        if name == api.key_query {
            removed = true;
            if key.is_none() {
                let value = pair.split_once('=').map_or("", |(_, v)| v);
                key = Some(percent_decode(value));
            }
            continue;
        }
        if !rest.is_empty() {
            rest.push('&');
        }
        rest.push_str(pair);
    }
    if removed {
        (key, Some(rest))
    } else {
        (key, Some(query.to_owned()))
    }
}

fn percent_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("k={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Decides whether the request may proceed and under which subscription.
fn authorize(
    config: &CompiledConfig,
    api: &CompiledApi,
    api_index: usize,
    key: Option<&str>,
) -> Result<Option<Arc<SubscriptionEntry>>, ProxyError> {
    let required = api.subscription_required;
    let Some(key) = key else {
        return if required {
            Err(ProxyError::SubscriptionKeyMissing)
        } else {
            Ok(None)
        };
    };
    let entry = config.subscriptions.find(key.as_bytes());
    let in_scope = entry.is_some_and(|e| match e.scope {
        ResolvedScope::AllApis => true,
        ResolvedScope::Api(a) => a == api_index,
        ResolvedScope::Product(p) => api.products.contains(&p),
    });
    match entry {
        Some(entry) if in_scope && entry.state == SubscriptionState::Active => {
            Ok(Some(entry.clone()))
        }
        Some(entry) if in_scope && required => Err(ProxyError::SubscriptionNotActive {
            subscription: entry.id.to_string(),
            state: entry.state.as_str(),
        }),
        _ if required => Err(ProxyError::SubscriptionKeyInvalid),
        // An open API called with an unknown or foreign key is served anonymously.
        _ => Ok(None),
    }
}

fn policy_response(response: PolicyResponse) -> Response<ResponseBody> {
    let PolicyResponse {
        status,
        reason,
        headers,
        body,
    } = response;
    // A gRPC client gets the message as `grpc-message` (see `grpc::local_reply`).
    let message = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"))
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|json| json.get("message")?.as_str().map(str::to_owned));
    let mut out = Response::new(ResponseBody::full(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    set_reason_phrase(out.extensions_mut(), reason.as_deref());
    if let Some(message) = message {
        out.extensions_mut().insert(grpc::LocalMessage(message));
    }
    out
}

/// The HTTP/1.1 reason phrase a policy chose (`set-status reason`), or the standard one
/// (`None`); hyper writes it in the status line. HTTP/2 and HTTP/3 have none.
fn set_reason_phrase(extensions: &mut http::Extensions, reason: Option<&str>) {
    match reason.and_then(|text| hyper::ext::ReasonPhrase::try_from(text.as_bytes()).ok()) {
        Some(phrase) => {
            extensions.insert(phrase);
        }
        None => {
            extensions.remove::<hyper::ext::ReasonPhrase>();
        }
    }
}

/// Everything logged and counted about one request. Logs from `Drop`, so a request is
/// accounted exactly once whether its body completes, fails, or the client leaves.
pub struct Exchange {
    state: Arc<GatewayState>,
    /// Keeps the configuration (and the operation's metric handles) alive until the
    /// response ends.
    _config: Arc<CompiledConfig>,
    started: Instant,
    received_at: SystemTime,
    /// Made when first needed (an error log line or the access log): most requests in
    /// a deployment without access logs never need one.
    request_id: Option<String>,
    method: http::Method,
    host: String,
    path: String,
    version: http::Version,
    client_ip: std::net::IpAddr,
    api: Option<Arc<str>>,
    operation: Option<Arc<str>>,
    subscription: Option<Arc<str>>,
    metrics: OperationMetrics,
    status: Option<StatusCode>,
    backend_status: Option<u16>,
    /// `grpc-status` of a gRPC call: from the response head, or the trailers.
    grpc_status: Option<u32>,
    error_reason: Option<ErrorReason>,
    /// A policy answered instead of the backend, without an error (`return-response`,
    /// a rate limit's 429, a CORS preflight).
    policy_answered: bool,
    backend_duration: Option<Duration>,
    bytes_received: Arc<AtomicU64>,
    bytes_sent: u64,
    complete: bool,
    /// Held until the exchange ends (`limit-concurrency`).
    permits: Vec<ConcurrencyPermit>,
    /// Settled with the byte counts when the exchange ends (`quota-by-key bandwidth`).
    deferred: Vec<DeferredCharge>,
    /// A WebSocket handshake the backend accepted: the exchange ends with its relay.
    websocket: websocket::Upgrade,
}

impl Exchange {
    fn start(
        state: &Arc<GatewayState>,
        config: &Arc<CompiledConfig>,
        peer: SocketAddr,
        request: &Request<ClientBody>,
    ) -> Self {
        state.metrics.in_flight_requests.inc();
        let logging = state.access_log.is_enabled();
        Self {
            state: state.clone(),
            _config: config.clone(),
            started: Instant::now(),
            received_at: SystemTime::now(),
            request_id: None,
            method: request.method().clone(),
            host: if logging {
                request_host(request.uri(), request.headers()).to_owned()
            } else {
                String::new()
            },
            path: if logging {
                request.uri().path().to_owned()
            } else {
                String::new()
            },
            version: request.version(),
            client_ip: peer.ip(),
            api: None,
            operation: None,
            subscription: None,
            metrics: config.unmatched_metrics.clone(),
            status: None,
            backend_status: None,
            grpc_status: None,
            error_reason: None,
            policy_answered: false,
            backend_duration: None,
            bytes_received: Arc::new(AtomicU64::new(0)),
            bytes_sent: 0,
            complete: false,
            permits: Vec::new(),
            deferred: Vec::new(),
            websocket: websocket::Upgrade::None,
        }
    }

    fn request_id(&mut self) -> &str {
        self.request_id.get_or_insert_with(new_request_id)
    }

    /// Whether the gateway answered itself (an error, or a policy) rather than relay the
    /// backend's answer.
    const fn answered_locally(&self) -> bool {
        self.error_reason.is_some() || self.policy_answered
    }

    /// Who made the answer, for the `source` of metrics and the access log.
    pub(super) const fn source(&self) -> ResponseSource {
        match self.error_reason {
            Some(ErrorReason::PolicyError) => ResponseSource::Policy,
            Some(_) => ResponseSource::Gateway,
            None if self.policy_answered => ResponseSource::Policy,
            None if self.backend_status.is_some() => ResponseSource::Backend,
            // The client went away before any answer (499).
            None => ResponseSource::Gateway,
        }
    }

    /// Keeps what the policies left to do after the response (permits, deferred quota
    /// charges) until the exchange ends.
    /// Takes what the policies left for the rest of the exchange (permits, charges) and
    /// writes their `trace`s. Called after each phase; what it took is gone from
    /// `request_state`, so calling it again takes only what came since.
    fn keep_policy_state(&mut self, request_state: &mut RequestState) {
        self.permits.append(&mut request_state.held);
        self.deferred.append(&mut request_state.deferred);
        if !request_state.traces.is_empty() || request_state.traces_dropped > 0 {
            self.log_traces(request_state);
        }
    }

    /// Writes the `trace` policies' records as log lines with the request's id.
    fn log_traces(&mut self, request_state: &mut RequestState) {
        let request_id = self.request_id().to_owned();
        for trace in request_state.traces.drain(..) {
            let metadata: Vec<String> = trace
                .metadata
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let metadata = metadata.join(", ");
            match trace.severity {
                gatehouse_policy::TraceSeverity::Verbose => tracing::debug!(
                    target: "gatehouse::policy_trace", request_id = %request_id,
                    source = %trace.source, section = %trace.section, metadata = %metadata,
                    "{}", trace.message
                ),
                gatehouse_policy::TraceSeverity::Information => tracing::info!(
                    target: "gatehouse::policy_trace", request_id = %request_id,
                    source = %trace.source, section = %trace.section, metadata = %metadata,
                    "{}", trace.message
                ),
                gatehouse_policy::TraceSeverity::Error => tracing::error!(
                    target: "gatehouse::policy_trace", request_id = %request_id,
                    source = %trace.source, section = %trace.section, metadata = %metadata,
                    "{}", trace.message
                ),
            }
        }
        let dropped = std::mem::take(&mut request_state.traces_dropped);
        if dropped > 0 {
            tracing::warn!(target: "gatehouse::policy_trace", request_id = %request_id, dropped, "more trace policies ran than a request keeps (64); these were not written");
        }
    }

    fn finish(mut self, response: Response<ResponseBody>) -> Response<ResponseBody> {
        self.status = Some(response.status());
        if let Some(elapsed) = self.backend_duration {
            self.metrics.record_backend(&self._config, elapsed);
        }
        // A relayed WebSocket's exchange ends with the relay, not with this empty body.
        if let websocket::Upgrade::Switching(session) = std::mem::take(&mut self.websocket) {
            websocket::start(self, *session);
            return response;
        }
        response.map(|body| body.with_on_end(Box::new(self)))
    }
}

impl body::OnBodyEnd for Exchange {
    fn on_end(mut self: Box<Self>, end: body::BodyEnd) {
        self.bytes_sent = end.bytes_sent;
        self.complete = end.complete;
        if end.grpc_status.is_some() {
            self.grpc_status = end.grpc_status;
        }
        // Dropping `self` logs.
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // No response was produced: the client went away while we waited (nginx's 499).
        let status = self.status.map_or(499, |s| s.as_u16());
        let total = self.started.elapsed();
        // A relayed WebSocket's handshake was counted when it was answered.
        if !self.websocket.is_relaying() {
            self.state.metrics.in_flight_requests.dec();
            self.metrics
                .record_request(&self._config, status, self.source(), total);
        }
        let received = self.bytes_received.load(Ordering::Relaxed);
        if !self.deferred.is_empty() {
            self.state
                .counters
                .settle(&self.deferred, received, self.bytes_sent, self.state.now());
        }
        // Released only now that the response has ended.
        self.permits.clear();
        if !self.state.access_log.is_enabled() {
            return;
        }
        let timestamp = humantime::format_rfc3339_millis(self.received_at).to_string();
        self.request_id();
        let entry = crate::access_log::AccessLogEntry {
            timestamp: &timestamp,
            kind: "request",
            request_id: self.request_id.as_deref().unwrap_or_default(),
            client_ip: self.client_ip,
            method: self.method.as_str(),
            host: &self.host,
            path: &self.path,
            protocol: version_str(self.version),
            api: self.api.as_deref(),
            operation: self.operation.as_deref(),
            subscription: self.subscription.as_deref(),
            status,
            backend_status: self.backend_status,
            grpc_status: self.grpc_status,
            source: self.source().as_str(),
            error_reason: self.error_reason.map(ErrorReason::as_str),
            bytes_received: received,
            bytes_sent: self.bytes_sent,
            duration_ms: millis(total),
            backend_duration_ms: self.backend_duration.map(millis),
        };
        self.state.access_log.write(&entry);
    }
}

/// Milliseconds with three decimals (whole microseconds), so the log shows `1.183`
/// rather than binary noise like `1.1834689999999999`.
fn millis(duration: Duration) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "microseconds stay exact in an f64 up to 285 years"
    )]
    let micros = duration.as_micros() as f64;
    micros / 1000.0
}

const fn version_str(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// A random request id in UUID form, from the thread-local RNG (no syscall per request).
fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests;
