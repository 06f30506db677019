//! Gateway mode (`discord.mode = "gateway"`): serenity holds the websocket for
//! deployments without a public URL. Each interaction it receives is handled by
//! the same code as the HTTP route; the answer goes to Discord's callback
//! endpoint instead of an HTTP response. Run it on one replica only.

use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serenity::all::{
    Client, Context as SerenityContext, EventHandler, GatewayIntents, Interaction as SerenityInteraction, Ready,
};

use super::{handle, Discord, Interaction};
use crate::core::new_request_id;

struct Handler {
    discord: Arc<Discord>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _: SerenityContext, interaction: SerenityInteraction) {
        answer_model(self.discord.clone(), &interaction).await;
    }

    async fn ready(&self, _: SerenityContext, ready: Ready) {
        tracing::info!(user = %ready.user.name, "Discord gateway connected");
    }
}

/// Answers an interaction as serenity delivers it. serenity's model serialises
/// back to Discord's wire shape (less the `type`, which the enum variant holds),
/// which the shared handler reads.
pub async fn answer_model(discord: Arc<Discord>, interaction: &SerenityInteraction) {
    let kind = match interaction {
        SerenityInteraction::Ping(_) => 1,
        SerenityInteraction::Command(_) => 2,
        SerenityInteraction::Component(_) => 3,
        _ => return tracing::debug!("gateway interaction of a kind waops does not use"),
    };
    match serde_json::to_value(interaction) {
        Ok(mut raw) => {
            raw["type"] = Value::from(kind);
            answer(discord, raw).await;
        }
        Err(e) => tracing::error!(error = %e, "gateway interaction could not be read"),
    }
}

/// Answers one interaction (Discord's JSON) received over the gateway.
pub async fn answer(discord: Arc<Discord>, raw: Value) {
    // Read in place: the interaction borrows its strings from `raw`.
    let interaction = match Interaction::deserialize(&raw) {
        Ok(i) => i,
        Err(e) => return tracing::error!(error = %e, "gateway interaction has an unexpected shape"),
    };
    let (Some(id), Some(token)) = (
        interaction.id.as_deref().map(str::to_owned),
        interaction.token.as_deref().map(str::to_owned),
    ) else {
        return tracing::warn!("gateway interaction without id or token");
    };
    match handle(discord.clone(), interaction, new_request_id()).await {
        Ok(callback) => {
            if let Err(e) = discord.client.callback(&id, &token, &callback.to_json()).await {
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
