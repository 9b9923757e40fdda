-- Gatehouse control-plane storage, version 2.
--
-- Settings every replica of a control plane must share, written once by whichever
-- replica starts first and read by the others: the admin token's hash, and a value
-- sealed with the encryption key so a replica holding another key refuses to start.
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- How often each instance reports (seconds), so silence can be judged per instance.
ALTER TABLE heartbeats ADD COLUMN interval_seconds BIGINT;
