//! The values the store reads and writes, and the pure rules applied to them
//! (preconditions, list paging, search patterns).

use std::fmt;

use crate::error::StoreError;
use gatehouse_model::wire::{Kind, Op};

/// An entity as stored: its JSON document and the revision of its last write.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The entity's kind.
    pub kind: Kind,
    /// The entity's id, unique within its kind.
    pub id: String,
    /// The document as written (camelCase JSON, as in the configuration file). The store
    /// does not validate it: callers validate before they write.
    pub body: serde_json::Value,
    /// The global revision of the entity's last write: its ETag.
    pub revision: u64,
}

/// The most entities [`crate::Store::list`] returns in one page.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// The page size of [`ListQuery::default`].
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Which entities of a kind [`crate::Store::list`] returns, ordered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only ids containing this text, compared case-insensitively (guaranteed for ASCII
    /// letters; other letters fold on PostgreSQL only). `None` or empty: every id.
    pub search: Option<String>,
    /// How many matching entities to pass over before the page starts.
    pub skip: u64,
    /// The page size; more than [`MAX_PAGE_SIZE`] is read as [`MAX_PAGE_SIZE`], so a caller
    /// that wants to answer 400 instead must check first.
    pub top: u64,
}

impl Default for ListQuery {
    /// Every id, from the start, [`DEFAULT_PAGE_SIZE`] at a time.
    fn default() -> Self {
        Self {
            search: None,
            skip: 0,
            top: DEFAULT_PAGE_SIZE,
        }
    }
}

impl ListQuery {
    /// The page size actually used: `top` capped at [`MAX_PAGE_SIZE`].
    pub fn effective_top(&self) -> u64 {
        self.top.min(MAX_PAGE_SIZE)
    }

    /// The `LIKE` pattern for `LOWER(id) LIKE ? ESCAPE '\'`: the lowercased search text
    /// with `%`, `_` and `\` escaped, between two `%` (so a search for `50%` finds the id
    /// `50%-off`, not every id starting with `50`).
    pub(crate) fn like_pattern(&self) -> String {
        let search = self.search.as_deref().unwrap_or_default().to_lowercase();
        let mut pattern = String::with_capacity(search.len() + 2);
        pattern.push('%');
        for c in search.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// One page of a [`crate::Store::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The entities of the page, ordered by id (byte order on both databases).
    pub items: Vec<Stored>,
    /// How many entities match the search in all, on every page.
    pub total: u64,
}

/// What must be true of an entity for a write to it to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Write unconditionally (a `PUT` or `DELETE` without `If-Match`/`If-None-Match`).
    #[default]
    None,
    /// Only if the entity exists at exactly this revision (`If-Match: <etag>`); otherwise
    /// [`StoreError::PreconditionFailed`].
    IfMatch(u64),
    /// Only if the entity does not exist (`If-None-Match: *`, create only); otherwise
    /// [`StoreError::AlreadyExists`].
    IfNoneMatch,
}

impl Precondition {
    /// Checks the precondition against the entity's current revision (`None`: absent).
    pub(crate) fn check(
        self,
        kind: Kind,
        id: &str,
        current: Option<u64>,
    ) -> Result<(), StoreError> {
        match (self, current) {
            (Self::None, _) | (Self::IfNoneMatch, None) => Ok(()),
            (Self::IfMatch(expected), Some(current)) if expected == current => Ok(()),
            (Self::IfMatch(expected), current_revision) => Err(StoreError::PreconditionFailed {
                kind,
                id: id.to_owned(),
                expected,
                current_revision,
            }),
            (Self::IfNoneMatch, Some(current_revision)) => Err(StoreError::AlreadyExists {
                kind,
                id: id.to_owned(),
                current_revision,
            }),
        }
    }
}

/// One write in a batch passed to [`crate::Store::write`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create or replace an entity.
    Put {
        /// The entity's kind.
        kind: Kind,
        /// The entity's id.
        id: String,
        /// The whole new document (not a patch).
        body: serde_json::Value,
        /// What must hold before the write.
        precondition: Precondition,
    },
    /// Delete an entity; [`StoreError::NotFound`] when it does not exist.
    Delete {
        /// The entity's kind.
        kind: Kind,
        /// The entity's id.
        id: String,
        /// What must hold before the delete.
        precondition: Precondition,
    },
}

impl WriteOp {
    /// An unconditional [`WriteOp::Put`].
    pub fn put(kind: Kind, id: impl Into<String>, body: serde_json::Value) -> Self {
        Self::Put {
            kind,
            id: id.into(),
            body,
            precondition: Precondition::None,
        }
    }

    /// An unconditional [`WriteOp::Delete`].
    pub fn delete(kind: Kind, id: impl Into<String>) -> Self {
        Self::Delete {
            kind,
            id: id.into(),
            precondition: Precondition::None,
        }
    }

    /// The same write, conditional on `precondition`.
    #[must_use]
    pub fn with_precondition(mut self, precondition: Precondition) -> Self {
        match &mut self {
            Self::Put {
                precondition: p, ..
            }
            | Self::Delete {
                precondition: p, ..
            } => {
                *p = precondition;
            }
        }
        self
    }

    /// The entity this op writes, and its precondition.
    pub(crate) fn target(&self) -> (Kind, &str, Precondition) {
        match self {
            Self::Put {
                kind,
                id,
                precondition,
                ..
            }
            | Self::Delete {
                kind,
                id,
                precondition,
            } => (*kind, id, *precondition),
        }
    }

    /// What the op logs in `changes`.
    pub(crate) fn op(&self) -> Op {
        match self {
            Self::Put { .. } => Op::Upsert,
            Self::Delete { .. } => Op::Delete,
        }
    }
}

/// One row of the revision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The revision this write got (unique: one per written entity).
    pub revision: u64,
    /// The written entity's kind.
    pub kind: Kind,
    /// The written entity's id.
    pub id: String,
    /// Whether it was upserted or deleted.
    pub op: Op,
}

/// The answer of [`crate::Store::changes_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesSince {
    /// The changes after the given revision, oldest first; empty when there are none.
    Changes(Vec<Change>),
    /// Changes after the given revision have been compacted away: the caller must start
    /// over from a full read ([`crate::Store::all`]; `410 Gone` on the Configuration API).
    Compacted {
        /// The compaction horizon: the smallest `since` that can still be answered.
        /// Changes at or below it are gone.
        oldest_available: u64,
    },
}

/// A gateway's two HMAC signing keys. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayKeys {
    /// The primary key.
    pub primary: String,
    /// The secondary key (for rotation: sign with it while the primary is regenerated).
    pub secondary: String,
}

impl fmt::Debug for GatewayKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Security: keys sign gateway tokens; they must never reach a log line.
        f.debug_struct("GatewayKeys")
            .field("primary", &"<redacted>")
            .field("secondary", &"<redacted>")
            .finish()
    }
}

/// The last heartbeat of one gateway instance (a "node").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The gateway (entity id) the instance belongs to.
    pub gateway_id: String,
    /// The instance's own id, stable for its lifetime.
    pub instance_id: String,
    /// The instance's hostname (pod name on Kubernetes).
    pub hostname: String,
    /// The instance's Gatehouse version.
    pub version: String,
    /// The configuration revision it serves.
    pub applied_revision: u64,
    /// Its last configuration error, if any.
    pub last_error: Option<String>,
    /// How long it has been running, in seconds.
    pub uptime_seconds: u64,
    /// When its token expires, Unix seconds, if known.
    pub token_expiry_unix: Option<i64>,
    /// How often it reports, in seconds, if it said.
    pub interval_seconds: Option<u64>,
    /// When this heartbeat was received, Unix seconds (set by the caller, so tests and
    /// replicas agree on one clock: the control plane's).
    pub last_seen_unix: i64,
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
