//! Why the gateway answered a request itself, and what it answers.
//!
//! [`ProxyError::status`] is one exhaustive `match` with no `_` arm, so a new variant
//! forces a decision about its status. [`ProxyError::reason`] maps each variant to a
//! closed set of strings for log fields and metric labels; messages and user input
//! never become labels.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

/// APIM's message for a request matching no API.
pub const MSG_RESOURCE_NOT_FOUND: &str = "Resource not found";
/// APIM's message for a request matching an API but none of its operations.
pub const MSG_OPERATION_NOT_FOUND: &str = "Unable to match incoming request to an operation.";
/// APIM's message for a missing subscription key.
pub const MSG_KEY_MISSING: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
/// APIM's message for an invalid or inactive subscription key.
pub const MSG_KEY_INVALID: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

/// Why the gateway answered instead of the backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No API serves this host and path.
    #[error("no API matches the request")]
    ApiNotFound,
    /// The API matched but none of its operations (path or method).
    #[error("no operation of API `{api}` matches the request")]
    OperationNotFound {
        /// The matched API.
        api: String,
    },
    /// The path has `.` or `..` segments.
    #[error("request path has dot segments")]
    InvalidPath,
    /// The request target (HTTP/2, HTTP/3 `:path`) is longer than
    /// `max_request_line_bytes`. (HTTP/1.1 request lines are refused below hyper.)
    #[error("request target longer than {limit} bytes")]
    UriTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request's `Host` breaks RFC 9112 §3.2: sent twice, missing from an HTTP/1.1
    /// request, or not a valid `host[:port]`.
    #[error("invalid Host header: {0}")]
    InvalidHost(&'static str),
    /// The request body is not valid HTTP framing (a bad chunk size, a connection
    /// closed before the declared length arrived): the client's fault, not the
    /// backend's.
    #[error("the request body could not be read: {reason}")]
    ClientBody {
        /// hyper's (or h3's) description of what was wrong.
        reason: String,
    },
    /// The API does not accept this protocol (e.g. `http` on an https-only API).
    #[error("API `{api}` does not accept requests over {protocol}")]
    ProtocolNotAllowed {
        /// The matched API.
        api: String,
        /// `http` or `https`.
        protocol: &'static str,
    },
    /// The API needs a subscription key and none was sent.
    #[error("subscription key missing")]
    SubscriptionKeyMissing,
    /// A key was sent that matches no subscription valid for this API.
    #[error("subscription key invalid for this API")]
    SubscriptionKeyInvalid,
    /// The key belongs to a subscription that is not active (suspended, submitted,
    /// rejected, cancelled or expired).
    #[error("subscription `{subscription}` is {state}, not active")]
    SubscriptionNotActive {
        /// The subscription id.
        subscription: String,
        /// Its state.
        state: &'static str,
    },
    /// The request body is larger than the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    RequestBodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// An HTTP/1.1 request whose `Transfer-Encoding` is not exactly `chunked` (`gzip,
    /// chunked`, `chunked, chunked`, two header lines): the gateway cannot pass such a
    /// body on faithfully, and peers may disagree about where it ends.
    #[error("request Transfer-Encoding is not exactly `chunked`")]
    InvalidTransferEncoding,
    /// The client paused its request body for longer than `body_read_timeout`.
    #[error("the client sent no request body data for {timeout:?}")]
    ClientBodyTimeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// No backend URL is known for this request.
    #[error(
        "no backend configured for API `{api}`; set `serviceUrl`, `backendId` or use set-backend-service"
    )]
    NoBackend {
        /// The matched API.
        api: String,
    },
    /// The backend refused or reset the connection, or name resolution failed.
    #[error("backend {backend} is unreachable: {source}")]
    BackendConnect {
        /// Backend authority (`host:port`).
        backend: String,
        /// The connector's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS handshake with an `https://` backend failed: its certificate is not
    /// trusted, does not name it, has expired, or it refused the gateway's.
    #[error("TLS handshake with backend {backend} failed: {reason}")]
    BackendTls {
        /// Backend authority (`host:port`).
        backend: String,
        /// rustls's description (`invalid peer certificate: UnknownIssuer`).
        reason: String,
    },
    /// The backend did not accept a connection within the connect timeout.
    #[error("backend {backend} did not accept a connection within {timeout:?}")]
    BackendConnectTimeout {
        /// Backend authority.
        backend: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The backend did not answer within the response timeout.
    #[error("backend {backend} did not answer within {timeout:?}")]
    BackendTimeout {
        /// Backend authority.
        backend: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The exchange with the backend failed after the connection was made.
    #[error("request to backend {backend} failed: {source}")]
    BackendProtocol {
        /// Backend authority.
        backend: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The pipeline reads the response body (`context.Response.Body`) and the backend's
    /// is larger than the gateway buffers (`--max-buffered-body-bytes`).
    #[error(
        "the backend's response for API `{api}` is larger than {limit} bytes, the most the gateway reads whole for policies that read the body (--max-buffered-body-bytes)"
    )]
    ResponseBodyTooLarge {
        /// The matched API.
        api: String,
        /// The limit.
        limit: u64,
    },
    /// The backend URL built from the configuration and policies is not valid. Only
    /// the backend's origin is kept: the path and query may hold secrets.
    #[error(
        "the URL built for backend {backend} is not valid ({reason}); the path and query are not shown, they may hold secrets"
    )]
    InvalidBackendUrl {
        /// The backend's origin (`scheme://host:port`).
        backend: String,
        /// The URI parser's description (`invalid uri character`).
        reason: String,
    },
    // --- WebSocket (see `proxy::websocket`) ---
    /// An HTTP/2 WebSocket handshake (extended CONNECT) to an API whose backend is not
    /// `ws://` or `wss://`.
    #[error("API `{api}` is not a WebSocket API")]
    WebSocketNotEnabled {
        /// The matched API.
        api: String,
    },
    /// `--max-websocket-connections` WebSocket connections are open.
    #[error("{limit} WebSocket connections are open")]
    WebSocketLimit {
        /// The limit.
        limit: usize,
    },
}

/// Closed set of reasons, for log fields and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorReason {
    /// See [`ProxyError::ApiNotFound`].
    ApiNotFound,
    /// See [`ProxyError::OperationNotFound`].
    OperationNotFound,
    /// See [`ProxyError::InvalidPath`].
    InvalidPath,
    /// See [`ProxyError::UriTooLong`].
    UriTooLong,
    /// See [`ProxyError::InvalidHost`].
    InvalidHost,
    /// See [`ProxyError::ClientBody`].
    ClientBody,
    /// See [`ProxyError::ProtocolNotAllowed`].
    ProtocolNotAllowed,
    /// See [`ProxyError::SubscriptionKeyMissing`].
    SubscriptionKeyMissing,
    /// See [`ProxyError::SubscriptionKeyInvalid`].
    SubscriptionKeyInvalid,
    /// See [`ProxyError::SubscriptionNotActive`].
    SubscriptionNotActive,
    /// See [`ProxyError::RequestBodyTooLarge`].
    RequestBodyTooLarge,
    /// See [`ProxyError::InvalidTransferEncoding`].
    InvalidTransferEncoding,
    /// See [`ProxyError::ClientBodyTimeout`].
    ClientBodyTimeout,
    /// See [`ProxyError::NoBackend`].
    NoBackend,
    /// See [`ProxyError::BackendConnect`].
    BackendConnect,
    /// See [`ProxyError::BackendConnectTimeout`].
    BackendConnectTimeout,
    /// See [`ProxyError::BackendTls`].
    BackendTls,
    /// See [`ProxyError::BackendTimeout`].
    BackendTimeout,
    /// See [`ProxyError::BackendProtocol`].
    BackendProtocol,
    /// See [`ProxyError::ResponseBodyTooLarge`].
    ResponseBodyTooLarge,
    /// See [`ProxyError::InvalidBackendUrl`].
    InvalidBackendUrl,
    /// See [`ProxyError::WebSocketNotEnabled`].
    WebSocketNotEnabled,
    /// See [`ProxyError::WebSocketLimit`].
    WebSocketLimit,
    /// A policy raised an error (`validate-jwt` failing, say) and the answer is what
    /// `on-error` made of it. A policy that simply answers (`return-response`, a rate
    /// limit's 429) is not an error: no reason then.
    PolicyError,
}

impl ErrorReason {
    /// Whether the connection must close after the answer: the request's body was not
    /// read to its end, or where it ends is in doubt, so the next bytes on the
    /// connection cannot be trusted to start a request.
    #[must_use]
    pub const fn closes_connection(self) -> bool {
        matches!(
            self,
            Self::InvalidTransferEncoding
                | Self::ClientBodyTimeout
                | Self::InvalidHost
                | Self::ClientBody
        )
    }

    /// Whether the backend failed to answer (could not be reached, timed out, broke the
    /// exchange): what `retry` around `forward-request` tries again.
    #[must_use]
    pub const fn is_backend_failure(self) -> bool {
        matches!(
            self,
            Self::BackendConnect
                | Self::BackendConnectTimeout
                | Self::BackendTls
                | Self::BackendTimeout
                | Self::BackendProtocol
        )
    }

    /// The reason `context.LastError.Reason` shows in on-error, in APIM's words where
    /// APIM has one (its predefined errors of built-in steps).
    #[must_use]
    pub const fn last_error_reason(self) -> &'static str {
        match self {
            Self::OperationNotFound => "OperationNotFound",
            Self::SubscriptionKeyMissing => "SubscriptionKeyNotFound",
            Self::SubscriptionKeyInvalid => "SubscriptionKeyInvalid",
            Self::SubscriptionNotActive => "SubscriptionNotActive",
            Self::ClientBody | Self::ClientBodyTimeout | Self::InvalidTransferEncoding => {
                "ClientConnectionFailure"
            }
            Self::NoBackend
            | Self::BackendConnect
            | Self::BackendConnectTimeout
            | Self::BackendTls
            | Self::BackendTimeout
            | Self::BackendProtocol
            | Self::InvalidBackendUrl => "BackendConnectionFailure",
            other => other.as_str(),
        }
    }

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiNotFound => "api_not_found",
            Self::OperationNotFound => "operation_not_found",
            Self::InvalidPath => "invalid_path",
            Self::InvalidHost => "invalid_host",
            Self::UriTooLong => "uri_too_long",
            Self::ClientBody => "client_body_invalid",
            Self::ProtocolNotAllowed => "protocol_not_allowed",
            Self::SubscriptionKeyMissing => "subscription_key_missing",
            Self::SubscriptionKeyInvalid => "subscription_key_invalid",
            Self::SubscriptionNotActive => "subscription_not_active",
            Self::RequestBodyTooLarge => "request_body_too_large",
            Self::InvalidTransferEncoding => "invalid_transfer_encoding",
            Self::ClientBodyTimeout => "client_body_timeout",
            Self::NoBackend => "no_backend",
            Self::BackendConnect => "backend_connect",
            Self::BackendConnectTimeout => "backend_connect_timeout",
            Self::BackendTls => "backend_tls",
            Self::BackendTimeout => "backend_timeout",
            Self::BackendProtocol => "backend_protocol",
            Self::ResponseBodyTooLarge => "response_body_too_large",
            Self::InvalidBackendUrl => "invalid_backend_url",
            Self::WebSocketNotEnabled => "websocket_not_enabled",
            Self::WebSocketLimit => "websocket_limit",
            Self::PolicyError => "policy_error",
        }
    }
}

impl ProxyError {
    /// The status the client gets.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::ApiNotFound
            | Self::OperationNotFound { .. }
            | Self::ProtocolNotAllowed { .. } => StatusCode::NOT_FOUND,
            Self::InvalidPath
            | Self::InvalidTransferEncoding
            | Self::InvalidHost(_)
            | Self::ClientBody { .. }
            | Self::WebSocketNotEnabled { .. } => StatusCode::BAD_REQUEST,
            Self::SubscriptionKeyMissing | Self::SubscriptionKeyInvalid => StatusCode::UNAUTHORIZED,
            Self::SubscriptionNotActive { .. } => StatusCode::FORBIDDEN,
            Self::RequestBodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::ClientBodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NoBackend { .. } | Self::InvalidBackendUrl { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::BackendConnect { .. }
            | Self::BackendProtocol { .. }
            | Self::BackendTls { .. }
            | Self::ResponseBodyTooLarge { .. } => StatusCode::BAD_GATEWAY,
            Self::BackendConnectTimeout { .. } | Self::BackendTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::WebSocketLimit { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The closed reason for logs and metrics.
    #[must_use]
    pub const fn reason(&self) -> ErrorReason {
        match self {
            Self::ApiNotFound => ErrorReason::ApiNotFound,
            Self::OperationNotFound { .. } => ErrorReason::OperationNotFound,
            Self::InvalidPath => ErrorReason::InvalidPath,
            Self::InvalidHost(_) => ErrorReason::InvalidHost,
            Self::UriTooLong { .. } => ErrorReason::UriTooLong,
            Self::ClientBody { .. } => ErrorReason::ClientBody,
            Self::ProtocolNotAllowed { .. } => ErrorReason::ProtocolNotAllowed,
            Self::SubscriptionKeyMissing => ErrorReason::SubscriptionKeyMissing,
            Self::SubscriptionKeyInvalid => ErrorReason::SubscriptionKeyInvalid,
            Self::SubscriptionNotActive { .. } => ErrorReason::SubscriptionNotActive,
            Self::RequestBodyTooLarge { .. } => ErrorReason::RequestBodyTooLarge,
            Self::InvalidTransferEncoding => ErrorReason::InvalidTransferEncoding,
            Self::ClientBodyTimeout { .. } => ErrorReason::ClientBodyTimeout,
            Self::NoBackend { .. } => ErrorReason::NoBackend,
            Self::BackendConnect { .. } => ErrorReason::BackendConnect,
            Self::BackendConnectTimeout { .. } => ErrorReason::BackendConnectTimeout,
            Self::BackendTls { .. } => ErrorReason::BackendTls,
            Self::BackendTimeout { .. } => ErrorReason::BackendTimeout,
            Self::BackendProtocol { .. } => ErrorReason::BackendProtocol,
            Self::ResponseBodyTooLarge { .. } => ErrorReason::ResponseBodyTooLarge,
            Self::InvalidBackendUrl { .. } => ErrorReason::InvalidBackendUrl,
            Self::WebSocketNotEnabled { .. } => ErrorReason::WebSocketNotEnabled,
            Self::WebSocketLimit { .. } => ErrorReason::WebSocketLimit,
        }
    }

    /// The message the client sees. Client mistakes get a precise message in APIM's
    /// words; internal and backend failures get a generic one (details go to the log).
    #[must_use]
    pub fn client_message(&self) -> String {
        match self {
            Self::ApiNotFound | Self::ProtocolNotAllowed { .. } => {
                MSG_RESOURCE_NOT_FOUND.to_owned()
            }
            Self::OperationNotFound { .. } => MSG_OPERATION_NOT_FOUND.to_owned(),
            Self::InvalidPath => {
                "The request path must not contain `.` or `..` segments.".to_owned()
            }
            Self::SubscriptionKeyMissing => MSG_KEY_MISSING.to_owned(),
            Self::SubscriptionKeyInvalid | Self::SubscriptionNotActive { .. } => {
                MSG_KEY_INVALID.to_owned()
            }
            Self::RequestBodyTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes.")
            }
            Self::InvalidTransferEncoding => {
                "Transfer-Encoding must be exactly `chunked`.".to_owned()
            }
            Self::InvalidHost(reason) => format!("Invalid Host header: {reason}."),
            Self::UriTooLong { limit } => {
                format!("The request URI is longer than the limit of {limit} bytes.")
            }
            Self::ClientBody { .. } => "The request body is malformed.".to_owned(),
            Self::ClientBodyTimeout { .. } => {
                "The request body was not received in time.".to_owned()
            }
            Self::NoBackend { .. } | Self::InvalidBackendUrl { .. } => {
                "The gateway could not determine the backend for this request.".to_owned()
            }
            Self::BackendConnect { .. }
            | Self::BackendProtocol { .. }
            | Self::BackendTls { .. } => "The backend service could not be reached.".to_owned(),
            Self::ResponseBodyTooLarge { .. } => {
                "The backend service's response is too large for the gateway to process.".to_owned()
            }
            Self::BackendConnectTimeout { .. } | Self::BackendTimeout { .. } => {
                "The backend service did not respond in time.".to_owned()
            }
            Self::WebSocketNotEnabled { .. } => {
                "This API does not accept WebSocket connections.".to_owned()
            }
            Self::WebSocketLimit { .. } => {
                "Too many WebSocket connections are open; try again later.".to_owned()
            }
        }
    }
}

/// A JSON error body in APIM's shape: `{"statusCode": 404, "message": "..."}`.
#[must_use]
pub fn json_error_body(status: StatusCode, message: &str) -> Bytes {
    /// Field order as APIM writes it.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody<'a> {
        status_code: u16,
        message: &'a str,
    }
    let body = ErrorBody {
        status_code: status.as_u16(),
        message,
    };
    serde_json::to_vec(&body).map_or_else(|_| Bytes::new(), Bytes::from)
}

/// `Content-Type` of [`json_error_body`].
pub const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json");

/// Builds the client response for an error.
#[must_use]
pub fn error_response(error: &ProxyError) -> http::Response<Bytes> {
    let status = error.status();
    let mut response = http::Response::new(json_error_body(status, &error.client_message()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, JSON_CONTENT_TYPE);
    response
}
