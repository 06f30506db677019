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

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("waiting", &(CAPACITY - self.tx.capacity()))
            .finish()
    }
}

impl AuditLog {
    /// Starts the writer task on the store writers' runtime (`workers::spawn_store_writer`).
    pub fn start(store: Store) -> AuditLog {
        let (tx, rx) = mpsc::channel(CAPACITY);
        tokio::spawn(crate::store::write_batches(rx, BATCH, move |rows| {
            let store = store.clone();
            // Boxed in the channel to keep its slots small; unboxed for the INSERT.
            let rows: Vec<AuditRecord> = rows.into_iter().map(|row: Box<AuditRecord>| *row).collect();
            async move { write(&store, rows).await }
        }));
        AuditLog { tx }
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

async fn write(store: &Store, rows: Vec<AuditRecord>) {
    match RETRY
        .run("audit batch", rows.len(), || store.record_audits(&rows))
        .await
    {
        Ok(()) => metrics::counter!("waops_audit_rows_total").increment(rows.len() as u64),
        Err(e) => {
            metrics::counter!("waops_audit_rows_lost_total").increment(rows.len() as u64);
            for row in &rows {
                tracing::error!(error = format!("{e:#}"), row = ?row, "audit row not written; logged instead");
            }
        }
    }
}
