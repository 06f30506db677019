//! Frontends: each turns its platform's request into an `Invocation` and renders
//! a `Reply` back.

pub mod console;
pub mod discord;
pub mod slack;
pub mod webhooks;

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::time::Instant;

/// How long a delivery id (Slack trigger id, Discord interaction id) is remembered.
pub const DELIVERY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Delivery ids remembered in memory at most (oldest forgotten first).
const DELIVERY_MEMORY: usize = 100_000;

/// Recently seen delivery ids of this process: bounded in count and age.
///
/// An id is kept as a 128-bit fingerprint (two keyed SipHashes of it), not as
/// text: remembering an id allocates nothing, and 100,000 of them take about
/// 6 MB instead of about 18. The ids were two strings each, allocated on the
/// HTTP thread and kept for an hour, which left that thread's malloc arena
/// fragmented under load (docs/benchmarks.md, "Eighteenth pass"). Two distinct
/// ids share a fingerprint with a probability of about n² / 2¹²⁹: nil for a
/// memory of 100,000.
pub struct Deliveries {
    keys: (RandomState, RandomState),
    memory: usize,
    seen: std::sync::Mutex<Seen>,
}

/// Fingerprints seen, and the same oldest first (for forgetting).
type Seen = (HashSet<u128, BuildHasherDefault<Prehashed>>, VecDeque<(Instant, u128)>);

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries::remembering(DELIVERY_MEMORY)
    }
}

impl Deliveries {
    fn remembering(memory: usize) -> Self {
        Deliveries {
            keys: (RandomState::new(), RandomState::new()),
            memory,
            seen: std::sync::Mutex::new(Default::default()),
        }
    }

    /// True the first time this process sees the delivery `id` of `kind`
    /// (such as `discord:interaction`) within `DELIVERY_TTL`.
    pub fn first(&self, kind: &str, id: &str) -> bool {
        self.first_at(kind, id, Instant::now())
    }

    fn first_at(&self, kind: &str, id: &str, now: Instant) -> bool {
        // The parts are hashed as they are: no `kind:id` text made per delivery.
        let key = (kind, id);
        let print = u128::from(self.keys.0.hash_one(key)) << 64 | u128::from(self.keys.1.hash_one(key));
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        while let Some(&(at, old)) = order.front() {
            if now.saturating_duration_since(at) < DELIVERY_TTL {
                break;
            }
            set.remove(&old);
            order.pop_front();
        }
        if !set.insert(print) {
            return false;
        }
        if order.len() == self.memory {
            if let Some((_, oldest)) = order.pop_front() {
                set.remove(&oldest);
            }
        }
        order.push_back((now, print));
        true
    }
}

/// The fingerprint set's hasher: a fingerprint is a keyed hash already, so its
/// low 64 bits are the table's hash, with no third SipHash over it.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u128`s are hashed (below); any other input still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// True the first time a platform delivers `id` of `kind` (`discord:interaction`,
/// `slack:trigger`). This process remembers the
/// ids it saw; with PostgreSQL (several replicas) one store row decides across
/// replicas too. With SQLite (one process) memory is the whole answer: a store
/// write per ack would cost the ack path ~0.7 ms of serialized SQLite commit
/// (docs/benchmarks.md), and the only repeat it would add, one delivered again
/// across a restart, is not something Slack or Discord do. A store that cannot
/// answer does not stop the request: it is handled, and the failure logged.
pub(crate) async fn first_delivery(ctx: &crate::core::Context, kind: &'static str, id: &str) -> bool {
    let first = ctx.deliveries.first(kind, id)
        && (ctx.store.backend() != crate::store::Backend::Postgres
            || match ctx
                .store
                .claim_key(&format!("{kind}:{id}"), ctx.clock.now(), DELIVERY_TTL)
                .await
            {
                Ok(claim) => claim == crate::store::KeyClaim::New,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "delivery id not checked");
                    true
                }
            });
    if !first {
        metrics::counter!("waops_duplicate_deliveries_total").increment(1);
        tracing::info!(kind, id, "duplicate delivery; handled once already");
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_delivery_is_first_once_until_forgotten_by_age() {
        let d = Deliveries::default();
        let t0 = Instant::now();
        assert!(d.first_at("discord:interaction", "1", t0));
        assert!(!d.first_at("discord:interaction", "1", t0 + Duration::from_secs(1)));
        assert!(d.first_at("discord:interaction", "2", t0 + Duration::from_secs(1)));
        assert!(d.first_at("slack:trigger", "1", t0 + Duration::from_secs(1)));
        // An hour later the first id is forgotten, and counts as new again.
        assert!(d.first_at("discord:interaction", "1", t0 + DELIVERY_TTL));
        assert!(!d.first_at("discord:interaction", "2", t0 + DELIVERY_TTL));
    }

    #[test]
    fn the_oldest_delivery_is_forgotten_at_the_memory_cap() {
        let d = Deliveries::remembering(3);
        let now = Instant::now();
        for id in ["a", "b", "c"] {
            assert!(d.first_at("k", id, now));
        }
        // A fourth id pushes out the oldest, "a"; "b", "c" and "d" stay.
        assert!(d.first_at("k", "d", now));
        assert!(!d.first_at("k", "b", now) && !d.first_at("k", "c", now) && !d.first_at("k", "d", now));
        assert!(d.first_at("k", "a", now));
        let (set, order) = &*d.seen.lock().unwrap();
        assert_eq!((set.len(), order.len()), (3, 3));
    }
}
