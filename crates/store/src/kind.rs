//! The kinds of stored entities and of logged changes, with their storage spellings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a stored configuration entity.
///
/// The spelling from [`Kind::as_str`] is what the `kind` columns hold and what the
/// Configuration API's change stream carries, so renaming one is a data migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An API with its operations and policies (`api`).
    Api,
    /// A product grouping APIs (`product`).
    Product,
    /// A subscription to a product, an API or all APIs (`subscription`).
    Subscription,
    /// A named value, possibly secret (`named-value`).
    NamedValue,
    /// A backend service (`backend`).
    Backend,
    /// A TLS certificate with its private key (`certificate`).
    Certificate,
    /// A custom hostname bound to a certificate (`hostname`).
    Hostname,
    /// A self-hosted gateway and the APIs assigned to it (`gateway`).
    Gateway,
    /// The global policy document; there is one, with id `global` (`policy`).
    Policy,
}

impl Kind {
    /// Every kind, in a fixed order (the order of this enum).
    pub const ALL: [Self; 9] = [
        Self::Api,
        Self::Product,
        Self::Subscription,
        Self::NamedValue,
        Self::Backend,
        Self::Certificate,
        Self::Hostname,
        Self::Gateway,
        Self::Policy,
    ];

    /// The storage and wire spelling: `api`, `product`, `subscription`, `named-value`,
    /// `backend`, `certificate`, `hostname`, `gateway` or `policy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Product => "product",
            Self::Subscription => "subscription",
            Self::NamedValue => "named-value",
            Self::Backend => "backend",
            Self::Certificate => "certificate",
            Self::Hostname => "hostname",
            Self::Gateway => "gateway",
            Self::Policy => "policy",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown entity kind `{0}`: expected one of api, product, subscription, named-value, \
     backend, certificate, hostname, gateway, policy"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Parses the exact spelling of [`Kind::as_str`] (case-sensitive, no aliases).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// What a logged change did to its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The entity was created or replaced (`upsert`).
    Upsert,
    /// The entity was deleted (`delete`).
    Delete,
}

impl Op {
    /// The storage and wire spelling: `upsert` or `delete`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown change op `{0}`: expected upsert or delete")]
pub struct UnknownOp(pub String);

impl FromStr for Op {
    type Err = UnknownOp;

    /// Parses `upsert` or `delete` exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "upsert" => Ok(Self::Upsert),
            "delete" => Ok(Self::Delete),
            other => Err(UnknownOp(other.to_owned())),
        }
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
