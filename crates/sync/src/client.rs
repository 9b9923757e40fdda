//! The HTTP client of the Configuration API v2, and how its failures are classified.
//!
//! Every request carries `Authorization: GatewayKey …` with the token in use at that
//! moment ([`TokenSource::current`]), so a rotated token is used from the next request
//! on. Failures become a [`SyncError`] with a closed [`SyncErrorReason`] (the metric
//! label) and a message for the log; the message never holds the token.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::Snapshot;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::de::DeserializeOwned;

use crate::changes::Changes;
use crate::settings::Endpoint;
use crate::token::TokenSource;

/// Time allowed to open a connection to the control plane.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most time a change request may take beyond its long-poll wait before it counts as
/// a timeout (a slow or stuck control plane); less when the request timeout is less.
pub const LONG_POLL_GRACE: Duration = Duration::from_secs(10);
/// Longest error body quoted in a log line.
const MAX_QUOTED_BODY: usize = 512;

/// A failed exchange with the control plane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    /// Closed reason, for the metric and for deciding what to do next.
    pub reason: SyncErrorReason,
    /// What happened, for the log and the heartbeat.
    pub message: String,
}

impl SyncError {
    /// An error with `reason` and `message`.
    #[must_use]
    pub fn new(reason: SyncErrorReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What an instance reports in its heartbeat: the wire type both sides share.
pub use gatehouse_model::wire::Heartbeat;

/// Client of one control plane for one gateway.
#[derive(Debug, Clone)]
pub struct ConfigClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    token: Arc<TokenSource>,
    request_timeout: Duration,
}

impl ConfigClient {
    /// A client of `endpoint` authenticating with `token`. `request_timeout` bounds a
    /// snapshot or heartbeat; a change request gets its wait plus the smaller of
    /// `request_timeout` and [`LONG_POLL_GRACE`]. `tls` is the configuration for an
    /// `https://` endpoint ([`crate::tls::client_config`]).
    ///
    /// The client honours `HTTP_PROXY`/`NO_PROXY`, as APIM's gateway does.
    ///
    /// # Errors
    ///
    /// If the HTTP client cannot be built.
    pub fn new(
        endpoint: Endpoint,
        token: Arc<TokenSource>,
        request_timeout: Duration,
        tls: Option<gatehouse_tls::rustls::ClientConfig>,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("gatehouse-gateway/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder.build()?;
        Ok(Self {
            http,
            endpoint,
            token,
            request_timeout,
        })
    }

    /// `GET /v2/gateways/{id}/snapshot`. The snapshot is parsed, not checked: the
    /// caller verifies its gateway id and checksum.
    ///
    /// # Errors
    ///
    /// [`SyncError`].
    pub async fn snapshot(&self) -> Result<Snapshot, SyncError> {
        let url = self
            .endpoint
            .gateway_url(self.token.gateway_id(), "snapshot");
        let request = self.http.get(&url).timeout(self.request_timeout);
        self.exchange(request, &url).await
    }

    /// `GET /v2/gateways/{id}/changes?since=R&wait=S`.
    ///
    /// # Errors
    ///
    /// [`SyncError`]; `410 Gone` is [`SyncErrorReason::Gone`].
    pub async fn changes(&self, since: u64, wait: Duration) -> Result<Changes, SyncError> {
        let url = format!(
            "{}?since={since}&wait={}",
            self.endpoint
                .gateway_url(self.token.gateway_id(), "changes"),
            wait.as_secs()
        );
        let grace = self.request_timeout.min(LONG_POLL_GRACE);
        let request = self.http.get(&url).timeout(wait + grace);
        self.exchange(request, &url).await
    }

    /// `POST /v2/gateways/{id}/heartbeat`.
    ///
    /// # Errors
    ///
    /// [`SyncError`].
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), SyncError> {
        let url = self
            .endpoint
            .gateway_url(self.token.gateway_id(), "heartbeat");
        let request = self
            .http
            .post(&url)
            .timeout(self.request_timeout)
            .json(heartbeat);
        let response = self.send(request, &url).await?;
        drop(response);
        Ok(())
    }

    /// Says goodbye for `instance_id` (the process is stopping), within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`ConfigClient::heartbeat`].
    pub async fn goodbye(&self, instance_id: &str, timeout: Duration) -> Result<(), SyncError> {
        let tail = format!("instances/{}", path_segment(instance_id));
        let url = self.endpoint.gateway_url(self.token.gateway_id(), &tail);
        let request = self
            .http
            .delete(&url)
            .timeout(timeout.min(self.request_timeout));
        let response = self.send(request, &url).await?;
        drop(response);
        Ok(())
    }

    /// Sends with the current token; a non-2xx status is an error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, SyncError> {
        let mut authorization = HeaderValue::from_str(&self.token.current().to_header_value())
            .map_err(|_| {
                SyncError::new(
                    SyncErrorReason::Token,
                    "the gateway token cannot be sent as a header",
                )
            })?;
        // Keeps it out of HTTP/2 header compression tables and debug output.
        authorization.set_sensitive(true);
        let response = request
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .map_err(|error| transport_error(&error, url))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(status_error(status, &body, url))
    }

    /// Sends and parses a JSON answer.
    async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, SyncError> {
        let response = self.send(request, url).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport_error(&error, url))?;
        serde_json::from_slice(&bytes).map_err(|error| {
            SyncError::new(
                SyncErrorReason::BadResponse,
                format!(
                    "the control plane's answer to GET {} is not what the Configuration API v2 sends: {error}",
                    without_query(url)
                ),
            )
        })
    }
}

/// Classifies a failure to get an answer at all.
fn transport_error(error: &reqwest::Error, url: &str) -> SyncError {
    let url = without_query(url);
    // The error's own chain says why (refused, reset, DNS); reqwest's top-level
    // message alone is vague.
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        if !cause.is_empty() {
            cause.push_str(": ");
        }
        cause.push_str(&current.to_string());
        source = current.source();
    }
    if let Some(tls) = gatehouse_tls::rustls_cause(error) {
        SyncError::new(
            SyncErrorReason::Tls,
            format!(
                "TLS with the control plane at {url} failed: {tls}; {}",
                crate::tls::hint(tls)
            ),
        )
    } else if error.is_timeout() {
        SyncError::new(
            SyncErrorReason::Timeout,
            format!("the control plane did not answer in time ({url}): {cause}"),
        )
    } else {
        SyncError::new(
            SyncErrorReason::Connect,
            format!("cannot reach the control plane at {url}: {cause}"),
        )
    }
}

/// Classifies an answer with an error status, quoting the control plane's reason.
fn status_error(status: StatusCode, body: &str, url: &str) -> SyncError {
    let url = without_query(url);
    let reason = error_message(body);
    match status.as_u16() {
        401 | 403 => SyncError::new(
            SyncErrorReason::Status4xxAuth,
            format!(
                "the control plane refused the gateway token ({status}): {reason}; the token may be expired, revoked (key regenerated) or for another gateway"
            ),
        ),
        410 => SyncError::new(
            SyncErrorReason::Gone,
            format!("the control plane no longer has the changes asked for ({status}): {reason}"),
        ),
        400..=499 => SyncError::new(
            SyncErrorReason::Status4xx,
            format!("the control plane answered {status} to {url}: {reason}"),
        ),
        500..=599 => SyncError::new(
            SyncErrorReason::Status5xx,
            format!("the control plane failed ({status}) at {url}: {reason}"),
        ),
        _ => SyncError::new(
            SyncErrorReason::BadResponse,
            format!("the control plane answered {status} to {url}: {reason}"),
        ),
    }
}

/// The message of a control-plane error body (`{"error": {"code", "message"}}`), or
/// the start of the body as text.
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(serde_json::Value::as_str)
    {
        return message.to_owned();
    }
    let text = body.trim();
    if text.is_empty() {
        return "no details".to_owned();
    }
    let mut end = text.len().min(MAX_QUOTED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

/// `text` as one URL path segment: everything but A-Z a-z 0-9 `-` `_` `~` percent-encoded
/// (`.` too, so no value reads as a dot segment).
fn path_segment(text: &str) -> String {
    use std::fmt::Write as _;
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}
