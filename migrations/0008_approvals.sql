-- Two-person approval: a request posted to the channel with Approve/Reject.
-- One conditional UPDATE decides it (a different person, before it expires,
-- once), on any replica. The requester's principals are kept so the approved
-- command runs with the requester's rights.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_principals TEXT NOT NULL,
    command_text TEXT NOT NULL,
    command TEXT NOT NULL,
    group_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision TEXT
);
-- Who approved the command an audit row records.
ALTER TABLE audit ADD COLUMN approver TEXT;
