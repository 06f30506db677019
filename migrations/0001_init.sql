-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, times as
-- Unix milliseconds, text ids, so the same migration runs on both.

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    principal TEXT NOT NULL,
    channel TEXT NOT NULL,
    command TEXT NOT NULL,
    group_id TEXT,
    numbers_count BIGINT NOT NULL,
    decision TEXT NOT NULL,
    rule TEXT NOT NULL,
    outcome TEXT NOT NULL,
    provider_trace_id TEXT
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE subscriptions (
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
    UNIQUE (platform, channel, group_ref)
);
