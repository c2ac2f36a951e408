//! The channel layer: how a room message reaches every socket in the room, on this node and others.
//!
//! The consumer only ever sees [`ChannelLayer`]: it joins rooms through the local [`Hub`] and
//! sends each saved message with [`ChannelLayer::group_send`]. Which implementation runs is
//! decided once at startup ([`choose`], then [`start`]):
//! - [`memory::MemoryLayer`]: one process; a message goes straight to the hub's room ring.
//! - [`redis::RedisLayer`]: `channels_redis` on the wire (COMPAT §7), shared with Daphne nodes
//!   and other ferrochat nodes; it consumes the hub's [`RoomChange`]s to keep one group
//!   membership per process per room.

pub mod channels_redis;
pub mod hub;
pub mod live;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::django::chat_json::ChatEvent;
use crate::django::room_name::RoomName;
use crate::secret::redact_url;
use channels_redis::{ChannelsRedisConfig, NodeId};
use hub::{Hub, RoomChange};

/// How a saved room message reaches every socket in the room: the legacy
/// `channel_layer.group_send("chat_<room>", {"type": "chat.message", ...})`.
pub trait ChannelLayer: Send + Sync + 'static {
    /// What actually runs (reported by `/healthz` and `check`).
    fn kind(&self) -> LayerKind;

    /// Whether the layer reaches the other nodes now (`/healthz`).
    fn status(&self) -> LayerStatus {
        LayerStatus::Ok
    }

    /// The Redis master each sentinel shard uses now (`host:port`), in shard order; empty
    /// when no shard is behind Sentinel (`/healthz` and `check` report it).
    fn masters(&self) -> Vec<String> {
        Vec::new()
    }

    /// Resolves once messages other nodes send to `room` reach this node: the handshake of a
    /// room's first local socket waits for it, as the legacy consumer's `group_add` precedes
    /// `accept()`. Bounded; never waits while the layer is cut off from the other nodes.
    fn joined<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, ()> {
        let _ = room;
        Box::pin(async {})
    }

    /// Sends one saved message to the room on every node this layer reaches, this one
    /// included, sender included. The frame is serialized once for all local sockets.
    fn group_send<'a>(
        &'a self,
        room: &'a RoomName,
        event: &'a ChatEvent,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Closes these users' sockets on every ferrochat node this layer reaches (an account
    /// deactivated in the admin). Never a channels_redis group message: Daphne nodes keep
    /// their sockets until they reconnect, as in the legacy app.
    fn disconnect_users<'a>(&'a self, user_ids: &'a [i64]) -> BoxFuture<'a, ()>;

    /// Called once after every socket closed at shutdown (Redis: leave every group now rather
    /// than wait for the group expiry).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Starts the layer `kind` over `hub`; `changes` are the hub's room openings and closings, the
/// membership hooks a distributed layer needs. The Redis layer reads `config` and names this
/// process `node_id` (`FERROCHAT_NODE_ID`; a random one when `None`).
pub async fn start(
    kind: LayerKind,
    config: &ChannelsRedisConfig,
    node_id: Option<&NodeId>,
    hub: Arc<Hub>,
    changes: mpsc::UnboundedReceiver<RoomChange>,
) -> Result<Arc<dyn ChannelLayer>, LayerError> {
    match kind {
        LayerKind::Memory => Ok(Arc::new(memory::MemoryLayer::start(hub, changes))),
        LayerKind::Redis => {
            let node = match node_id {
                Some(node) => node.clone(),
                None => {
                    let node = redis::random_node_id();
                    tracing::info!(
                        "FERROCHAT_NODE_ID is not set and the listening address is not known: \
                         using the random node id {node} for this process"
                    );
                    node
                }
            };
            Ok(Arc::new(redis::RedisLayer::start(
                config.clone(),
                node,
                hub,
                changes,
            )))
        }
    }
}

/// Whether a layer reaches the other nodes right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    Ok,
    /// Not yet connected (no attempt has failed yet), or re-registering memberships.
    Connecting,
    /// The cause: this node serves its own sockets only until it is back.
    Unreachable(String),
}

impl LayerStatus {
    pub fn is_ok(&self) -> bool {
        *self == LayerStatus::Ok
    }
}

impl std::fmt::Display for LayerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerStatus::Ok => f.write_str("ok"),
            LayerStatus::Connecting => f.write_str("connecting"),
            LayerStatus::Unreachable(cause) => write!(f, "unreachable: {cause}"),
        }
    }
}

/// Which channel layer to run (`CHANNEL_LAYER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelLayerChoice {
    /// Unset: Redis at `REDIS_URL` if it answers at startup, else in-process with a warning.
    Auto,
    Memory,
    Redis,
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
    /// The message reached this node's sockets but not the other nodes.
    #[error("sent to this node's sockets only: {0}")]
    NotBroadcast(String),
    #[error("channel layer configuration: {0}")]
    Config(String),
}

/// Pings Redis with a short timeout (an unreachable host must not stall startup).
pub async fn ping_redis(url: &str) -> Result<(), LayerError> {
    ping_host(url, None).await.map(drop)
}

/// Pings one channels_redis host: a Redis URL, or a sentinel group (`redis+sentinel://…`),
/// whose current master is asked for first and returned (`host:port`).
pub async fn ping_host(
    url: &str,
    sentinel_password: Option<&str>,
) -> Result<Option<String>, LayerError> {
    let unreachable = |cause: String| LayerError::RedisUnreachable {
        url: redact_url(url),
        cause,
    };
    crate::tls::install_crypto_provider();
    let (target, master) = if channels_redis::sentinel::is_sentinel_entry(url) {
        let group = channels_redis::sentinel::SentinelShard::parse(url, sentinel_password)
            .map_err(|e| unreachable(e.to_string()))?;
        let master = group
            .master()
            .await
            .map_err(|e| unreachable(format!("no sentinel named the master: {e}")))?;
        let address = master
            .client()
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_default();
        (master, Some(address))
    } else {
        let target =
            channels_redis::RedisUrl::parse(url).map_err(|e| unreachable(e.to_string()))?;
        (target, None)
    };
    let client = target.client().map_err(|e| unreachable(e.to_string()))?;
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let pong: String = ::redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if pong == "PONG" {
        Ok(master)
    } else {
        Err(unreachable(format!("unexpected PING reply {pong:?}")))
    }
}

/// Pings every host of the channels_redis configuration (`FERROCHAT_REDIS_HOSTS` or
/// `REDIS_URL`, or the sentinels' master); the first failure is the error.
pub async fn ping_hosts(config: &ChannelsRedisConfig) -> Result<(), LayerError> {
    for url in &config.hosts {
        ping_host(url, config.sentinel_password.as_deref()).await?;
    }
    Ok(())
}

/// Resolves `CHANNEL_LAYER`: `redis` always runs the Redis layer (which keeps retrying until
/// Redis answers), `memory` never touches Redis, unset (auto) uses Redis when it answers now and
/// otherwise the in-process layer with a loud single-node warning.
pub async fn choose(
    choice: ChannelLayerChoice,
    config: &ChannelsRedisConfig,
) -> Result<LayerKind, LayerError> {
    match choice {
        ChannelLayerChoice::Memory => Ok(LayerKind::Memory),
        ChannelLayerChoice::Redis => Ok(LayerKind::Redis),
        ChannelLayerChoice::Auto => match ping_hosts(config).await {
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
