-- Live alerts: a subscription with `live = 1` posts each membership change
-- from the journal within seconds (10-second windows by arrival). A channel may
-- have a digest and live alerts for the same group, so the unique key takes
-- `live`; SQLite cannot change a table's UNIQUE constraint, so the table is
-- rebuilt (the same statements on PostgreSQL).
CREATE TABLE subscriptions_v2 (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    group_ref TEXT NOT NULL,
    group_name TEXT NOT NULL,
    every_s BIGINT NOT NULL,
    at_time TEXT,
    tz TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    window_start BIGINT NOT NULL DEFAULT 0,
    window_end BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    live BIGINT NOT NULL DEFAULT 0,
    UNIQUE (platform, channel, group_ref, live)
);
INSERT INTO subscriptions_v2 (id, platform, channel, group_ref, group_name, every_s, at_time, tz, created_by,
    created_at, window_start, window_end, lease_owner, lease_until, last_error, live)
SELECT id, platform, channel, group_ref, group_name, every_s, at_time, tz, created_by,
    created_at, window_start, window_end, lease_owner, lease_until, last_error, 0
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v2 RENAME TO subscriptions;
CREATE INDEX subscriptions_due ON subscriptions (window_end);
-- Live alerts read the journal by arrival.
CREATE INDEX journal_provider_received ON journal (provider, received_at);
