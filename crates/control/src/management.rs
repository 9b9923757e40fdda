//! The management API: CRUD on every kind of entity, with validation at write time,
//! ETags and `If-Match`, pagination, and the actions (key regeneration, suspension,
//! gateway tokens).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_model::Configuration;
use gatehouse_model::token::GatewayToken;
use gatehouse_store::{GatewayKeys, Kind, ListQuery, Precondition, WriteOp};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::entities::{self, GLOBAL_POLICY_ID, noun};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::{AppState, MAX_BODY_BYTES, read_json, unix_now};

/// Most items one list call returns.
pub const MAX_PAGE: usize = 1000;

/// The kinds with a collection (`/{collection}`) and items (`/{collection}/{id}`); the
/// OpenAPI document describes the same list.
pub const COLLECTIONS: [Kind; 9] = [
    Kind::Api,
    Kind::Product,
    Kind::Subscription,
    Kind::NamedValue,
    Kind::Backend,
    Kind::Certificate,
    Kind::Hostname,
    Kind::Gateway,
    Kind::PolicyFragment,
];

/// Routes of the management API (admin token checked by the caller's layer). Every route
/// is described in [`crate::openapi`]; its tests fail when the two differ.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in COLLECTIONS {
        let collection = format!("/{}", entities::collection(kind));
        let item = format!("{collection}/{{id}}");
        router = router
            .route(
                &collection,
                get(move |state: State<AppState>, query: Query<ListParams>| {
                    list(state, kind, query)
                }),
            )
            .route(
                &item,
                get(move |state: State<AppState>, Path(id): Path<String>| {
                    get_item(state, kind, id)
                })
                .put(
                    move |state: State<AppState>,
                          Path(id): Path<String>,
                          headers: HeaderMap,
                          body: Body| {
                        put_item(state, kind, id, headers, body)
                    },
                )
                .delete(
                    move |state: State<AppState>, Path(id): Path<String>, headers: HeaderMap| {
                        delete_item(state, kind, id, headers)
                    },
                ),
            );
    }
    router
        .route(
            "/policy",
            get(|state: State<AppState>| {
                get_item(state, Kind::Policy, GLOBAL_POLICY_ID.to_owned())
            })
            .put(|state: State<AppState>, headers: HeaderMap, body: Body| {
                put_item(
                    state,
                    Kind::Policy,
                    GLOBAL_POLICY_ID.to_owned(),
                    headers,
                    body,
                )
            })
            .delete(|state: State<AppState>, headers: HeaderMap| {
                delete_item(state, Kind::Policy, GLOBAL_POLICY_ID.to_owned(), headers)
            }),
        )
        .route(
            "/subscriptions/{id}/regenerate-primary-key",
            post(
                |State(s): State<AppState>, Path(id): Path<String>| async move {
                    let (body, revision) =
                        regenerate_subscription_key(&s, &id, KeyType::Primary).await?;
                    Ok::<_, ApiError>(entity_response(
                        StatusCode::OK,
                        Kind::Subscription,
                        &body,
                        revision,
                    ))
                },
            ),
        )
        .route(
            "/subscriptions/{id}/regenerate-secondary-key",
            post(
                |State(s): State<AppState>, Path(id): Path<String>| async move {
                    let (body, revision) =
                        regenerate_subscription_key(&s, &id, KeyType::Secondary).await?;
                    Ok::<_, ApiError>(entity_response(
                        StatusCode::OK,
                        Kind::Subscription,
                        &body,
                        revision,
                    ))
                },
            ),
        )
        .route(
            "/subscriptions/{id}/suspend",
            post(
                |State(s): State<AppState>, Path(id): Path<String>| async move {
                    let (body, revision) = set_subscription_state(&s, &id, "suspended").await?;
                    Ok::<_, ApiError>(entity_response(
                        StatusCode::OK,
                        Kind::Subscription,
                        &body,
                        revision,
                    ))
                },
            ),
        )
        .route(
            "/subscriptions/{id}/activate",
            post(
                |State(s): State<AppState>, Path(id): Path<String>| async move {
                    let (body, revision) = set_subscription_state(&s, &id, "active").await?;
                    Ok::<_, ApiError>(entity_response(
                        StatusCode::OK,
                        Kind::Subscription,
                        &body,
                        revision,
                    ))
                },
            ),
        )
        .route(
            "/subscriptions/{id}/list-secrets",
            post(list_subscription_secrets),
        )
        .route(
            "/gateways/{id}/regenerate-key",
            post(regenerate_gateway_key_handler),
        )
        .route(
            "/gateways/{id}/generate-token",
            post(generate_gateway_token),
        )
}

/// Query of list calls.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive substring of the id.
    search: Option<String>,
    /// Items to skip.
    #[serde(default)]
    skip: usize,
    /// Items to return (default and maximum 1000).
    top: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    kind: Kind,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let top = params.top.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let query = ListQuery {
        search: params.search.clone(),
        skip: params.skip as u64,
        top: top as u64,
    };
    let page = state.list(kind, &query).await?;
    let value: Vec<Value> = page
        .items
        .iter()
        .map(|s| entities::redact(kind, &s.body))
        .collect();
    let next = params.skip + value.len();
    let mut body = json!({ "value": value, "count": page.total });
    if (next as u64) < page.total {
        let mut link = format!("/{}?skip={next}&top={top}", entities::collection(kind));
        if let Some(search) = &params.search {
            link.push_str("&search=");
            link.push_str(&url_escape(search));
        }
        body["nextLink"] = Value::String(link);
    }
    Ok(axum::Json(body).into_response())
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn get_item(
    State(state): State<AppState>,
    kind: Kind,
    id: String,
) -> Result<Response, ApiError> {
    let stored = state
        .get(kind, &id)
        .await?
        .ok_or_else(|| not_found(kind, &id))?;
    Ok(entity_response(
        StatusCode::OK,
        kind,
        &stored.body,
        stored.revision,
    ))
}

async fn put_item(
    State(state): State<AppState>,
    kind: Kind,
    id: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_json(body, MAX_BODY_BYTES).await?;
    let precondition = precondition(&headers)?;
    let written = put_entity(&state, kind, id, body, precondition).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(entity_response(
        status,
        kind,
        &written.body,
        written.revision,
    ))
}

/// What [`put_entity`] wrote.
#[derive(Debug)]
pub(crate) struct Written {
    /// The entity as stored (secrets included: redact before showing it).
    pub(crate) body: Value,
    /// The revision of the write.
    pub(crate) revision: u64,
    /// Whether it did not exist before.
    pub(crate) created: bool,
}

/// Creates or replaces one entity: the management API's `PUT` and the portal's forms.
/// Validated against the configuration as it is when the write commits, so a
/// concurrent delete of something this entity refers to cannot slip in between; a new
/// gateway gets fresh keys.
///
/// # Errors
///
/// What [`plan_put`] refuses, and the store's errors (preconditions included).
pub(crate) async fn put_entity(
    state: &AppState,
    kind: Kind,
    id: String,
    body: Value,
    precondition: Precondition,
) -> Result<Written, ApiError> {
    let now = std::time::SystemTime::now();
    let written_id = id.clone();
    let assign_to = state.settings.assign_new_apis_to.clone();
    let (revision, (body, created)) = state
        .write_planned(move |_, stored| {
            let planned = plan_put(kind, &id, body, &stored, assign_to.as_deref(), now)?;
            let op = WriteOp::Put {
                kind,
                id,
                body: planned.body.clone(),
                precondition,
            };
            Ok((
                std::iter::once(op).chain(planned.assignment).collect(),
                (planned.body, planned.created),
            ))
        })
        .await?;
    if kind == Kind::Gateway && created {
        // Fresh keys for a new gateway, even when one of the same id existed before:
        // its tokens must not work for the new one.
        new_gateway_keys(state, &written_id).await?;
    }
    Ok(Written {
        body,
        revision,
        created,
    })
}

/// Checks a `PUT` without writing it: the same checks [`put_entity`] makes, against
/// the configuration as it is now (the portal's validation as you type).
///
/// # Errors
///
/// What [`plan_put`] refuses, and storage errors.
pub(crate) async fn check_put(
    state: &AppState,
    kind: Kind,
    id: &str,
    body: Value,
) -> Result<(), ApiError> {
    let (_, stored) = state.all().await?;
    let assign_to = state.settings.assign_new_apis_to.as_deref();
    plan_put(
        kind,
        id,
        body,
        &stored,
        assign_to,
        std::time::SystemTime::now(),
    )
    .map(drop)
}

/// A planned `PUT`.
struct PlannedPut {
    /// The body to store.
    body: Value,
    /// Whether the entity is new.
    created: bool,
    /// The write assigning a new API to the dev gateway, if any.
    assignment: Option<WriteOp>,
}

/// The checks of a `PUT` of `body` as entity `id` of `kind` over every stored entity:
/// the body prepared ([`entities::prepare_put`]), the whole configuration with it
/// validated (policies compiled), a certificate checked.
fn plan_put(
    kind: Kind,
    id: &str,
    body: Value,
    stored: &[gatehouse_store::Stored],
    assign_to: Option<&str>,
    now: std::time::SystemTime,
) -> Result<PlannedPut, ApiError> {
    let existing = stored.iter().find(|s| s.kind == kind && s.id == id);
    let body = entities::prepare_put(kind, id, body, existing.map(|s| &s.body))?;
    let mut config = entities::configuration(stored)?;
    entities::apply(&mut config, kind, id, Some(&body))
        .map_err(|message| ApiError::BadRequest(format!("invalid {}: {message}", noun(kind))))?;
    // A new API joins the gateway that serves everything (dev mode), if any.
    let assignment = match (assign_to, kind, existing) {
        (Some(gateway), Kind::Api, None) => assign_api(&mut config, stored, gateway, id)?,
        _ => None,
    };
    if kind == Kind::Certificate
        && let Some(certificate) = config.certificates.iter().find(|c| c.id == id)
    {
        validate_certificate(certificate, now)?;
    }
    validate(&config)?;
    Ok(PlannedPut {
        body,
        created: existing.is_none(),
        assignment,
    })
}

async fn delete_item(
    State(state): State<AppState>,
    kind: Kind,
    id: String,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let precondition = precondition(&headers)?;
    delete_entity(&state, kind, id, precondition).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes one entity (the management API's `DELETE` and the portal's): refused while
/// others refer to it; a gateway's tokens stop working and its instances leave the
/// status.
///
/// # Errors
///
/// 404 when it does not exist, 409 while it is in use, and the store's errors.
pub(crate) async fn delete_entity(
    state: &AppState,
    kind: Kind,
    id: String,
    precondition: Precondition,
) -> Result<(), ApiError> {
    let deleted_id = id.clone();
    state
        .write_planned(move |_, stored| {
            if !stored.iter().any(|s| s.kind == kind && s.id == id) {
                return Err(not_found(kind, &id));
            }
            let mut config = entities::configuration(&stored)?;
            entities::apply(&mut config, kind, &id, None).map_err(ApiError::BadRequest)?;
            if let Err(errors) = config.validate() {
                let referrers = entities::referrers(&errors);
                return Err(ApiError::Conflict(format!(
                    "{} `{id}` is still used by {}: remove it from them, or delete them, first",
                    noun(kind),
                    referrers.join(", ")
                )));
            }
            if let Err(error) = validate(&config) {
                return Err(ApiError::Conflict(format!(
                    "{} `{id}` is still in use: {error}",
                    noun(kind)
                )));
            }
            Ok((
                vec![WriteOp::Delete {
                    kind,
                    id,
                    precondition,
                }],
                (),
            ))
        })
        .await?;
    if kind == Kind::Gateway {
        // Its tokens stop working now, and its instances leave the status.
        state.store.forget_gateway(&deleted_id).await?;
    }
    Ok(())
}

/// Adds API `api` to gateway `gateway` in `config`, and returns the write doing the
/// same in storage; `None` when that gateway does not exist (or has it already).
fn assign_api(
    config: &mut Configuration,
    stored: &[gatehouse_store::Stored],
    gateway: &str,
    api: &str,
) -> Result<Option<WriteOp>, ApiError> {
    let Some(entity) = stored
        .iter()
        .find(|s| s.kind == Kind::Gateway && s.id == gateway)
    else {
        return Ok(None);
    };
    let Some(assigned) = config.gateways.iter_mut().find(|g| g.id == gateway) else {
        return Ok(None);
    };
    if assigned.apis.iter().any(|a| a == api) {
        return Ok(None);
    }
    assigned.apis.push(api.to_owned());
    let mut body = entity.body.clone();
    let apis = body.as_object_mut().map(|object| {
        object
            .entry("apis")
            .or_insert_with(|| Value::Array(Vec::new()))
    });
    match apis {
        Some(Value::Array(list)) => list.push(Value::String(api.to_owned())),
        _ => {
            return Err(ApiError::internal(std::io::Error::other(format!(
                "gateway `{gateway}` is stored without an `apis` list"
            ))));
        }
    }
    tracing::info!(
        api,
        gateway,
        "new API assigned to the gateway that serves every API (dev mode)"
    );
    Ok(Some(WriteOp::Put {
        kind: Kind::Gateway,
        id: gateway.to_owned(),
        body,
        precondition: Precondition::IfMatch(entity.revision),
    }))
}

/// Checks a whole configuration as a gateway would load it: references, ids,
/// templates, and every policy compiled.
///
/// # Errors
///
/// 400 naming what is wrong (policy errors with line and column).
pub fn validate(config: &Configuration) -> Result<(), ApiError> {
    config
        .validate()
        .map_err(|errors| ApiError::Invalid(format!("invalid configuration:\n{errors}")))?;
    gatehouse_policy::compile_configuration(config, "policy", |_, _| {})
        .map_err(|error| ApiError::Invalid(error.to_string()))
}

/// Checks a certificate being written as a listener or client would load it: every
/// PEM block of `certificatePem` decodes, the leaf parses as X.509 and is valid at
/// `now`, and `privateKeyPem`, when given, is a usable key of that leaf. Only the
/// entity written is checked: a stored certificate that expired since does not block
/// other writes.
///
/// # Errors
///
/// 400 naming the field (`certificatePem` or `privateKeyPem`) and the problem. The
/// message never quotes the private key.
pub fn validate_certificate(
    certificate: &gatehouse_model::Certificate,
    now: std::time::SystemTime,
) -> Result<(), ApiError> {
    use gatehouse_tls::TlsError;
    use gatehouse_tls::certificate::{CertificateDetails, certified_key, parse_certificates};
    let checked = match &certificate.private_key_pem {
        Some(key) => certified_key(&certificate.certificate_pem, key, now).map(drop),
        None => parse_certificates(&certificate.certificate_pem)
            .and_then(|chain| CertificateDetails::from_der(&chain[0])?.check_validity(now)),
    };
    checked.map_err(|error| {
        let field = match &error {
            TlsError::Pem {
                what: "private key",
                ..
            }
            | TlsError::UnsupportedKey(_)
            | TlsError::KeyMismatch { .. } => "privateKeyPem",
            _ => "certificatePem",
        };
        let problem = match error {
            TlsError::Pem { reason, .. } => reason,
            other => other.to_string(),
        };
        ApiError::Invalid(format!(
            "invalid certificate `{}`: `{field}`: {problem}",
            certificate.id
        ))
    })
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    // Ignoring a precondition the caller asked for would write when they meant not to,
    // so what cannot be honoured is refused.
    let create_only = match headers.get(header::IF_NONE_MATCH) {
        None => false,
        Some(value) if value.as_bytes().trim_ascii() == b"*" => true,
        Some(value) => {
            return Err(ApiError::BadRequest(format!(
                "If-None-Match supports only `*` (create only), got {}",
                String::from_utf8_lossy(value.as_bytes())
            )));
        }
    };
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(if create_only {
            Precondition::IfNoneMatch
        } else {
            Precondition::None
        });
    };
    if create_only {
        return Err(ApiError::BadRequest(
            "send either If-Match (replace only) or If-None-Match: * (create only), not both"
                .to_owned(),
        ));
    }
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(Precondition::None);
    }
    let revision = text
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u64>()
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "If-Match must be an ETag this API returned, like \"42\" (got {text})"
            ))
        })?;
    Ok(Precondition::IfMatch(revision))
}

fn entity_response(status: StatusCode, kind: Kind, body: &Value, revision: u64) -> Response {
    let mut response = (status, axum::Json(entities::redact(kind, body))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn not_found(kind: Kind, id: &str) -> ApiError {
    ApiError::NotFound {
        kind: noun(kind),
        id: id.to_owned(),
    }
}

// === subscriptions ===

async fn load(state: &AppState, kind: Kind, id: &str) -> Result<(Value, u64), ApiError> {
    let stored = state
        .get(kind, id)
        .await?
        .ok_or_else(|| not_found(kind, id))?;
    Ok((stored.body, stored.revision))
}

/// Changes one stored subscription with `change` and writes it, validated as a `PUT`.
async fn update_subscription(
    state: &AppState,
    id: &str,
    change: impl FnOnce(&mut Value) + Send + 'static,
) -> Result<(Value, u64), ApiError> {
    let id = id.to_owned();
    state
        .write_planned(move |_, stored| {
            let mut body = stored
                .iter()
                .find(|s| s.kind == Kind::Subscription && s.id == id)
                .map(|s| s.body.clone())
                .ok_or_else(|| not_found(Kind::Subscription, &id))?;
            change(&mut body);
            let mut config = entities::configuration(&stored)?;
            entities::apply(&mut config, Kind::Subscription, &id, Some(&body))
                .map_err(ApiError::BadRequest)?;
            validate(&config)?;
            let op = WriteOp::Put {
                kind: Kind::Subscription,
                id,
                body: body.clone(),
                precondition: Precondition::None,
            };
            Ok((vec![op], body))
        })
        .await
        .map(|(revision, body)| (body, revision))
}

/// Gives subscription `id` a new primary or secondary key (the old one stops working).
///
/// # Errors
///
/// 404 when it does not exist, and storage errors.
pub(crate) async fn regenerate_subscription_key(
    state: &AppState,
    id: &str,
    key_type: KeyType,
) -> Result<(Value, u64), ApiError> {
    let field = match key_type {
        KeyType::Primary => "primaryKey",
        KeyType::Secondary => "secondaryKey",
    };
    update_subscription(state, id, move |body| {
        body[field] = Value::String(crate::auth::new_secret());
    })
    .await
}

/// Suspends (`"suspended"`) or activates (`"active"`) subscription `id`.
///
/// # Errors
///
/// 404 when it does not exist, and storage errors.
pub(crate) async fn set_subscription_state(
    state: &AppState,
    id: &str,
    value: &'static str,
) -> Result<(Value, u64), ApiError> {
    update_subscription(state, id, move |body| {
        body["state"] = Value::String(value.to_owned());
    })
    .await
}

/// The keys of subscription `id`: the only way to read them.
///
/// # Errors
///
/// 404 when it does not exist, and storage errors.
pub(crate) async fn subscription_secrets(
    state: &AppState,
    id: &str,
) -> Result<SubscriptionSecrets, ApiError> {
    let (body, _) = load(state, Kind::Subscription, id).await?;
    let key = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    Ok(SubscriptionSecrets {
        primary_key: key("primaryKey"),
        secondary_key: key("secondaryKey"),
    })
}

async fn list_subscription_secrets(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(subscription_secrets(&state, &id).await?).into_response())
}

// === gateways ===

/// Which of a gateway's two keys.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// Body of `POST /gateways/{id}/regenerate-key`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RegenerateKey {
    /// The key to replace; every token it signed stops working.
    key_type: KeyType,
}

/// Body of `POST /gateways/{id}/generate-token`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GenerateToken {
    /// The key that signs the token.
    key_type: KeyType,
    /// When the token expires: an ISO 8601 / RFC 3339 UTC time, at most 30 days ahead.
    #[schema(example = "2026-12-24T00:00:00Z")]
    expiry: String,
}

/// Answer of `POST /gateways/{id}/generate-token`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GatewayTokenValue {
    /// `GatewayKey <id>&<yyyyMMddHHmm>&<signature>`: the whole `Authorization` header
    /// value for the Configuration API.
    #[schema(example = "GatewayKey edge&202612240000&c2lnbmF0dXJl")]
    value: String,
}

/// Answer of `POST /subscriptions/{id}/list-secrets`: the only way to read the keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionSecrets {
    /// Primary key.
    pub(crate) primary_key: Option<String>,
    /// Secondary key.
    pub(crate) secondary_key: Option<String>,
}

/// The gateway's keys, created on first use.
pub(crate) async fn ensure_gateway_keys(
    state: &AppState,
    id: &str,
) -> Result<GatewayKeys, ApiError> {
    match state.gateway_keys(id).await? {
        Some(keys) => Ok(keys),
        None => new_gateway_keys(state, id).await,
    }
}

/// Gives a gateway two new keys (replacing any).
async fn new_gateway_keys(state: &AppState, id: &str) -> Result<GatewayKeys, ApiError> {
    let keys = GatewayKeys {
        primary: crate::auth::new_secret(),
        secondary: crate::auth::new_secret(),
    };
    state.set_gateway_keys(id, &keys).await?;
    Ok(keys)
}

async fn regenerate_gateway_key_handler(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: RegenerateKey = parse_body(body).await?;
    regenerate_gateway_key(&state, &id, request.key_type).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Gives gateway `id` a new primary or secondary signing key: every token the old one
/// signed stops working.
///
/// # Errors
///
/// 404 when the gateway does not exist, and storage errors.
pub(crate) async fn regenerate_gateway_key(
    state: &AppState,
    id: &str,
    key_type: KeyType,
) -> Result<(), ApiError> {
    load(state, Kind::Gateway, id).await?;
    let mut keys = ensure_gateway_keys(state, id).await?;
    match key_type {
        KeyType::Primary => keys.primary = crate::auth::new_secret(),
        KeyType::Secondary => keys.secondary = crate::auth::new_secret(),
    }
    state.set_gateway_keys(id, &keys).await?;
    tracing::info!(gateway = %id, key = ?key_type, "gateway key regenerated; tokens signed with the old key are no longer valid");
    Ok(())
}

async fn generate_gateway_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: GenerateToken = parse_body(body).await?;
    let expiry_unix = parse_expiry(&request.expiry)?;
    let token = gateway_token(&state, &id, request.key_type, expiry_unix).await?;
    Ok(axum::Json(GatewayTokenValue {
        value: token.to_string(),
    })
    .into_response())
}

/// A token for gateway `id` signed with its `key_type` key, expiring at `expiry_unix`
/// (at most 30 days ahead).
///
/// # Errors
///
/// 404 when the gateway does not exist, 400 for an expiry out of range, and storage
/// errors.
pub(crate) async fn gateway_token(
    state: &AppState,
    id: &str,
    key_type: KeyType,
    expiry_unix: i64,
) -> Result<GatewayToken, ApiError> {
    load(state, Kind::Gateway, id).await?;
    gatehouse_model::token::validate_expiry(unix_now(), expiry_unix)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let keys = ensure_gateway_keys(state, id).await?;
    let key = match key_type {
        KeyType::Primary => keys.primary,
        KeyType::Secondary => keys.secondary,
    };
    GatewayToken::sign(id, key.as_bytes(), expiry_unix)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `expiry` of `generate-token`: RFC 3339 with `Z` or a `+hh:mm`/`-hh:mm` offset, or
/// without an offset (read as UTC); seconds optional.
fn parse_expiry(text: &str) -> Result<i64, ApiError> {
    let bad = |reason: String| {
        ApiError::BadRequest(format!(
            "`expiry` must be an ISO 8601 time like 2026-12-24T00:00:00Z or 2026-12-24T02:00:00+02:00: {reason}"
        ))
    };
    let text = text.trim();
    let has_offset = text.ends_with(['Z', 'z'])
        || text
            .get(text.len().saturating_sub(6)..)
            .is_some_and(|tail| {
                tail.starts_with(['+', '-']) && tail.as_bytes().get(3) == Some(&b':')
            });
    if has_offset {
        let format = time::format_description::well_known::Rfc3339;
        let with_seconds;
        // RFC 3339 requires seconds; `…T10:00+02:00` is common enough to accept.
        let parsed = match time::OffsetDateTime::parse(text, &format) {
            Ok(parsed) => parsed,
            Err(first) => {
                let (head, offset) =
                    text.split_at(text.len() - if text.ends_with(['Z', 'z']) { 1 } else { 6 });
                with_seconds = format!("{head}:00{offset}");
                time::OffsetDateTime::parse(&with_seconds, &format)
                    .map_err(|_| bad(first.to_string()))?
            }
        };
        return Ok(parsed.unix_timestamp());
    }
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| bad(e.to_string()))?;
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad("it is before 1970".to_owned()))?
        .as_secs();
    i64::try_from(seconds).map_err(|_| bad("it is too far ahead".to_owned()))
}

async fn parse_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let value = read_json(body, MAX_BODY_BYTES).await?;
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[cfg(test)]
#[path = "management_tests.rs"]
mod tests;
