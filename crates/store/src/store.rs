//! [`Store`]: the connection pool and every query, written once for both backends.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::connect::{StoreOptions, Target};
use crate::error::StoreError;
use crate::listener;
use crate::types::{
    Change, ChangesSince, GatewayKeys, Heartbeat, ListQuery, Page, Stored, WriteOp,
};
use gatehouse_model::wire::{Kind, Op};

/// The schema, embedded at build time from `crates/store/migrations/` (one set for both
/// backends). On PostgreSQL the migrator holds an advisory lock, so replicas starting
/// together migrate once.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

// === SQL ===
//
// Every statement runs unchanged on SQLite and PostgreSQL: `$n` placeholders (sqlx's
// SQLite driver reads them as positional too), `ON CONFLICT … DO UPDATE`, `RETURNING`.
// The few differences are in `Backend`.

const SELECT_REVISION: &str = "SELECT value FROM state WHERE name = 'revision'";
const SELECT_COMPACTED: &str = "SELECT value FROM state WHERE name = 'compacted'";
/// Waits for the writers before this one and reads the revision they left. SQLite's
/// `BEGIN IMMEDIATE` already holds the file's write lock; on PostgreSQL `FOR UPDATE`
/// takes the `state` row lock [`BUMP_REVISION`] would take, and later statements of the
/// transaction (read committed) see everything committed before the lock was granted.
const LOCK_REVISION_PG: &str = "SELECT value FROM state WHERE name = 'revision' FOR UPDATE";
/// Takes `$1` consecutive revisions. On PostgreSQL the row lock it takes is held to the
/// end of the transaction, so writers run one after another in revision order: a reader
/// that sees revision N committed also sees every revision below N.
const BUMP_REVISION: &str =
    "UPDATE state SET value = value + $1 WHERE name = 'revision' RETURNING value";
const SELECT_ENTITY: &str = "SELECT body, revision FROM entities WHERE kind = $1 AND id = $2";
const SELECT_ENTITY_REVISION: &str = "SELECT revision FROM entities WHERE kind = $1 AND id = $2";
const SELECT_ALL_ENTITIES: &str = "SELECT kind, id, body, revision FROM entities";
const COUNT_ENTITIES: &str =
    r"SELECT COUNT(*) FROM entities WHERE kind = $1 AND LOWER(id) LIKE $2 ESCAPE '\'";
const UPSERT_ENTITY: &str = "INSERT INTO entities (kind, id, body, revision) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, revision = excluded.revision";
const DELETE_ENTITY: &str = "DELETE FROM entities WHERE kind = $1 AND id = $2";
const INSERT_CHANGE: &str = "INSERT INTO changes (revision, kind, id, op) VALUES ($1, $2, $3, $4)";
const SELECT_CHANGES: &str =
    "SELECT revision, kind, id, op FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2";
const DELETE_CHANGES_THROUGH: &str = "DELETE FROM changes WHERE revision <= $1";
/// Only ever raises the horizon, so two concurrent compactions cannot move it back below
/// rows the other one already deleted.
const RAISE_COMPACTED: &str = "UPDATE state SET value = $1 WHERE name = 'compacted' AND value < $1";
/// Sent inside the write transaction; PostgreSQL delivers it at commit, never for a
/// rolled-back write.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const SELECT_GATEWAY_KEYS: &str =
    "SELECT primary_key, secondary_key FROM gateway_keys WHERE gateway_id = $1";
const UPSERT_GATEWAY_KEYS: &str = "INSERT INTO gateway_keys (gateway_id, primary_key, secondary_key) \
     VALUES ($1, $2, $3) ON CONFLICT (gateway_id) DO UPDATE \
     SET primary_key = excluded.primary_key, secondary_key = excluded.secondary_key";
const DELETE_GATEWAY_KEYS: &str = "DELETE FROM gateway_keys WHERE gateway_id = $1";
const UPSERT_HEARTBEAT: &str = "INSERT INTO heartbeats (gateway_id, instance_id, hostname, version, \
     applied_revision, last_error, uptime_seconds, token_expiry, last_seen, interval_seconds) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (gateway_id, instance_id) DO UPDATE SET hostname = excluded.hostname, \
     version = excluded.version, applied_revision = excluded.applied_revision, \
     last_error = excluded.last_error, uptime_seconds = excluded.uptime_seconds, \
     token_expiry = excluded.token_expiry, last_seen = excluded.last_seen, \
     interval_seconds = excluded.interval_seconds";
const DELETE_HEARTBEATS_BEFORE: &str = "DELETE FROM heartbeats WHERE last_seen <= $1";
const DELETE_HEARTBEAT: &str = "DELETE FROM heartbeats WHERE gateway_id = $1 AND instance_id = $2";
const DELETE_GATEWAY_HEARTBEATS: &str = "DELETE FROM heartbeats WHERE gateway_id = $1";
const INSERT_SETTING_IF_ABSENT: &str =
    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const SELECT_SETTING: &str = "SELECT value FROM settings WHERE name = $1";
const UPSERT_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value";
const SELECT_HEARTBEATS: &str = "SELECT instance_id, hostname, version, applied_revision, last_error, \
     uptime_seconds, token_expiry, last_seen, interval_seconds FROM heartbeats \
     WHERE gateway_id = $1 AND last_seen > $2";

/// A row of `heartbeats` as selected by [`SELECT_HEARTBEATS`].
type HeartbeatRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
);

/// Where the two databases need different SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Starts a write transaction. SQLite's `BEGIN IMMEDIATE` takes the database's write
    /// lock up front (waiting up to `busy_timeout`), so writers in other processes on the
    /// same file serialise instead of failing to upgrade a read lock. On PostgreSQL the
    /// `state` row lock taken by [`BUMP_REVISION`] does that.
    const fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// Starts a read transaction that sees one snapshot throughout. SQLite in WAL mode
    /// does that for any read transaction; PostgreSQL's default (read committed) takes a
    /// new snapshot per statement, hence repeatable read.
    const fn begin_read(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// One page of a list, ordered by id in byte order on both databases (PostgreSQL
    /// would otherwise sort by the database's locale).
    const fn list_page(self) -> &'static str {
        match self {
            Self::Sqlite => {
                r"SELECT id, body, revision FROM entities WHERE kind = $1 AND LOWER(id) LIKE $2 ESCAPE '\'
                  ORDER BY id LIMIT $3 OFFSET $4"
            }
            Self::Postgres => {
                r#"SELECT id, body, revision FROM entities WHERE kind = $1 AND LOWER(id) LIKE $2 ESCAPE '\'
                   ORDER BY id COLLATE "C" LIMIT $3 OFFSET $4"#
            }
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The connection pool of one backend.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to this store's concrete pool (and `$backend` to its
/// [`Backend`]). The body is compiled once per backend, so queries are written once
/// without the generic `Executor` bounds a shared function would need.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, $pool:ident, $backend:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => {
                let $backend = Backend::Sqlite;
                $body
            }
            Db::Postgres($pool) => {
                let $backend = Backend::Postgres;
                $body
            }
        }
    };
}

/// The control plane's storage: entities with a global revision log, gateway keys and
/// heartbeats, on SQLite or PostgreSQL.
///
/// Cheap to clone (all clones share one pool). See the [crate docs](crate) for the
/// revision and notification model.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// The latest committed revision this process knows of.
    revision: watch::Sender<u64>,
    /// SQLite only: queues this process's writers, so they wait their turn fairly instead
    /// of polling the file lock in SQLite's busy handler. (Other processes still wait on
    /// the file lock, up to `busy_timeout`.)
    sqlite_writer: Mutex<()>,
    /// Stops the PostgreSQL listener ([`Store::close`]).
    shutdown: CancellationToken,
    /// Stops it when the last clone of the store is dropped.
    _stop_listener_on_drop: DropGuard,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connect options: they hold the password.
        f.debug_struct("Store")
            .field("backend", &self.backend().name())
            .field("revision", &*self.inner.revision.borrow())
            .finish_non_exhaustive()
    }
}

// === impl Store ===

impl Store {
    /// Connects with [`StoreOptions::default`] and brings the schema up to date; see
    /// [`Store::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects to the database `url` names and runs the pending migrations.
    ///
    /// - `sqlite:///abs/path.db` (`sqlite://rel/path.db`): a file, created with its parent
    ///   folder when missing; WAL mode, foreign keys on, `busy_timeout` from `options`.
    ///   Meant for one process: other processes writing the same file serialise correctly,
    ///   but their writes do not wake this process's [`Store::watch`].
    /// - `sqlite::memory:`: a private in-memory database on one connection, gone when the
    ///   store is dropped.
    /// - `postgres://user:password@host:port/db`: plain TCP. Also starts the `LISTEN` task
    ///   (see [`Store::watch`]) and subscribes before returning.
    ///
    /// Fails with [`StoreError::InvalidUrl`], [`StoreError::Database`] (unreachable,
    /// refused) or [`StoreError::Migration`]. Must be called inside a tokio runtime.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let (db, subscription) = match Target::parse(url, options)? {
            Target::Sqlite {
                options: connect,
                in_memory,
            } => {
                let pool = if in_memory {
                    // One connection that lives as long as the pool: the database lives
                    // exactly as long as its connections do.
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    prepare_sqlite_file(connect.get_filename()).await?;
                    SqlitePoolOptions::new().max_connections(options.max_connections)
                }
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
                MIGRATOR.run(&pool).await?;
                (Db::Sqlite(pool), None)
            }
            Target::Postgres(connect) => {
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                MIGRATOR.run(&pool).await?;
                // Subscribe before reading the revision below, so no commit falls between.
                let subscription = listener::subscribe(&pool, options).await?;
                (Db::Postgres(pool), Some(subscription))
            }
        };

        let current: i64 = with_db!(&db, pool => {
            sqlx::query_scalar(SELECT_REVISION).fetch_one(pool).await
        })?;
        let current = column_u64(current, "state.revision")?;
        let (revision, _) = watch::channel(current);
        let shutdown = CancellationToken::new();
        if let (Db::Postgres(pool), Some((listener, listen_pool))) = (&db, subscription) {
            listener::spawn(
                pool.clone(),
                listener,
                listen_pool,
                revision.clone(),
                shutdown.clone(),
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                revision,
                sqlite_writer: Mutex::new(()),
                _stop_listener_on_drop: shutdown.clone().drop_guard(),
                shutdown,
            }),
        })
    }

    /// Closes the pool and stops the listener: waits for calls in flight to return their
    /// connections; every later call fails with a [`StoreError::Database`] (`PoolClosed`).
    /// Affects every clone. Dropping the last clone does the same without waiting.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        with_db!(&self.inner.db, pool => pool.close().await);
    }

    /// `"sqlite"` or `"postgres"`, for logs and status pages.
    pub fn backend_name(&self) -> &'static str {
        self.backend().name()
    }

    fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// One entity, or `None` when it does not exist.
    pub async fn get(&self, kind: Kind, id: &str) -> Result<Option<Stored>, StoreError> {
        let row: Option<(String, i64)> = with_db!(&self.inner.db, pool => {
            sqlx::query_as(SELECT_ENTITY)
                .bind(kind.as_str())
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(|(body, revision)| stored(kind, id.to_owned(), &body, revision))
            .transpose()
    }

    /// One page of the entities of `kind` whose id matches `query.search`, ordered by id
    /// (byte order), with the total number of matches. The count and the page come from
    /// one snapshot.
    pub async fn list(&self, kind: Kind, query: &ListQuery) -> Result<Page, StoreError> {
        let pattern = query.like_pattern();
        let top = saturating_i64(query.effective_top());
        let skip = saturating_i64(query.skip);
        let (total, rows): (i64, Vec<(String, String, i64)>) = with_db!(&self.inner.db, pool, backend => {
            let mut tx = pool.begin_with(backend.begin_read()).await?;
            let total = sqlx::query_scalar(COUNT_ENTITIES)
                .bind(kind.as_str())
                .bind(&pattern)
                .fetch_one(&mut *tx)
                .await?;
            let rows = sqlx::query_as(backend.list_page())
                .bind(kind.as_str())
                .bind(&pattern)
                .bind(top)
                .bind(skip)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (total, rows)
        });
        let items = rows
            .into_iter()
            .map(|(id, body, revision)| stored(kind, id, &body, revision))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total: column_u64(total, "entity count")?,
        })
    }

    /// Every entity and the revision they are at, read in one snapshot: the entities are
    /// exactly the result of the changes up to that revision. Ordered by kind, then id.
    /// For building gateway snapshots; reads the whole table.
    pub async fn all(&self) -> Result<(u64, Vec<Stored>), StoreError> {
        let (revision, rows): (i64, Vec<(String, String, String, i64)>) = with_db!(&self.inner.db, pool, backend => {
            let mut tx = pool.begin_with(backend.begin_read()).await?;
            let revision = sqlx::query_scalar(SELECT_REVISION)
                .fetch_one(&mut *tx)
                .await?;
            let rows = sqlx::query_as(SELECT_ALL_ENTITIES)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (revision, rows)
        });
        Ok((column_u64(revision, "state.revision")?, stored_rows(rows)?))
    }

    /// Applies `ops` in order, all in one transaction, and returns the new revision.
    ///
    /// Each op gets its own revision (the batch takes consecutive ones, the last is
    /// returned) and its own row in `changes`; so a batch of N ops raises the revision by
    /// N, every entity's ETag is unique, and a reader paging through
    /// [`Store::changes_since`] can never stop in the middle of a revision. Ops later in
    /// the batch see the writes of earlier ones (a put then an `If-Match` on the same
    /// entity needs the put's revision).
    ///
    /// If any op fails its precondition ([`StoreError::PreconditionFailed`],
    /// [`StoreError::AlreadyExists`]) or deletes a missing entity
    /// ([`StoreError::NotFound`]), nothing of the batch is stored and the revision does not
    /// move. An empty batch writes nothing and returns the current revision.
    ///
    /// After the commit, [`Store::watch`] receivers in this process see the new revision;
    /// on PostgreSQL other processes' receivers do too, through `NOTIFY`.
    ///
    /// The write runs in a task of its own: dropping the returned future (a client that
    /// hung up) does not cancel a write half-way, so the commit and the watch update
    /// always happen together.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<u64, StoreError> {
        if ops.is_empty() {
            return self.revision().await;
        }
        let (revision, ()) = self
            .run_write(View::None, move |_, _| Ok::<_, StoreError>((ops, ())))
            .await?;
        Ok(revision)
    }

    /// Plans a write from the current state and applies it, as one serialisable unit:
    /// `plan` is called inside the write transaction, after the writers before it have
    /// committed and before any writer after it starts, with the revision and every
    /// entity as they are at that moment. What it returns is applied as by
    /// [`Store::write`]; an error from it rolls back and is returned as is.
    ///
    /// So a check made by `plan` (every reference resolves, say) still holds when its
    /// ops commit, whatever other writers (this process or other replicas on the same
    /// database) do concurrently. `plan` runs while the database's write lock is held:
    /// keep it to pure computation. It returns the ops and a value passed back with the
    /// new revision (the current one when it returns no ops).
    pub async fn write_planned<T, E, P>(&self, plan: P) -> Result<(u64, T), E>
    where
        P: FnOnce(u64, Vec<Stored>) -> Result<(Vec<WriteOp>, T), E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run_write(View::AllEntities, plan).await
    }

    /// Runs a write in a task of its own (see [`Store::write`]).
    async fn run_write<T, E, P>(&self, view: View, plan: P) -> Result<(u64, T), E>
    where
        P: FnOnce(u64, Vec<Stored>) -> Result<(Vec<WriteOp>, T), E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::spawn(async move { store.write_to_completion(view, plan).await }).await {
            Ok(written) => written.map_err(|error| match error {
                Planned::Store(store) => E::from(store),
                Planned::Plan(plan) => plan,
            }),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Only when the runtime shuts down under us; whether it committed is unknown.
            Err(_) => Err(E::from(StoreError::Database {
                source: sqlx::Error::Io(std::io::Error::other(
                    "the runtime shut down during a store write",
                )),
            })),
        }
    }

    /// One write, run to completion: lock, read what `plan` needs, plan, apply, commit.
    async fn write_to_completion<T, E, P>(
        &self,
        view: View,
        plan: P,
    ) -> Result<(u64, T), Planned<E>>
    where
        P: FnOnce(u64, Vec<Stored>) -> Result<(Vec<WriteOp>, T), E>,
    {
        let outcome = with_db!(&self.inner.db, pool, backend => {
            let _queued = match backend {
                Backend::Sqlite => Some(self.inner.sqlite_writer.lock().await),
                Backend::Postgres => None,
            };
            let mut tx = pool.begin_with(backend.begin_write()).await.map_err(StoreError::from)?;
            let applied: Result<(Option<i64>, T), Planned<E>> = async {
                // First, so that everything below runs after the writers before us
                // committed and before those after us start.
                let lock = match backend {
                    Backend::Sqlite => SELECT_REVISION,
                    Backend::Postgres => LOCK_REVISION_PG,
                };
                let before: i64 = sqlx::query_scalar(lock).fetch_one(&mut *tx).await?;
                let entities = match view {
                    View::None => Vec::new(),
                    View::AllEntities => {
                        let rows: Vec<(String, String, String, i64)> =
                            sqlx::query_as(SELECT_ALL_ENTITIES).fetch_all(&mut *tx).await?;
                        stored_rows(rows)?
                    }
                };
                let (ops, value) = plan(column_u64(before, "state.revision")?, entities)
                    .map_err(Planned::Plan)?;
                if ops.is_empty() {
                    return Ok((None, value));
                }
                let count = i64::try_from(ops.len()).unwrap_or(i64::MAX);
                let last: i64 = sqlx::query_scalar(BUMP_REVISION)
                    .bind(count)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut revision = last - count;
                for op in &ops {
                    revision += 1;
                    let (kind, id, precondition) = op.target();
                    let current: Option<i64> = sqlx::query_scalar(SELECT_ENTITY_REVISION)
                        .bind(kind.as_str())
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let current = current
                        .map(|r| column_u64(r, "entities.revision"))
                        .transpose()?;
                    precondition.check(kind, id, current)?;
                    match op {
                        WriteOp::Put { body, .. } => {
                            sqlx::query(UPSERT_ENTITY)
                                .bind(kind.as_str())
                                .bind(id)
                                .bind(body.to_string())
                                .bind(revision)
                                .execute(&mut *tx)
                                .await?;
                        }
                        WriteOp::Delete { .. } => {
                            if current.is_none() {
                                return Err(StoreError::NotFound {
                                    kind,
                                    id: id.to_owned(),
                                }
                                .into());
                            }
                            sqlx::query(DELETE_ENTITY)
                                .bind(kind.as_str())
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    sqlx::query(INSERT_CHANGE)
                        .bind(revision)
                        .bind(kind.as_str())
                        .bind(id)
                        .bind(op.op().as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                if backend == Backend::Postgres {
                    sqlx::query(NOTIFY)
                        .bind(listener::CHANNEL)
                        .bind(last.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                Ok((Some(last), value))
            }
            .await;
            match applied {
                Ok((Some(last), value)) => {
                    tx.commit().await.map_err(StoreError::from)?;
                    (Some(last), value)
                }
                Ok((None, value)) => {
                    tx.rollback().await.map_err(StoreError::from)?;
                    (None, value)
                }
                Err(error) => {
                    // Roll back now rather than leave it to the drop, which only queues
                    // the ROLLBACK: the writers queued behind our lock go on at once.
                    if let Err(rollback) = tx.rollback().await {
                        tracing::warn!(error = %rollback, "rolling back a failed store write");
                    }
                    return Err(error);
                }
            }
        });
        match outcome {
            (Some(last), value) => {
                let last = column_u64(last, "state.revision")?;
                listener::raise(&self.inner.revision, last);
                Ok((last, value))
            }
            (None, value) => Ok((self.revision().await?, value)),
        }
    }

    /// The latest committed revision (0 before the first write).
    pub async fn revision(&self) -> Result<u64, StoreError> {
        let value: i64 = with_db!(&self.inner.db, pool => {
            sqlx::query_scalar(SELECT_REVISION).fetch_one(pool).await
        })?;
        column_u64(value, "state.revision")
    }

    /// The changes after revision `since`, oldest first, at most `limit` of them; call
    /// again from the last one's revision for more. [`ChangesSince::Compacted`] when some
    /// of them were compacted away (`since` is below the horizon): take a full read.
    /// Reads one snapshot, so a concurrent [`Store::compact`] cannot open a silent gap.
    pub async fn changes_since(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<ChangesSince, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let read = with_db!(&self.inner.db, pool, backend => {
            let mut tx = pool.begin_with(backend.begin_read()).await?;
            let compacted: i64 = sqlx::query_scalar(SELECT_COMPACTED)
                .fetch_one(&mut *tx)
                .await?;
            let compacted = column_u64(compacted, "state.compacted")?;
            let read = if since < compacted {
                Err(compacted)
            } else {
                let rows: Vec<(i64, String, String, String)> = sqlx::query_as(SELECT_CHANGES)
                    .bind(saturating_i64(since))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                Ok(rows)
            };
            tx.commit().await?;
            read
        });
        let rows = match read {
            Ok(rows) => rows,
            Err(compacted) => {
                return Ok(ChangesSince::Compacted {
                    oldest_available: compacted,
                });
            }
        };
        let changes = rows
            .into_iter()
            .map(|(revision, kind, id, op)| {
                Ok(Change {
                    revision: column_u64(revision, "changes.revision")?,
                    kind: parse_kind(&kind, &id)?,
                    op: op.parse::<Op>().map_err(|e| StoreError::Corrupt {
                        detail: format!("changes row {revision}: {e}"),
                    })?,
                    id,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(ChangesSince::Changes(changes))
    }

    /// Drops the change rows older than the latest `keep_latest` revisions and raises the
    /// compaction horizon to `revision - keep_latest`; returns the horizon now in force.
    /// Readers asking for changes below it get [`ChangesSince::Compacted`] (and gateways a
    /// `410 Gone`, then a new snapshot). Never lowers the horizon.
    pub async fn compact(&self, keep_latest: u64) -> Result<u64, StoreError> {
        with_db!(&self.inner.db, pool, backend => {
            let _queued = match backend {
                Backend::Sqlite => Some(self.inner.sqlite_writer.lock().await),
                Backend::Postgres => None,
            };
            let mut tx = pool.begin_with(backend.begin_write()).await?;
            let revision: i64 = sqlx::query_scalar(SELECT_REVISION).fetch_one(&mut *tx).await?;
            let horizon = column_u64(revision, "state.revision")?.saturating_sub(keep_latest);
            let horizon = saturating_i64(horizon);
            sqlx::query(DELETE_CHANGES_THROUGH)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            sqlx::query(RAISE_COMPACTED)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            let in_force: i64 = sqlx::query_scalar(SELECT_COMPACTED).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            column_u64(in_force, "state.compacted")
        })
    }

    /// A receiver of the latest committed revision this process knows of, starting at the
    /// current one. It changes after every commit through this store (any clone) and, on
    /// PostgreSQL, within milliseconds of a commit by any other process on the same
    /// database (`LISTEN gatehouse_changes`). Values only ever increase; a receiver may skip
    /// intermediate revisions, so read [`Store::changes_since`] from the last revision
    /// handled, not from the watched value.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.revision.subscribe()
    }

    /// The HMAC keys of a gateway, or `None` when it has none yet.
    pub async fn gateway_keys(&self, gateway_id: &str) -> Result<Option<GatewayKeys>, StoreError> {
        let row: Option<(String, String)> = with_db!(&self.inner.db, pool => {
            sqlx::query_as(SELECT_GATEWAY_KEYS)
                .bind(gateway_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(primary, secondary)| GatewayKeys { primary, secondary }))
    }

    /// Creates or replaces both keys of a gateway. Tokens signed with a replaced key stop
    /// verifying: to rotate one key, pass the other unchanged.
    pub async fn set_gateway_keys(
        &self,
        gateway_id: &str,
        keys: &GatewayKeys,
    ) -> Result<(), StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query(UPSERT_GATEWAY_KEYS)
                .bind(gateway_id)
                .bind(&keys.primary)
                .bind(&keys.secondary)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// Deletes a gateway's keys (with the gateway): every token it had stops verifying.
    /// Returns whether there were any.
    pub async fn delete_gateway_keys(&self, gateway_id: &str) -> Result<bool, StoreError> {
        let done = with_db!(&self.inner.db, pool => {
            sqlx::query(DELETE_GATEWAY_KEYS)
                .bind(gateway_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Forgets a deleted gateway: its keys (every token it had stops verifying) and the
    /// heartbeats of its instances, in one transaction.
    pub async fn forget_gateway(&self, gateway_id: &str) -> Result<(), StoreError> {
        with_db!(&self.inner.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(DELETE_GATEWAY_KEYS).bind(gateway_id).execute(&mut *tx).await?;
            sqlx::query(DELETE_GATEWAY_HEARTBEATS).bind(gateway_id).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Deletes one instance's heartbeat (the instance said goodbye). Returns whether
    /// there was one.
    pub async fn delete_heartbeat(
        &self,
        gateway_id: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        let done = with_db!(&self.inner.db, pool => {
            sqlx::query(DELETE_HEARTBEAT)
                .bind(gateway_id)
                .bind(instance_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Deletes the heartbeats last seen at or before `seen_until_unix`, of every gateway;
    /// returns how many.
    pub async fn prune_heartbeats(&self, seen_until_unix: i64) -> Result<u64, StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query(DELETE_HEARTBEATS_BEFORE)
                .bind(seen_until_unix)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from)
    }

    /// A shared setting, or `None` when it was never set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query_scalar(SELECT_SETTING).bind(name).fetch_optional(pool).await
        })
        .map_err(StoreError::from)
    }

    /// Sets a shared setting to `value` unless it is set already, and returns the value in
    /// force: `value`, or the one another replica set first.
    pub async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query(INSERT_SETTING_IF_ABSENT)
                .bind(name)
                .bind(value)
                .execute(pool)
                .await?;
            sqlx::query_scalar(SELECT_SETTING).bind(name).fetch_one(pool).await
        })
        .map_err(StoreError::from)
    }

    /// Sets a shared setting, replacing any value.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query(UPSERT_SETTING)
                .bind(name)
                .bind(value)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(StoreError::from)
    }

    /// Records an instance's heartbeat, replacing its previous one (keyed by gateway id
    /// and instance id).
    pub async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StoreError> {
        with_db!(&self.inner.db, pool => {
            sqlx::query(UPSERT_HEARTBEAT)
                .bind(&heartbeat.gateway_id)
                .bind(&heartbeat.instance_id)
                .bind(&heartbeat.hostname)
                .bind(&heartbeat.version)
                .bind(saturating_i64(heartbeat.applied_revision))
                .bind(heartbeat.last_error.as_deref())
                .bind(saturating_i64(heartbeat.uptime_seconds))
                .bind(heartbeat.token_expiry_unix)
                .bind(heartbeat.last_seen_unix)
                .bind(heartbeat.interval_seconds.map(saturating_i64))
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// The last heartbeat of each instance of `gateway_id` seen strictly after
    /// `seen_after_unix` (Unix seconds), ordered by instance id. Older ones stay stored.
    pub async fn heartbeats(
        &self,
        gateway_id: &str,
        seen_after_unix: i64,
    ) -> Result<Vec<Heartbeat>, StoreError> {
        let rows: Vec<HeartbeatRow> = with_db!(&self.inner.db, pool => {
            sqlx::query_as(SELECT_HEARTBEATS)
                .bind(gateway_id)
                .bind(seen_after_unix)
                .fetch_all(pool)
                .await
        })?;
        let mut heartbeats = rows
            .into_iter()
            .map(
                |(
                    instance_id,
                    hostname,
                    version,
                    applied,
                    last_error,
                    uptime,
                    token_expiry,
                    last_seen,
                    interval,
                )| {
                    Ok(Heartbeat {
                        gateway_id: gateway_id.to_owned(),
                        instance_id,
                        hostname,
                        version,
                        applied_revision: column_u64(applied, "heartbeats.applied_revision")?,
                        last_error,
                        uptime_seconds: column_u64(uptime, "heartbeats.uptime_seconds")?,
                        token_expiry_unix: token_expiry,
                        interval_seconds: interval
                            .map(|i| column_u64(i, "heartbeats.interval_seconds"))
                            .transpose()?,
                        last_seen_unix: last_seen,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        heartbeats.sort_unstable_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(heartbeats)
    }
}

/// Reads `state.revision` (the listener's catch-up after it subscribes).
pub(crate) async fn read_revision_pg(pool: &PgPool) -> Result<u64, StoreError> {
    let value: i64 = sqlx::query_scalar(SELECT_REVISION).fetch_one(pool).await?;
    column_u64(value, "state.revision")
}

/// Prepares a SQLite file before the driver opens it: creates its folder (mode 0700)
/// and the file itself (mode 0600) when missing, and takes group and other access away
/// from an existing one. The database holds secrets (sealed, but still nobody else's
/// business); SQLite gives its `-wal` and `-shm` files the database file's mode.
async fn prepare_sqlite_file(file: &Path) -> Result<(), StoreError> {
    let file = file.to_owned();
    let io = |e| StoreError::Database {
        source: sqlx::Error::Io(e),
    };
    tokio::task::spawn_blocking(move || restrict_sqlite_file(&file))
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)
}

/// [`prepare_sqlite_file`], blocking.
fn restrict_sqlite_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(file)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(file = %file.display(), mode = format!("{:o}", mode & 0o777), "the database file was readable by others; setting its mode to 0600");
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// What a write reads before it plans.
#[derive(Debug, Clone, Copy)]
enum View {
    /// Nothing: the ops are known.
    None,
    /// Every entity ([`Store::write_planned`]).
    AllEntities,
}

/// Why a write did not commit: the store, or the caller's plan.
enum Planned<E> {
    Store(StoreError),
    Plan(E),
}

impl<E> From<StoreError> for Planned<E> {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl<E> From<sqlx::Error> for Planned<E> {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Every entity from `SELECT_ALL_ENTITIES` rows, ordered by kind, then id (sorted here
/// rather than in SQL: one order on both databases, whatever their collation).
fn stored_rows(rows: Vec<(String, String, String, i64)>) -> Result<Vec<Stored>, StoreError> {
    let mut entities = rows
        .into_iter()
        .map(|(kind, id, body, revision)| stored(parse_kind(&kind, &id)?, id, &body, revision))
        .collect::<Result<Vec<_>, _>>()?;
    entities.sort_unstable_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    Ok(entities)
}

/// Builds a [`Stored`] from its columns.
fn stored(kind: Kind, id: String, body: &str, revision: i64) -> Result<Stored, StoreError> {
    let body = serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        detail: format!("{kind} `{id}`: body is not JSON: {e}"),
    })?;
    let revision = column_u64(revision, "entities.revision")?;
    Ok(Stored {
        kind,
        id,
        body,
        revision,
    })
}

fn parse_kind(kind: &str, id: &str) -> Result<Kind, StoreError> {
    kind.parse().map_err(|e| StoreError::Corrupt {
        detail: format!("entity `{id}`: {e}"),
    })
}

/// A stored BIGINT that must not be negative.
fn column_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        detail: format!("{column} is negative ({value})"),
    })
}

/// A count or revision as a BIGINT parameter; values past `i64::MAX` (never reached in
/// practice) are read as `i64::MAX`, which compares the same way.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
