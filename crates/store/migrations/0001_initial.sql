-- Gatehouse control-plane storage, version 1.
--
-- One migration set for SQLite and PostgreSQL: only types and syntax both accept
-- (TEXT, BIGINT, composite primary keys, CHECK). Revisions are BIGINT because PostgreSQL's
-- INTEGER is 32 bits; SQLite stores any integer in 64 bits anyway.

-- Every entity as a JSON document (camelCase, as in the configuration file).
-- `revision` is the global revision of the entity's last write: its ETag.
CREATE TABLE entities (
    kind     TEXT   NOT NULL,
    id       TEXT   NOT NULL,
    body     TEXT   NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- The revision log: one row per written entity, in revision order. Rows at or below
-- state.compacted have been dropped by compaction.
CREATE TABLE changes (
    revision BIGINT NOT NULL PRIMARY KEY,
    kind     TEXT   NOT NULL,
    id       TEXT   NOT NULL,
    op       TEXT   NOT NULL CHECK (op IN ('upsert', 'delete'))
);

-- Counters: `revision` is the latest committed global revision (writers take the next
-- one with UPDATE ... RETURNING, which serialises them on this row); `compacted` is the
-- compaction horizon (changes at or below it are gone).
CREATE TABLE state (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO state (name, value) VALUES ('revision', 0);
INSERT INTO state (name, value) VALUES ('compacted', 0);

-- HMAC keys of each gateway (signing keys for its Configuration API tokens).
CREATE TABLE gateway_keys (
    gateway_id    TEXT NOT NULL PRIMARY KEY,
    primary_key   TEXT NOT NULL,
    secondary_key TEXT NOT NULL
);

-- The last heartbeat of each gateway instance. Times are Unix seconds.
CREATE TABLE heartbeats (
    gateway_id       TEXT   NOT NULL,
    instance_id      TEXT   NOT NULL,
    hostname         TEXT   NOT NULL,
    version          TEXT   NOT NULL,
    applied_revision BIGINT NOT NULL,
    last_error       TEXT,
    uptime_seconds   BIGINT NOT NULL,
    token_expiry     BIGINT,
    last_seen        BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, instance_id)
);

CREATE INDEX heartbeats_last_seen ON heartbeats (gateway_id, last_seen);
