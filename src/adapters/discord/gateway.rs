//! Gateway mode (`discord.mode = "gateway"`): serenity holds the websocket for
//! deployments without a public URL. Each interaction it receives is handled by
//! the same code as the HTTP route; the answer goes to Discord's callback
//! endpoint instead of an HTTP response. Run it on one replica only.

use std::future::Future;
use std::sync::Arc;

use serenity::all::{Client, Context as SerenityContext, EventHandler, GatewayIntents, Interaction, Ready};

use super::{handle, Discord};
use crate::core::new_request_id;

struct Handler {
    discord: Arc<Discord>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _: SerenityContext, interaction: Interaction) {
        answer(self.discord.clone(), interaction).await;
    }

    async fn ready(&self, _: SerenityContext, ready: Ready) {
        tracing::info!(user = %ready.user.name, "Discord gateway connected");
    }
}

/// Answers one interaction received over the gateway: the same handler as
/// the HTTP route; the answer goes to Discord's callback endpoint.
pub async fn answer(discord: Arc<Discord>, interaction: Interaction) {
    let (id, token) = match &interaction {
        Interaction::Command(c) => (c.id, c.token.clone()),
        Interaction::Component(c) => (c.id, c.token.clone()),
        _ => return tracing::debug!("gateway interaction of a kind waops does not use"),
    };
    match handle(discord.clone(), interaction, new_request_id()).await {
        Ok(response) => {
            if let Err(e) = discord.client.callback(id, &token, &response).await {
                tracing::error!(error = %e, "gateway interaction could not be answered");
            }
        }
        Err((status, text)) => {
            tracing::warn!(status = status.as_u16(), reason = %text.trim(), "gateway interaction refused")
        }
    }
}

/// Connects and serves until `shutdown` resolves.
pub async fn run(discord: Arc<Discord>, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let token = discord.ctx.settings.discord.bot_token.clone();
    let mut client = Client::builder(token.expose(), GatewayIntents::empty())
        .event_handler(Handler { discord })
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the Discord gateway client: {e}"))?;
    let shards = client.shard_manager.clone();
    tokio::select! {
        result = client.start() => result.map_err(|e| anyhow::anyhow!("Discord gateway stopped: {e}"))?,
        () = shutdown => shards.shutdown_all().await,
    }
    Ok(())
}
