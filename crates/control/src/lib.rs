//! The Gatehouse control plane: the management API where APIs, products,
//! subscriptions, named values, backends, certificates, hostnames, the global policy
//! and gateways are defined; the Configuration API v2 gateways pull from with an
//! expiring token; gateway status from heartbeats. Contract: `docs/control-plane.md`.
//!
//! [`app`] builds the whole HTTP application from a [`ControlState`], so tests drive it
//! directly; [`serve`] runs it on a listener until shutdown, [`tls::serve_tls`] over
//! HTTPS with a certificate reloaded when its files change. Storage is
//! `gatehouse-store`; this crate holds no state of its own.

pub mod auth;
pub mod config_api;
pub mod deployment;
pub mod entities;
pub mod error;
pub mod extract;
pub mod management;
pub mod openapi;
pub mod status;
pub mod tls;
pub mod vault;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::auth::AdminToken;
use crate::error::ApiError;

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub struct ControlState {
    /// Storage. Read entities through [`ControlState::get`], [`ControlState::list`] and
    /// [`ControlState::all`] and write them through [`ControlState::write`], which open
    /// and seal private keys; the rest of the store is used directly.
    pub store: Store,
    /// The management API's token.
    pub admin: AdminToken,
    /// Encryption at rest of private keys.
    pub vault: vault::Vault,
}

impl ControlState {
    /// One entity, private keys opened.
    ///
    /// # Errors
    ///
    /// Storage errors, and stored private keys that do not open.
    pub async fn get(
        &self,
        kind: gatehouse_store::Kind,
        id: &str,
    ) -> Result<Option<gatehouse_store::Stored>, ApiError> {
        match self.store.get(kind, id).await? {
            Some(stored) => Ok(Some(self.vault.open(stored).map_err(ApiError::internal)?)),
            None => Ok(None),
        }
    }

    /// A page of entities, private keys opened.
    ///
    /// # Errors
    ///
    /// As [`ControlState::get`].
    pub async fn list(
        &self,
        kind: gatehouse_store::Kind,
        query: &gatehouse_store::ListQuery,
    ) -> Result<gatehouse_store::Page, ApiError> {
        let mut page = self.store.list(kind, query).await?;
        page.items = page
            .items
            .into_iter()
            .map(|s| self.vault.open(s))
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        Ok(page)
    }

    /// Every entity at one revision, private keys opened.
    ///
    /// # Errors
    ///
    /// As [`ControlState::get`].
    pub async fn all(&self) -> Result<(u64, Vec<gatehouse_store::Stored>), ApiError> {
        let (revision, stored) = self.store.all().await?;
        let opened = stored
            .into_iter()
            .map(|s| self.vault.open(s))
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        Ok((revision, opened))
    }

    /// Writes entities in one transaction, private keys sealed.
    ///
    /// # Errors
    ///
    /// The store's errors, unchanged, so callers can tell preconditions apart.
    pub async fn write(
        &self,
        ops: Vec<gatehouse_store::WriteOp>,
    ) -> Result<u64, gatehouse_store::StoreError> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                gatehouse_store::WriteOp::Put {
                    kind,
                    id,
                    body,
                    precondition,
                } => {
                    let body = self.vault.seal(kind, &id, body);
                    gatehouse_store::WriteOp::Put {
                        kind,
                        id,
                        body,
                        precondition,
                    }
                }
                delete @ gatehouse_store::WriteOp::Delete { .. } => delete,
            })
            .collect();
        self.store.write(ops).await
    }
}

/// Shared handle to [`ControlState`].
pub type AppState = Arc<ControlState>;

/// The whole HTTP application: health, the management API (admin token), the
/// Configuration API v2 (gateway tokens).
pub fn app(state: AppState) -> Router {
    let management = management::routes()
        .route("/gateways/{id}/status", get(status::gateway_status))
        .route("/gateways/{id}/deployment", get(deployment::deployment))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/openapi.json", get(openapi::serve))
        .merge(config_api::routes())
        .merge(management)
        .fallback(|| async {
            ApiError::NotFound {
                kind: "resource",
                id: "this path".to_owned(),
            }
        })
        .with_state(state)
}

async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.admin.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Serves [`app`] on `listener` until `shutdown` is cancelled; in-flight requests
/// (long-polls included) end gracefully.
///
/// # Errors
///
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Reads a JSON body of at most `limit` bytes.
///
/// # Errors
///
/// 413 over the limit; 400 when it is not JSON (with the parser's line and column).
pub async fn read_json(body: Body, limit: usize) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    if bytes.is_empty() {
        return Ok(entities::empty_object());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

/// Seconds since the Unix epoch, by the wall clock (token expiry is wall-clock time).
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
