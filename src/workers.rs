//! A bounded set of background tasks: commands that run after the chat
//! platform got its quick answer. Full means "busy, try again", never a queue
//! that grows; shutdown waits for what is running.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// The pool.
#[derive(Clone)]
pub struct Workers {
    slots: Arc<Semaphore>,
    capacity: u32,
}

impl Workers {
    /// A pool of `capacity` concurrent tasks.
    pub fn new(capacity: u32) -> Self {
        Workers {
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Starts `task` if a slot is free; `false` when all are busy.
    pub fn try_spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
        true
    }

    /// Stops new tasks and waits up to `grace` for running ones; `true` when all finished.
    pub async fn drain(&self, grace: Duration) -> bool {
        let all = self.slots.acquire_many(self.capacity);
        match tokio::time::timeout(grace, all).await {
            Ok(Ok(permits)) => {
                // Keep them: nothing new starts after shutdown began.
                permits.forget();
                true
            }
            _ => false,
        }
    }

    /// Tasks running now.
    pub fn busy(&self) -> usize {
        self.capacity as usize - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_pool_refuses_and_drain_waits() {
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
