//! The calls policies make (`send-request`), with the gateway's backend clients:
//! [`PolicyCalls`] implements the policy crate's `PolicyServices`.

use std::time::Duration;

use gatehouse_policy::{
    CallError, CallFuture, CallResponse, OutgoingCall, PolicyServices, SleepFuture, TokenFuture,
};
use http::header::{self, HeaderValue};
use http::{Request, Uri};
use tokio::time::Instant;

use super::body::{CollectError, RequestBody, collect_at_most};
use super::client::{self, BackendProtocol};
use crate::GatewayState;
use crate::compiled::CompiledConfig;
use crate::metrics::OneWayOutcome;
use crate::server::Limits;

/// What `send-request` calls go through for one request: the configuration's default
/// TLS settings for `https` (system roots, as for a `set-backend-service` URL), and the
/// gateway's buffering limit for response bodies.
#[derive(Debug)]
pub struct PolicyCalls<'a> {
    config: &'a CompiledConfig,
    limits: &'a Limits,
    /// When the request was received (`context.Elapsed`).
    received: Instant,
    /// The gateway's clock (the one counters and `context.Timestamp` read) and its
    /// identity, for `authentication-managed-identity`.
    state: &'a GatewayState,
}

impl<'a> PolicyCalls<'a> {
    /// `context.Deployment`: the gateway's id and location in the configuration served.
    pub(crate) fn deployment(&self) -> gatehouse_policy::DeploymentFacts<'a> {
        self.config.deployment.facts()
    }

    /// Calls for a request received at `received`, served with `config` under `limits`
    /// by the gateway whose `state` this is.
    #[must_use]
    pub const fn new(
        config: &'a CompiledConfig,
        limits: &'a Limits,
        received: Instant,
        state: &'a GatewayState,
    ) -> Self {
        Self {
            config,
            limits,
            received,
            state,
        }
    }

    pub(crate) async fn send(&self, call: OutgoingCall) -> Result<CallResponse, CallError> {
        self.prepare(call)?.exchange().await
    }

    /// The call made ready to go (its client, its request): what needs the request's
    /// configuration, done now; the exchange can then run on its own.
    fn prepare(&self, call: OutgoingCall) -> Result<PreparedCall, CallError> {
        let uri: Uri = call
            .url
            .as_str()
            .parse()
            .map_err(|_| CallError::Failed("the URL is not valid".to_owned()))?;
        let tls = if call.url.scheme() == "https" {
            match &self.config.default_backend_tls {
                Ok(tls) => Some(&**tls),
                Err(reason) => {
                    return Err(CallError::Failed(format!(
                        "no trusted CA certificates for https: {reason}"
                    )));
                }
            }
        } else {
            None
        };
        let client = client::client_for(
            gatehouse_model::DEFAULT_CONNECT_TIMEOUT,
            tls,
            BackendProtocol::Http1,
        );
        let mut headers = call.headers;
        // Hop-by-hop and framing headers are the gateway's to set.
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::TE,
            header::UPGRADE,
            header::HOST,
            header::CONTENT_LENGTH,
        ] {
            headers.remove(name);
        }
        if let Some(authority) = uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
        if !call.body.is_empty() || call.method.as_str() != "GET" {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(call.body.len()));
        }
        let mut request = Request::new(RequestBody::Buffered {
            data: Some(call.body),
        });
        *request.method_mut() = call.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(PreparedCall {
            client,
            request,
            limit: self.limits.max_buffered_body_bytes,
            timeout: call.timeout,
        })
    }
}

/// A call ready to go: [`PolicyCalls::prepare`].
struct PreparedCall {
    client: client::BackendClient,
    request: Request<RequestBody>,
    /// The most of the response body read.
    limit: u64,
    timeout: Duration,
}

impl PreparedCall {
    /// Sends the request and reads the response whole (up to the limit), all within the
    /// call's timeout.
    async fn exchange(self) -> Result<CallResponse, CallError> {
        let Self {
            client,
            request,
            limit,
            timeout,
        } = self;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|error| CallError::Failed(describe(&error)))?;
            let (parts, body) = response.into_parts();
            let body = match collect_at_most(body, limit).await {
                Ok(body) => body,
                Err(CollectError::TooLarge) => return Err(CallError::TooLarge(limit)),
                Err(CollectError::Failed(error)) => {
                    return Err(CallError::Failed(error.to_string()));
                }
            };
            Ok(CallResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout(timeout)))
    }
}

/// `send-one-way-request` calls that may be in flight at once in the process; past it a
/// call is dropped (logged, counted as `dropped`), so a slow service cannot pile up
/// tasks and memory in the gateway.
pub const MAX_ONE_WAY_IN_FLIGHT: usize = 512;

static ONE_WAY_IN_FLIGHT: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_ONE_WAY_IN_FLIGHT);

/// The client error with its causes, without the URL (which may hold secrets).
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the exchange failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl PolicyServices for PolicyCalls<'_> {
    fn call(&self, call: OutgoingCall) -> CallFuture<'_> {
        Box::pin(self.send(call))
    }

    fn send_one_way(&self, call: OutgoingCall) -> Result<(), CallError> {
        // Only the origin in logs: the path and query may hold secrets.
        let origin = call.url.origin().ascii_serialization();
        let metrics = &self.state.metrics;
        let Ok(permit) = ONE_WAY_IN_FLIGHT.try_acquire() else {
            metrics.one_way_requests(OneWayOutcome::Dropped).inc();
            tracing::warn!(
                %origin,
                limit = MAX_ONE_WAY_IN_FLIGHT,
                "send-one-way-request dropped: too many one-way calls in flight"
            );
            return Ok(());
        };
        let prepared = self.prepare(call)?;
        let answered = metrics.one_way_requests(OneWayOutcome::Answered);
        let failed = metrics.one_way_requests(OneWayOutcome::Failed);
        drop(tokio::spawn(async move {
            let _in_flight = permit;
            match prepared.exchange().await {
                Ok(response) => {
                    answered.inc();
                    tracing::debug!(
                        %origin,
                        status = response.status.as_u16(),
                        "send-one-way-request answered"
                    );
                }
                Err(error) => {
                    failed.inc();
                    tracing::warn!(
                        %origin,
                        %error,
                        "send-one-way-request failed"
                    );
                }
            }
        }));
        Ok(())
    }

    fn now(&self) -> Duration {
        // The clock `context.Timestamp` comes from: `UtcNow - Timestamp` never goes
        // negative on a wall-clock step.
        self.state.now()
    }

    fn elapsed(&self) -> Duration {
        self.received.elapsed()
    }

    fn random_bytes(&self) -> [u8; 16] {
        rand::random()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }

    fn token(&self, resource: &str) -> TokenFuture<'_> {
        let resource = resource.to_owned();
        Box::pin(async move {
            match &self.state.identity {
                Some(identity) => identity.token(&resource, self).await,
                None => Err(CallError::NoIdentity),
            }
        })
    }
}
