//! APIs (list and detail) and the policy editor for every scope: global, product, API
//! and operation. The editor validates as you type by running the checks of a
//! management API `PUT` without writing ([`management::check_put`]), and saves with
//! [`management::put_entity`].

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use gatehouse_model::Configuration;
use gatehouse_store::{Kind, Precondition};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::session::ActiveSession;
use super::{Done, Fields, Page, PortalResult, render, render_with};
use crate::AppState;
use crate::entities::{self, GLOBAL_POLICY_ID};
use crate::error::ApiError;
use crate::management;

type Session = axum::Extension<ActiveSession>;
type Id = axum::extract::Path<String>;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/apis", get(list))
        .route("/portal/apis/{id}", get(detail))
        .route("/portal/policy", get(editor).post(save))
        .route("/portal/policy/validate", post(validate))
}

/// Every entity, as the configuration model.
pub(super) async fn configuration(state: &AppState) -> Result<(u64, Configuration), ApiError> {
    let (revision, stored) = state.all().await?;
    Ok((revision, entities::configuration(&stored)?))
}

// === list and detail ===

#[derive(Template)]
#[template(path = "portal/apis.html")]
struct ListPage {
    p: Page,
    apis: Vec<gatehouse_model::Api>,
}

async fn list(State(state): State<AppState>, session: Session, done: Query<Done>) -> PortalResult {
    let (_, config) = configuration(&state).await?;
    render(&ListPage {
        p: Page::new(&session, "apis", "APIs".to_owned()).with_notice(done.notice()),
        apis: config.apis,
    })
}

/// A policy document at one scope, for the detail page.
struct ScopedPolicy {
    scope: String,
    /// The document, highlighted.
    document: Option<Vec<super::highlight::Piece>>,
    edit: String,
}

#[derive(Template)]
#[template(path = "portal/api.html")]
struct DetailPage {
    p: Page,
    api: gatehouse_model::Api,
    products: Vec<String>,
    gateways: Vec<String>,
    policies: Vec<ScopedPolicy>,
}

async fn detail(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    done: Query<Done>,
) -> PortalResult {
    let (_, config) = configuration(&state).await?;
    let Some(api) = config.apis.iter().find(|a| a.id == id.0).cloned() else {
        return Err(ApiError::NotFound {
            kind: "API",
            id: id.0,
        }
        .into());
    };
    let products: Vec<&gatehouse_model::Product> = config
        .products
        .iter()
        .filter(|p| p.apis.contains(&api.id))
        .collect();
    let mut policies = vec![ScopedPolicy {
        scope: "Global (all APIs)".to_owned(),
        document: config.policy.as_deref().map(super::highlight::highlight),
        edit: "/portal/policy".to_owned(),
    }];
    for product in &products {
        policies.push(ScopedPolicy {
            scope: format!("Product {}", product.id),
            document: product.policy.as_deref().map(super::highlight::highlight),
            edit: format!("/portal/policy?product={}", product.id),
        });
    }
    policies.push(ScopedPolicy {
        scope: format!("API {}", api.id),
        document: api.policy.as_deref().map(super::highlight::highlight),
        edit: format!("/portal/policy?api={}", api.id),
    });
    for operation in &api.operations {
        policies.push(ScopedPolicy {
            scope: format!("Operation {}", operation.id),
            document: operation.policy.as_deref().map(super::highlight::highlight),
            edit: format!("/portal/policy?api={}&operation={}", api.id, operation.id),
        });
    }
    render(&DetailPage {
        p: Page::new(&session, "apis", format!("API {}", api.id)).with_notice(done.notice()),
        products: products.iter().map(|p| p.id.clone()).collect(),
        gateways: config
            .gateways
            .iter()
            .filter(|g| g.apis.contains(&api.id))
            .map(|g| g.id.clone())
            .collect(),
        policies,
        api,
    })
}

// === policy editor ===

/// Which policy document: the global one, a product's, an API's or an operation's.
#[derive(Debug, Clone, Deserialize, Default)]
struct Target {
    product: Option<String>,
    api: Option<String>,
    operation: Option<String>,
}

impl Target {
    fn from_fields(fields: &Fields) -> Self {
        let some = |name: &str| Some(fields.get(name)).filter(|v| !v.is_empty());
        Self {
            product: some("product"),
            api: some("api"),
            operation: some("operation"),
        }
    }

    /// The entity holding the document.
    fn entity(&self) -> Result<(Kind, &str), ApiError> {
        match (&self.product, &self.api, &self.operation) {
            (None, None, None) => Ok((Kind::Policy, GLOBAL_POLICY_ID)),
            (Some(product), None, None) => Ok((Kind::Product, product)),
            (None, Some(api), _) => Ok((Kind::Api, api)),
            _ => Err(ApiError::BadRequest(
                "name a product, an API, or an API and one of its operations".to_owned(),
            )),
        }
    }

    fn describe(&self) -> String {
        match (&self.product, &self.api, &self.operation) {
            (Some(product), _, _) => format!("product {product}"),
            (_, Some(api), Some(operation)) => format!("operation {operation} of API {api}"),
            (_, Some(api), None) => format!("API {api}"),
            _ => "global policy".to_owned(),
        }
    }

    /// Where to go after saving.
    fn back(&self) -> String {
        match (&self.product, &self.api) {
            (Some(_), _) => "/portal/products".to_owned(),
            (_, Some(api)) => format!("/portal/apis/{api}"),
            _ => "/portal/apis".to_owned(),
        }
    }

    /// The document in `body`, the stored entity.
    fn document(&self, body: &Value) -> Result<String, ApiError> {
        let holder = match &self.operation {
            Some(operation) => operation_of(body, operation)?,
            None => body,
        };
        let field = if self.entity()?.0 == Kind::Policy {
            "value"
        } else {
            "policy"
        };
        Ok(holder
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// `body` (the stored entity, or `{}` for a global policy not set yet) with the
    /// document replaced; an empty document removes it.
    fn with_document(&self, mut body: Value, document: &str) -> Result<Value, ApiError> {
        let kind = self.entity()?.0;
        if kind == Kind::Policy {
            return Ok(serde_json::json!({ "value": document }));
        }
        let holder = match &self.operation {
            Some(operation) => operation_of_mut(&mut body, operation)?,
            None => &mut body,
        };
        if let Value::Object(object) = holder {
            if document.trim().is_empty() {
                object.remove("policy");
            } else {
                object.insert("policy".to_owned(), Value::String(document.to_owned()));
            }
        }
        Ok(body)
    }
}

fn operation_of<'a>(body: &'a Value, operation: &str) -> Result<&'a Value, ApiError> {
    body.get("operations")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|o| o.get("id").and_then(Value::as_str) == Some(operation))
        })
        .ok_or_else(|| ApiError::NotFound {
            kind: "operation",
            id: operation.to_owned(),
        })
}

fn operation_of_mut<'a>(body: &'a mut Value, operation: &str) -> Result<&'a mut Value, ApiError> {
    body.get_mut("operations")
        .and_then(Value::as_array_mut)
        .and_then(|list| {
            list.iter_mut()
                .find(|o| o.get("id").and_then(Value::as_str) == Some(operation))
        })
        .ok_or_else(|| ApiError::NotFound {
            kind: "operation",
            id: operation.to_owned(),
        })
}

/// A validation problem, with its place when the message names one.
pub(crate) struct Problem {
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
    pub(crate) message: String,
    /// The text of the line the problem is on.
    pub(crate) excerpt: Option<String>,
}

impl Problem {
    fn new(message: String, document: &str) -> Self {
        let place = line_and_column(&message);
        let excerpt = place.and_then(|(line, _)| {
            document
                .lines()
                .nth(line.saturating_sub(1) as usize)
                .map(str::to_owned)
        });
        Self {
            line: place.map(|(line, _)| line),
            column: place.map(|(_, column)| column),
            message,
            excerpt,
        }
    }
}

/// The first `:<line>:<column>` in a policy error (`origin:line:column: message`).
pub(crate) fn line_and_column(message: &str) -> Option<(u32, u32)> {
    let bytes = message.as_bytes();
    let mut start = 0;
    while let Some(offset) = message[start..].find(':') {
        let at = start + offset + 1;
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let line_len = digits(at);
        if line_len > 0 && bytes.get(at + line_len) == Some(&b':') {
            let column_at = at + line_len + 1;
            let column_len = digits(column_at);
            if column_len > 0 {
                let line = message[at..at + line_len].parse().ok();
                let column = message[column_at..column_at + column_len].parse().ok();
                if let (Some(line), Some(column)) = (line, column) {
                    return Some((line, column));
                }
            }
        }
        start = at;
    }
    None
}

#[derive(Template)]
#[template(path = "portal/policy.html")]
struct EditorPage {
    p: Page,
    target: Target,
    what: String,
    back: String,
    revision: u64,
    document: String,
    problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "portal/policy_check.html")]
struct CheckFragment {
    problem: Option<Problem>,
}

/// The stored entity holding the target's document, and its revision (`None`: a
/// global policy not set yet).
async fn holder(state: &AppState, target: &Target) -> Result<Option<(Value, u64)>, ApiError> {
    let (kind, id) = target.entity()?;
    match state.get(kind, id).await? {
        Some(stored) => Ok(Some((stored.body, stored.revision))),
        None if kind == Kind::Policy => Ok(None),
        None => Err(ApiError::NotFound {
            kind: entities::noun(kind),
            id: id.to_owned(),
        }),
    }
}

async fn editor(
    State(state): State<AppState>,
    session: Session,
    Query(target): Query<Target>,
) -> PortalResult {
    let stored = holder(&state, &target).await?;
    let (document, revision) = match &stored {
        Some((body, revision)) => (target.document(body)?, *revision),
        None => (String::new(), 0),
    };
    render(&EditorPage {
        p: Page::new(
            &session,
            if target.product.is_some() {
                "products"
            } else {
                "apis"
            },
            format!("Policy: {}", target.describe()),
        ),
        what: target.describe(),
        back: target.back(),
        target,
        revision,
        document,
        problem: None,
    })
}

/// The body a save of `document` would write.
async fn planned(
    state: &AppState,
    target: &Target,
    document: &str,
) -> Result<(Kind, String, Value), ApiError> {
    let (kind, id) = target.entity()?;
    let base = holder(state, target)
        .await?
        .map_or_else(entities::empty_object, |(body, _)| body);
    Ok((kind, id.to_owned(), target.with_document(base, document)?))
}

/// Validation as you type (htmx): the checks of a save, nothing written.
async fn validate(State(state): State<AppState>, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let target = Target::from_fields(&fields);
    let document = fields.raw("policy").unwrap_or_default();
    let (kind, id, body) = planned(&state, &target, document).await?;
    let problem = match management::check_put(&state, kind, &id, body).await {
        Ok(()) => None,
        Err(ApiError::Internal(source)) => return Err(ApiError::Internal(source).into()),
        Err(error) => Some(Problem::new(error.to_string(), document)),
    };
    render(&CheckFragment { problem })
}

async fn save(State(state): State<AppState>, session: Session, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let target = Target::from_fields(&fields);
    let document = fields.raw("policy").unwrap_or_default().to_owned();
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    let (kind, id, body) = planned(&state, &target, &document).await?;
    let precondition = if revision == 0 {
        Precondition::IfNoneMatch
    } else {
        Precondition::IfMatch(revision)
    };
    let written = if kind == Kind::Policy && document.trim().is_empty() {
        if revision == 0 {
            Ok(())
        } else {
            management::delete_entity(&state, kind, id, precondition).await
        }
    } else {
        management::put_entity(&state, kind, id, body, precondition)
            .await
            .map(drop)
    };
    match written {
        Ok(()) => {
            let back = target.back();
            let separator = if back.contains('?') { '&' } else { '?' };
            Ok(Redirect::to(&format!("{back}{separator}done=saved")).into_response())
        }
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source).into()),
        Err(error) => render_with(
            if error.status().is_client_error() {
                error.status()
            } else {
                StatusCode::BAD_REQUEST
            },
            &EditorPage {
                p: Page::new(&session, "apis", format!("Policy: {}", target.describe())),
                what: target.describe(),
                back: target.back(),
                revision,
                problem: Some(Problem::new(error.to_string(), &document)),
                document,
                target,
            },
        ),
    }
}

#[cfg(test)]
#[path = "apis_tests.rs"]
mod tests;
