//! Idempotency keys (see migrations/0005_idempotency.sql): one conditional
//! upsert decides, across replicas, who handles a key first.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{from_millis, millis, Store};

/// What a key's claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyClaim {
    /// First (or the earlier claim expired): go ahead.
    New,
    /// Claimed before, at `at`, with its result once there is one.
    Seen {
        /// When the first claim was made.
        at: DateTime<Utc>,
        /// What the first one stored with `finish_key`.
        result: Option<String>,
    },
}

impl Store {
    /// Claims `key` for `ttl`: `New` for exactly one caller until it expires.
    pub async fn claim_key(&self, key: &str, now: DateTime<Utc>, ttl: Duration) -> anyhow::Result<KeyClaim> {
        let expires = now + chrono::Duration::from_std(ttl)?;
        let taken = sqlx::query(
            "INSERT INTO idempotency (key, created_at, expires_at, result) VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at, result = NULL \
             WHERE idempotency.expires_at <= excluded.created_at",
        )
        .bind(key)
        .bind(millis(now))
        .bind(millis(expires))
        .execute(&self.pool)
        .await
        .context("cannot claim the idempotency key")?
        .rows_affected();
        if taken == 1 {
            return Ok(KeyClaim::New);
        }
        let row = sqlx::query("SELECT created_at, result FROM idempotency WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
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

    /// Deletes expired keys; returns how many.
    pub async fn purge_keys(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(sqlx::query("DELETE FROM idempotency WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .context("cannot purge idempotency keys")?
            .rows_affected())
    }
}
