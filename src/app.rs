//! Wiring: settings → store, provider, context → router and server.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::core::{Clock, Context};
use crate::settings::Settings;
use crate::store::Store;
use crate::workers::Workers;

/// Opens and migrates the store, builds the provider and the context.
pub async fn build_context(settings: Settings, clock: Clock) -> anyhow::Result<Context> {
    // The recorder first: series registered while the context is built (each
    // account's provider metrics) must land in it.
    crate::telemetry::metrics();
    let store = Store::connect(settings.store.url.expose()).await?;
    store.migrate().await?;
    metrics::gauge!("waops_store_up").set(1.0);
    let accounts = crate::core::Accounts::build(&settings, clock)?;
    Context::new(settings, accounts, store, clock)
}

/// The digest posters of the chat platforms whose bot tokens are set.
pub fn chat_posters(settings: &Settings) -> anyhow::Result<crate::digests::Posters> {
    use crate::adapters::{discord::outbound::DiscordClient, slack::outbound::SlackClient};
    let mut posters = crate::digests::Posters::default();
    if settings.slack.bot_token.is_set() {
        posters.slack = Some(std::sync::Arc::new(SlackClient::new(&settings.slack)?));
    }
    if settings.discord.bot_token.is_set() {
        posters.discord = Some(std::sync::Arc::new(DiscordClient::new(&settings.discord)?));
    }
    Ok(posters)
}

/// Time for "interrupted" messages to go out after the grace period.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves, then lets in-flight requests finish for
/// up to `server.shutdown_grace_s` before returning.
pub async fn serve(
    ctx: Context,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = ctx.settings.server.shutdown_grace;
    crate::telemetry::register_series();
    let workers = Workers::new(ctx.settings.server.max_in_flight);
    let discord = crate::adapters::discord::Discord::new(ctx.clone(), workers.clone())?;
    let gateway = discord
        .clone()
        .filter(|_| ctx.settings.discord.mode == crate::settings::DiscordMode::Gateway);
    let router = crate::http::router(ctx.clone(), workers.clone(), discord)?;
    // One signal for everything that must stop: the gateway and the grace-period clock.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    if let Some(gateway) = gateway {
        let mut stopped = stopping_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::adapters::discord::gateway::run(gateway, shutdown).await {
                tracing::error!(error = format!("{e:#}"), "Discord gateway failed");
            }
        });
    }
    let replica = crate::digests::Scheduler::replica_id();
    let scheduler = crate::digests::Scheduler::new(ctx.clone(), replica.clone(), chat_posters(&ctx.settings)?);
    let digests = tokio::spawn(scheduler.run(stopping_rx.clone()));
    tokio::spawn(purge(ctx.clone(), replica, stopping_rx.clone()));
    let server = crate::http::serve(listener, router, &ctx.settings.server, async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let _ = stopping_tx.send(true);
    });
    let mut stopping = stopping_rx;
    let deadline = async move {
        if stopping.wait_for(|s| *s).await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(grace_s = grace.as_secs(), "grace period over; closing with requests in flight"),
    }
    // Follow-ups still running (results being posted back to chat) get the grace period too.
    if workers.busy() > 0 && !workers.drain(grace).await {
        tracing::warn!(
            still_running = workers.busy(),
            "grace period over; telling the users of unfinished commands"
        );
        workers.interrupt();
        if !workers.drain(INTERRUPT_GRACE).await {
            tracing::error!(
                still_running = workers.busy(),
                "some interrupted commands could not be reported"
            );
        }
    }
    // A digest tick under way finishes (or its leases expire for another replica).
    if tokio::time::timeout(grace, digests).await.is_err() {
        tracing::warn!("grace period over; a digest tick was still running");
    }
    ctx.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes expired idempotency keys every minute until shutdown.
/// Every minute, expired idempotency keys go; and the replica that takes the
/// retention lease (at most one an hour, across replicas) purges what
/// `store.retention` no longer keeps.
async fn purge(ctx: Context, replica: String, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let now = ctx.clock.now();
        if let Err(e) = ctx.store.purge_keys(now).await {
            tracing::warn!(error = format!("{e:#}"), "expired idempotency keys not purged");
        }
        let retention = &ctx.settings.store.retention;
        match ctx.store.purge_old(&replica, now, RETENTION_EVERY, retention).await {
            Ok(Some(purged)) => tracing::info!(
                audit = purged.audit,
                journal = purged.journal,
                confirmations = purged.confirmations,
                "old rows purged"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "old rows not purged"),
        }
    }
}

/// How often the retention purge runs (on one replica).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Resolves on SIGTERM or SIGINT. The handlers are installed at the call, not
/// at the first poll: from then on neither signal ends the process abruptly.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // A signal whose handler could not be installed keeps its default action.
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            tokio::select! {
                () = received(term) => {},
                () = received(interrupt) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
