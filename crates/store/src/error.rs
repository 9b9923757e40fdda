//! The store's error type: one variant per case a caller handles differently.

use gatehouse_model::wire::Kind;

/// Why a store operation failed.
///
/// The first four variants are answers about the data (the management API maps them to
/// 404, 412, 409/412 and 400); the rest are failures of the database or of its contents,
/// which a caller reports as internal errors, retrying only where
/// [`StoreError::is_retryable`] says so.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A delete named an entity that does not exist. The whole batch was rolled back.
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// The kind of the missing entity.
        kind: Kind,
        /// Its id.
        id: String,
    },

    /// An `If-Match` precondition did not hold: the entity changed (or was deleted) since
    /// the caller read it. The whole batch was rolled back.
    #[error(
        "{kind} `{id}` is not at revision {expected}: {}; read it again and retry",
        match current_revision {
            Some(current) => format!("it is at revision {current}"),
            None => "it does not exist".to_owned(),
        }
    )]
    PreconditionFailed {
        /// The kind of the entity.
        kind: Kind,
        /// Its id.
        id: String,
        /// The revision the caller expected (its `If-Match`).
        expected: u64,
        /// The entity's revision now (its ETag), or `None` when it does not exist.
        current_revision: Option<u64>,
    },

    /// An `If-None-Match: *` write (create only) found the entity already there. The whole
    /// batch was rolled back.
    #[error("{kind} `{id}` already exists (revision {current_revision})")]
    AlreadyExists {
        /// The kind of the entity.
        kind: Kind,
        /// Its id.
        id: String,
        /// The existing entity's revision (its ETag).
        current_revision: u64,
    },

    /// The database URL was not understood. The message names the accepted forms; it
    /// never repeats the URL, which may hold a password.
    #[error("invalid database URL: {reason}")]
    InvalidUrl {
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// The database refused or failed a statement, or could not be reached.
    #[error("database error: {source}")]
    Database {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations could not be applied (on start). Usually a database written
    /// by a newer Gatehouse, or one whose migration history was edited by hand.
    #[error("database migration failed: {source}")]
    Migration {
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A stored row could not be read back: a body that is not JSON, an unknown kind, a
    /// negative revision. Someone wrote to the tables without going through this crate.
    #[error("corrupt row in the store: {detail}")]
    Corrupt {
        /// Which row and what is wrong with it.
        detail: String,
    },
}

/// A closed set of labels for [`StoreError`], for log fields and metric labels (never the
/// message, which may hold ids supplied by users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorReason {
    /// [`StoreError::NotFound`].
    NotFound,
    /// [`StoreError::PreconditionFailed`].
    PreconditionFailed,
    /// [`StoreError::AlreadyExists`].
    AlreadyExists,
    /// [`StoreError::InvalidUrl`].
    InvalidUrl,
    /// [`StoreError::Database`] where the database could not be reached.
    Unavailable,
    /// Any other [`StoreError::Database`].
    Database,
    /// [`StoreError::Migration`].
    Migration,
    /// [`StoreError::Corrupt`].
    Corrupt,
}

impl StoreErrorReason {
    /// The label as written in logs and metrics (`snake_case`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::PreconditionFailed => "precondition_failed",
            Self::AlreadyExists => "already_exists",
            Self::InvalidUrl => "invalid_url",
            Self::Unavailable => "unavailable",
            Self::Database => "database",
            Self::Migration => "migration",
            Self::Corrupt => "corrupt",
        }
    }
}

impl StoreError {
    /// The error's closed label for logs and metrics.
    pub fn reason(&self) -> StoreErrorReason {
        match self {
            Self::NotFound { .. } => StoreErrorReason::NotFound,
            Self::PreconditionFailed { .. } => StoreErrorReason::PreconditionFailed,
            Self::AlreadyExists { .. } => StoreErrorReason::AlreadyExists,
            Self::InvalidUrl { .. } => StoreErrorReason::InvalidUrl,
            Self::Database { source } if is_unavailable(source) => StoreErrorReason::Unavailable,
            Self::Database { .. } => StoreErrorReason::Database,
            Self::Migration { .. } => StoreErrorReason::Migration,
            Self::Corrupt { .. } => StoreErrorReason::Corrupt,
        }
    }

    /// Whether the same call may succeed if made again unchanged: the database was
    /// unreachable or busy, or PostgreSQL aborted the transaction for a serialization
    /// failure or deadlock. Every write is one transaction, so a retried write never
    /// applies twice; a conditional one (`If-Match`) may then fail its precondition.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Database { source } => is_unavailable(source) || is_transient(source),
            Self::NotFound { .. }
            | Self::PreconditionFailed { .. }
            | Self::AlreadyExists { .. }
            | Self::InvalidUrl { .. }
            | Self::Migration { .. }
            | Self::Corrupt { .. } => false,
        }
    }
}

/// The database could not be reached or gave no connection in time.
fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// PostgreSQL's serialization failure (40001) and deadlock (40P01); SQLite's "busy" and
/// "locked" (primary codes 5 and 6: another writer held the lock past `busy_timeout`).
fn is_transient(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended result codes; the primary code is the low byte.
        return code
            .parse::<i32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6));
    }
    matches!(code.as_ref(), "40001" | "40P01")
}

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        Self::Database { source }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(source: sqlx::migrate::MigrateError) -> Self {
        Self::Migration { source }
    }
}
