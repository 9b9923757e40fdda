//! The change stream of the Configuration API v2, and how it is applied to the
//! gateway's local copy of its configuration.
//!
//! `GET /v2/gateways/{id}/changes?since=R` answers `{"revision", "resync", "changes":
//! [{"revision", "kind", "id", "op", "entity"}]}`: for each entity written after `R`, its
//! state as the gateway's snapshot would now hold it (`upsert`, with `entity`) or
//! `delete`. Applying them in order to the configuration of revision `R` gives the
//! configuration of `revision`. This module does that, purely: no I/O, no compiling.
//!
//! An upsert replaces the entity with the same kind and id where it stands (so
//! unrelated entities keep their order), or appends it; a delete removes it (deleting
//! what is not there is not an error: the control plane sends deletes for entities that
//! left this gateway, which it may never have had). The `policy` kind is the global
//! policy, id `global`, body `{"value": "<policies>…"}`.

use gatehouse_model::wire::{Kind, Op};
use gatehouse_model::{
    Api, Backend, Certificate, Configuration, Hostname, NamedValue, PolicyFragment, Product,
    Subscription,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use gatehouse_model::wire::{Change, Changes};

/// Why a change could not be applied to the local copy. Each means the control plane
/// sent something this gateway does not understand; the gateway takes a new snapshot
/// rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// An upsert without its entity.
    #[error("change at revision {revision}: upsert of {kind} `{id}` carries no entity")]
    MissingEntity {
        /// Revision of the change.
        revision: u64,
        /// Entity kind.
        kind: Kind,
        /// Entity id.
        id: String,
    },
    /// The entity does not parse as its kind, or names another id.
    #[error("change at revision {revision}: {kind} `{id}` is not valid: {message}")]
    BadEntity {
        /// Revision of the change.
        revision: u64,
        /// Entity kind.
        kind: Kind,
        /// Entity id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// Revisions go backwards, or are not after `since`.
    #[error(
        "change stream out of order: revision {revision} after {previous} (asked for changes since {since})"
    )]
    OutOfOrder {
        /// Revision asked from.
        since: u64,
        /// Revision of the previous change (or `since`).
        previous: u64,
        /// The offending revision.
        revision: u64,
    },
}

/// Applies an answer of the change stream, received for `since`, to `config`, giving
/// the configuration at `response.revision`. `config` itself is left as it was, so a
/// failure leaves nothing half-applied.
///
/// # Errors
///
/// The first [`ChangeError`]; nothing is applied then.
pub fn apply_changes(
    config: &Configuration,
    since: u64,
    response: &Changes,
) -> Result<Configuration, ChangeError> {
    let mut next = config.clone();
    let mut previous = since;
    for change in &response.changes {
        // Several entities may share a revision (one transaction), so equal is fine.
        if change.revision <= since || change.revision < previous {
            return Err(ChangeError::OutOfOrder {
                since,
                previous,
                revision: change.revision,
            });
        }
        previous = change.revision;
        apply_change(&mut next, change)?;
    }
    if response.revision < previous {
        return Err(ChangeError::OutOfOrder {
            since,
            previous,
            revision: response.revision,
        });
    }
    Ok(next)
}

/// Applies one change to `config`.
///
/// # Errors
///
/// [`ChangeError`] when the change is not understood; `config` may then hold nothing
/// of it (checks come before the write).
pub fn apply_change(config: &mut Configuration, change: &Change) -> Result<(), ChangeError> {
    let upsert = change.op == Op::Upsert;
    let entity = if upsert {
        Some(
            change
                .entity
                .as_ref()
                .ok_or_else(|| ChangeError::MissingEntity {
                    revision: change.revision,
                    kind: change.kind,
                    id: change.id.clone(),
                })?,
        )
    } else {
        None
    };
    match change.kind {
        Kind::Api => put(&mut config.apis, change, entity, |a: &Api| &a.id),
        Kind::Product => put(&mut config.products, change, entity, |p: &Product| &p.id),
        Kind::Subscription => put(
            &mut config.subscriptions,
            change,
            entity,
            |s: &Subscription| &s.id,
        ),
        Kind::NamedValue => put(
            &mut config.named_values,
            change,
            entity,
            |n: &NamedValue| &n.name,
        ),
        Kind::Backend => put(&mut config.backends, change, entity, |b: &Backend| &b.id),
        Kind::Certificate => put(
            &mut config.certificates,
            change,
            entity,
            |c: &Certificate| &c.id,
        ),
        Kind::Hostname => put(&mut config.hostnames, change, entity, |h: &Hostname| {
            &h.hostname
        }),
        Kind::PolicyFragment => put(
            &mut config.fragments,
            change,
            entity,
            |f: &PolicyFragment| &f.id,
        ),
        Kind::Policy => {
            config.policy = match entity {
                Some(body) => Some(parse::<PolicyBody>(change, body)?.value),
                None => None,
            };
            Ok(())
        }
        // A gateway's own assignment arrives as `resync`, never as a change; other
        // gateways are none of its business.
        Kind::Gateway => Ok(()),
    }
}

/// The body of the global policy entity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    value: String,
}

fn parse<T: DeserializeOwned>(change: &Change, body: &Value) -> Result<T, ChangeError> {
    T::deserialize(body).map_err(|error| ChangeError::BadEntity {
        revision: change.revision,
        kind: change.kind,
        id: change.id.clone(),
        message: error.to_string(),
    })
}

/// Upserts (`entity` given) or deletes the item of `list` whose `key` is the change's
/// id.
fn put<T: DeserializeOwned>(
    list: &mut Vec<T>,
    change: &Change,
    entity: Option<&Value>,
    key: impl Fn(&T) -> &String,
) -> Result<(), ChangeError> {
    let position = list.iter().position(|item| *key(item) == change.id);
    match entity {
        Some(body) => {
            let item: T = parse(change, body)?;
            if *key(&item) != change.id {
                return Err(ChangeError::BadEntity {
                    revision: change.revision,
                    kind: change.kind,
                    id: change.id.clone(),
                    message: format!("the entity's id is `{}`", key(&item)),
                });
            }
            match position {
                Some(index) => list[index] = item,
                None => list.push(item),
            }
        }
        None => {
            if let Some(index) = position {
                list.remove(index);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
