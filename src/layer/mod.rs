//! The channel layer: how a room message reaches every socket in the room, on this node and others.

use std::time::Duration;

use crate::config::{ChannelLayerChoice, Settings};

/// Which layer a server runs, decided once at startup (COMPAT §1 `CHANNEL_LAYER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Memory,
    Redis,
}

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Memory => "memory",
            LayerKind::Redis => "redis",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("Redis at {url} is unreachable: {cause}")]
    RedisUnreachable { url: String, cause: String },
}

/// Pings Redis with a short timeout (an unreachable host must not stall startup).
pub async fn ping_redis(url: &str) -> Result<(), LayerError> {
    let unreachable = |cause: String| LayerError::RedisUnreachable { url: redact(url), cause };
    let client = redis::Client::open(url).map_err(|e| unreachable(e.to_string()))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| unreachable(e.to_string()))?;
    if pong == "PONG" { Ok(()) } else { Err(unreachable(format!("unexpected PING reply {pong:?}"))) }
}

/// Resolves `CHANNEL_LAYER`: `redis` demands Redis, `memory` never touches it, unset (auto) uses
/// Redis when it answers now and otherwise the in-process layer with a loud single-node warning.
pub async fn choose(settings: &Settings) -> Result<LayerKind, LayerError> {
    match settings.channel_layer {
        ChannelLayerChoice::Memory => Ok(LayerKind::Memory),
        ChannelLayerChoice::Redis => ping_redis(&settings.redis_url).await.map(|()| LayerKind::Redis),
        ChannelLayerChoice::Auto => match ping_redis(&settings.redis_url).await {
            Ok(()) => Ok(LayerKind::Redis),
            Err(e) => {
                tracing::warn!(
                    "{e}; using the in-process channel layer: this node will NOT see messages \
                     from other nodes (set CHANNEL_LAYER=memory to silence this, or fix REDIS_URL)"
                );
                Ok(LayerKind::Memory)
            }
        },
    }
}

/// The URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
