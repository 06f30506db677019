//! The audit log's writer: commands hand their row to a bounded channel and
//! return; one task writes rows in batches (one transaction each). So the chat
//! ack path pays no store round trip for its audit row, and a burst of commands
//! costs one commit per batch instead of one per command.
//!
//! Bounded: when the channel is full, `record` waits for room (backpressure on
//! the workers), it never grows a queue; `record_now`, for the ack path, logs
//! the row instead of waiting. A batch that cannot be written is retried with
//! backoff (the store may be restarting); after that its rows go to the error
//! log in full, so no command's trace is lost silently. `flush` waits until
//! everything handed in before it is written (exec, shutdown, tests).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{AuditRecord, Batched, Retry, Store};

/// Rows waiting at most; beyond it `record` waits.
pub const CAPACITY: usize = 4096;
/// Rows per transaction at most.
const BATCH: usize = 256;
/// Retries of a batch before its rows go to the log: 10 attempts over about
/// 15 s, long enough for a PostgreSQL restart.
const RETRY: Retry = Retry {
    attempts: 10,
    first: Duration::from_millis(200),
    max: Duration::from_secs(2),
};

type Message = Batched<Box<AuditRecord>>;

/// How often busy refusals beyond the first are summed up in one row.
pub const BUSY_SUMMARY_EVERY: Duration = Duration::from_secs(1);

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
    /// Busy refusals since the last summary.
    busy: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("waiting", &(CAPACITY - self.tx.capacity()))
            .finish()
    }
}

impl AuditLog {
    /// Starts the writer task, and the task that sums up busy refusals.
    pub fn start(store: Store) -> AuditLog {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let busy = Arc::new(AtomicU64::new(0));
        tokio::spawn(summarise_busy(tx.downgrade(), busy.clone()));
        // Rows still waiting once the writer has taken a batch: set by the
        // writer, off the ack path, and 0 once it has caught up.
        let (waiting, depth) = (tx.downgrade(), metrics::gauge!("waops_audit_queue_depth"));
        tokio::spawn(crate::store::write_batches(rx, BATCH, move |rows| {
            if let Some(tx) = waiting.upgrade() {
                depth.set((CAPACITY - tx.capacity()) as f64);
            }
            let store = store.clone();
            // Boxed in the channel to keep its slots small; unboxed for the INSERT.
            let rows: Vec<AuditRecord> = rows.into_iter().map(|row: Box<AuditRecord>| *row).collect();
            async move { write(&store, rows).await }
        }));
        AuditLog { tx, busy }
    }

    /// Audits a command refused because every follow-up slot was busy. Under
    /// a flood these come by the thousand a second, each cheap to answer; a
    /// row each would make the audit writer the bottleneck and its overflow a
    /// flood of log lines. So the first refusal of each second is recorded in
    /// full and the rest are counted into one summary row a second
    /// (`command = "*"`, `outcome = "busy"`, `numbers_count` = how many).
    pub fn record_busy(&self, row: AuditRecord) {
        metrics::counter!("waops_busy_refusals_total").increment(1);
        if self.busy.fetch_add(1, Ordering::Relaxed) == 0 {
            self.record_now(row);
        }
    }

    /// Hands a row to the writer; waits only when `CAPACITY` rows are waiting.
    pub async fn record(&self, row: AuditRecord) {
        let Some(row) = self.try_hand_over(row) else { return };
        metrics::counter!("waops_audit_backpressure_total").increment(1);
        if let Err(mpsc::error::SendError(Message::Row(row))) = self.tx.send(Message::Row(row)).await {
            tracing::error!(row = ?row, "audit writer stopped; row logged instead");
        }
    }

    /// Hands a row to the writer without ever waiting: for the chat ack path,
    /// which must answer at once however far behind the store is. When
    /// `CAPACITY` rows are already waiting the row goes to the log in full
    /// instead (counted in `waops_audit_rows_logged_total`).
    pub fn record_now(&self, row: AuditRecord) {
        if let Some(row) = self.try_hand_over(row) {
            metrics::counter!("waops_audit_rows_logged_total").increment(1);
            tracing::warn!(row = ?row, "audit writer behind; row logged instead");
        }
    }

    /// Queues the row if there is room; gives it back when the channel is full.
    /// A stopped writer cannot take it at all: then it is logged here.
    fn try_hand_over(&self, row: AuditRecord) -> Option<Box<AuditRecord>> {
        match self.tx.try_send(Message::Row(Box::new(row))) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(Message::Row(row))) => Some(row),
            Err(mpsc::error::TrySendError::Closed(Message::Row(row))) => {
                tracing::error!(row = ?row, "audit writer stopped; row logged instead");
                None
            }
            // Only rows are sent here.
            Err(_) => None,
        }
    }

    /// Waits until every row recorded before this call is written (or logged).
    pub async fn flush(&self) {
        let (flush, wait) = Message::flush();
        if self.tx.send(flush).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Every `BUSY_SUMMARY_EVERY`, one row for the busy refusals after the first
/// (which `record_busy` recorded in full). Ends with the writer.
async fn summarise_busy(tx: mpsc::WeakSender<Message>, busy: Arc<AtomicU64>) {
    let mut every = tokio::time::interval(BUSY_SUMMARY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(tx) = tx.upgrade() else { return };
        AuditLog { tx, busy: busy.clone() }.summarise_busy_now();
    }
}

impl AuditLog {
    /// Hands over the summary row of the busy refusals counted since the last
    /// one, if more than one came (the summary task calls it every second).
    #[doc(hidden)]
    pub fn summarise_busy_now(&self) {
        let refused = self.busy.swap(0, Ordering::Relaxed);
        if refused <= 1 {
            return;
        }
        let more = refused - 1;
        tracing::warn!(
            refused,
            "busy: commands refused in the last second (all follow-up slots taken)"
        );
        let row = AuditRecord {
            at: jiff::Timestamp::now(),
            request_id: String::new(),
            platform: "*".into(),
            principal: String::new(),
            channel: String::new(),
            command: "*".into(),
            group_id: None,
            numbers_count: more as i64,
            decision: "not_run".into(),
            rule: format!("{more} more commands refused while every follow-up slot was busy"),
            outcome: "busy".into(),
            provider_trace_id: None,
            approver: None,
            account: None,
        };
        if self.tx.try_send(Message::Row(Box::new(row))).is_err() {
            tracing::warn!(more, "audit writer behind; busy summary logged instead");
        }
    }
}

async fn write(store: &Store, rows: Vec<AuditRecord>) {
    match RETRY
        .run("audit batch", rows.len(), || store.record_audits(&rows))
        .await
    {
        Ok(()) => {
            metrics::counter!("waops_audit_rows_total").increment(rows.len() as u64);
            metrics::gauge!("waops_store_up").set(1.0);
        }
        Err(e) => {
            metrics::gauge!("waops_store_up").set(0.0);
            metrics::counter!("waops_audit_rows_lost_total").increment(rows.len() as u64);
            for row in &rows {
                tracing::error!(error = format!("{e:#}"), row = ?row, "audit row not written; logged instead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_row(i: usize) -> AuditRecord {
        AuditRecord {
            at: jiff::Timestamp::now(),
            request_id: format!("r{i}"),
            platform: "slack".into(),
            principal: "slack:user:U1".into(),
            channel: "slack:C1".into(),
            command: "add".into(),
            group_id: None,
            numbers_count: 0,
            decision: "not_run".into(),
            rule: String::new(),
            outcome: "busy".into(),
            provider_trace_id: None,
            approver: None,
            account: None,
        }
    }

    #[tokio::test]
    async fn a_flood_of_busy_refusals_is_one_row_in_full_and_one_summary() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let audit = AuditLog::start(store.clone());
        for i in 0..500 {
            audit.record_busy(busy_row(i));
        }
        // What the summary task does each second.
        audit.summarise_busy_now();
        audit.flush().await;
        let rows = store.recent_audit(10).await.unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let full = rows.iter().find(|r| r.request_id == "r0").expect("the first in full");
        assert_eq!((full.command.as_ref(), full.outcome.as_ref()), ("add", "busy"));
        let summary = rows.iter().find(|r| r.command == "*").expect("a summary");
        assert_eq!((summary.outcome.as_ref(), summary.numbers_count), ("busy", 499));
        // The count starts over: the next refusal is recorded in full again.
        audit.record_busy(busy_row(500));
        audit.summarise_busy_now();
        audit.flush().await;
        assert_eq!(store.recent_audit(10).await.unwrap().len(), 3);
    }
}
