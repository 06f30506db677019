//! Frontends: each turns its platform's request into an `Invocation` and renders
//! a `Reply` back.

pub mod console;
pub mod discord;
pub mod slack;
pub mod webhooks;

/// How long a delivery id (Slack trigger id, Discord interaction id) is remembered.
pub const DELIVERY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// True the first time a platform delivers `key` (across replicas: one store
/// row decides). A store that cannot answer does not stop the request: it is
/// handled, and the failure logged, rather than dropped.
pub(crate) async fn first_delivery(ctx: &crate::core::Context, key: &str) -> bool {
    match ctx.store.claim_key(key, ctx.clock.now(), DELIVERY_TTL).await {
        Ok(claim) => {
            let first = claim == crate::store::KeyClaim::New;
            if !first {
                metrics::counter!("waops_duplicate_deliveries_total").increment(1);
                tracing::info!(key, "duplicate delivery; handled once already");
            }
            first
        }
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "delivery id not checked");
            true
        }
    }
}
