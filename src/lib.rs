//! waops: run WhatsApp group administration from team chat.
//!
//! Map of the crate:
//! - [`settings`]: layered configuration, validated once.
//! - [`core`]: the `waops-core` crate (invocations, replies, the command table and parser,
//!   permissions, messages, the `Provider` port) and the service's `Context`.
//! - [`commands`]: one module per command and `dispatch`, the single path every frontend calls.
//! - [`phone`], [`invite_link`], [`group_ref`]: pure parsers for what users type.
//! - [`providers`]: the `Provider` trait and the built-in sandbox.
//! - [`store`]: audit log, subscriptions, digest leases and the journal on SQLite or PostgreSQL.
//! - [`digests`]: the scheduler that posts subscribed digests exactly once across replicas.
//! - [`adapters`]: frontends: console, Slack, Discord, provider webhooks.
//! - [`app`], [`http`], [`telemetry`]: wiring, the HTTP server, logs and metrics.
//! - [`workers`]: the bounded set of follow-up tasks.

pub mod adapters;
pub mod app;
pub mod audit;
pub mod commands;
pub mod core;
pub mod digests;
pub mod http;
pub mod providers;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod workers;

pub use waops_core::{group_ref, invite_link, phone};
