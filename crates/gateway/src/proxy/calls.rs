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
        let limit = self.limits.max_buffered_body_bytes;
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
        tokio::time::timeout(call.timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout(call.timeout)))
    }
}

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
