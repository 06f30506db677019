//! Work that runs after the chat platform got its quick answer: a bounded set
//! of tasks on the one Tokio runtime. Full means "busy, try again", never a
//! queue that grows; shutdown waits for what is running, then cuts the rest
//! short so that each can tell its user it was interrupted.
//!
//! Three tokio pieces, each for what it is for: a semaphore bounds how many
//! tasks run, a `TaskTracker` lets shutdown wait for them, and a
//! `CancellationToken` interrupts them when the grace period is over.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The bounded task set. Cheap to clone; clones share the set.
#[derive(Clone)]
pub struct Workers {
    slots: Arc<Semaphore>,
    /// `waops_followups_in_flight`, looked up once rather than per task.
    in_flight: metrics::Gauge,
    capacity: usize,
    tracker: TaskTracker,
    interrupt: CancellationToken,
}

impl Workers {
    /// A set of at most `capacity` concurrent tasks.
    pub fn new(capacity: u32) -> Self {
        let capacity = capacity.max(1) as usize;
        Workers {
            slots: Arc::new(Semaphore::new(capacity)),
            in_flight: metrics::gauge!("waops_followups_in_flight"),
            capacity,
            tracker: TaskTracker::new(),
            interrupt: CancellationToken::new(),
        }
    }

    /// Starts `task` if a slot is free; `false` when all are busy or shutdown
    /// has begun. If [`interrupt`](Self::interrupt) is called before `task`
    /// ends, `task` is dropped and `on_interrupt` runs instead (telling the
    /// user their command was cut short, and auditing it), so no accepted
    /// command ends in silence.
    pub fn try_spawn_interruptible<F, I>(&self, task: F, on_interrupt: I) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
        I: Future<Output = ()> + Send + 'static,
    {
        let interrupt = self.interrupt.clone();
        self.try_spawn(async move {
            tokio::select! {
                () = task => {}
                () = interrupt.cancelled() => on_interrupt.await,
            }
        })
    }

    /// Starts `task` if a slot is free; `false` when all are busy or shutdown has begun.
    pub fn try_spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.tracker.is_closed() {
            return false;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        let in_flight = self.in_flight.clone();
        in_flight.increment(1.0);
        self.tracker.spawn(async move {
            task.await;
            drop(permit);
            in_flight.decrement(1.0);
        });
        true
    }

    /// Cuts short every interruptible task still running (shutdown after the grace period).
    pub fn interrupt(&self) {
        self.interrupt.cancel();
    }

    /// Stops new tasks and waits up to `grace` for running ones; `true` when all finished.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }

    /// Tasks running now.
    pub fn busy(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn interrupt_runs_the_fallback_and_frees_the_slot() {
        let workers = Workers::new(2);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (told_tx, told) = tokio::sync::oneshot::channel();
        assert!(workers.try_spawn_interruptible(
            async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
            },
            async move {
                let _ = told_tx.send("interrupted");
            }
        ));
        started.await.unwrap();
        assert_eq!(workers.busy(), 1);
        workers.interrupt();
        assert_eq!(told.await.unwrap(), "interrupted");
        assert!(workers.drain(Duration::from_secs(5)).await);
        assert_eq!(workers.busy(), 0);
    }

    #[tokio::test]
    async fn full_set_refuses_and_drain_waits() {
        let workers = Workers::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        assert!(workers.try_spawn(async move {
            let _ = rx.await;
        }));
        assert!(!workers.try_spawn(async {}), "one slot, taken");
        assert_eq!(workers.busy(), 1);
        assert!(!workers.drain(Duration::from_millis(20)).await, "still running");
        tx.send(()).unwrap();
        assert!(workers.drain(Duration::from_secs(5)).await);
        assert!(!workers.try_spawn(async {}), "closed after drain");
    }
}
