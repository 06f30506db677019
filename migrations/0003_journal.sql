-- Membership events received from provider webhooks: history for providers
-- without a history endpoint. Deduplicated on the provider's event id.
CREATE TABLE journal (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT,
    subjects TEXT NOT NULL,
    detail TEXT,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX journal_group_at ON journal (provider, group_id, at);
