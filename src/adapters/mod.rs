//! Frontends: each turns its platform's request into an `Invocation` and renders
//! a `Reply` back.

pub mod console;
pub mod discord;
pub mod slack;
pub mod webhooks;

/// How long a delivery id (Slack trigger id, Discord interaction id) is remembered.
pub const DELIVERY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Delivery ids remembered in memory at most (oldest forgotten first).
const DELIVERY_MEMORY: usize = 100_000;

/// Ids seen, and the same ids oldest first (for forgetting).
type Seen = (
    std::collections::HashSet<String>,
    std::collections::VecDeque<(std::time::Instant, String)>,
);

/// Recently seen delivery ids of this process: bounded in count and age.
pub struct Deliveries {
    seen: std::sync::Mutex<Seen>,
}

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries {
            seen: std::sync::Mutex::new(Default::default()),
        }
    }
}

impl Deliveries {
    /// True the first time this process sees `key` within `DELIVERY_TTL`.
    pub fn first(&self, key: &str) -> bool {
        let now = std::time::Instant::now();
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        while let Some((at, old)) = order.front() {
            if now.duration_since(*at) < DELIVERY_TTL && order.len() < DELIVERY_MEMORY {
                break;
            }
            set.remove(old);
            order.pop_front();
        }
        if !set.insert(key.to_string()) {
            return false;
        }
        order.push_back((now, key.to_string()));
        true
    }
}

/// True the first time a platform delivers `key`. This process remembers the
/// ids it saw; with PostgreSQL (several replicas) one store row decides across
/// replicas too. With SQLite (one process) memory is the whole answer: a store
/// write per ack would cost the ack path ~0.7 ms of serialized SQLite commit
/// (docs/benchmarks.md), and the only repeat it would add, one delivered again
/// across a restart, is not something Slack or Discord do. A store that cannot
/// answer does not stop the request: it is handled, and the failure logged.
pub(crate) async fn first_delivery(ctx: &crate::core::Context, key: &str) -> bool {
    let first = ctx.deliveries.first(key)
        && (ctx.store.backend() != crate::store::Backend::Postgres
            || match ctx.store.claim_key(key, ctx.clock.now(), DELIVERY_TTL).await {
                Ok(claim) => claim == crate::store::KeyClaim::New,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "delivery id not checked");
                    true
                }
            });
    if !first {
        metrics::counter!("waops_duplicate_deliveries_total").increment(1);
        tracing::info!(key, "duplicate delivery; handled once already");
    }
    first
}
