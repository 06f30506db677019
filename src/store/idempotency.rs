//! Idempotency keys (see migrations/0005_idempotency.sql).
//!
//! On PostgreSQL, where replicas share the store, one conditional upsert decides
//! who handles a key first. On SQLite there is one process (SPEC §8: replicas
//! use PostgreSQL), so the process decides in memory and the store only keeps
//! finished results, written behind in batches, for repeats after a restart.
//! That takes two statements (a write each, behind SQLite's one write lock) off
//! every add; docs/benchmarks.md ("Third pass") measures it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, OnceCell};

use super::{from_millis, millis, values_placeholders, Store};

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

impl Store {
    /// Claims `key` for `ttl`: `New` for exactly one caller until it expires.
    pub async fn claim_key(&self, key: &str, now: Timestamp, ttl: Duration) -> anyhow::Result<KeyClaim> {
        let expires = now + jiff::SignedDuration::try_from(ttl)?;
        match &self.keys {
            Some(local) => local.claim(&self.pool, key, now, expires).await,
            None => claim_in_store(&self.pool, key, now, expires).await,
        }
    }

    /// Stores the result of the command behind a claimed key.
    pub async fn finish_key(&self, key: &str, result: &str) -> anyhow::Result<()> {
        if let Some(local) = &self.keys {
            return local.finish(&self.pool, key, result).await;
        }
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
        // Only finished keys reach SQLite's store, and a finished key is never given up.
        if self.forget_key_in_memory(key) {
            return Ok(());
        }
        sqlx::query("DELETE FROM idempotency WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .context("cannot drop the idempotency key")?;
        Ok(())
    }

    /// Gives a claimed key up at once, without a runtime, where the process
    /// decides (SQLite); `false` where only the store can (PostgreSQL).
    pub(crate) fn forget_key_in_memory(&self, key: &str) -> bool {
        match &self.keys {
            Some(local) => {
                local.state().keys.remove(key);
                true
            }
            None => false,
        }
    }

    /// Lowers how many keys SQLite's side holds in memory (tests of the spill
    /// to the store; no effect on PostgreSQL).
    #[doc(hidden)]
    pub fn limit_keys_in_memory(&self, capacity: usize) {
        if let Some(local) = &self.keys {
            local.state().capacity = capacity.max(1);
        }
    }

    /// Waits until the add results written behind so far are in the store.
    #[doc(hidden)]
    pub async fn flush_keys(&self) {
        if let Some(local) = &self.keys {
            local.flush().await;
        }
    }

    /// Deletes expired keys; returns how many rows the store dropped.
    pub async fn purge_keys(&self, now: Timestamp) -> anyhow::Result<u64> {
        if let Some(local) = &self.keys {
            local.state().purge(now);
        }
        Ok(sqlx::query("DELETE FROM idempotency WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .context("cannot purge idempotency keys")?
            .rows_affected())
    }
}

async fn claim_in_store(pool: &AnyPool, key: &str, now: Timestamp, expires: Timestamp) -> anyhow::Result<KeyClaim> {
    let taken = sqlx::query(
        "INSERT INTO idempotency (key, created_at, expires_at, result) VALUES ($1, $2, $3, NULL) \
         ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at, result = NULL \
         WHERE idempotency.expires_at <= excluded.created_at",
    )
    .bind(key)
    .bind(millis(now))
    .bind(millis(expires))
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

/// Keys held in memory at most before finished ones are left to the store
/// alone (about 100 bytes each; results are not kept once written).
const CAPACITY: usize = 32_768;
/// Finished results waiting for the writer at most; beyond it `finish` writes
/// its own.
const QUEUE: usize = 1024;
/// Rows per write-behind transaction at most.
const BATCH: usize = 128;

/// The SQLite side: this process's keys, and the writer of their results.
pub(super) struct LocalKeys {
    state: Arc<Mutex<LocalState>>,
    tx: mpsc::Sender<Write>,
    loaded: OnceCell<()>,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys")
            .field("keys", &self.state().keys.len())
            .finish()
    }
}

struct LocalState {
    keys: HashMap<String, Entry>,
    /// `CAPACITY`, smaller in tests.
    capacity: usize,
    /// Finished keys were dropped from memory (at `CAPACITY`) or not loaded at
    /// start: until this time, a key missing here may still be in the store.
    spilled_until: Option<Timestamp>,
}

struct Entry {
    at: Timestamp,
    expires: Timestamp,
    stage: Stage,
}

enum Stage {
    /// Claimed; the command is running.
    Running,
    /// Finished; the result is on its way to the store.
    Writing(Arc<str>),
    /// Finished and written: the result is read from the store on a repeat.
    Stored,
}

/// One finished key for the writer.
struct Finished {
    key: String,
    at: Timestamp,
    expires: Timestamp,
    result: Arc<str>,
}

type Write = super::Batched<Finished>;

/// What memory knows of a key.
enum Known {
    Claim(KeyClaim),
    /// Finished and written: the result is in the store.
    InStore,
    /// Not here; the store may have it (see `spilled_until`).
    Maybe,
}

impl LocalState {
    fn known(&self, key: &str, now: Timestamp) -> Known {
        match self.keys.get(key).filter(|e| e.expires > now) {
            Some(e) => match &e.stage {
                Stage::Running => Known::Claim(KeyClaim::Seen { at: e.at, result: None }),
                Stage::Writing(result) => Known::Claim(KeyClaim::Seen {
                    at: e.at,
                    result: Some(result.to_string()),
                }),
                Stage::Stored => Known::InStore,
            },
            None if self.spilled_until.is_some_and(|t| t > now) => Known::Maybe,
            None => Known::Claim(KeyClaim::New),
        }
    }

    fn insert(&mut self, key: &str, at: Timestamp, expires: Timestamp, stage: Stage) {
        if self.keys.len() >= self.capacity {
            self.purge(at);
        }
        if self.keys.len() >= self.capacity {
            // Written keys can be found in the store: let them go, and look there
            // for missing keys until the last of them would have expired.
            let mut until = self.spilled_until;
            self.keys.retain(|_, e| {
                let keep = !matches!(e.stage, Stage::Stored);
                if !keep {
                    until = until.max(Some(e.expires));
                }
                keep
            });
            self.spilled_until = until;
        }
        self.keys.insert(key.to_string(), Entry { at, expires, stage });
    }

    fn purge(&mut self, now: Timestamp) {
        self.keys.retain(|_, e| e.expires > now);
        if self.spilled_until.is_some_and(|t| t <= now) {
            self.spilled_until = None;
        }
    }

    /// After a write of `rows` (unless a key was claimed again meanwhile):
    /// written ones are read from the store from now on; ones that could not
    /// be written are dropped, so repeats of them run again, as when the store
    /// is down at claim time.
    fn settle(&mut self, rows: &[Finished], written: bool) {
        for row in rows {
            let Some(e) = self.keys.get_mut(&row.key).filter(|e| e.at == row.at) else {
                continue;
            };
            if written {
                e.stage = Stage::Stored;
            } else {
                self.keys.remove(&row.key);
            }
        }
    }
}

impl LocalKeys {
    /// Starts the writer, which keeps finished keys in the store in batches (one
    /// transaction each, in the order given), on the store writers' runtime
    /// (`workers::spawn_store_writer`).
    pub(super) fn start(pool: AnyPool) -> LocalKeys {
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = Arc::new(Mutex::new(LocalState {
            keys: HashMap::new(),
            capacity: CAPACITY,
            spilled_until: None,
        }));
        let written = state.clone();
        tokio::spawn(super::write_batches(rx, BATCH, move |rows| {
            let (pool, state) = (pool.clone(), written.clone());
            async move {
                let written = write_with_retries(&pool, &rows).await;
                lock(&state).settle(&rows, written);
            }
        }));
        LocalKeys {
            state,
            tx,
            loaded: OnceCell::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, LocalState> {
        lock(&self.state)
    }

    async fn claim(&self, pool: &AnyPool, key: &str, now: Timestamp, expires: Timestamp) -> anyhow::Result<KeyClaim> {
        self.loaded.get_or_try_init(|| self.load(pool, now)).await?;
        {
            // Decided under the lock: of two racing claims, one is new.
            let mut state = self.state();
            match state.known(key, now) {
                Known::Claim(KeyClaim::New) => {
                    state.insert(key, now, expires, Stage::Running);
                    return Ok(KeyClaim::New);
                }
                Known::Claim(seen) => return Ok(seen),
                Known::InStore | Known::Maybe => {}
            }
        }
        let row = sqlx::query(
            "SELECT created_at, result FROM idempotency WHERE key = $1 AND expires_at > $2 AND result IS NOT NULL",
        )
        .bind(key)
        .bind(millis(now))
        .fetch_optional(pool)
        .await
        .context("cannot read the idempotency key")?;
        if let Some(r) = row {
            return Ok(KeyClaim::Seen {
                at: from_millis(r.try_get("created_at")?),
                result: r.try_get("result")?,
            });
        }
        let mut state = self.state();
        match state.known(key, now) {
            // Claimed by another caller while this one read the store.
            Known::Claim(seen @ KeyClaim::Seen { .. }) => Ok(seen),
            _ => {
                state.insert(key, now, expires, Stage::Running);
                Ok(KeyClaim::New)
            }
        }
    }

    async fn finish(&self, pool: &AnyPool, key: &str, result: &str) -> anyhow::Result<()> {
        let result: Arc<str> = result.into();
        let row = {
            let mut state = self.state();
            let Some(e) = state.keys.get_mut(key) else {
                // Expired or purged while the command ran: nothing to keep it for.
                return Ok(());
            };
            e.stage = Stage::Writing(result.clone());
            Finished {
                key: key.to_string(),
                at: e.at,
                expires: e.expires,
                result,
            }
        };
        let row = match self.tx.try_send(Write::Row(row)) {
            Ok(()) => return Ok(()),
            Err(
                mpsc::error::TrySendError::Full(Write::Row(row)) | mpsc::error::TrySendError::Closed(Write::Row(row)),
            ) => row,
            Err(_) => unreachable!("a row was sent"),
        };
        // The writer is behind: this command writes its own row, so the queue stays bounded.
        let rows = [row];
        let written = write_rows(pool, &rows).await;
        self.state().settle(&rows, written.is_ok());
        written
    }

    /// Waits until every result handed to the writer before now is written.
    pub(super) async fn flush(&self) {
        let (flush, wait) = Write::flush();
        if self.tx.send(flush).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Reads the results kept by an earlier run that have not expired. Claims
    /// without a result are not loaded: the process that made them is gone.
    async fn load(&self, pool: &AnyPool, now: Timestamp) -> anyhow::Result<()> {
        let rows = sqlx::query(
            "SELECT key, created_at, expires_at FROM idempotency \
             WHERE expires_at > $1 AND result IS NOT NULL ORDER BY expires_at DESC LIMIT $2",
        )
        .bind(millis(now))
        .bind(CAPACITY as i64)
        .fetch_all(pool)
        .await
        .context("cannot read the idempotency keys")?;
        let mut state = self.state();
        if rows.len() == CAPACITY {
            let latest = rows[0].try_get("expires_at")?;
            state.spilled_until = Some(from_millis(latest));
        }
        for r in &rows {
            let key: String = r.try_get("key")?;
            let at = from_millis(r.try_get("created_at")?);
            let expires = from_millis(r.try_get("expires_at")?);
            state.insert(&key, at, expires, Stage::Stored);
        }
        Ok(())
    }
}

fn lock(state: &Mutex<LocalState>) -> MutexGuard<'_, LocalState> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Retries of a batch of results before they are given up on (a repeat then
/// runs again): 5 attempts over about 0.75 s.
const RETRY: super::Retry = super::Retry {
    attempts: 5,
    first: Duration::from_millis(50),
    max: Duration::from_millis(400),
};

async fn write_with_retries(pool: &AnyPool, rows: &[Finished]) -> bool {
    match RETRY.run("add results", rows.len(), || write_rows(pool, rows)).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                rows = rows.len(),
                "add results not kept for repeats"
            );
            metrics::counter!("waops_idempotency_rows_lost_total").increment(rows.len() as u64);
            false
        }
    }
}

/// Rows per INSERT (4 parameters each; see `Store::record_audits` for why SQLite
/// wants short statements).
const ROWS_PER_INSERT: usize = 16;

async fn write_rows(pool: &AnyPool, rows: &[Finished]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("cannot keep the add results")?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        // Rows of one key in one statement apply in order: the later claim wins.
        let sql = format!(
            "INSERT INTO idempotency (key, created_at, expires_at, result) VALUES {} \
             ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, \
             expires_at = excluded.expires_at, result = excluded.result",
            values_placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.key.as_str())
                .bind(millis(row.at))
                .bind(millis(row.expires))
                .bind(&*row.result);
        }
        query.execute(&mut *tx).await.context("cannot keep the add results")?;
    }
    tx.commit().await.context("cannot keep the add results")?;
    Ok(())
}
