//! What the APIs answer when a request fails.
//!
//! Every rejection is an [`ApiError`]: a status, a stable machine-readable `code` and a
//! message saying what is wrong and how to fix it, sent as
//! `{"error": {"code": "...", "message": "..."}}`. [`ApiError::status`] is one
//! exhaustive `match`, so a new variant forces a decision about its status. Internal
//! failures (the database) get a generic message; the cause goes to the log.

use axum::Json;
use axum::response::{IntoResponse, Response};
use gatehouse_store::StoreError;
use http::StatusCode;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON for this resource (syntax, unknown field, wrong type).
    #[error("{0}")]
    BadRequest(String),
    /// The entity is well-formed but the configuration would be invalid with it.
    #[error("{0}")]
    Invalid(String),
    /// No such entity.
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// Entity kind.
        kind: &'static str,
        /// Entity id.
        id: String,
    },
    /// `If-Match` named a revision that is no longer current.
    #[error("{kind} `{id}` changed since you read it ({}); read it again and retry", current.map_or_else(|| "it no longer exists".to_owned(), |r| format!("current ETag \"{r}\"")))]
    PreconditionFailed {
        /// Entity kind.
        kind: &'static str,
        /// Entity id.
        id: String,
        /// The current revision; `None` when the entity does not exist.
        current: Option<u64>,
    },
    /// `If-None-Match: *` and the entity exists (412, code `AlreadyExists`).
    #[error("{kind} `{id}` already exists")]
    AlreadyExists {
        /// Entity kind.
        kind: &'static str,
        /// Entity id.
        id: String,
    },
    /// The entity is still referenced by others.
    #[error("{0}")]
    Conflict(String),
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// The change stream position is older than what is kept.
    #[error(
        "revision {since} is older than the oldest change kept ({oldest}); take a new snapshot"
    )]
    Gone {
        /// The requested position.
        since: u64,
        /// The oldest revision still available.
        oldest: u64,
    },
    /// The body is larger than allowed.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Storage failed; details are logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            // `If-None-Match: *` that does not hold is a failed precondition (RFC 9110).
            Self::PreconditionFailed { .. } | Self::AlreadyExists { .. } => {
                StatusCode::PRECONDITION_FAILED
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Gone { .. } => StatusCode::GONE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Invalid(_) => "ValidationError",
            Self::NotFound { .. } => "NotFound",
            Self::PreconditionFailed { .. } => "PreconditionFailed",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict(_) => "Conflict",
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden(_) => "Forbidden",
            Self::Gone { .. } => "Gone",
            Self::PayloadTooLarge { .. } => "PayloadTooLarge",
            Self::Internal(_) => "InternalError",
        }
    }

    /// Wraps a storage failure.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(source) = &self {
            tracing::error!(error = %source, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        (self.status(), Json(body)).into_response()
    }
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ApiError)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code and message of an [`ErrorBody`].
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `BadRequest`, `ValidationError`, `NotFound`,
    /// `PreconditionFailed`, `AlreadyExists`, `Conflict`, `Unauthorized`, `Forbidden`,
    /// `Gone`, `PayloadTooLarge` or `InternalError`.
    #[schema(example = "NotFound")]
    pub code: String,
    /// What is wrong and how to fix it, for people.
    #[schema(example = "API `orders` does not exist")]
    pub message: String,
}

impl From<StoreError> for ApiError {
    /// The outcomes a caller can act on keep their meaning (naming the entity); the rest
    /// is internal.
    fn from(error: StoreError) -> Self {
        use crate::entities::noun;
        match error {
            StoreError::NotFound { kind, id } => Self::NotFound {
                kind: noun(kind),
                id,
            },
            StoreError::PreconditionFailed {
                kind,
                id,
                current_revision,
                ..
            } => Self::PreconditionFailed {
                kind: noun(kind),
                id,
                current: current_revision,
            },
            StoreError::AlreadyExists { kind, id, .. } => Self::AlreadyExists {
                kind: noun(kind),
                id,
            },
            other => Self::internal(other),
        }
    }
}
