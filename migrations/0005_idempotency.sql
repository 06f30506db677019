-- Keys of requests and commands seen recently: Slack trigger ids and Discord
-- interaction ids (a retried delivery is answered once), and identical adds
-- within limits.dedupe_window (the repeat gets the first one's result, kept
-- here as JSON, instead of a second provider call). Expired rows are purged.
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    result TEXT
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);
