//! The channel layer: how a room message reaches every socket in the room, on this node and others.
//!
//! The consumer only ever sees [`ChannelLayer`]: it joins rooms through the local [`Hub`] and
//! sends each saved message with [`ChannelLayer::group_send`]. Which implementation runs is
//! decided once at startup ([`choose`], then [`start`]):
//! - [`memory::MemoryLayer`]: one process; a message goes straight to the hub's room ring.
//! - Redis (`channels_redis` on the wire, COMPAT §7): next; it plugs in here, consuming the hub's
//!   [`RoomChange`]s to keep one group membership per process per room.

pub mod channels_redis;
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::chat::RoomName;
use crate::chat::frame::ChatEvent;
use crate::chat::hub::{Hub, RoomChange};
use crate::config::{ChannelLayerChoice, Settings};

/// How a saved room message reaches every socket in the room: the legacy
/// `channel_layer.group_send("chat_<room>", {"type": "chat.message", ...})`.
pub trait ChannelLayer: Send + Sync + 'static {
    /// What actually runs (reported by `/healthz` and `check`).
    fn kind(&self) -> LayerKind;

    /// Sends one saved message to the room on every node this layer reaches, this one
    /// included, sender included. The frame is serialized once for all local sockets.
    fn group_send<'a>(
        &'a self,
        room: &'a RoomName,
        event: &'a ChatEvent,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Called once after every socket closed at shutdown (Redis: leave every group now rather
    /// than wait for the group expiry).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Starts the layer `kind` over `hub`; `changes` are the hub's room openings and closings, the
/// membership hooks a distributed layer needs; `settings` carry its configuration.
pub async fn start(
    kind: LayerKind,
    settings: &Settings,
    hub: Arc<Hub>,
    changes: mpsc::UnboundedReceiver<RoomChange>,
) -> Result<Arc<dyn ChannelLayer>, LayerError> {
    let _ = settings; // read by the Redis layer (REDIS_URL, FERROCHAT_REDIS_*)
    match kind {
        LayerKind::Memory => Ok(Arc::new(memory::MemoryLayer::start(hub, changes))),
        LayerKind::Redis => {
            // The channels_redis-compatible layer is the next piece of work (issue 5); until it
            // lands a single node still serves every socket it holds.
            tracing::warn!(
                "the Redis channel layer is not implemented yet: using the in-process layer; this \
                 node will NOT exchange messages with other nodes"
            );
            Ok(Arc::new(memory::MemoryLayer::start(hub, changes)))
        }
    }
}

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
    let unreachable = |cause: String| LayerError::RedisUnreachable {
        url: redact(url),
        cause,
    };
    let client = redis::Client::open(url).map_err(|e| unreachable(e.to_string()))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(unreachable(format!("unexpected PING reply {pong:?}")))
    }
}

/// Resolves `CHANNEL_LAYER`: `redis` demands Redis, `memory` never touches it, unset (auto) uses
/// Redis when it answers now and otherwise the in-process layer with a loud single-node warning.
pub async fn choose(settings: &Settings) -> Result<LayerKind, LayerError> {
    match settings.channel_layer {
        ChannelLayerChoice::Memory => Ok(LayerKind::Memory),
        ChannelLayerChoice::Redis => ping_redis(&settings.redis_url)
            .await
            .map(|()| LayerKind::Redis),
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
