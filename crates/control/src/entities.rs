//! How each kind of entity is stored, shown and checked.
//!
//! The store holds JSON documents; this module turns them into the configuration model
//! and back. It knows, per kind, which field is the id, which fields are write-only
//! (subscription keys, secret named values, private keys: never shown, kept when a PUT
//! omits them), and what a new entity gets by default (fresh subscription keys).

use gatehouse_model::Configuration;
use gatehouse_store::{Kind, Stored};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Id of the one `policy` entity.
pub const GLOBAL_POLICY_ID: &str = "global";

/// The path segment of a kind in the management API.
#[must_use]
pub const fn collection(kind: Kind) -> &'static str {
    match kind {
        Kind::Api => "apis",
        Kind::Product => "products",
        Kind::Subscription => "subscriptions",
        Kind::NamedValue => "named-values",
        Kind::Backend => "backends",
        Kind::Certificate => "certificates",
        Kind::Hostname => "hostnames",
        Kind::Gateway => "gateways",
        Kind::Policy => "policy",
        Kind::PolicyFragment => "policy-fragments",
    }
}

/// A human name of a kind, for messages.
#[must_use]
pub const fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Api => "API",
        Kind::Product => "product",
        Kind::Subscription => "subscription",
        Kind::NamedValue => "named value",
        Kind::Backend => "backend",
        Kind::Certificate => "certificate",
        Kind::Hostname => "hostname",
        Kind::Gateway => "gateway",
        Kind::Policy => "policy",
        Kind::PolicyFragment => "policy fragment",
    }
}

/// The JSON field holding the id.
const fn id_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Api
        | Kind::Product
        | Kind::Subscription
        | Kind::Backend
        | Kind::Certificate
        | Kind::Gateway
        | Kind::PolicyFragment => Some("id"),
        Kind::NamedValue => Some("name"),
        Kind::Hostname => Some("hostname"),
        Kind::Policy => None,
    }
}

/// Write-only fields: accepted on writes, never shown, sealed at rest
/// ([`crate::vault`]).
pub(crate) fn secret_fields(kind: Kind, body: &Value) -> &'static [&'static str] {
    match kind {
        Kind::Subscription => &["primaryKey", "secondaryKey"],
        Kind::NamedValue if body.get("secret").and_then(Value::as_bool) == Some(true) => &["value"],
        Kind::Certificate => &["privateKeyPem"],
        _ => &[],
    }
}

/// Prepares a PUT body: checks it is an object whose id (if present) matches the path,
/// fills in the id, keeps write-only fields the caller omitted from `existing`, and
/// gives a new subscription fresh keys.
///
/// # Errors
///
/// 400 when the body is not an object or names another id, or turns a secret named
/// value into a plain one without giving its value again.
pub fn prepare_put(
    kind: Kind,
    id: &str,
    body: Value,
    existing: Option<&Value>,
) -> Result<Value, ApiError> {
    let Value::Object(mut object) = body else {
        return Err(ApiError::BadRequest(format!(
            "the body must be a JSON object describing the {}",
            noun(kind)
        )));
    };
    if let Some(field) = id_field(kind) {
        match object.get(field) {
            Some(Value::String(given)) if given != id => {
                return Err(ApiError::BadRequest(format!(
                    "`{field}` in the body is `{given}` but the URL names `{id}`; they must match"
                )));
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err(ApiError::BadRequest(format!("`{field}` must be a string"))),
            None => {
                object.insert(field.to_owned(), Value::String(id.to_owned()));
            }
        }
    }
    if let Some(existing) = existing {
        let candidate = Value::Object(object.clone());
        let write_only = secret_fields(kind, &candidate);
        for field in secret_fields(kind, existing).iter().chain(write_only) {
            if object.contains_key(*field) {
                continue;
            }
            if !write_only.contains(field) {
                // Turning a secret into a plain value would show a value nobody was
                // allowed to read: it must be given again.
                return Err(ApiError::BadRequest(format!(
                    "{} `{id}` is secret and its `{field}` is never shown: give `{field}` again to make it a plain value",
                    noun(kind)
                )));
            }
            if let Some(previous) = existing.get(*field) {
                object.insert((*field).to_owned(), previous.clone());
            }
        }
    }
    if kind == Kind::Subscription && existing.is_none() {
        for field in ["primaryKey", "secondaryKey"] {
            object
                .entry(field)
                .or_insert_with(|| Value::String(crate::auth::new_secret()));
        }
    }
    Ok(Value::Object(object))
}

/// The entities that `errors` (a configuration's validation errors after a delete)
/// are about, as people name them (`subscription `eval``), each once, in order.
#[must_use]
pub fn referrers(errors: &gatehouse_model::ValidationErrors) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for error in &errors.0 {
        let Some((collection, rest)) = error.path.split_once('[') else {
            continue;
        };
        let Some((id, _)) = rest.split_once(']') else {
            continue;
        };
        let kind = match collection {
            "apis" => Kind::Api,
            "products" => Kind::Product,
            "subscriptions" => Kind::Subscription,
            "namedValues" => Kind::NamedValue,
            "backends" => Kind::Backend,
            "certificates" => Kind::Certificate,
            "hostnames" => Kind::Hostname,
            "gateways" => Kind::Gateway,
            "fragments" => Kind::PolicyFragment,
            _ => continue,
        };
        let referrer = format!("{} `{id}`", noun(kind));
        if !named.contains(&referrer) {
            named.push(referrer);
        }
    }
    if named.is_empty() {
        named.push("other entities".to_owned());
    }
    named
}

/// The entity as the management API shows it: write-only fields removed.
#[must_use]
pub fn redact(kind: Kind, body: &Value) -> Value {
    let mut shown = body.clone();
    if let Value::Object(object) = &mut shown {
        for field in secret_fields(kind, body) {
            object.remove(*field);
        }
    }
    shown
}

/// Builds the configuration model from every stored entity.
///
/// # Errors
///
/// 500 when a stored document no longer parses (it was validated when written, so this
/// means the database was edited by hand or by an incompatible version).
pub fn configuration(stored: &[Stored]) -> Result<Configuration, ApiError> {
    let mut config = Configuration::default();
    for entity in stored {
        // Stored ids are unique per kind: append without searching (linear, not
        // quadratic, in the number of entities).
        add(&mut config, entity.kind, &entity.body).map_err(|message| {
            ApiError::internal(std::io::Error::other(format!(
                "stored {} `{}` is unreadable: {message}",
                noun(entity.kind),
                entity.id
            )))
        })?;
    }
    Ok(config)
}

/// Appends one entity known not to be present yet.
fn add(config: &mut Configuration, kind: Kind, body: &Value) -> Result<(), String> {
    fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, String> {
        T::deserialize(body).map_err(|e| e.to_string())
    }
    match kind {
        Kind::Api => config.apis.push(parse(body)?),
        Kind::Product => config.products.push(parse(body)?),
        Kind::Subscription => config.subscriptions.push(parse(body)?),
        Kind::NamedValue => config.named_values.push(parse(body)?),
        Kind::Backend => config.backends.push(parse(body)?),
        Kind::Certificate => config.certificates.push(parse(body)?),
        Kind::Hostname => config.hostnames.push(parse(body)?),
        Kind::Gateway => config.gateways.push(parse(body)?),
        Kind::PolicyFragment => config.fragments.push(parse(body)?),
        Kind::Policy => config.policy = Some(parse::<PolicyBody>(body)?.value),
    }
    Ok(())
}

/// Puts (`Some`) or removes (`None`) one entity in a configuration.
///
/// # Errors
///
/// The deserialisation message when `body` is not a valid entity of `kind`.
pub fn apply(
    config: &mut Configuration,
    kind: Kind,
    id: &str,
    body: Option<&Value>,
) -> Result<(), String> {
    fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, String> {
        serde_json::from_value(body.clone()).map_err(|e| e.to_string())
    }
    fn upsert<T>(list: &mut Vec<T>, id: &str, key: impl Fn(&T) -> &str, item: Option<T>) {
        list.retain(|existing| key(existing) != id);
        if let Some(item) = item {
            list.push(item);
        }
    }
    match kind {
        Kind::Api => upsert(
            &mut config.apis,
            id,
            |a| &a.id,
            body.map(parse).transpose()?,
        ),
        Kind::Product => upsert(
            &mut config.products,
            id,
            |p| &p.id,
            body.map(parse).transpose()?,
        ),
        Kind::Subscription => upsert(
            &mut config.subscriptions,
            id,
            |s| &s.id,
            body.map(parse).transpose()?,
        ),
        Kind::NamedValue => upsert(
            &mut config.named_values,
            id,
            |n| &n.name,
            body.map(parse).transpose()?,
        ),
        Kind::Backend => upsert(
            &mut config.backends,
            id,
            |b| &b.id,
            body.map(parse).transpose()?,
        ),
        Kind::Certificate => upsert(
            &mut config.certificates,
            id,
            |c| &c.id,
            body.map(parse).transpose()?,
        ),
        Kind::Hostname => upsert(
            &mut config.hostnames,
            id,
            |h| &h.hostname,
            body.map(parse).transpose()?,
        ),
        Kind::Gateway => upsert(
            &mut config.gateways,
            id,
            |g| &g.id,
            body.map(parse).transpose()?,
        ),
        Kind::PolicyFragment => upsert(
            &mut config.fragments,
            id,
            |f| &f.id,
            body.map(parse).transpose()?,
        ),
        Kind::Policy => {
            config.policy = match body {
                Some(body) => Some(parse::<PolicyBody>(body)?.value),
                None => None,
            };
        }
    }
    Ok(())
}

/// Body of the global policy resource.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// The `<policies>` document.
    pub value: String,
}

/// Finds one entity of a configuration as JSON (what a gateway's snapshot would hold).
#[must_use]
pub fn find(config: &Configuration, kind: Kind, id: &str) -> Option<Value> {
    fn to_json<T: serde::Serialize>(item: Option<&T>) -> Option<Value> {
        item.and_then(|item| serde_json::to_value(item).ok())
    }
    match kind {
        Kind::Api => to_json(config.apis.iter().find(|a| a.id == id)),
        Kind::Product => to_json(config.products.iter().find(|p| p.id == id)),
        Kind::Subscription => to_json(config.subscriptions.iter().find(|s| s.id == id)),
        Kind::NamedValue => to_json(config.named_values.iter().find(|n| n.name == id)),
        Kind::Backend => to_json(config.backends.iter().find(|b| b.id == id)),
        Kind::Certificate => to_json(config.certificates.iter().find(|c| c.id == id)),
        Kind::Hostname => to_json(config.hostnames.iter().find(|h| h.hostname == id)),
        Kind::Gateway => to_json(config.gateways.iter().find(|g| g.id == id)),
        Kind::PolicyFragment => to_json(config.fragments.iter().find(|f| f.id == id)),
        Kind::Policy => config
            .policy
            .as_ref()
            .map(|value| serde_json::json!({ "value": value })),
    }
}

/// An empty JSON object, for actions without a body.
#[must_use]
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
#[path = "entities_tests.rs"]
mod tests;
