//! The control plane's storage: configuration entities as JSON documents with a global
//! revision log, gateway signing keys and gateway heartbeats, on SQLite (one process, the
//! default) or PostgreSQL (several control-plane replicas).
//!
//! # Model
//!
//! - **Entities** ([`Kind`] + id → JSON body) are opaque here: the caller validates them
//!   before [`Store::write`] and interprets them after reading. The store keeps, per
//!   entity, the revision of its last write, which is its ETag.
//! - **Revisions** form one global, gap-free sequence. Every written entity takes the next
//!   one, and logs one row in `changes` with it: a batch of N ops moves the revision by N.
//!   One revision per op (not per batch) keeps ETags unique and lets readers page through
//!   [`Store::changes_since`] by revision without ever stopping inside a batch.
//! - **Writers serialise** on the database: each write transaction first takes its
//!   revisions with `UPDATE state … RETURNING` (PostgreSQL: the row lock orders writers;
//!   SQLite: `BEGIN IMMEDIATE` takes the file's write lock, so two processes on one file
//!   also queue). So revisions commit in order: whoever sees revision N sees all below it.
//! - **Batches are atomic**: a failed precondition or a missing delete target rolls the
//!   whole batch back; the revision does not move.
//! - **Watching**: [`Store::watch`] is a `tokio::sync::watch` of the latest committed
//!   revision. A commit through this process updates it directly. On PostgreSQL, each write
//!   also sends `NOTIFY gatehouse_changes, '<revision>'` inside its transaction (delivered
//!   at commit only), and a background task per store `LISTEN`s on a dedicated connection,
//!   so writes by other replicas wake this one within milliseconds. The task reconnects
//!   with backoff and re-reads the revision after every reconnect. SQLite has no
//!   cross-process notification: one process per file is the supported setup.
//! - **Compaction** ([`Store::compact`]) drops old `changes` rows; a reader behind the
//!   horizon gets [`ChangesSince::Compacted`] and must start over from [`Store::all`].
//!
//! # Why an enum over two pools, not `sqlx::AnyPool`
//!
//! The SQL is shared (one migration set, one text per query), but the two databases need
//! different transaction starts (`BEGIN IMMEDIATE` for SQLite writers; `REPEATABLE READ`
//! for consistent PostgreSQL reads, whose default gives each statement its own snapshot),
//! SQLite needs pragmas (WAL, foreign keys, busy timeout) and an in-memory mode pinned to
//! one connection, and PostgreSQL needs `LISTEN`/`NOTIFY` through its own driver types. With
//! typed pools each of these is a plain call; `Any` would route all of them through
//! strings and lose the typed options. A small macro runs each query body against whichever
//! pool is in use, so queries are still written once and the `any` feature is not built.
//!
//! No query is checked at compile time (no `DATABASE_URL` at build time): all are
//! `sqlx::query` with bound parameters, and tests run every one on both databases.
//!
//! # Not here
//!
//! Validation of entity bodies, reference checks, encryption of secrets and the meaning of
//! gateway keys all belong to the caller (`crates/control`). PostgreSQL is reached over
//! plain TCP: no TLS backend is compiled in yet.

mod connect;
mod error;
mod listener;
mod store;
mod types;

pub use connect::StoreOptions;
pub use error::{StoreError, StoreErrorReason};
/// The entity kinds and change ops, defined with the Configuration API's wire types:
/// their spellings are what the `kind` and `op` columns hold.
pub use gatehouse_model::wire::{Kind, Op, UnknownKind, UnknownOp};
pub use store::Store;
pub use types::{
    Change, ChangesSince, DEFAULT_PAGE_SIZE, GatewayKeys, Heartbeat, ListQuery, MAX_PAGE_SIZE,
    Page, Precondition, Stored, WriteOp,
};
