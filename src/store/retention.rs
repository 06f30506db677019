//! Retention: audit rows, journal events and confirmations older than
//! `store.retention` allows are deleted, by one replica at a time (see
//! migrations/0006_retention.sql).

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;

use super::{millis, Store};
use crate::settings::RetentionSettings;

/// Rows deleted per statement: a purge of a large backlog never holds the
/// store's writer for long.
const BATCH: i64 = 5_000;

/// Rows one purge deleted, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Audit rows.
    pub audit: u64,
    /// Journal events.
    pub journal: u64,
    /// Confirmations.
    pub confirmations: u64,
}

impl Store {
    /// Purges what `retention` no longer keeps, if `owner` takes the purge's
    /// lease (until `now + lease`); `None` when another replica holds it.
    pub async fn purge_old(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        retention: &RetentionSettings,
    ) -> anyhow::Result<Option<Purged>> {
        let until = now + jiff::SignedDuration::try_from(lease)?;
        let taken = sqlx::query(
            "UPDATE maintenance SET owner = $1, lease_until = $2 WHERE job = 'retention' AND lease_until <= $3",
        )
        .bind(owner)
        .bind(millis(until))
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("cannot take the retention lease")?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        let cutoff = |keep: Duration| -> anyhow::Result<Option<i64>> {
            if keep.is_zero() {
                return Ok(None);
            }
            Ok(Some(millis(now - jiff::SignedDuration::try_from(keep)?)))
        };
        Ok(Some(Purged {
            audit: self
                .delete_before("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 LIMIT $2)", cutoff(retention.audit)?)
                .await?,
            journal: self
                .delete_before(
                    "DELETE FROM journal WHERE (provider, event_id) IN \
                     (SELECT provider, event_id FROM journal WHERE received_at < $1 LIMIT $2)",
                    cutoff(retention.journal)?,
                )
                .await?,
            confirmations: self
                .delete_before(
                    "DELETE FROM confirmations WHERE id IN (SELECT id FROM confirmations WHERE expires_at < $1 LIMIT $2)",
                    cutoff(retention.confirmations)?,
                )
                .await?,
        }))
    }

    /// Runs `statement` (bound to a cutoff and a batch size) until a batch
    /// deletes fewer rows than it may; `None` keeps everything.
    async fn delete_before(&self, statement: &str, cutoff: Option<i64>) -> anyhow::Result<u64> {
        let Some(cutoff) = cutoff else {
            return Ok(0);
        };
        let mut total = 0;
        loop {
            let deleted = sqlx::query(statement)
                .bind(cutoff)
                .bind(BATCH)
                .execute(&self.pool)
                .await
                .context("cannot purge old rows")?
                .rows_affected();
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
