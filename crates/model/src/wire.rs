//! The wire types of the Configuration API v2, shared by both sides (the control
//! plane's `config_api` and the gateway's `sync`) and by storage: entity [`Kind`]s and
//! change [`Op`]s with their spellings, the change stream ([`Changes`]), and what an
//! instance reports ([`Heartbeat`]). One definition, so the two sides cannot disagree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a stored configuration entity.
///
/// The spelling from [`Kind::as_str`] is what the `kind` columns hold and what the
/// Configuration API's change stream carries, so renaming one is a data migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A policy fragment (`policy-fragment`).
    PolicyFragment,
}

impl Kind {
    /// Every kind, in a fixed order (the order of this enum).
    pub const ALL: [Self; 10] = [
        Self::Api,
        Self::Product,
        Self::Subscription,
        Self::NamedValue,
        Self::Backend,
        Self::Certificate,
        Self::Hostname,
        Self::Gateway,
        Self::Policy,
        Self::PolicyFragment,
    ];

    /// The storage and wire spelling: `api`, `product`, `subscription`, `named-value`,
    /// `backend`, `certificate`, `hostname`, `gateway`, `policy` or `policy-fragment`.
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
            Self::PolicyFragment => "policy-fragment",
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// An answer of `GET /v2/gateways/{id}/changes?since=R&wait=S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Changes {
    /// Revision of the last change listed (`since` when there is none): the gateway's
    /// next `since`.
    pub revision: u64,
    /// The gateway's own assignment changed: take a new snapshot instead.
    #[serde(default)]
    pub resync: bool,
    /// The changes relevant to this gateway, oldest first; the last write per entity.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change as a gateway receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Change {
    /// Revision of the write.
    pub revision: u64,
    /// Entity kind.
    pub kind: Kind,
    /// Entity id (a named value's name, a hostname's host name, `global` for the
    /// policy).
    pub id: String,
    /// What the write did.
    pub op: Op,
    /// The entity as the gateway's snapshot holds it, for upserts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<serde_json::Value>,
}

/// What an instance reports: `POST /v2/gateways/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// Unique per process: host name, process id and start time.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub instance_id: String,
    /// Host name (the pod name on Kubernetes).
    #[serde(default)]
    pub hostname: String,
    /// Gatehouse version.
    #[serde(default)]
    pub version: String,
    /// Revision of the configuration being served.
    #[serde(default)]
    pub applied_revision: u64,
    /// The last configuration or sync error, if not resolved since.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Seconds since the process started.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Expiry of the token in use (Unix seconds).
    #[serde(default)]
    pub token_expiry: Option<i64>,
    /// How often this instance reports (seconds): the control plane counts it gone
    /// after three silent intervals (unless configured otherwise).
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<u64>,
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
