//! Products, subscriptions (keys shown only when asked, regenerated), named values
//! (secret values never shown) and certificates (subject, expiry, host names).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use gatehouse_model::Configuration;
use gatehouse_store::{Kind, Precondition};
use serde_json::Value;

use super::apis::configuration;
use super::session::ActiveSession;
use super::{Done, Fields, Page, PortalResult, render, render_with};
use crate::AppState;
use crate::error::ApiError;
use crate::management::{self, KeyType, SubscriptionSecrets};

type Session = axum::Extension<ActiveSession>;
type Id = axum::extract::Path<String>;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/products", get(products).post(create_product))
        .route("/portal/products/new", get(new_product))
        .route("/portal/products/{id}", post(update_product))
        .route("/portal/products/{id}/edit", get(edit_product))
        .route(
            "/portal/products/{id}/delete",
            get(|state, session, id| confirm_delete(state, session, id, &PRODUCT))
                .post(|state, session, id, body| delete(state, session, id, body, &PRODUCT)),
        )
        .route(
            "/portal/subscriptions",
            get(subscriptions).post(create_subscription),
        )
        .route("/portal/subscriptions/new", get(new_subscription))
        .route(
            "/portal/subscriptions/{id}/delete",
            get(|state, session, id| confirm_delete(state, session, id, &SUBSCRIPTION))
                .post(|state, session, id, body| delete(state, session, id, body, &SUBSCRIPTION)),
        )
        .route("/portal/subscriptions/{id}/keys", post(show_keys))
        .route("/portal/subscriptions/{id}/regenerate", post(regenerate))
        .route("/portal/subscriptions/{id}/state", post(set_state))
        .route(
            "/portal/named-values",
            get(named_values).post(create_named_value),
        )
        .route("/portal/named-values/new", get(new_named_value))
        .route("/portal/named-values/{id}", post(update_named_value))
        .route("/portal/named-values/{id}/edit", get(edit_named_value))
        .route(
            "/portal/named-values/{id}/delete",
            get(|state, session, id| confirm_delete(state, session, id, &NAMED_VALUE))
                .post(|state, session, id, body| delete(state, session, id, body, &NAMED_VALUE)),
        )
        .route("/portal/certificates", get(certificates))
}

// === products ===

#[derive(Template)]
#[template(path = "portal/products.html")]
struct ProductsPage {
    p: Page,
    products: Vec<gatehouse_model::Product>,
    /// Subscriptions per product id.
    subscriptions: Vec<(String, usize)>,
}

impl ProductsPage {
    fn subscription_count(&self, product: &str) -> usize {
        self.subscriptions
            .iter()
            .find(|(id, _)| id == product)
            .map_or(0, |(_, count)| *count)
    }
}

async fn products(
    State(state): State<AppState>,
    session: Session,
    done: Query<Done>,
) -> PortalResult {
    let (_, config) = configuration(&state).await?;
    let subscriptions = config
        .products
        .iter()
        .map(|product| {
            let count = config
                .subscriptions
                .iter()
                .filter(|s| {
                    matches!(&s.scope, gatehouse_model::SubscriptionScope::Product(p) if *p == product.id)
                })
                .count();
            (product.id.clone(), count)
        })
        .collect();
    render(&ProductsPage {
        p: Page::new(&session, "products", "Products".to_owned()).with_notice(done.notice()),
        products: config.products,
        subscriptions,
    })
}

// === product forms ===

#[derive(Template)]
#[template(path = "portal/product_form.html")]
struct ProductForm {
    p: Page,
    /// `None`: a new product.
    existing: Option<String>,
    revision: u64,
    id: String,
    display_name: String,
    subscription_required: bool,
    /// Every API, and whether the product includes it.
    apis: Vec<(String, bool)>,
    error: Option<String>,
}

impl ProductForm {
    fn is_checked(&self, api: &str) -> bool {
        self.apis.iter().any(|(id, on)| id == api && *on)
    }
}

async fn all_api_ids(state: &AppState) -> Result<Vec<String>, ApiError> {
    let (_, config) = configuration(state).await?;
    Ok(config.apis.into_iter().map(|a| a.id).collect())
}

async fn stored(
    state: &AppState,
    kind: Kind,
    id: &str,
) -> Result<gatehouse_store::Stored, ApiError> {
    state
        .get(kind, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: crate::entities::noun(kind),
            id: id.to_owned(),
        })
}

async fn new_product(State(state): State<AppState>, session: Session) -> PortalResult {
    let apis = all_api_ids(&state).await?;
    render(&ProductForm {
        p: Page::new(&session, "products", "New product".to_owned()),
        existing: None,
        revision: 0,
        id: String::new(),
        display_name: String::new(),
        subscription_required: true,
        apis: apis.into_iter().map(|a| (a, false)).collect(),
        error: None,
    })
}

async fn edit_product(State(state): State<AppState>, session: Session, id: Id) -> PortalResult {
    let product = stored(&state, Kind::Product, &id).await?;
    let included: Vec<String> = product
        .body
        .get("apis")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let apis = all_api_ids(&state).await?;
    render(&ProductForm {
        p: Page::new(&session, "products", format!("Edit product {}", id.0)),
        existing: Some(id.0.clone()),
        revision: product.revision,
        display_name: product
            .body
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        subscription_required: product
            .body
            .get("subscriptionRequired")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        apis: apis
            .into_iter()
            .map(|a| {
                let on = included.contains(&a);
                (a, on)
            })
            .collect(),
        id: id.0,
        error: None,
    })
}

/// The product body: `base` (the stored one: its policy is kept) with the form's fields.
fn product_body(base: Value, fields: &Fields) -> Value {
    let mut object = match base {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    };
    let display_name = fields.get("displayName");
    if display_name.is_empty() {
        object.remove("displayName");
    } else {
        object.insert("displayName".to_owned(), Value::String(display_name));
    }
    object.insert(
        "subscriptionRequired".to_owned(),
        Value::Bool(fields.get("subscriptionRequired") == "on"),
    );
    object.insert(
        "apis".to_owned(),
        Value::Array(fields.all("apis").into_iter().map(Value::String).collect()),
    );
    Value::Object(object)
}

async fn save_product(
    state: &AppState,
    session: &ActiveSession,
    existing: Option<String>,
    fields: &Fields,
) -> PortalResult {
    let id = existing.clone().unwrap_or_else(|| fields.get("id"));
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    let written = if id.is_empty() {
        Err(ApiError::BadRequest("give the product an id".to_owned()))
    } else {
        let (base, precondition) = match &existing {
            Some(_) => (
                stored(state, Kind::Product, &id).await?.body,
                Precondition::IfMatch(revision),
            ),
            None => (
                Value::Object(serde_json::Map::new()),
                Precondition::IfNoneMatch,
            ),
        };
        management::put_entity(
            state,
            Kind::Product,
            id.clone(),
            product_body(base, fields),
            precondition,
        )
        .await
        .map(drop)
    };
    match written {
        Ok(()) => Ok(Redirect::to("/portal/products?done=saved").into_response()),
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source).into()),
        Err(error) => {
            let chosen = fields.all("apis");
            let apis = all_api_ids(state).await?;
            render_with(
                error.status(),
                &ProductForm {
                    p: Page::new(
                        session,
                        "products",
                        if existing.is_some() {
                            format!("Edit product {id}")
                        } else {
                            "New product".to_owned()
                        },
                    ),
                    existing,
                    revision,
                    id,
                    display_name: fields.get("displayName"),
                    subscription_required: fields.get("subscriptionRequired") == "on",
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
    }
}

async fn create_product(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> PortalResult {
    save_product(&state, &session, None, &Fields::parse(&body)).await
}

async fn update_product(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    body: Bytes,
) -> PortalResult {
    save_product(&state, &session, Some(id.0), &Fields::parse(&body)).await
}

// === subscriptions ===

/// A subscription as listed: never its keys, unless [`SubscriptionsPage::shown`].
struct SubscriptionRow {
    id: String,
    display_name: String,
    scope: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "portal/subscriptions.html")]
struct SubscriptionsPage {
    p: Page,
    rows: Vec<SubscriptionRow>,
    /// The one subscription whose keys the user asked to see, with them.
    shown: Option<(String, SubscriptionSecrets)>,
}

impl SubscriptionsPage {
    fn shown_for(&self, id: &str) -> Option<&SubscriptionSecrets> {
        self.shown
            .as_ref()
            .filter(|(shown, _)| shown == id)
            .map(|(_, secrets)| secrets)
    }
}

fn subscription_rows(config: Configuration) -> Vec<SubscriptionRow> {
    config
        .subscriptions
        .into_iter()
        .map(|s| SubscriptionRow {
            id: s.id,
            display_name: s.display_name.unwrap_or_default(),
            scope: s.scope.to_string(),
            state: s.state.as_str(),
        })
        .collect()
}

async fn subscriptions(
    State(state): State<AppState>,
    session: Session,
    done: Query<Done>,
) -> PortalResult {
    let (_, config) = configuration(&state).await?;
    render(&SubscriptionsPage {
        p: Page::new(&session, "subscriptions", "Subscriptions".to_owned())
            .with_notice(done.notice()),
        rows: subscription_rows(config),
        shown: None,
    })
}

/// The list again, with one subscription's keys: what "Show keys" asked for (a POST,
/// as the management API's `list-secrets`, so no link or prefetch reveals them).
async fn show_keys(State(state): State<AppState>, session: Session, id: Id) -> PortalResult {
    let secrets = management::subscription_secrets(&state, &id).await?;
    tracing::info!(subscription = %id.0, "portal: subscription keys shown");
    let (_, config) = configuration(&state).await?;
    render(&SubscriptionsPage {
        p: Page::new(&session, "subscriptions", "Subscriptions".to_owned()),
        rows: subscription_rows(config),
        shown: Some((id.0, secrets)),
    })
}

async fn regenerate(State(state): State<AppState>, id: Id, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let (key, done) = match fields.get("key").as_str() {
        "primary" => (KeyType::Primary, "regenerated-primary"),
        "secondary" => (KeyType::Secondary, "regenerated-secondary"),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown key `{other}`: primary or secondary"
            ))
            .into());
        }
    };
    management::regenerate_subscription_key(&state, &id, key).await?;
    Ok(Redirect::to(&format!("/portal/subscriptions?done={done}")).into_response())
}

/// Suspends or activates a subscription (the API's `suspend` and `activate`).
async fn set_state(State(state): State<AppState>, id: Id, body: Bytes) -> PortalResult {
    let fields = Fields::parse(&body);
    let (value, done) = match fields.get("state").as_str() {
        "suspended" => ("suspended", "suspended"),
        "active" => ("active", "activated"),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown state `{other}`: suspended or active"
            ))
            .into());
        }
    };
    management::set_subscription_state(&state, &id, value).await?;
    Ok(Redirect::to(&format!("/portal/subscriptions?done={done}")).into_response())
}

// === subscription forms ===

#[derive(Template)]
#[template(path = "portal/subscription_form.html")]
struct SubscriptionForm {
    p: Page,
    id: String,
    display_name: String,
    /// Every scope a subscription can have: (value, label).
    scopes: Vec<(String, String)>,
    scope: String,
    error: Option<String>,
}

async fn subscription_scopes(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let (_, config) = configuration(state).await?;
    let mut scopes = vec![("/apis".to_owned(), "All APIs".to_owned())];
    scopes.extend(
        config
            .products
            .iter()
            .map(|p| (format!("/products/{}", p.id), format!("Product {}", p.id))),
    );
    scopes.extend(
        config
            .apis
            .iter()
            .map(|a| (format!("/apis/{}", a.id), format!("API {}", a.id))),
    );
    Ok(scopes)
}

async fn new_subscription(State(state): State<AppState>, session: Session) -> PortalResult {
    render(&SubscriptionForm {
        p: Page::new(&session, "subscriptions", "New subscription".to_owned()),
        id: String::new(),
        display_name: String::new(),
        scopes: subscription_scopes(&state).await?,
        scope: String::new(),
        error: None,
    })
}

/// Creates a subscription: keys are generated by the write (never typed or shown here).
async fn create_subscription(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> PortalResult {
    let fields = Fields::parse(&body);
    let id = fields.get("id");
    let written = if id.is_empty() {
        Err(ApiError::BadRequest(
            "give the subscription an id".to_owned(),
        ))
    } else {
        let mut object = serde_json::Map::new();
        object.insert("scope".to_owned(), Value::String(fields.get("scope")));
        let display_name = fields.get("displayName");
        if !display_name.is_empty() {
            object.insert("displayName".to_owned(), Value::String(display_name));
        }
        management::put_entity(
            &state,
            Kind::Subscription,
            id.clone(),
            Value::Object(object),
            Precondition::IfNoneMatch,
        )
        .await
        .map(drop)
    };
    match written {
        Ok(()) => Ok(Redirect::to("/portal/subscriptions?done=created").into_response()),
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source).into()),
        Err(error) => render_with(
            error.status(),
            &SubscriptionForm {
                p: Page::new(&session, "subscriptions", "New subscription".to_owned()),
                id,
                display_name: fields.get("displayName"),
                scopes: subscription_scopes(&state).await?,
                scope: fields.get("scope"),
                error: Some(error.to_string()),
            },
        ),
    }
}

// === named values ===

/// A named value as listed: a secret one's value is never read into it.
struct NamedValueRow {
    name: String,
    /// The value of a plain named value; `None` for a secret.
    value: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/named_values.html")]
struct NamedValuesPage {
    p: Page,
    rows: Vec<NamedValueRow>,
}

async fn named_values(
    State(state): State<AppState>,
    session: Session,
    done: Query<Done>,
) -> PortalResult {
    let (_, config) = configuration(&state).await?;
    let rows = config
        .named_values
        .into_iter()
        .map(|n| NamedValueRow {
            // Security: a secret's value stays out of the page model altogether.
            value: (!n.secret).then_some(n.value),
            name: n.name,
        })
        .collect();
    render(&NamedValuesPage {
        p: Page::new(&session, "named-values", "Named values".to_owned())
            .with_notice(done.notice()),
        rows,
    })
}

// === named value forms ===

#[derive(Template)]
#[template(path = "portal/named_value_form.html")]
struct NamedValueForm {
    p: Page,
    /// `None`: a new named value.
    existing: Option<String>,
    revision: u64,
    name: String,
    /// The value to show in the field: never a secret's.
    value: String,
    secret: bool,
    /// Editing a secret: an empty value keeps the stored one.
    keeps_secret: bool,
    error: Option<String>,
}

async fn new_named_value(session: Session) -> PortalResult {
    render(&NamedValueForm {
        p: Page::new(&session, "named-values", "New named value".to_owned()),
        existing: None,
        revision: 0,
        name: String::new(),
        value: String::new(),
        secret: false,
        keeps_secret: false,
        error: None,
    })
}

async fn edit_named_value(State(state): State<AppState>, session: Session, id: Id) -> PortalResult {
    let stored = stored(&state, Kind::NamedValue, &id).await?;
    let secret = stored.body.get("secret").and_then(Value::as_bool) == Some(true);
    // Security: a secret's value is never put in the form.
    let value = if secret {
        String::new()
    } else {
        stored
            .body
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    render(&NamedValueForm {
        p: Page::new(
            &session,
            "named-values",
            format!("Edit named value {}", id.0),
        ),
        existing: Some(id.0.clone()),
        revision: stored.revision,
        name: id.0,
        value,
        secret,
        keeps_secret: secret,
        error: None,
    })
}

/// The named value body from a form: an empty value is left out, so a secret keeps its
/// stored one (as the API does when a PUT omits it), and a secret made plain without a
/// new value is refused rather than emptied.
fn named_value_body(name: &str, fields: &Fields) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("name".to_owned(), Value::String(name.to_owned()));
    let secret = fields.get("secret") == "on";
    object.insert("secret".to_owned(), Value::Bool(secret));
    if let Some(value) = fields.raw("value").filter(|v| !v.is_empty()) {
        object.insert("value".to_owned(), Value::String(value.to_owned()));
    }
    Value::Object(object)
}

async fn save_named_value(
    state: &AppState,
    session: &ActiveSession,
    existing: Option<String>,
    fields: &Fields,
) -> PortalResult {
    let name = existing.clone().unwrap_or_else(|| fields.get("name"));
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    let written = if name.is_empty() {
        Err(ApiError::BadRequest(
            "give the named value a name".to_owned(),
        ))
    } else {
        let precondition = if existing.is_some() {
            Precondition::IfMatch(revision)
        } else {
            Precondition::IfNoneMatch
        };
        let body = named_value_body(&name, fields);
        management::put_entity(state, Kind::NamedValue, name.clone(), body, precondition)
            .await
            .map(drop)
    };
    match written {
        Ok(()) => Ok(Redirect::to("/portal/named-values?done=saved").into_response()),
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source).into()),
        Err(error) => {
            let secret = fields.get("secret") == "on";
            render_with(
                error.status(),
                &NamedValueForm {
                    p: Page::new(
                        session,
                        "named-values",
                        if existing.is_some() {
                            format!("Edit named value {name}")
                        } else {
                            "New named value".to_owned()
                        },
                    ),
                    keeps_secret: existing.is_some() && secret,
                    existing,
                    revision,
                    name,
                    // Security: what was typed for a secret is not sent back.
                    value: if secret {
                        String::new()
                    } else {
                        fields.raw("value").unwrap_or_default().to_owned()
                    },
                    secret,
                    error: Some(error.to_string()),
                },
            )
        }
    }
}

async fn create_named_value(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> PortalResult {
    save_named_value(&state, &session, None, &Fields::parse(&body)).await
}

async fn update_named_value(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    body: Bytes,
) -> PortalResult {
    save_named_value(&state, &session, Some(id.0), &Fields::parse(&body)).await
}

#[derive(Template)]
#[template(path = "portal/confirm_delete.html")]
struct ConfirmDelete {
    p: Page,
    what: String,
    action: String,
    back: String,
    revision: u64,
    error: Option<String>,
}

// === deleting ===

/// What the delete pages say of one kind of entity, and where they lead.
struct Deletable {
    kind: Kind,
    /// The portal's section: its menu entry and path (`/portal/{section}`).
    section: &'static str,
    /// The entity's name in the page (`named value`).
    noun: &'static str,
    /// Said on the confirmation page after the entity's name.
    warning: &'static str,
}

const PRODUCT: Deletable = Deletable {
    kind: Kind::Product,
    section: "products",
    noun: "product",
    warning: "",
};

const SUBSCRIPTION: Deletable = Deletable {
    kind: Kind::Subscription,
    section: "subscriptions",
    noun: "subscription",
    warning: " (its keys stop working at once)",
};

const NAMED_VALUE: Deletable = Deletable {
    kind: Kind::NamedValue,
    section: "named-values",
    noun: "named value",
    warning: "",
};

impl Deletable {
    fn page(
        &self,
        session: &ActiveSession,
        id: &str,
        what: String,
        revision: u64,
        error: Option<String>,
    ) -> ConfirmDelete {
        ConfirmDelete {
            p: Page::new(session, self.section, format!("Delete {} {id}", self.noun)),
            what,
            action: format!("/portal/{}/{id}/delete", self.section),
            back: format!("/portal/{}", self.section),
            revision,
            error,
        }
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    deletable: &Deletable,
) -> PortalResult {
    let entity = stored(&state, deletable.kind, &id).await?;
    let what = format!("{} {}{}", deletable.noun, id.0, deletable.warning);
    render(&deletable.page(&session, &id.0, what, entity.revision, None))
}

async fn delete(
    State(state): State<AppState>,
    session: Session,
    id: Id,
    body: Bytes,
    deletable: &Deletable,
) -> PortalResult {
    let fields = Fields::parse(&body);
    let revision = fields.get("revision").parse::<u64>().unwrap_or(0);
    match management::delete_entity(
        &state,
        deletable.kind,
        id.0.clone(),
        Precondition::IfMatch(revision),
    )
    .await
    {
        Ok(()) => Ok(
            Redirect::to(&format!("/portal/{}?done=deleted", deletable.section)).into_response(),
        ),
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source).into()),
        Err(error) => {
            let what = format!("{} {}", deletable.noun, id.0);
            render_with(
                error.status(),
                &deletable.page(&session, &id.0, what, revision, Some(error.to_string())),
            )
        }
    }
}

// === certificates ===

struct CertificateRow {
    id: String,
    subject: String,
    issuer: String,
    not_after: String,
    expired: bool,
    thumbprint: String,
    has_private_key: bool,
    client_ca: bool,
    hostnames: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/certificates.html")]
struct CertificatesPage {
    p: Page,
    rows: Vec<CertificateRow>,
}

async fn certificates(State(state): State<AppState>, session: Session) -> PortalResult {
    use gatehouse_tls::certificate::{CertificateDetails, parse_certificates, rfc3339};
    let (_, config) = configuration(&state).await?;
    let now = crate::unix_now();
    let rows = config
        .certificates
        .iter()
        .map(|certificate| {
            let leaf = parse_certificates(&certificate.certificate_pem)
                .ok()
                .and_then(|chain| CertificateDetails::from_der(chain.first()?).ok());
            CertificateRow {
                id: certificate.id.clone(),
                subject: leaf
                    .as_ref()
                    .map_or_else(|| "(does not parse)".to_owned(), |l| l.subject.clone()),
                issuer: leaf.as_ref().map(|l| l.issuer.clone()).unwrap_or_default(),
                not_after: leaf
                    .as_ref()
                    .map(|l| rfc3339(l.not_after))
                    .unwrap_or_default(),
                expired: leaf.as_ref().is_some_and(|l| l.not_after < now),
                thumbprint: leaf
                    .as_ref()
                    .map(|l| l.thumbprint.clone())
                    .unwrap_or_default(),
                has_private_key: certificate.private_key_pem.is_some(),
                client_ca: certificate.client_ca,
                hostnames: config
                    .hostnames
                    .iter()
                    .filter(|h| h.certificate_id.as_deref() == Some(certificate.id.as_str()))
                    .map(|h| h.hostname.clone())
                    .collect(),
            }
        })
        .collect();
    render(&CertificatesPage {
        p: Page::new(&session, "certificates", "Certificates".to_owned()),
        rows,
    })
}
