-- Previews waiting for Apply/Cancel (Slack and Discord buttons). A click
-- consumes the row with one conditional UPDATE, so a second click, another
-- user's click or a late click changes nothing.
CREATE TABLE confirmations (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    principal TEXT NOT NULL,
    channel TEXT NOT NULL,
    command_text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
