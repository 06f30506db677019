-- Jobs that one replica at a time runs (the retention purge): a replica runs
-- one only after taking its lease with one conditional UPDATE.
CREATE TABLE maintenance (
    job TEXT PRIMARY KEY,
    owner TEXT,
    lease_until BIGINT NOT NULL
);
INSERT INTO maintenance (job, owner, lease_until) VALUES ('retention', NULL, 0);
-- The purge finds journal events by when they arrived, confirmations by their expiry.
CREATE INDEX journal_received ON journal (received_at);
CREATE INDEX confirmations_expires ON confirmations (expires_at);
