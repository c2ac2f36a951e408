//! A `channels_redis.core.RedisChannelLayer` 4.x client: the same Redis keys, commands, Lua and
//! bytes, so ferrochat and Daphne nodes share one channel layer (COMPAT §7,
//! `shared/reference/channels_redis.md`).
//!
//! - [`names`]: Channels' name rules, and ferrochat's one channel per node per room,
//!   `specific.<node-id>!<room>`, all queued at `{prefix}specific.<node-id>!`.
//! - [`wire`]: 12 random bytes + msgpack (+ Fernet), and the `chat.message` event.
//! - [`hashing`]: which host a name lives on.
//! - [`scripts`]: the group-send and send Lua.
//! - [`url`]: Redis URLs as redis-py reads them (`rediss://` and its `ssl_*` arguments): the
//!   one builder of Redis clients.
//! - [`sentinel`]: shards behind Redis Sentinel (`redis+sentinel://…`), their current master.
//! - [`client`]: connections, `group_add`/`group_discard`/`group_send`/`send`, the receive loop.

pub mod client;
pub mod config;
pub mod hashing;
pub mod names;
pub mod scripts;
pub mod sentinel;
pub mod url;
pub mod wire;

pub use client::{
    ChannelsRedis, ChannelsRedisError, GroupSendReport, Receiver, ReceiverEvent, ReceiverOptions,
    ReceiverStats,
};
pub use config::{ChannelsRedisConfig, ChannelsRedisConfigError};
pub use hashing::consistent_hash;
pub use names::{ChannelName, GroupName, NameError, NodeId, non_local_name};
pub use url::{RedisUrl, RedisUrlError};
pub use wire::{Codec, WireError};
