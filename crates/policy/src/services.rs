//! What policies ask of the gateway beyond the request itself: HTTP calls
//! (`send-request`). The crate stays free of I/O: the gateway implements
//! [`PolicyServices`] with its own HTTP client and hands it in with the
//! [`RequestFacts`](crate::RequestFacts).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use url::Url;

/// A call a policy makes (`send-request`).
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// Method.
    pub method: Method,
    /// Absolute `http`/`https` URL.
    pub url: Url,
    /// Headers (the gateway adds `Host` and `Content-Length`).
    pub headers: HeaderMap,
    /// Body (empty for none).
    pub body: Bytes,
    /// Time allowed for the whole call, response body included.
    pub timeout: Duration,
}

/// A call's response, read whole.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// Why a call failed (a response with any status is not a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No response within the call's timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection (or the TLS handshake) failed, or the exchange broke.
    #[error("the call failed: {0}")]
    Failed(String),
    /// The response body was larger than the gateway reads whole.
    #[error("the response body is larger than {0} bytes")]
    TooLarge(u64),
    /// The gateway does not make calls here (a configuration check, say).
    #[error("calls are not made here")]
    Unavailable,
    /// The gateway has no identity to request tokens with.
    #[error(
        "the gateway has no identity configured (--identity-token-url, --identity-client-id, --identity-client-secret-file)"
    )]
    NoIdentity,
    /// The token endpoint answered, but not with a token.
    #[error("the token endpoint refused: {0}")]
    Refused(String),
}

/// What an async service call returns.
pub type CallFuture<'s> =
    Pin<Box<dyn Future<Output = Result<CallResponse, CallError>> + Send + 's>>;

/// What an access-token request returns: the token (a secret: never logged).
pub type TokenFuture<'s> = Pin<Box<dyn Future<Output = Result<Arc<str>, CallError>> + Send + 's>>;

/// What a wait returns (`retry`'s intervals).
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Services the gateway offers policies: calls, and the clocks and randomness the
/// crate never reads itself.
pub trait PolicyServices: Send + Sync + fmt::Debug {
    /// Makes an HTTP call and reads its response whole (bounded).
    fn call(&self, call: OutgoingCall) -> CallFuture<'_>;

    /// The time now, since the Unix epoch (`DateTime.UtcNow`).
    fn now(&self) -> Duration;

    /// The time since the request was received (`context.Elapsed`).
    fn elapsed(&self) -> Duration;

    /// 16 random bytes (`Guid.NewGuid()`, `retry`'s jitter).
    fn random_bytes(&self) -> [u8; 16];

    /// Waits `duration` on the gateway's timer (`retry` between attempts).
    fn sleep(&self, duration: Duration) -> SleepFuture;

    /// Starts a call without waiting for it (`send-one-way-request`): the gateway makes
    /// it in the background, bounded, and its outcome never reaches the request (the
    /// gateway logs and counts it). `Err` when the call cannot be started at all; by
    /// default calls are not made ([`CallError::Unavailable`]).
    ///
    /// # Errors
    ///
    /// [`CallError::Unavailable`] where calls are not made; [`CallError::Failed`] when
    /// the call cannot be built.
    fn send_one_way(&self, call: OutgoingCall) -> Result<(), CallError> {
        let _ = call;
        Err(CallError::Unavailable)
    }

    /// An access token for `resource` from the gateway's identity
    /// (`authentication-managed-identity`), cached until it expires. By default there
    /// is no identity.
    fn token(&self, resource: &str) -> TokenFuture<'_> {
        let _ = resource;
        Box::pin(std::future::ready(Err(CallError::NoIdentity)))
    }
}
