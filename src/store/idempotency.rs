//! Idempotency keys (see migrations/0005_idempotency.sql): one conditional
//! upsert decides who handles a key first, on SQLite and PostgreSQL alike, so
//! a repeat is caught across a restart and, on PostgreSQL, across replicas.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::{AnyPool, Row};

use super::{from_millis, millis, Store};

/// What a key's claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyClaim {
    /// First (or the earlier claim expired): go ahead.
    New,
    /// Claimed before, at `at`, with its result once there is one.
    Seen {
        /// When the first claim was made.
        at: Timestamp,
        /// What the first one stored with `finish_key`.
        result: Option<String>,
    },
}

/// The result a delivery id is claimed with: a delivery has nothing to run
/// later, and a finished claim survives `forget_unfinished_keys`.
const DELIVERED: &str = "delivered";

impl Store {
    /// Claims `key` for `ttl`: `New` for exactly one caller until it expires.
    pub async fn claim_key(&self, key: &str, now: Timestamp, ttl: Duration) -> anyhow::Result<KeyClaim> {
        claim(&self.pool, key, now, ttl, None).await
    }

    /// Claims a platform's delivery id (a Slack trigger id, a Discord
    /// interaction id) for `ttl`: `true` the first time it is seen.
    pub async fn claim_delivery(&self, key: &str, now: Timestamp, ttl: Duration) -> anyhow::Result<bool> {
        Ok(claim(&self.pool, key, now, ttl, Some(DELIVERED)).await? == KeyClaim::New)
    }

    /// Stores the result of the command behind a claimed key.
    pub async fn finish_key(&self, key: &str, result: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE idempotency SET result = $1 WHERE key = $2")
            .bind(result)
            .bind(key)
            .execute(&self.pool)
            .await
            .context("cannot store the idempotent result")?;
        Ok(())
    }

    /// Gives a claimed key up (the command failed; a repeat should run again).
    pub async fn forget_key(&self, key: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM idempotency WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .context("cannot drop the idempotency key")?;
        Ok(())
    }

    /// Drops claims that have no result yet. Called when a SQLite store is migrated
    /// (every process that works on it does so first):
    /// SQLite has one process, so a claim without a result belongs to a run
    /// that is gone, and a repeat should run rather than be told "still running".
    pub(super) async fn forget_unfinished_keys(&self) -> anyhow::Result<u64> {
        Ok(sqlx::query("DELETE FROM idempotency WHERE result IS NULL")
            .execute(&self.pool)
            .await
            .context("cannot drop unfinished idempotency keys")?
            .rows_affected())
    }

    /// Deletes expired keys; returns how many rows the store dropped.
    pub async fn purge_keys(&self, now: Timestamp) -> anyhow::Result<u64> {
        Ok(sqlx::query("DELETE FROM idempotency WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .context("cannot purge idempotency keys")?
            .rows_affected())
    }
}

async fn claim(
    pool: &AnyPool,
    key: &str,
    now: Timestamp,
    ttl: Duration,
    result: Option<&str>,
) -> anyhow::Result<KeyClaim> {
    let expires = now + jiff::SignedDuration::try_from(ttl)?;
    let taken = sqlx::query(
        "INSERT INTO idempotency (key, created_at, expires_at, result) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at, \
         result = excluded.result WHERE idempotency.expires_at <= excluded.created_at",
    )
    .bind(key)
    .bind(millis(now))
    .bind(millis(expires))
    .bind(result)
    .execute(pool)
    .await
    .context("cannot claim the idempotency key")?
    .rows_affected();
    if taken == 1 {
        return Ok(KeyClaim::New);
    }
    let row = sqlx::query("SELECT created_at, result FROM idempotency WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("cannot read the idempotency key")?;
    Ok(match row {
        Some(r) => KeyClaim::Seen {
            at: from_millis(r.try_get("created_at")?),
            result: r.try_get("result")?,
        },
        // Purged between the two statements: it had expired, so it is ours.
        None => KeyClaim::New,
    })
}
