//! Frontends: each turns its platform's request into an `Invocation` and renders
//! a `Reply` back.

pub mod console;
pub mod discord;
pub mod progress;
pub mod slack;
pub mod webhooks;

/// How long a delivery id (Slack trigger id, Discord interaction id) is remembered.
pub const DELIVERY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Starts the follow-up of a delivery (`kind` and `id` as in
/// `first_delivery`); `false` when every slot is busy and nothing runs.
///
/// The delivery id is claimed in the store by the follow-up itself, before it
/// does anything: a repeat of the same id (a replay, a platform's retry) then
/// stops there, and the ack path makes no store write at all, so acks stay
/// fast while the follow-ups keep SQLite's one writer busy.
pub(crate) fn start_follow_up(
    ctx: &crate::core::Context,
    workers: &crate::workers::Workers,
    delivery: Option<(&'static str, String)>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
    on_interrupt: impl std::future::Future<Output = ()> + Send + 'static,
) -> bool {
    let ctx = ctx.clone();
    workers.try_spawn_interruptible(
        async move {
            if let Some((kind, id)) = delivery {
                if !first_delivery(&ctx, kind, &id).await {
                    return;
                }
            }
            task.await;
        },
        on_interrupt,
    )
}

/// True the first time a platform delivers `id` of `kind` (`discord:interaction`,
/// `slack:trigger`) within `DELIVERY_TTL`: one conditional insert in the store,
/// so a retried or replayed delivery runs once, across restarts and replicas.
/// A store that cannot answer does not stop the request: it is handled, and
/// the failure logged.
pub(crate) async fn first_delivery(ctx: &crate::core::Context, kind: &'static str, id: &str) -> bool {
    let first = match ctx
        .store
        .claim_delivery(&format!("{kind}:{id}"), ctx.clock.now(), DELIVERY_TTL)
        .await
    {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "delivery id not checked");
            true
        }
    };
    if !first {
        metrics::counter!("waops_duplicate_deliveries_total").increment(1);
        tracing::info!(kind, id, "duplicate delivery; handled once already");
    }
    first
}
