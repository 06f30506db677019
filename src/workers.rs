//! A bounded set of background tasks: commands that run after the chat
//! platform got its quick answer. Full means "busy, try again", never a queue
//! that grows; shutdown waits for what is running.
//!
//! The tasks run on their own Tokio runtime (`waops-work` threads), not on the
//! one serving HTTP: a burst of follow-ups (provider calls, result posts) then
//! cannot sit in front of an ack in the HTTP runtime's run queues, so the ack
//! path's latency does not depend on how much background work is going on
//! (docs/benchmarks.md measures both ways).
//!
//! A command's task is also made there: the caller hands over a closure, and
//! a dispatcher on the background runtime calls it and spawns the future. A
//! task's state (about a kilobyte) is then allocated by the threads that free
//! it, not by the HTTP thread, whose allocator otherwise took glibc's slow
//! path for it on every ack and grew into fresh pages every burst
//! (docs/benchmarks.md, "Fifteenth pass").

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

/// The nice value of the follow-up and store-writer threads: the lowest, so
/// they yield the CPU to the HTTP runtime whenever both want it. An ack has 3
/// seconds before Slack or Discord give up on it; a follow-up has 15 (Discord)
/// to 30 (Slack) minutes, and the bounded pool answers "busy" before follow-ups
/// can pile up. At nice 10 they still took about a tenth of the core during a
/// burst of acks; 19 gives them a seventieth (docs/benchmarks.md, "Twelfth pass").
/// It stays where `SCHED_IDLE` (below) is refused.
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: libc::c_int = 19;

/// Lowers the calling thread (Linux schedules each thread on its own; threads
/// it starts inherit the nice value, not the idle policy).
///
/// `SCHED_IDLE` on top of nice 19: at nice 19 alone the follow-ups still held
/// about a ninth of both cores during a burst of acks (the bench's shared
/// layout), 6.6% as idle-policy threads, which Linux preempts as soon as a
/// normal thread wakes. Such a thread still gets a small share of a core that
/// stays busy (weight 3 against nice 19's 15), so follow-ups are slowed under
/// overload, never stopped (docs/benchmarks.md, "Nineteenth pass").
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority and sched_setscheduler have no memory effects; they
    // change this thread's scheduling only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
        let param = libc::sched_param { sched_priority: 0 };
        // Reset on fork: threads these start (sqlx's SQLite connection threads)
        // do not inherit the idle policy (docs/design.md, the audit writer).
        libc::sched_setscheduler(0, libc::SCHED_IDLE | libc::SCHED_RESET_ON_FORK, &param);
    }
}

/// The follow-ups' runtime, started on first use and kept for the process.
fn background() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        start_runtime(
            "waops-work",
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )
    })
}

/// The store writers' runtime: one thread, at the follow-ups' nice value.
fn writers() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| start_runtime("waops-store", 1))
}

/// A lower-priority runtime of `threads` threads named `name`, kept for the process.
fn start_runtime(name: &'static str, threads: usize) -> Handle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{name}-main"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name(name)
                .on_thread_start(lower_priority)
                // No signal driver: the HTTP runtime handles signals, and each
                // driver holds a descriptor of its own.
                .enable_io()
                .enable_time()
                .build()
                .expect("the background runtime starts");
            let _ = tx.send(runtime.handle().clone());
            // Park this thread for the process's life: the runtime lives as long.
            runtime.block_on(std::future::pending::<()>());
        })
        .expect("the background thread starts");
    rx.recv().expect("the background runtime reports its handle")
}

/// Starts `task` on the store writers' runtime: for the batch writers (audit
/// rows, add results). On the HTTP runtime they took a quarter of its thread in
/// the bench's split layout, CPU the acks then waited for. Not on the
/// follow-ups' runtime: sqlx hands each SQLite result over a rendezvous
/// channel, and there the SQLite threads waited for busy nice-10 threads to
/// poll the writer (CPU per command +24%; docs/benchmarks.md, "Seventh pass").
pub(crate) fn spawn_store_writer<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    writers().spawn(task)
}

/// The pool.
#[derive(Clone)]
pub struct Workers {
    slots: Arc<Semaphore>,
    capacity: u32,
    interrupt: Arc<tokio::sync::watch::Sender<bool>>,
    /// Started with the first task, as the background runtime is: an idle
    /// server has neither (idle RSS).
    jobs: Arc<OnceLock<tokio::sync::mpsc::Sender<Job>>>,
}

/// Makes and starts a task, called on a background thread (the module's doc says why).
type Job = Box<dyn FnOnce() + Send>;

impl Workers {
    /// A pool of `capacity` concurrent tasks.
    pub fn new(capacity: u32) -> Self {
        Workers {
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            interrupt: Arc::new(tokio::sync::watch::channel(false).0),
            jobs: Arc::new(OnceLock::new()),
        }
    }

    /// Like `try_spawn`, but the task is the future `make` returns, made on a
    /// background thread; and if `interrupt` is called before it ends, it is
    /// dropped and the future `on_interrupt` makes runs instead (telling the
    /// user their command was cut short, and auditing it), so no accepted
    /// command ends in silence. Closures, not futures: a future not yet polled
    /// is already as large as its largest state (docs/benchmarks.md, "Third
    /// pass"), and where it is made is where its memory comes from.
    pub fn try_spawn_interruptible<M, F, I, IF>(&self, make: M, on_interrupt: I) -> bool
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
        I: FnOnce() -> IF + Send + 'static,
        IF: Future<Output = ()> + Send,
    {
        let mut stop = self.interrupt.subscribe();
        self.try_spawn(move || async move {
            let stopped = async move {
                // The guard wait_for returns is not Send: drop it before awaiting more.
                let _ = stop.wait_for(|s| *s).await.map(|_| ());
            };
            tokio::select! {
                () = make() => {}
                () = stopped => Box::pin(on_interrupt()).await,
            }
        })
    }

    /// Cuts short every interruptible task still running (shutdown after the grace period).
    pub fn interrupt(&self) {
        self.interrupt.send_replace(true);
    }

    /// Starts the task `make` returns, made on a background thread, if a slot
    /// is free; `false` when all are busy.
    pub fn try_spawn<M, F>(&self, make: M) -> bool
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        let job: Job = Box::new(move || {
            tokio::spawn(async move {
                make().await;
                drop(permit);
            });
        });
        // Not full (see `jobs`); closed only if the background runtime is gone,
        // and then the job's slot is given back and the caller answers "busy".
        self.jobs().try_send(job).is_ok()
    }

    /// The dispatcher's queue, started on first use. Never full: every job in
    /// it holds one of the `capacity` slots.
    fn jobs(&self) -> &tokio::sync::mpsc::Sender<Job> {
        self.jobs.get_or_init(|| {
            let (jobs, mut queue) = tokio::sync::mpsc::channel::<Job>(self.capacity.max(1) as usize);
            background().spawn(async move {
                while let Some(job) = queue.recv().await {
                    job();
                }
            });
            jobs
        })
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn tasks_run_at_the_background_priority() {
        // SAFETY: getpriority and sched_getscheduler read this thread's nice
        // value and policy; no memory effects.
        let scheduling = || unsafe { (libc::getpriority(libc::PRIO_PROCESS, 0), libc::sched_getscheduler(0)) };
        let caller = scheduling();
        let workers = Workers::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(workers.try_spawn(move || async move {
            let _ = tx.send(scheduling());
        }));
        let background = (BACKGROUND_NICE, libc::SCHED_IDLE | libc::SCHED_RESET_ON_FORK);
        assert_eq!(rx.await.unwrap(), background, "follow-ups run at the lowest priority");
        let writer = spawn_store_writer(async move { scheduling() }).await.unwrap();
        assert_eq!(writer, background, "store writers too");
        assert_eq!(scheduling(), caller, "the caller's thread is left as it was");
        assert_eq!(caller.1, libc::SCHED_OTHER);
    }

    #[tokio::test]
    async fn interruptible_tasks_are_made_on_the_background_threads() {
        let workers = Workers::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (hold, held) = tokio::sync::oneshot::channel::<()>();
        assert!(workers.try_spawn_interruptible(
            move || {
                let made_on = std::thread::current().name().map(str::to_owned);
                async move {
                    let _ = tx.send(made_on);
                    let _ = held.await;
                }
            },
            || async {}
        ));
        assert_eq!(rx.await.unwrap().as_deref(), Some("waops-work"));
        assert!(
            !workers.try_spawn_interruptible(|| async {}, || async {}),
            "one slot, taken"
        );
        hold.send(()).unwrap();
        assert!(workers.drain(Duration::from_secs(5)).await, "the slot comes back");
    }

    #[tokio::test]
    async fn interrupt_runs_the_fallback_and_frees_the_slot() {
        let workers = Workers::new(2);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (told_tx, told) = tokio::sync::oneshot::channel();
        assert!(workers.try_spawn_interruptible(
            move || async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
            },
            move || async move {
                let _ = told_tx.send("interrupted");
            }
        ));
        started.await.unwrap();
        assert_eq!(workers.busy(), 1);
        workers.interrupt();
        assert_eq!(told.await.unwrap(), "interrupted");
        assert!(workers.drain(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn full_pool_refuses_and_drain_waits() {
        let workers = Workers::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        assert!(workers.try_spawn(move || async move {
            let _ = rx.await;
        }));
        assert!(!workers.try_spawn(|| async {}), "one slot, taken");
        assert_eq!(workers.busy(), 1);
        assert!(!workers.drain(Duration::from_millis(20)).await, "still running");
        tx.send(()).unwrap();
        assert!(workers.drain(Duration::from_secs(5)).await);
        assert!(!workers.try_spawn(|| async {}), "closed after drain");
    }
}
