//! Configuration API v2: what gateways call, with their `GatewayKey` token.
//!
//! - `GET /v2/gateways/{id}/snapshot`: everything the gateway serves, at one revision.
//! - `GET /v2/gateways/{id}/changes?since=R&wait=S`: what changed after `R`, held open
//!   until something does (or `S` seconds pass); `410 Gone` when `R` was compacted.
//! - `POST /v2/gateways/{id}/heartbeat`: the instance reports in.
//! - `DELETE /v2/gateways/{id}/instances/{instanceId}`: the instance says goodbye (it is
//!   stopping), so the status stops counting it at once.
//!
//! The bodies are `gatehouse_model::wire`'s types, which the gateway's side uses too.
//!
//! Changes are computed against the current state: for each entity written after `R`,
//! the gateway gets it as its snapshot would now hold it (`upsert`), or a `delete` when
//! it no longer belongs to the gateway. That converges to the same configuration as a
//! new snapshot, without replaying history. A change to the gateway's own assignment
//! asks for a new snapshot (`resync`).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use gatehouse_model::token::GatewayToken;
use gatehouse_model::wire::{self, Change, Changes};
use gatehouse_model::{Gateway, Snapshot};
use gatehouse_store::{ChangesSince, Heartbeat, Kind, Op};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::entities::{self, noun};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::{AppState, MAX_BODY_BYTES, read_json, unix_now};

/// Longest a change request is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most changes in one answer; a gateway further behind gets the rest on its next call.
pub const MAX_CHANGES: usize = 10_000;

/// Routes of the Configuration API v2.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/gateways/{id}/snapshot", get(snapshot))
        .route("/v2/gateways/{id}/changes", get(changes))
        .route("/v2/gateways/{id}/heartbeat", post(heartbeat))
        .route("/v2/gateways/{id}/instances/{instance}", delete(goodbye))
}

/// Checks `Authorization: GatewayKey …` for gateway `id` and returns its token.
///
/// # Errors
///
/// 401 when missing, malformed, expired or not signed by a current key (the reason in
/// the body); 403 for an admin token or a token of another gateway.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<GatewayToken, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: GatewayKey …`".to_owned())
        })?;
    if crate::auth::split_scheme(value)
        .0
        .eq_ignore_ascii_case("Bearer")
    {
        return Err(ApiError::Forbidden(
            "the Configuration API takes a gateway token (`GatewayKey …`), not the admin token"
                .to_owned(),
        ));
    }
    let token = GatewayToken::parse(value).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if token.gateway_id() != id {
        return Err(ApiError::Forbidden(format!(
            "this token is for gateway `{}`, not `{id}`",
            token.gateway_id()
        )));
    }
    let keys = state.gateway_keys(id).await?.ok_or_else(|| {
        ApiError::Unauthorized(format!("gateway `{id}` does not exist or has no keys"))
    })?;
    token
        .verify_any(
            &[keys.primary.as_bytes(), keys.secondary.as_bytes()],
            unix_now(),
        )
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    Ok(token)
}

async fn gateway_and_config(
    state: &AppState,
    id: &str,
) -> Result<(u64, Gateway, gatehouse_model::Configuration), ApiError> {
    let (revision, stored) = state.all().await?;
    let config = entities::configuration(&stored)?;
    let gateway = config
        .gateways
        .iter()
        .find(|g| g.id == id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            kind: noun(Kind::Gateway),
            id: id.to_owned(),
        })?;
    let filtered = config.for_gateway(&gateway);
    Ok((revision, gateway, filtered))
}

async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &id).await?;
    let (revision, _, config) = gateway_and_config(&state, &id).await?;
    let snapshot = Snapshot::new(revision, id, config);
    let mut response = axum::Json(&snapshot).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Query of the change stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Revision the gateway has applied.
    since: u64,
    /// Seconds to wait for a change (default 0, at most 60).
    #[serde(default)]
    wait: u64,
}

async fn changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &id).await?;
    let wait = Duration::from_secs(query.wait).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut watch = state.store.watch();
    loop {
        // Mark the current value seen before reading, so a commit racing with the read
        // still wakes the wait below.
        watch.borrow_and_update();
        let list = match state.store.changes_since(query.since, MAX_CHANGES).await? {
            ChangesSince::Changes(list) => list,
            ChangesSince::Compacted { oldest_available } => {
                return Err(ApiError::Gone {
                    since: query.since,
                    oldest: oldest_available,
                });
            }
        };
        if !list.is_empty() {
            return answer(&state, &id, list).await;
        }
        // Counted while it waits, for the shutdown log.
        let _waiting = WaitingLongPoll::enter(&state);
        let woke = tokio::select! {
            changed = watch.changed() => changed.is_ok(),
            () = tokio::time::sleep_until(deadline) => false,
            // Shutting down: "no change" now, so the gateway asks again (another
            // replica, or this one once it is back) instead of holding up the exit.
            () = state.stopping.cancelled() => false,
        };
        if !woke {
            return Ok(axum::Json(Changes {
                revision: query.since,
                resync: false,
                changes: Vec::new(),
            })
            .into_response());
        }
    }
}

/// One change request waiting for a change, counted in
/// [`crate::ControlState::waiting_long_polls`] while it lives.
struct WaitingLongPoll<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> WaitingLongPoll<'a> {
    fn enter(state: &'a crate::ControlState) -> Self {
        state
            .waiting_long_polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(&state.waiting_long_polls)
    }
}

impl Drop for WaitingLongPoll<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn answer(
    state: &AppState,
    id: &str,
    list: Vec<gatehouse_store::Change>,
) -> Result<Response, ApiError> {
    let (_, _, config) = gateway_and_config(state, id).await?;
    let last = list.last().map_or(0, |c| c.revision);
    let mut resync = false;
    // Last write per entity wins; order by the revision of that last write.
    let mut latest: Vec<&gatehouse_store::Change> = Vec::new();
    for change in list.iter().rev() {
        if !latest
            .iter()
            .any(|c| c.kind == change.kind && c.id == change.id)
        {
            latest.push(change);
        }
    }
    latest.reverse();
    let mut entries = Vec::with_capacity(latest.len());
    for change in latest {
        if change.kind == Kind::Gateway {
            resync |= change.id == id;
            continue;
        }
        let entity = match change.op {
            Op::Upsert => entities::find(&config, change.kind, &change.id),
            Op::Delete => None,
        };
        entries.push(Change {
            revision: change.revision,
            kind: change.kind,
            id: change.id.clone(),
            op: if entity.is_some() {
                Op::Upsert
            } else {
                Op::Delete
            },
            entity,
        });
    }
    Ok(axum::Json(Changes {
        revision: last,
        resync,
        changes: entries,
    })
    .into_response())
}

async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let token = authenticate(&state, &headers, &id).await?;
    let value = read_json(body, MAX_BODY_BYTES).await?;
    let body: wire::Heartbeat =
        serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    check_instance_id(&body.instance_id)?;
    // Stored as TEXT, which cannot hold NUL on PostgreSQL.
    for (field, value) in [
        ("instanceId", Some(&body.instance_id)),
        ("hostname", Some(&body.hostname)),
        ("version", Some(&body.version)),
        ("lastError", body.last_error.as_ref()),
    ] {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::BadRequest(format!(
                "`{field}` holds a NUL character (\\u0000), which cannot be stored"
            )));
        }
    }
    let heartbeat = Heartbeat {
        gateway_id: id,
        instance_id: body.instance_id,
        hostname: body.hostname,
        version: body.version,
        applied_revision: body.applied_revision,
        last_error: body.last_error,
        uptime_seconds: body.uptime_seconds,
        token_expiry_unix: body.token_expiry.or(Some(token.expiry_unix())),
        interval_seconds: body.heartbeat_interval_seconds,
        last_seen_unix: unix_now(),
    };
    state.store.record_heartbeat(&heartbeat).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn check_instance_id(instance_id: &str) -> Result<(), ApiError> {
    if instance_id.is_empty() || instance_id.chars().count() > 256 {
        return Err(ApiError::BadRequest(
            "`instanceId` must be 1 to 256 characters".to_owned(),
        ));
    }
    Ok(())
}

/// An instance that is stopping: its heartbeat is deleted, so `gateway status` stops
/// counting it now rather than after its silence times out. 204 whether or not it had
/// reported.
async fn goodbye(
    State(state): State<AppState>,
    Path((id, instance)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &id).await?;
    check_instance_id(&instance)?;
    if state.store.delete_heartbeat(&id, &instance).await? {
        tracing::info!(gateway = %id, instance = %instance, "gateway instance said goodbye");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
