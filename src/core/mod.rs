//! The platform-neutral core (the `waops-core` crate), re-exported here, and
//! the service's `Context`: the settings, store, provider and caches a command
//! runs with.

pub mod context;

pub use context::{Account, Accounts, Clock, Context, GroupCache};
pub use waops_core::*;
