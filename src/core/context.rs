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
    /// The WhatsApp accounts (connected numbers), each with its provider
    /// client, limiter and group list.
    pub accounts: Arc<Accounts>,
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
}

/// One WhatsApp account: a provider client (its own limiter and connection
/// pool, so one account's 429s never slow another) and its group list.
pub struct Account {
    /// `default` for `[provider]`, else the `[accounts.<name>]` name.
    pub name: Arc<str>,
    /// The key of its webhooks' journal rows and its webhook path
    /// (`/webhooks/<source>`): `[provider]`'s kind, as before accounts
    /// existed, else the account's name.
    pub source: String,
    /// Its settings.
    pub settings: crate::settings::ProviderSettings,
    /// Its provider client.
    pub provider: Arc<dyn Provider>,
    /// Its group list, reused for resolving names.
    pub groups: GroupCache,
}

impl Account {
    /// Whether provider webhooks are taken for it: a real provider with a
    /// `webhook_secret` to verify them.
    pub fn receives_webhooks(&self) -> bool {
        self.settings.webhook_secret.is_set() && self.settings.kind != crate::settings::ProviderKind::Sandbox
    }

    /// The group list: cached unless `fresh` (see `GroupCache::get`).
    pub async fn groups(&self, fresh: bool) -> Result<(Arc<Vec<GroupInfo>>, bool), ProviderError> {
        self.groups.get(self.provider.as_ref(), fresh).await
    }
}

/// The configured accounts, in `Settings::account_settings` order (at least one).
pub struct Accounts {
    list: Vec<Account>,
}

impl Accounts {
    /// Builds a provider client per account.
    pub fn build(settings: &crate::settings::Settings, clock: Clock) -> anyhow::Result<Accounts> {
        let configured = settings.account_settings();
        let several = configured.len() > 1;
        let list = configured
            .into_iter()
            .map(|(name, p)| {
                let name: Arc<str> = name.into();
                let source = if name.as_ref() == crate::settings::DEFAULT_ACCOUNT {
                    p.kind.as_str().to_string()
                } else {
                    name.to_string()
                };
                let provider =
                    crate::providers::build(p, clock).map_err(|e| anyhow::anyhow!("account {name}: {e:#}"))?;
                Ok(Account {
                    groups: GroupCache::new(p.group_cache, several.then(|| name.clone())),
                    source,
                    settings: p.clone(),
                    provider,
                    name,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!list.is_empty(), "no account is configured");
        Ok(Accounts { list })
    }

    /// Every account.
    pub fn all(&self) -> &[Account] {
        &self.list
    }

    /// True when more than one account is configured (and names are shown).
    pub fn several(&self) -> bool {
        self.list.len() > 1
    }

    /// The account named `name`.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name.as_ref() == name)
    }

    /// The account whose webhooks arrive at `/webhooks/<source>`.
    pub fn by_source(&self, source: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.source == source)
    }

    /// `chosen` alone, or every account when none is chosen.
    pub fn chosen_or_all<'a>(&'a self, chosen: Option<&'a Account>) -> &'a [Account] {
        match chosen {
            Some(one) => std::slice::from_ref(one),
            None => &self.list,
        }
    }

    /// The first account: the only one, or the one whose name sorts first.
    pub fn first(&self) -> &Account {
        &self.list[0]
    }

    /// The account a resolved group belongs to (the only one when groups
    /// carry none).
    pub fn of(&self, group: &GroupInfo) -> &Account {
        group
            .account
            .as_deref()
            .and_then(|name| self.get(name))
            .unwrap_or_else(|| self.first())
    }

    /// The groups of every account's list that is cached and fresh; never
    /// calls a provider (for naming ids, not for deciding).
    pub async fn cached_groups(&self) -> Vec<GroupInfo> {
        let mut all = Vec::new();
        for account in &self.list {
            if let Some(groups) = account.groups.peek().await {
                all.extend(groups.iter().cloned());
            }
        }
        all
    }

    /// The accounts' names, for messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.list.iter().map(|a| a.name.as_ref()).collect();
        names.join(", ")
    }
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
    /// Written into each group it lists, when several accounts are configured.
    account: Option<Arc<str>>,
    slot: std::sync::RwLock<Option<(Instant, Arc<Vec<GroupInfo>>)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl GroupCache {
    /// An empty cache whose entries live `ttl`, naming `account` in its groups.
    pub fn new(ttl: Duration, account: Option<Arc<str>>) -> Self {
        GroupCache {
            ttl,
            account,
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
        let mut groups = provider.list_groups().await?;
        if let Some(account) = &self.account {
            for g in &mut groups {
                g.account = Some(account.clone());
            }
        }
        let groups = Arc::new(groups);
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
    pub fn new(settings: Settings, accounts: Accounts, store: Store, clock: Clock) -> anyhow::Result<Self> {
        let aliases = settings.alias_map();
        let permissions = Permissions::from_settings(&settings.permissions, &aliases).map_err(anyhow::Error::msg)?;
        Ok(Context {
            audit: crate::audit::AuditLog::start(store.clone()),
            settings: Arc::new(settings),
            accounts: Arc::new(accounts),
            store,
            permissions: Arc::new(permissions),
            aliases: Arc::new(aliases),
            clock,
        })
    }
}
