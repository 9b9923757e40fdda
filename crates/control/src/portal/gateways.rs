//! Gateways: list, create, edit, delete; the overview with live status; Deployment
//! (seed 003: token, `kubectl` command, manifest, command lines, key regeneration).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use gatehouse_store::{Kind, ListQuery, Precondition};
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::session::ActiveSession;
use super::{Done, Fields, Page, PortalResult, render, render_with};
use crate::AppState;
use crate::deployment::{IMAGE, MAX_EXPIRY_DAYS, deployment_for};
use crate::error::ApiError;
use crate::management::{self, KeyType, MAX_PAGE};
use crate::status::{GatewayStatus, status_in, status_of};

type Session = axum::Extension<ActiveSession>;
type Id = axum::extract::Path<String>;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/gateways", get(list).post(create))
        .route("/portal/gateways/new", get(new_form))
        // Not under /portal/gateways/: any name there may be a gateway's id.
        .route("/portal/gateways-table", get(table))
        .route("/portal/gateways/{id}", get(overview).post(update))
        .route("/portal/gateways/{id}/edit", get(edit_form))
        .route("/portal/gateways/{id}/instances", get(instances))
        .route(
            "/portal/gateways/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/portal/gateways/{id}/deployment", get(deployment))
        .route("/portal/gateways/{id}/deployment.yaml", get(download_yaml))
        .route("/portal/gateways/{id}/regenerate-key", post(regenerate_key))
}

// === list ===

/// One row of the gateway list.
struct GatewayRow {
    id: String,
    display_name: String,
    location: String,
    nodes: usize,
    /// The oldest revision an instance serves, `None` without instances.
    applied_revision: Option<u64>,
    current_revision: u64,
    last_heartbeat: Option<String>,
    token_expiry: Option<String>,
}

impl GatewayRow {
    fn new(body: &Value, status: &GatewayStatus) -> Self {
        let text = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            id: status.gateway_id.clone(),
            display_name: text("displayName"),
            location: text("location"),
            nodes: status.nodes,
            applied_revision: status.instances.iter().map(|i| i.applied_revision).min(),
            current_revision: status.current_revision,
            // RFC 3339 UTC strings order as times.
            last_heartbeat: status.instances.iter().map(|i| i.last_seen.clone()).max(),
            token_expiry: status
                .instances
                .iter()
                .filter_map(|i| i.token_expiry.clone())
                .min(),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/gateways.html")]
struct ListPage {
    p: Page,
    rows: Vec<GatewayRow>,
}

async fn list(State(state): State<AppState>, session: Session, done: Query<Done>) -> PortalResult {
    render(&ListPage {
        p: Page::new(&session, "gateways", "Gateways".to_owned()).with_notice(done.notice()),
        rows: rows(&state).await?,
    })
}

#[derive(Template)]
#[template(path = "portal/gateway_rows.html")]
struct RowsFragment {
    rows: Vec<GatewayRow>,
}

/// The table alone, which the list polls.
async fn table(State(state): State<AppState>) -> PortalResult {
    render(&RowsFragment {
        rows: rows(&state).await?,
    })
}

/// Every gateway's row, by id.
async fn rows(state: &AppState) -> Result<Vec<GatewayRow>, ApiError> {
    // One read of the configuration for every row; then each gateway's heartbeats.
    let (current_revision, stored) = state.all().await?;
    let config = crate::entities::configuration(&stored)?;
    let mut rows = Vec::new();
    for gateway in stored.iter().filter(|s| s.kind == Kind::Gateway) {
        let status = status_in(state, &gateway.id, current_revision, &config).await?;
        rows.push(GatewayRow::new(&gateway.body, &status));
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

// === create and edit ===

#[derive(Template)]
#[template(path = "portal/gateway_form.html")]
struct FormPage {
    p: Page,
    /// `None`: a new gateway.
    existing: Option<String>,
    revision: u64,
    id: String,
    display_name: String,
    location: String,
    description: String,
    /// Every API, and whether the gateway serves it.
    apis: Vec<(String, bool)>,
    error: Option<String>,
}

impl FormPage {
    fn is_checked(&self, api: &str) -> bool {
        self.apis.iter().any(|(id, on)| id == api && *on)
    }
}

async fn api_ids(state: &AppState) -> Result<Vec<String>, ApiError> {
    let page = state
        .list(
            Kind::Api,
            &ListQuery {
                search: None,
                skip: 0,
                top: MAX_PAGE as u64,
            },
        )
        .await?;
    Ok(page.items.into_iter().map(|s| s.id).collect())
}

async fn new_form(State(state): State<AppState>, session: Session) -> PortalResult {
    let apis = api_ids(&state).await?;
    render(&FormPage {
        p: Page::new(&session, "gateways", "New gateway".to_owned()),
        existing: None,
        revision: 0,
        id: String::new(),
        display_name: String::new(),
        location: String::new(),
        description: String::new(),
        apis: apis.into_iter().map(|a| (a, false)).collect(),
        error: None,
    })
}

async fn edit_form(State(state): State<AppState>, session: Session, id: Id) -> PortalResult {
    let stored = load(&state, &id).await?;
    let text = |field: &str| {
        stored
            .body
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let assigned: Vec<String> = stored
        .body
        .get("apis")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let apis = api_ids(&state).await?;
    render(&FormPage {
        p: Page::new(&session, "gateways", format!("Edit gateway {}", id.0)),
        existing: Some(id.0.clone()),
        revision: stored.revision,
        id: id.0.clone(),
        display_name: text("displayName"),
        location: text("location"),
        description: text("description"),
        apis: apis
            .into_iter()
            .map(|a| {
                let on = assigned.contains(&a);
                (a, on)
            })
            .collect(),
        error: None,
    })
}

/// Sets `field` to `value`, or removes it when `value` is empty.
fn set_text(object: &mut Map<String, Value>, field: &str, value: String) {
    if value.is_empty() {
        object.remove(field);
    } else {
        object.insert(field.to_owned(), Value::String(value));
    }
}

/// The gateway body: `base` (the stored one, or empty) with the form's fields.
fn gateway_body(base: Value, fields: &Fields) -> Value {
    let mut object = match base {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    set_text(&mut object, "displayName", fields.get("displayName"));
    set_text(&mut object, "location", fields.get("location"));
    set_text(&mut object, "description", fields.get("description"));
    object.insert(
        "apis".to_owned(),
        Value::Array(fields.all("apis").into_iter().map(Value::String).collect()),
    );
    Value::Object(object)
}

async fn form_error(
    state: &AppState,
    session: &ActiveSession,
    existing: Option<String>,
    revision: u64,
    fields: &Fields,
    error: &ApiError,
) -> PortalResult {
    let chosen = fields.all("apis");
    let apis = api_ids(state).await?;
    let id = existing.clone().unwrap_or_else(|| fields.get("id"));
    render_with(
        error.status(),
        &FormPage {
            p: Page::new(
                session,
                "gateways",
                if existing.is_some() {
                    format!("Edit gateway {id}")
                } else {
                    "New gateway".to_owned()
                },
            ),
            existing,
            revision,
            id,
            display_name: fields.get("displayName"),
            location: fields.get("location"),
            description: fields.get("description"),
            apis: apis
                .into_iter()
                .map(|a| {
                    let on = chosen.contains(&a);
                    (a, on)
                })
                .collect(),
            error: Some(error.to_string()),
        },
    )
}

async fn create(State(state): State<AppState>, session: Session, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let id = fields.get("id");
    let written = if id.is_empty() {
        Err(ApiError::BadRequest("give the gateway an id".to_owned()))
    } else {
        let body = gateway_body(Value::Object(Map::new()), &fields);
        management::put_entity(
            &state,
            Kind::Gateway,
            id.clone(),
            body,
            Precondition::IfNoneMatch,
        )
        .await
    };
    match written {
        Ok(_) => Ok(Redirect::to(&format!("/portal/gateways/{id}?done=created")).into_response()),
        Err(error) => form_error(&state, &session, None, 0, &fields, &error).await,
    }
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    body: Bytes,
) -> PortalResult {
    let fields = Fields::parse(&body);
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    let stored = load(&state, &id).await?;
    let body = gateway_body(stored.body, &fields);
    match management::put_entity(
        &state,
        Kind::Gateway,
        id.0.clone(),
        body,
        Precondition::IfMatch(revision),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/portal/gateways/{}?done=saved", id.0)).into_response()),
        Err(error) => {
            form_error(
                &state,
                &session,
                Some(id.0.clone()),
                revision,
                &fields,
                &error,
            )
            .await
        }
    }
}

async fn load(state: &AppState, id: &str) -> Result<gatehouse_store::Stored, ApiError> {
    state
        .get(Kind::Gateway, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "gateway",
            id: id.to_owned(),
        })
}

// === delete ===

#[derive(Template)]
#[template(path = "portal/gateway_delete.html")]
struct DeletePage {
    p: Page,
    id: String,
    revision: u64,
    error: Option<String>,
}

async fn confirm_delete(State(state): State<AppState>, session: Session, id: Id) -> PortalResult {
    let stored = load(&state, &id).await?;
    render(&DeletePage {
        p: Page::new(&session, "gateways", format!("Delete gateway {}", id.0)),
        id: id.0,
        revision: stored.revision,
        error: None,
    })
}

async fn delete(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    body: Bytes,
) -> PortalResult {
    let fields = Fields::parse(&body);
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    match management::delete_entity(
        &state,
        Kind::Gateway,
        id.0.clone(),
        Precondition::IfMatch(revision),
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/portal/gateways?done=deleted").into_response()),
        Err(error) => render_with(
            error.status(),
            &DeletePage {
                p: Page::new(&session, "gateways", format!("Delete gateway {}", id.0)),
                id: id.0,
                revision,
                error: Some(error.to_string()),
            },
        ),
    }
}

// === overview and status ===

#[derive(Template)]
#[template(path = "portal/gateway.html")]
struct OverviewPage {
    p: Page,
    id: String,
    display_name: String,
    location: String,
    description: String,
    apis: Vec<String>,
    status: GatewayStatus,
}

#[derive(Template)]
#[template(path = "portal/gateway_instances.html")]
struct InstancesFragment {
    status: GatewayStatus,
}

async fn overview(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    done: Query<Done>,
) -> PortalResult {
    let stored = load(&state, &id).await?;
    let text = |field: &str| {
        stored
            .body
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let apis = stored
        .body
        .get("apis")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let status = status_of(&state, &id).await?;
    render(&OverviewPage {
        p: Page::new(&session, "gateways", format!("Gateway {}", id.0)).with_notice(done.notice()),
        display_name: text("displayName"),
        location: text("location"),
        description: text("description"),
        id: id.0,
        apis,
        status,
    })
}

/// The instances table alone, which the overview polls.
async fn instances(State(state): State<AppState>, id: Id) -> PortalResult {
    let status = status_of(&state, &id).await?;
    render(&InstancesFragment { status })
}

// === deployment ===

#[derive(Debug, Deserialize)]
struct DeploymentQuery {
    key: Option<String>,
    days: Option<u32>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/gateway_deployment.html")]
struct DeploymentPage {
    p: Page,
    id: String,
    key: &'static str,
    days: u32,
    max_days: u32,
    token: String,
    token_expiry: String,
    secret_command: String,
    manifest: String,
    gateway_command: String,
    docker_command: String,
}

fn key_type(text: Option<&str>) -> Result<KeyType, ApiError> {
    match text.unwrap_or("primary") {
        "primary" => Ok(KeyType::Primary),
        "secondary" => Ok(KeyType::Secondary),
        other => Err(ApiError::BadRequest(format!(
            "unknown key `{other}`: primary or secondary"
        ))),
    }
}

const fn key_name(key: KeyType) -> &'static str {
    match key {
        KeyType::Primary => "primary",
        KeyType::Secondary => "secondary",
    }
}

async fn deployment(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    Query(query): Query<DeploymentQuery>,
) -> PortalResult {
    let key = key_type(query.key.as_deref())?;
    let days = query.days.unwrap_or(MAX_EXPIRY_DAYS);
    let deployment = deployment_for(&state, &id, key, days).await?;
    let token = deployment.token.to_string();
    let done = Done { done: query.done };
    render(&DeploymentPage {
        p: Page::new(&session, "gateways", format!("Deploy gateway {}", id.0))
            .with_notice(done.notice()),
        key: key_name(key),
        days,
        max_days: MAX_EXPIRY_DAYS,
        token_expiry: gatehouse_tls::certificate::rfc3339(deployment.token.expiry_unix()),
        secret_command: deployment.secret_command,
        manifest: deployment.manifest,
        gateway_command: format!(
            "env 'config.service.endpoint={}' 'config.service.auth={token}' gatehouse gateway",
            deployment.endpoint
        ),
        docker_command: format!(
            "docker run -d -p 8080:8080 -p 8081:8081 -e 'config.service.endpoint={}' -e 'config.service.auth={token}' {IMAGE} gateway",
            deployment.endpoint
        ),
        token,
        id: id.0,
    })
}

/// The manifest as a file (it holds no token: that goes into the Secret).
async fn download_yaml(State(state): State<AppState>, id: Id) -> PortalResult {
    let deployment = deployment_for(&state, &id, KeyType::Primary, 1).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}.yaml\"", id.0))
        .map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        deployment.manifest,
    )
        .into_response())
}

async fn regenerate_key(State(state): State<AppState>, id: Id, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let key = key_type(Some(fields.get("key").as_str()))?;
    management::regenerate_gateway_key(&state, &id, key).await?;
    let name = key_name(key);
    Ok(Redirect::to(&format!(
        "/portal/gateways/{}/deployment?key={name}&done=regenerated-{name}",
        id.0
    ))
    .into_response())
}
