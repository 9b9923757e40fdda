//! Extractors whose rejections are [`ApiError`]s, so a malformed path or query string
//! gets the same `{"error": {"code", "message"}}` JSON as every other failure (axum's own
//! extractors answer in plain text). Drop-in replacements for `axum::extract::{Path,
//! Query}`: `use crate::extract::{Path, Query};`.
//!
//! Both also refuse a NUL character (`%00`): no id or parameter of these APIs can hold
//! one, and PostgreSQL cannot store or compare one in a `TEXT` value, so letting it
//! through would turn a bad request into a database error (500).

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::extract::Path`, rejected with a 400 [`ApiError`].
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.path().contains("%00") {
            return Err(nul("the path"));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| {
                // A route whose parameters do not fit its extractor is our bug, not the
                // caller's.
                if rejection.status().is_server_error() {
                    ApiError::internal(std::io::Error::other(rejection.body_text()))
                } else {
                    ApiError::BadRequest(rejection.body_text())
                }
            })
    }
}

/// `axum::extract::Query`, rejected with a 400 [`ApiError`] naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|query| query.contains("%00")) {
            return Err(nul("the query string"));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

fn nul(place: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{place} holds a NUL character (%00); no id or parameter can contain one"
    ))
}
