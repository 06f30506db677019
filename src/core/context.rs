//! Everything a command needs, wired once at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::permissions::Permissions;
use crate::group_ref::GroupId;
use crate::providers::Provider;
use crate::settings::Settings;
use crate::store::Store;

/// The time source; tests fix it so relative times and seeds are deterministic.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
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
    /// The permission evaluator.
    pub permissions: Arc<Permissions>,
    /// Group aliases, lower-cased.
    pub aliases: Arc<BTreeMap<String, GroupId>>,
    /// The time source.
    pub clock: Clock,
}

impl Context {
    /// Wires a context from validated settings and its parts.
    pub fn new(settings: Settings, provider: Arc<dyn Provider>, store: Store, clock: Clock) -> anyhow::Result<Self> {
        let aliases = settings.alias_map();
        let permissions = Permissions::from_settings(&settings.permissions, &aliases).map_err(anyhow::Error::msg)?;
        Ok(Context {
            settings: Arc::new(settings),
            provider,
            store,
            permissions: Arc::new(permissions),
            aliases: Arc::new(aliases),
            clock,
        })
    }
}
