//! Digest cursors, leases and posted windows (see migrations/0004_digests.sql).
//!
//! Exactly once rests on three rules, each one conditional statement:
//! - a replica claims a due subscription only when its lease is free or expired
//!   (one UPDATE; on PostgreSQL the candidates are picked `FOR UPDATE SKIP LOCKED`,
//!   so racing replicas split the work instead of queueing on the same rows);
//! - the cursor moves only from the window the replica claimed, and only while
//!   it still holds the lease;
//! - a window's post is recorded before the cursor moves, so a later claimer
//!   that finds it recorded moves the cursor without posting again.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::Row;

use super::{from_millis, millis, subscription_from_row, Backend, JournalEntry, Store, Subscription};

/// A subscription claimed by one replica, with its unposted window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The subscription.
    pub subscription: Subscription,
    /// Start of the unposted window (inclusive).
    pub window_start: Timestamp,
    /// End of the unposted window (exclusive).
    pub window_end: Timestamp,
}

/// What was known about a window before this attempt to post it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriorAttempt {
    /// Never tried, or every earlier try surely failed.
    None,
    /// An earlier try may have reached the platform (it ended without an answer).
    Unknown,
    /// It was posted (the cursor just did not move yet); the message reference.
    Posted(String),
}

/// Which platforms this replica can post to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platforms {
    /// Slack has a bot token.
    pub slack: bool,
    /// Discord has a bot token.
    pub discord: bool,
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, platform, channel, group_ref, group_name, every_s, at_time, tz, created_by, created_at, window_start, window_end, live";

/// How long after a live window ends it is read: a webhook's event written at
/// the very end of the window is committed by then.
pub const LIVE_GRACE_MS: i64 = 2_000;

impl Store {
    /// Takes the lease on up to `limit` subscriptions whose window closed by
    /// `now` and whose lease is free or expired, for `owner` until `now + lease`.
    pub async fn claim_due_digests(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: i64,
        platforms: Platforms,
    ) -> anyhow::Result<Vec<Claimed>> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            // SQLite has one writer at a time: the UPDATE below is already atomic.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE subscriptions SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM subscriptions \
                 WHERE window_end + live * {LIVE_GRACE_MS} <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 AND ((platform = 'slack' AND $4 = 1) OR (platform = 'discord' AND $5 = 1)) \
                 ORDER BY window_end, id LIMIT $6{skip_locked}) \
             AND (lease_until IS NULL OR lease_until <= $3) \
             RETURNING {SUBSCRIPTION_COLUMNS}"
        );
        let until = now + jiff::SignedDuration::try_from(lease)?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(millis(until))
            .bind(millis(now))
            .bind(i64::from(platforms.slack))
            .bind(i64::from(platforms.discord))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("cannot claim due digests")?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    subscription: subscription_from_row(r)?,
                    window_start: from_millis(r.try_get("window_start")?),
                    window_end: from_millis(r.try_get("window_end")?),
                })
            })
            .collect()
    }

    /// Notes the start of an attempt to post a window (one statement) and says
    /// what earlier attempts left behind.
    pub async fn begin_digest_post(&self, claimed: &Claimed, events: usize) -> anyhow::Result<PriorAttempt> {
        let row = sqlx::query(
            "INSERT INTO digest_windows (subscription_id, window_start, window_end, state, prior_state, attempts, events) \
             VALUES ($1, $2, $3, 'posting', 'new', 1, $4) \
             ON CONFLICT (subscription_id, window_start) DO UPDATE SET \
             prior_state = digest_windows.state, \
             state = CASE WHEN digest_windows.state = 'posted' THEN 'posted' ELSE 'posting' END, \
             attempts = digest_windows.attempts + 1, events = excluded.events \
             RETURNING prior_state, message_ref",
        )
        .bind(&claimed.subscription.id)
        .bind(millis(claimed.window_start))
        .bind(millis(claimed.window_end))
        .bind(events as i64)
        .fetch_one(&self.pool)
        .await
        .context("cannot record the digest attempt")?;
        let prior: String = row.try_get("prior_state")?;
        Ok(match prior.as_str() {
            "posted" => PriorAttempt::Posted(row.try_get::<Option<String>, _>("message_ref")?.unwrap_or_default()),
            "posting" => PriorAttempt::Unknown,
            _ => PriorAttempt::None,
        })
    }

    /// Closes the claimed window in one transaction: records its post (if it
    /// had one) and moves the cursor to `[window_end, next_end)` if `owner`
    /// still holds the lease and nobody moved the cursor. The lease is renewed
    /// until `lease_until`, or given back with `None`. Returns false when the
    /// lease was lost (the post stays recorded, so the new holder skips it).
    pub async fn close_digest_window(
        &self,
        claimed: &Claimed,
        posted: Option<&str>,
        owner: &str,
        now: Timestamp,
        next_end: Timestamp,
        lease_until: Option<Timestamp>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("cannot close the digest window")?;
        if let Some(message_ref) = posted {
            sqlx::query(
                "UPDATE digest_windows SET state = 'posted', message_ref = $1, posted_by = $2, posted_at = $3 \
                 WHERE subscription_id = $4 AND window_start = $5",
            )
            .bind(message_ref)
            .bind(owner)
            .bind(millis(now))
            .bind(&claimed.subscription.id)
            .bind(millis(claimed.window_start))
            .execute(&mut *tx)
            .await
            .context("cannot record the posted digest")?;
        }
        let moved = sqlx::query(
            "UPDATE subscriptions SET window_start = $1, window_end = $2, lease_until = $3, \
             lease_owner = CASE WHEN $3 IS NULL THEN NULL ELSE lease_owner END, last_error = NULL \
             WHERE id = $4 AND lease_owner = $5 AND window_start = $6",
        )
        .bind(millis(claimed.window_end))
        .bind(millis(next_end))
        .bind(lease_until.map(millis))
        .bind(&claimed.subscription.id)
        .bind(owner)
        .bind(millis(claimed.window_start))
        .execute(&mut *tx)
        .await
        .context("cannot move the digest cursor")?
        .rows_affected();
        tx.commit().await.context("cannot close the digest window")?;
        Ok(moved == 1)
    }

    /// Records that an attempt surely did not post (the platform said no), so
    /// the next attempt need not look for an earlier message.
    pub async fn digest_post_failed(&self, claimed: &Claimed) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE digest_windows SET state = 'failed' WHERE subscription_id = $1 AND window_start = $2 AND state = 'posting'",
        )
        .bind(&claimed.subscription.id)
        .bind(millis(claimed.window_start))
        .execute(&self.pool)
        .await
        .context("cannot record the failed digest")?;
        Ok(())
    }

    /// Gives the lease back after a failure, noting why the window is still
    /// unposted; nobody claims it again before `not_before`.
    pub async fn release_digest(
        &self,
        subscription_id: &str,
        owner: &str,
        error: &str,
        not_before: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE subscriptions SET lease_owner = NULL, lease_until = $1, last_error = $2 \
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(millis(not_before))
        .bind(error)
        .bind(subscription_id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .context("cannot release the digest lease")?;
        Ok(())
    }

    /// The posted windows of a subscription, oldest first: (start, end, message).
    pub async fn posted_digests(&self, subscription_id: &str) -> anyhow::Result<Vec<(Timestamp, Timestamp, String)>> {
        let rows = sqlx::query(
            "SELECT window_start, window_end, message_ref FROM digest_windows \
             WHERE subscription_id = $1 AND state = 'posted' ORDER BY window_start",
        )
        .bind(subscription_id)
        .fetch_all(&self.pool)
        .await
        .context("cannot read posted digests")?;
        rows.iter()
            .map(|r| {
                Ok((
                    from_millis(r.try_get("window_start")?),
                    from_millis(r.try_get("window_end")?),
                    r.try_get::<Option<String>, _>("message_ref")?.unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The unposted window of a subscription and why the last attempt failed, if it did.
    pub async fn digest_cursor(
        &self,
        subscription_id: &str,
    ) -> anyhow::Result<Option<(Timestamp, Timestamp, Option<String>)>> {
        let row = sqlx::query("SELECT window_start, window_end, last_error FROM subscriptions WHERE id = $1")
            .bind(subscription_id)
            .fetch_optional(&self.pool)
            .await
            .context("cannot read the digest cursor")?;
        row.map(|r| {
            Ok((
                from_millis(r.try_get("window_start")?),
                from_millis(r.try_get("window_end")?),
                r.try_get("last_error")?,
            ))
        })
        .transpose()
    }

    /// Journal events that arrived in `[from, to)` (live alerts), oldest first.
    pub async fn events_received_between(
        &self,
        provider: &str,
        group_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        self.journal_window("received_at", provider, group_id, from, to).await
    }

    /// Every group's events in `[from, to)`, oldest first.
    pub async fn events_between(
        &self,
        provider: &str,
        group_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        self.journal_window("at", provider, group_id, from, to).await
    }

    /// Journal events whose `column` (`at` or `received_at`) is in `[from, to)`,
    /// of one group (`Some`) or all, oldest first.
    async fn journal_window(
        &self,
        column: &'static str,
        provider: &str,
        group_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        let sql = format!(
            "SELECT provider, event_id, group_id, kind, actor, subjects, detail, at, received_at FROM journal \
             WHERE provider = $1 AND ($2 = '*' OR group_id = $2) AND {column} >= $3 AND {column} < $4 \
             ORDER BY at, event_id"
        );
        let rows = sqlx::query(&sql)
            .bind(provider)
            .bind(group_id.unwrap_or("*"))
            .bind(millis(from))
            .bind(millis(to))
            .fetch_all(&self.pool)
            .await
            .context("cannot read the journal")?;
        rows.iter().map(super::journal_from_row).collect()
    }
}
