//! Frontends: each turns its platform's request into an `Invocation` and renders
//! a `Reply` back. Only the console exists so far.

pub mod console;
pub mod discord;
pub mod slack;
pub mod webhooks;
