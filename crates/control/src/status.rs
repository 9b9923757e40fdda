//! `GET /gateways/{id}/status`: which instances of a gateway are connected, from their
//! heartbeats.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_store::Kind;
use serde::Serialize;

use crate::entities::noun;
use crate::error::ApiError;
use crate::extract::Path;
use crate::{AppState, unix_now};

/// An instance that did not say how often it reports is taken to report every minute
/// (the gateway's default).
pub const DEFAULT_INTERVAL_SECONDS: u64 = 60;

/// Silent intervals after which an instance no longer counts as connected.
pub const SILENT_INTERVALS: u64 = 3;

/// The status of one gateway.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Gateway id.
    pub gateway_id: String,
    /// Connected instances ("nodes").
    pub nodes: usize,
    /// Current configuration revision of the control plane.
    pub current_revision: u64,
    /// The connected instances.
    pub instances: Vec<InstanceStatus>,
}

/// One connected instance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Instance id.
    pub instance_id: String,
    /// Host name.
    pub hostname: String,
    /// Gatehouse version.
    pub version: String,
    /// Revision it serves.
    pub applied_revision: u64,
    /// Revisions it is behind.
    pub revision_lag: u64,
    /// Its last reported error.
    pub last_error: Option<String>,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// When its token expires (Unix seconds).
    pub token_expiry: Option<i64>,
    /// When it last reported (Unix seconds).
    pub last_seen: i64,
}

/// How long an instance may stay silent and still count: `configured`, else three of
/// the intervals it reported.
#[must_use]
pub fn timeout_seconds(
    configured: Option<std::time::Duration>,
    interval_seconds: Option<u64>,
) -> i64 {
    let seconds = configured.map_or_else(
        || {
            interval_seconds
                .unwrap_or(DEFAULT_INTERVAL_SECONDS)
                .saturating_mul(SILENT_INTERVALS)
        },
        |timeout| timeout.as_secs(),
    );
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// Handler of `GET /gateways/{id}/status`.
pub async fn gateway_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.get(Kind::Gateway, &id).await?.is_none() {
        return Err(ApiError::NotFound {
            kind: noun(Kind::Gateway),
            id,
        });
    }
    let current_revision = state.store.revision().await?;
    let now = unix_now();
    let heartbeats = state.store.heartbeats(&id, 0).await?;
    let instances: Vec<InstanceStatus> = heartbeats
        .into_iter()
        .filter(|hb| {
            now.saturating_sub(hb.last_seen_unix)
                <= timeout_seconds(state.settings.instance_timeout, hb.interval_seconds)
        })
        .map(|hb| InstanceStatus {
            revision_lag: current_revision.saturating_sub(hb.applied_revision),
            instance_id: hb.instance_id,
            hostname: hb.hostname,
            version: hb.version,
            applied_revision: hb.applied_revision,
            last_error: hb.last_error,
            uptime_seconds: hb.uptime_seconds,
            token_expiry: hb.token_expiry_unix,
            last_seen: hb.last_seen_unix,
        })
        .collect();
    Ok(axum::Json(GatewayStatus {
        gateway_id: id,
        nodes: instances.len(),
        current_revision,
        instances,
    })
    .into_response())
}
