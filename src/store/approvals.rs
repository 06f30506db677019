//! Two-person approval requests (see migrations/0008_approvals.sql): created
//! when the requester asks, decided once by one conditional UPDATE.

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::Row;

use super::{from_millis, millis, Store};

/// A request for a second person's approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Random id, carried in the Approve/Reject buttons.
    pub id: String,
    /// slack, discord.
    pub platform: String,
    /// Where it was asked.
    pub channel: String,
    /// Who asked (their own principal).
    pub requester: String,
    /// Every principal the requester had when asking: the command runs with them.
    pub requester_principals: Vec<String>,
    /// The command to run (with `--yes`).
    pub command_text: String,
    /// Its command id.
    pub command: String,
    /// Its group's id, if it has one.
    pub group_id: Option<String>,
    /// Until when it may be approved.
    pub expires_at: Timestamp,
}

impl Store {
    /// Saves a new request.
    pub async fn create_approval(&self, a: &Approval, now: Timestamp) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO approvals (id, platform, channel, requester, requester_principals, command_text, command, \
             group_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.id)
        .bind(&a.platform)
        .bind(&a.channel)
        .bind(&a.requester)
        .bind(serde_json::to_string(&a.requester_principals)?)
        .bind(&a.command_text)
        .bind(&a.command)
        .bind(a.group_id.clone())
        .bind(millis(now))
        .bind(millis(a.expires_at))
        .execute(&self.pool)
        .await
        .context("cannot save the approval request")?;
        Ok(())
    }

    /// A request, decided or not.
    pub async fn approval(&self, id: &str) -> anyhow::Result<Option<Approval>> {
        let row = sqlx::query(
            "SELECT id, platform, channel, requester, requester_principals, command_text, command, group_id, expires_at \
             FROM approvals WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read the approval request")?;
        row.map(|r| {
            Ok(Approval {
                id: r.try_get("id")?,
                platform: r.try_get("platform")?,
                channel: r.try_get("channel")?,
                requester: r.try_get("requester")?,
                requester_principals: serde_json::from_str(&r.try_get::<String, _>("requester_principals")?)?,
                command_text: r.try_get("command_text")?,
                command: r.try_get("command")?,
                group_id: r.try_get("group_id")?,
                expires_at: from_millis(r.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    /// Decides a request for `decider` (`approved` or `rejected`), if it is
    /// still open, unexpired and not `decider`'s own: exactly one caller ever
    /// gets `true` for an id, on any replica.
    pub async fn decide_approval(
        &self,
        id: &str,
        decider: &str,
        decision: &str,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let decided = sqlx::query(
            "UPDATE approvals SET decided_at = $1, decided_by = $2, decision = $3 \
             WHERE id = $4 AND decided_at IS NULL AND expires_at > $1 AND requester <> $2",
        )
        .bind(millis(now))
        .bind(decider)
        .bind(decision)
        .bind(id)
        .execute(&self.pool)
        .await
        .context("cannot decide the approval request")?
        .rows_affected();
        Ok(decided == 1)
    }
}
