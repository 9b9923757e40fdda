//! Database URLs and connection settings: which backend a URL names, and the options each
//! backend's pool is opened with. No I/O here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

use crate::error::StoreError;

/// Settings of the connection pool, with defaults fit for one control-plane replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The most connections the pool opens (PostgreSQL, SQLite file). An in-memory SQLite
    /// database always uses exactly one: each connection would otherwise see its own
    /// database, or fight over shared-cache table locks. Default 10.
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing with a retryable
    /// [`StoreError::Database`] (`PoolTimedOut`). Default 10 s.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a write waits for another process's write lock on the same
    /// file before failing with a retryable error. Default 5 s.
    pub sqlite_busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A parsed database URL.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A SQLite file or in-memory database.
    Sqlite {
        /// Connection options, pragmas included.
        options: SqliteConnectOptions,
        /// `sqlite::memory:`: the pool must keep exactly one connection open forever.
        in_memory: bool,
    },
    /// A PostgreSQL database.
    Postgres(PgConnectOptions),
}

/// What the error message offers as valid URLs.
const ACCEPTED: &str = "expected `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, \
                        `sqlite::memory:` or `postgres://user:password@host:port/database`";

impl Target {
    /// Parses a database URL:
    ///
    /// - `sqlite:///abs/file.db`, `sqlite://rel/file.db`, `sqlite:file.db`: a file, created
    ///   when missing, in WAL mode (readers never block the writer), with foreign keys on
    ///   and `busy_timeout` set; `synchronous` stays FULL so a commit survives power loss.
    /// - `sqlite::memory:`: a private in-memory database (tests, throwaway runs).
    /// - `postgres://…` or `postgresql://…`: PostgreSQL over plain TCP (no TLS is compiled
    ///   in; `sslmode=require` fails to connect).
    ///
    /// The error never repeats the URL, which may carry a password.
    pub(crate) fn parse(url: &str, settings: &StoreOptions) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url).map_err(|e| invalid(&e))?;
                let in_memory = is_in_memory(url);
                let options = options
                    .foreign_keys(true)
                    .busy_timeout(settings.sqlite_busy_timeout);
                let options = if in_memory {
                    options
                } else {
                    options
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                };
                Ok(Self::Sqlite { options, in_memory })
            }
            "postgres" | "postgresql" => PgConnectOptions::from_str(url)
                .map(Self::Postgres)
                .map_err(|e| invalid(&e)),
            "" => Err(StoreError::InvalidUrl {
                reason: format!("no scheme: {ACCEPTED}"),
            }),
            other => Err(StoreError::InvalidUrl {
                reason: format!("unsupported scheme `{other}`: {ACCEPTED}"),
            }),
        }
    }
}

/// Whether a `sqlite:` URL names an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `?mode=memory`).
fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

fn invalid(error: &sqlx::Error) -> StoreError {
    StoreError::InvalidUrl {
        reason: format!("{error}; {ACCEPTED}"),
    }
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
