//! The store: SQLite by default, PostgreSQL for replicas, through sqlx's `Any`
//! driver so one set of queries and migrations serves both. Methods are named
//! for what the domain does, never for SQL.

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub mod approvals;
pub mod digests;
pub mod idempotency;
pub mod retention;
pub use digests::{Claimed, Platforms, PriorAttempt};
pub use idempotency::KeyClaim;

/// How long the audit writer waits after the first row for more to join its
/// transaction. Rows arrive one per command; under load this turns hundreds of
/// one-row transactions a second into a few dozen. The rows wait in memory
/// meanwhile.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// What a batch writer's channel carries: a row, or a request to be answered
/// once every row sent before it is written (or given up on).
pub(crate) enum Batched<T> {
    Row(T),
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl<T> Batched<T> {
    /// A flush request, and the answer to wait for.
    pub(crate) fn flush() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (done, wait) = tokio::sync::oneshot::channel();
        (Batched::Flush(done), wait)
    }
}

/// A batch writer's loop (audit rows, add results): gathers batches of at most
/// `max_rows` rows (`next_batch`), hands each one's rows to `write`, then
/// answers the flush requests that came with them. Ends once the channel is
/// closed and empty.
pub(crate) async fn write_batches<T, W, F>(
    mut rx: tokio::sync::mpsc::Receiver<Batched<T>>,
    max_rows: usize,
    mut write: W,
) where
    W: FnMut(Vec<T>) -> F,
    F: std::future::Future<Output = ()>,
{
    while let Some(batch) = next_batch(&mut rx, max_rows).await {
        let mut rows = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for message in batch {
            match message {
                Batched::Row(row) => rows.push(row),
                Batched::Flush(done) => flushes.push(done),
            }
        }
        if !rows.is_empty() {
            write(rows).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// The next batch: what is waiting on `rx`, up to `max_rows` rows, and once,
/// what arrives within `LINGER` after that. A flush request ends the wait at
/// once. `None` once the channel is closed and empty.
async fn next_batch<T>(rx: &mut tokio::sync::mpsc::Receiver<Batched<T>>, max_rows: usize) -> Option<Vec<Batched<T>>> {
    let mut next = Some(rx.recv().await?);
    let (mut batch, mut rows, mut flush, mut lingered) = (Vec::new(), 0, false, false);
    loop {
        while let Some(message) = next.take() {
            match message {
                Batched::Row(_) => rows += 1,
                Batched::Flush(_) => flush = true,
            }
            batch.push(message);
            if rows < max_rows {
                next = rx.try_recv().ok();
            }
        }
        if lingered || flush || rows >= max_rows {
            return Some(batch);
        }
        lingered = true;
        tokio::time::sleep(LINGER).await;
        next = rx.try_recv().ok();
    }
}

/// How a batch writer retries a batch the store refused: `attempts` in all,
/// waiting `first` after the first failure and twice as long after each
/// further one, `max` at most.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    pub attempts: u32,
    pub first: std::time::Duration,
    pub max: std::time::Duration,
}

impl Retry {
    /// Runs `write` until it succeeds or the attempts are used up; the last
    /// error then. Each failure before the last is logged with `what`.
    pub(crate) async fn run<W, F>(self, what: &str, rows: usize, mut write: W) -> anyhow::Result<()>
    where
        W: FnMut() -> F,
        F: std::future::Future<Output = anyhow::Result<()>>,
    {
        let mut wait = self.first;
        let mut attempt = 1;
        loop {
            match write().await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.attempts => return Err(e),
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), rows, attempt, "{what} not written; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.max);
                    attempt += 1;
                }
            }
        }
    }
}

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory in tests).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// An audit field whose values come from a fixed set in the program
/// (platform, command, decision, outcome): borrowed where it can be, so the
/// ack path allocates none of them; owned when read back or formatted.
pub type Label = std::borrow::Cow<'static, str>;

/// One audit row: every command, allowed or refused. Never holds tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When.
    pub at: Timestamp,
    /// The request id users see as "ref".
    pub request_id: String,
    /// console, slack, discord.
    pub platform: Label,
    /// The caller's principal.
    pub principal: String,
    /// The channel.
    pub channel: String,
    /// The command id, or `invalid` when the text did not parse.
    pub command: Label,
    /// The target group id, if any.
    pub group_id: Option<String>,
    /// How many numbers an add carried.
    pub numbers_count: i64,
    /// allowed, refused, invalid.
    pub decision: Label,
    /// The rule that allowed, or the reason it refused.
    pub rule: String,
    /// ok, user_error, provider_error:<kind>, internal, preview.
    pub outcome: Label,
    /// The provider's trace id, if any.
    pub provider_trace_id: Option<String>,
    /// Who approved it under the two-person rule.
    pub approver: Option<String>,
    /// The account (connected number) it acted on, if one.
    pub account: Option<String>,
}

/// Which audit rows `search_audit` returns; `None` fields match all.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// The caller's principal.
    pub principal: Option<String>,
    /// The command id.
    pub command: Option<String>,
    /// The group's id.
    pub group_id: Option<String>,
    /// Nothing older.
    pub since: Option<Timestamp>,
    /// At most this many.
    pub limit: i64,
}

pub use waops_core::subscription::Subscription;

fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or_default()
}

/// Connections in a SQLite file store's pool.
const SQLITE_CONNECTIONS: u32 = 4;
/// Connections in a PostgreSQL store's pool.
const POSTGRES_CONNECTIONS: u32 = 10;

/// Creates the SQLite file if missing and switches it to WAL (readers run
/// while the one writer writes) on one connection, before the pool opens the
/// others. WAL mode is kept in the file; several new connections setting it on
/// a fresh file at once failed with "database is locked".
async fn create_in_wal_mode(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .context("cannot open the Sqlite store")?;
    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut conn).await?;
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

impl Store {
    /// Connects (creating a SQLite file if missing). Does not migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let memory = url.contains(":memory:");
        let url = if backend == Backend::Sqlite && !memory && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_string()
        };
        if backend == Backend::Sqlite && !memory {
            create_in_wal_mode(&url).await?;
        }
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Postgres {
            options = options.max_connections(POSTGRES_CONNECTIONS);
        } else if memory {
            // A memory connection is its own database: exactly one, kept for the process.
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            // A local file cannot drop a connection: no ping before every query
            // (one more round trip to sqlx's SQLite thread each time).
            options = options
                .max_connections(SQLITE_CONNECTIONS)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // First, so the statements below wait for a busy writer instead of failing.
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a
                        // crash of waops loses nothing, a power cut may lose the last
                        // commits. Writes get much cheaper.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        Ok(())
                    })
                });
        }
        let pool = options
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the {backend:?} store"))?;
        Ok(Store { pool, backend })
    }

    /// Runs the migrations in `migrations/`.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let migrator = sqlx::migrate!("./migrations");
        migrator.run(&self.pool).await.context("store migration failed")?;
        if self.backend == Backend::Sqlite {
            // Where a SQLite store opens for work: see `forget_unfinished_keys`.
            self.forget_unfinished_keys().await?;
        }
        Ok(migrator.iter().count())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One round trip, for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("store ping failed")?;
        Ok(())
    }

    /// Closes the pool (SQLite checkpoints its WAL on the way out).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes audit rows in one transaction: all or none.
    pub async fn record_audits(&self, rows: &[AuditRecord]) -> anyhow::Result<()> {
        // Measured by examples/audit_write.rs (docs/benchmarks.md): SQLite finds
        // each bound parameter by a linear scan, so long statements get slower
        // again past a few rows; PostgreSQL gains all the way to 256.
        let per_insert = match self.backend {
            Backend::Sqlite => 8,
            Backend::Postgres => AUDIT_ROWS_PER_INSERT,
        };
        self.record_audits_by(rows, per_insert).await
    }

    /// `record_audits` with `per_insert` rows per statement (examples/audit_write.rs
    /// measures the choice).
    #[doc(hidden)]
    pub async fn record_audits_by(&self, rows: &[AuditRecord], per_insert: usize) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("cannot write the audit rows")?;
        // Multi-row INSERTs instead of a statement per row: each statement is a
        // round trip to SQLite's worker thread or PostgreSQL.
        for chunk in rows.chunks(per_insert.clamp(1, AUDIT_ROWS_PER_INSERT)) {
            let sql = insert_audits_sql(chunk.len());
            let mut query = sqlx::query(&sql);
            for r in chunk {
                // Time-ordered ids: rows of the same millisecond keep their
                // order for `ORDER BY at DESC, id DESC`.
                query = query
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(millis(r.at))
                    .bind(&r.request_id)
                    .bind(r.platform.as_ref())
                    .bind(&r.principal)
                    .bind(&r.channel)
                    .bind(r.command.as_ref())
                    .bind(r.group_id.as_deref())
                    .bind(r.numbers_count)
                    .bind(r.decision.as_ref())
                    .bind(&r.rule)
                    .bind(r.outcome.as_ref())
                    .bind(r.provider_trace_id.as_deref())
                    .bind(r.approver.as_deref())
                    .bind(r.account.as_deref());
            }
            query.execute(&mut *tx).await.context("cannot write the audit rows")?;
        }
        tx.commit().await.context("cannot write the audit rows")?;
        Ok(())
    }

    /// The newest audit rows, newest first.
    pub async fn recent_audit(&self, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT at, request_id, platform, principal, channel, command, group_id, numbers_count, decision, rule, outcome, provider_trace_id, approver, account \
             FROM audit ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Audit rows matching `filter`, newest first. An empty filter field
    /// matches every row (one statement for both backends).
    pub async fn search_audit(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT at, request_id, platform, principal, channel, command, group_id, numbers_count, decision, rule, outcome, provider_trace_id, approver, account \
             FROM audit WHERE ($1 = '' OR principal = $1) AND ($2 = '' OR command = $2) \
             AND ($3 = '' OR group_id = $3) AND at >= $4 ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(filter.principal.as_deref().unwrap_or(""))
        .bind(filter.command.as_deref().unwrap_or(""))
        .bind(filter.group_id.as_deref().unwrap_or(""))
        .bind(filter.since.map_or(i64::MIN, millis))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Audit rows of one request.
    pub async fn audit_for_request(&self, request_id: &str) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT at, request_id, platform, principal, channel, command, group_id, numbers_count, decision, rule, outcome, provider_trace_id, approver, account \
             FROM audit WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Creates a subscription, or updates the schedule of the channel's existing
    /// one for the same group. Returns true when it was created.
    ///
    /// A new subscription's first window runs from `created_at` to the next
    /// boundary of its schedule. An update keeps the unposted window's start (so
    /// nothing already seen is dropped) and ends it at the new schedule's next boundary.
    pub async fn upsert_subscription(&self, s: &Subscription) -> anyhow::Result<bool> {
        let window_end = s.schedule().next_after(s.created_at);
        let row = sqlx::query(
            "INSERT INTO subscriptions (id, platform, channel, group_ref, group_name, every_s, at_time, tz, created_by, created_at, window_start, window_end, live) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) \
             ON CONFLICT (platform, channel, group_ref, live) DO UPDATE SET \
             group_name = excluded.group_name, every_s = excluded.every_s, at_time = excluded.at_time, tz = excluded.tz, \
             window_end = excluded.window_end \
             RETURNING id",
        )
        .bind(&s.id)
        .bind(&s.platform)
        .bind(&s.channel)
        .bind(&s.group_ref)
        .bind(&s.group_name)
        .bind(s.every_s)
        .bind(s.at_time.clone())
        .bind(&s.tz)
        .bind(&s.created_by)
        .bind(millis(s.created_at))
        .bind(millis(window_end))
        .bind(i64::from(s.live))
        .fetch_one(&self.pool)
        .await
        .context("cannot save the subscription")?;
        Ok(row.try_get::<String, _>(0)? == s.id)
    }

    /// Removes a channel's subscription to one group (`Some`) or all of them (`None`).
    pub async fn delete_subscriptions(
        &self,
        platform: &str,
        channel: &str,
        group_ref: Option<&str>,
    ) -> anyhow::Result<u64> {
        let result = match group_ref {
            Some(g) => {
                sqlx::query("DELETE FROM subscriptions WHERE platform = $1 AND channel = $2 AND group_ref = $3")
                    .bind(platform)
                    .bind(channel)
                    .bind(g)
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM subscriptions WHERE platform = $1 AND channel = $2")
                    .bind(platform)
                    .bind(channel)
                    .execute(&self.pool)
                    .await
            }
        };
        Ok(result.context("cannot remove the subscription")?.rows_affected())
    }

    /// A channel's subscriptions, oldest first.
    pub async fn channel_subscriptions(&self, platform: &str, channel: &str) -> anyhow::Result<Vec<Subscription>> {
        let rows = sqlx::query(
            "SELECT id, platform, channel, group_ref, group_name, every_s, at_time, tz, created_by, created_at, live \
             FROM subscriptions WHERE platform = $1 AND channel = $2 ORDER BY created_at, id",
        )
        .bind(platform)
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .context("cannot read subscriptions")?;
        rows.iter().map(subscription_from_row).collect()
    }
}

fn subscription_from_row(r: &AnyRow) -> anyhow::Result<Subscription> {
    Ok(Subscription {
        id: r.try_get("id")?,
        platform: r.try_get("platform")?,
        channel: r.try_get("channel")?,
        group_ref: r.try_get("group_ref")?,
        group_name: r.try_get("group_name")?,
        every_s: r.try_get("every_s")?,
        at_time: r.try_get("at_time")?,
        tz: r.try_get("tz")?,
        created_by: r.try_get("created_by")?,
        created_at: from_millis(r.try_get("created_at")?),
        live: r.try_get::<i64, _>("live")? != 0,
    })
}

/// A preview waiting for its Apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// Random id, carried in the button's value.
    pub id: String,
    /// slack, discord.
    pub platform: String,
    /// Who may apply it.
    pub principal: String,
    /// Where it was previewed.
    pub channel: String,
    /// The command to run on Apply (with `--yes`).
    pub command_text: String,
    /// Until when it may be applied.
    pub expires_at: Timestamp,
}

impl Store {
    /// Saves a preview waiting for confirmation.
    pub async fn create_confirmation(&self, c: &Confirmation, now: Timestamp) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO confirmations (id, platform, principal, channel, command_text, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.platform)
        .bind(&c.principal)
        .bind(&c.channel)
        .bind(&c.command_text)
        .bind(millis(now))
        .bind(millis(c.expires_at))
        .execute(&self.pool)
        .await
        .context("cannot save the confirmation")?;
        Ok(())
    }

    /// Takes a confirmation for `principal` if it is still open: exactly one
    /// caller ever gets `Some` for an id.
    pub async fn consume_confirmation(
        &self,
        id: &str,
        principal: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<Confirmation>> {
        let taken = sqlx::query(
            "UPDATE confirmations SET consumed_at = $1 \
             WHERE id = $2 AND principal = $3 AND consumed_at IS NULL AND expires_at > $4",
        )
        .bind(millis(now))
        .bind(id)
        .bind(principal)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .context("cannot consume the confirmation")?
        .rows_affected();
        if taken != 1 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, platform, principal, channel, command_text, expires_at FROM confirmations WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .context("cannot read the confirmation")?;
        Ok(Some(Confirmation {
            id: row.try_get("id")?,
            platform: row.try_get("platform")?,
            principal: row.try_get("principal")?,
            channel: row.try_get("channel")?,
            command_text: row.try_get("command_text")?,
            expires_at: from_millis(row.try_get("expires_at")?),
        }))
    }
}

/// Most rows in one INSERT: at 15 parameters a row, 256 stay well under
/// SQLite's and PostgreSQL's parameter limits.
const AUDIT_ROWS_PER_INSERT: usize = 256;
const AUDIT_COLUMNS: usize = 15;

/// `INSERT INTO audit … VALUES (…), (…)` for `rows` rows, numbered placeholders
/// (the one syntax both SQLite and PostgreSQL read).
fn insert_audits_sql(rows: usize) -> String {
    format!(
        "INSERT INTO audit (id, at, request_id, platform, principal, channel, command, group_id, numbers_count, decision, rule, outcome, provider_trace_id, approver, account) VALUES {}",
        values_placeholders(rows, AUDIT_COLUMNS)
    )
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` values: the VALUES list of
/// a multi-row INSERT.
fn values_placeholders(rows: usize, columns: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::new();
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let sep = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", row * columns + column + 1);
        }
        sql.push(')');
    }
    sql
}

fn journal_from_row(r: &AnyRow) -> anyhow::Result<JournalEntry> {
    let subjects: String = r.try_get("subjects")?;
    Ok(JournalEntry {
        provider: r.try_get("provider")?,
        event_id: r.try_get("event_id")?,
        group_id: r.try_get("group_id")?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        subjects: serde_json::from_str(&subjects).unwrap_or_default(),
        detail: r.try_get("detail")?,
        at: from_millis(r.try_get("at")?),
        received_at: from_millis(r.try_get("received_at")?),
    })
}

fn audit_from_row(r: &AnyRow) -> anyhow::Result<AuditRecord> {
    Ok(AuditRecord {
        at: from_millis(r.try_get("at")?),
        request_id: r.try_get("request_id")?,
        platform: Label::Owned(r.try_get("platform")?),
        principal: r.try_get("principal")?,
        channel: r.try_get("channel")?,
        command: Label::Owned(r.try_get("command")?),
        group_id: r.try_get("group_id")?,
        numbers_count: r.try_get("numbers_count")?,
        decision: Label::Owned(r.try_get("decision")?),
        rule: r.try_get("rule")?,
        outcome: Label::Owned(r.try_get("outcome")?),
        provider_trace_id: r.try_get("provider_trace_id")?,
        approver: r.try_get("approver")?,
        account: r.try_get("account")?,
    })
}

/// One membership event from a provider webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// periskope, wuts, wawp.
    pub provider: String,
    /// The provider's event id (or a stable hash when it has none).
    pub event_id: String,
    /// The group's JID.
    pub group_id: String,
    /// joined, left, added, … (`EventKind::as_str`).
    pub kind: String,
    /// Who acted (a JID or number), if known.
    pub actor: Option<String>,
    /// Whom it affected (JIDs or numbers).
    pub subjects: Vec<String>,
    /// Extra text.
    pub detail: Option<String>,
    /// When it happened.
    pub at: Timestamp,
    /// When waops received it.
    pub received_at: Timestamp,
}

impl Store {
    /// Records an event; `false` when the provider's event id was seen before.
    pub async fn record_event(&self, e: &JournalEntry) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO journal (provider, event_id, group_id, kind, actor, subjects, detail, at, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (provider, event_id) DO NOTHING",
        )
        .bind(&e.provider)
        .bind(&e.event_id)
        .bind(&e.group_id)
        .bind(&e.kind)
        .bind(e.actor.clone())
        .bind(serde_json::to_string(&e.subjects)?)
        .bind(e.detail.clone())
        .bind(millis(e.at))
        .bind(millis(e.received_at))
        .execute(&self.pool)
        .await
        .context("cannot record the event")?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// A group's events since `since`, newest first.
    pub async fn group_events(
        &self,
        provider: &str,
        group_id: &str,
        since: Timestamp,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        let rows = sqlx::query(
            "SELECT provider, event_id, group_id, kind, actor, subjects, detail, at, received_at FROM journal \
             WHERE provider = $1 AND group_id = $2 AND at >= $3 ORDER BY at DESC, event_id",
        )
        .bind(provider)
        .bind(group_id)
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await
        .context("cannot read the journal")?;
        rows.iter().map(journal_from_row).collect()
    }

    /// When the first event from this provider arrived: the journal is complete since then.
    pub async fn journal_started(&self, provider: &str) -> anyhow::Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(received_at) AS first FROM journal WHERE provider = $1")
            .bind(provider)
            .fetch_one(&self.pool)
            .await
            .context("cannot read the journal")?;
        Ok(row.try_get::<Option<i64>, _>("first")?.map(from_millis))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    const QUICK: Retry = Retry {
        attempts: 4,
        first: Duration::from_millis(2),
        max: Duration::from_millis(5),
    };

    #[tokio::test]
    async fn a_fresh_sqlite_file_is_created_in_wal_mode_without_lock_errors() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("waops.db").display());
            // Every pool connection at once, as a first `waops exec` opens them.
            let store = Store::connect(&url).await.unwrap();
            let p = &store.pool;
            let (a, b, c, d) = tokio::join!(p.acquire(), p.acquire(), p.acquire(), p.acquire());
            for connection in [a, b, c, d] {
                connection.expect("no lock error while connecting");
            }
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            store.close().await;
        }
        let memory = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(
            (memory.pool.size(), memory.pool.options().get_max_connections()),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn retry_stops_at_the_first_success() {
        let calls = AtomicU32::new(0);
        let result = QUICK
            .run("rows", 1, || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => anyhow::bail!("store away"),
                    _ => Ok(()),
                }
            })
            .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retry_gives_the_last_error_after_every_attempt_with_capped_backoff() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result = QUICK
            .run("rows", 1, || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                anyhow::bail!("failure {n}")
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(result.unwrap_err().to_string(), "failure 3");
        // Waits of 2, 4 and 5 ms (doubled, capped at 5): at least 11 ms in all.
        assert!(started.elapsed() >= Duration::from_millis(11));
    }

    #[tokio::test]
    async fn batches_are_written_in_order_and_flushes_answered_after_their_rows() {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = written.clone();
        let writer = tokio::spawn(write_batches(rx, 2, move |rows: Vec<u32>| {
            sink.lock().unwrap().push(rows);
            async {}
        }));
        for row in 1..=3 {
            tx.send(Batched::Row(row)).await.unwrap();
        }
        let (flush, wait) = Batched::flush();
        tx.send(flush).await.unwrap();
        wait.await.unwrap();
        assert_eq!(
            *written.lock().unwrap(),
            vec![vec![1, 2], vec![3]],
            "at most 2 rows a batch"
        );
        drop(tx);
        writer.await.unwrap();
    }
}
