-- Digest scheduling. Each subscription carries its cursor: the window
-- [window_start, window_end) not yet posted. The cursor moves only after that
-- window's digest was posted (or found empty), so a failed post is retried on a
-- later tick and no window is ever skipped. A replica works on a subscription
-- only while it holds the row's lease; a crashed replica's lease expires.
ALTER TABLE subscriptions ADD COLUMN window_start BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN window_end BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN lease_owner TEXT;
ALTER TABLE subscriptions ADD COLUMN lease_until BIGINT;
ALTER TABLE subscriptions ADD COLUMN last_error TEXT;
UPDATE subscriptions SET window_start = created_at, window_end = created_at + every_s * 1000 WHERE window_end = 0;
CREATE INDEX subscriptions_due ON subscriptions (window_end);

-- One row per window that had something to post: written before the post
-- (state 'posting', attempts counted) and marked 'posted' with the message
-- reference after it. A window found in 'posting' on a later attempt may have
-- been posted by a replica that crashed before recording it.
CREATE TABLE digest_windows (
    subscription_id TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    state TEXT NOT NULL,
    -- The state before the latest attempt began: what that attempt must check.
    prior_state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    events BIGINT NOT NULL,
    message_ref TEXT,
    posted_by TEXT,
    posted_at BIGINT,
    PRIMARY KEY (subscription_id, window_start)
);
