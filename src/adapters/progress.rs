//! Progress of a long command (a chunked add) shown in chat while it runs:
//! "Adding… 120/500" as an update of the "Working on it…" message, at most
//! `max` times and no more often than `every`, sent in order by one task so
//! the final result can never be overtaken by a late progress update.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::{messages, Progress, Reply};

/// Sends progress updates through `send`, one at a time, in order.
pub struct ProgressUpdates {
    tx: tokio::sync::mpsc::Sender<Reply>,
    task: tokio::task::JoinHandle<()>,
    last: Mutex<Option<Instant>>,
    updates: AtomicUsize,
    max: usize,
    every: Duration,
}

impl ProgressUpdates {
    /// Starts the sending task. `send` shows one update (an edit of the
    /// original message, a `response_url` post with `replace_original`).
    pub fn start<F, Fut>(send: F, max: usize, every: Duration) -> Self
    where
        F: Fn(Reply) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Reply>(max.max(1) + 1);
        let task = tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                send(reply).await;
            }
        });
        ProgressUpdates {
            tx,
            task,
            last: Mutex::new(None),
            updates: AtomicUsize::new(0),
            max,
            every,
        }
    }

    /// Queues `reply` as an update now (not counted against `every`'s spacing
    /// of progress, but against `max`).
    pub fn update_now(&self, reply: &Reply) {
        if self.updates.load(Ordering::SeqCst) >= self.max {
            return;
        }
        if self.tx.try_send(reply.clone()).is_ok() {
            self.updates.fetch_add(1, Ordering::SeqCst);
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
    }

    /// Waits until every queued update is sent; the result may follow.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

impl Progress for ProgressUpdates {
    fn update(&self, done: usize, total: usize) {
        if done >= total {
            return;
        }
        let due = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|t| t.elapsed() >= self.every);
        if due {
            self.update_now(&messages::progress(done, total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn updates_go_out_in_order_at_most_max_times() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let updates = ProgressUpdates::start(
            move |reply: Reply| {
                let log = log.clone();
                async move { log.lock().unwrap().push(reply.plain()) }
            },
            2,
            Duration::ZERO,
        );
        for done in 1..5 {
            updates.update(done, 5);
        }
        updates.update(5, 5);
        updates.finish().await;
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(
            sent[0].starts_with("Adding… 1/5") && sent[1].starts_with("Adding… 2/5"),
            "{sent:?}"
        );
    }
}
