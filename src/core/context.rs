//! Everything a command needs, wired once at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::permissions::Permissions;
use crate::group_ref::{GroupId, GroupInfo};
use crate::providers::{Provider, ProviderError};
use crate::settings::Settings;
use crate::store::Store;

/// The time source; tests fix it so relative times and seeds are deterministic.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant.
    Fixed(Timestamp),
}

impl Clock {
    /// Now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// Shared state for running commands.
#[derive(Clone)]
pub struct Context {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// The WhatsApp provider.
    pub provider: Arc<dyn Provider>,
    /// The store.
    pub store: Store,
    /// The audit log's batch writer (rows reach the store shortly after).
    pub audit: crate::audit::AuditLog,
    /// The permission evaluator.
    pub permissions: Arc<Permissions>,
    /// Group aliases, lower-cased.
    pub aliases: Arc<BTreeMap<String, GroupId>>,
    /// The time source.
    pub clock: Clock,
    /// The provider's group list, reused for resolving names.
    pub groups: Arc<GroupCache>,
}

/// A short-lived copy of the provider's group list, so resolving a name does not
/// cost a list call (and its rate-limit budget) on every command.
///
/// Reads take a std `RwLock` for as long as it takes to clone an `Arc`, never
/// across an await, so the ack path cannot wait behind a refresh (or behind a
/// descheduled background thread holding a lock). Refreshes are single-flight:
/// concurrent misses wait for one list call instead of each making one.
pub struct GroupCache {
    ttl: Duration,
    slot: std::sync::RwLock<Option<(Instant, Arc<Vec<GroupInfo>>)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl GroupCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        GroupCache {
            ttl,
            slot: std::sync::RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<(Instant, Arc<Vec<GroupInfo>>)> {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The group list: cached unless `fresh` or expired. The flag says whether
    /// it was fetched by this call (so a miss on a cached list can refresh).
    pub async fn get(
        &self,
        provider: &dyn Provider,
        fresh: bool,
    ) -> Result<(Arc<Vec<GroupInfo>>, bool), ProviderError> {
        let asked = Instant::now();
        if let Some((at, groups)) = self.current() {
            if !fresh && at.elapsed() < self.ttl {
                return Ok((groups, false));
            }
        }
        let _one = self.refresh.lock().await;
        // Someone else may have fetched it while we waited for our turn.
        if let Some((at, groups)) = self.current() {
            if at >= asked || (!fresh && at.elapsed() < self.ttl) {
                return Ok((groups, at >= asked));
            }
        }
        let groups = Arc::new(provider.list_groups().await?);
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), groups.clone()));
        Ok((groups, true))
    }

    /// The cached list if it is still fresh; never calls the provider, never waits.
    pub async fn peek(&self) -> Option<Arc<Vec<GroupInfo>>> {
        self.current()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, groups)| groups)
    }

    /// Forgets the list (after a join changed it).
    pub async fn invalidate(&self) {
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Context {
    /// Writes what the audit log holds, then closes the store.
    pub async fn close(&self) {
        self.audit.flush().await;
        self.store.close().await;
    }

    /// Wires a context from validated settings and its parts (on a Tokio
    /// runtime: the audit writer starts here).
    pub fn new(settings: Settings, provider: Arc<dyn Provider>, store: Store, clock: Clock) -> anyhow::Result<Self> {
        let aliases = settings.alias_map();
        let permissions = Permissions::from_settings(&settings.permissions, &aliases).map_err(anyhow::Error::msg)?;
        let groups = Arc::new(GroupCache::new(settings.provider.group_cache));
        Ok(Context {
            groups,
            audit: crate::audit::AuditLog::start(store.clone()),
            settings: Arc::new(settings),
            provider,
            store,
            permissions: Arc::new(permissions),
            aliases: Arc::new(aliases),
            clock,
        })
    }
}
