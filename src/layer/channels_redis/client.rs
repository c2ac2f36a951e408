//! Talks to the Redis hosts the way `channels_redis.core.RedisChannelLayer` 4.2 does.
//!
//! Commands and Lua go over one auto-reconnecting [`ConnectionManager`] per host. Receiving uses a
//! dedicated connection per host (a blocking pop would hold up every command multiplexed behind
//! it, and redis-rs' 500 ms default response timeout would cut it short: crates.md §4.1).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Script, ServerErrorKind};
use rmpv::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::ChannelsRedisConfig;
use super::hashing::consistent_hash;
use super::names::{ChannelName, GroupName, NameError, NodeId, non_local_name};
use super::scripts::{GROUP_SEND_LUA, SEND_LUA};
use super::sentinel::{self, SentinelShard};
use super::url::{RedisUrl, RedisUrlError};
use super::wire::{Codec, Decoded, Target, WireError, check_message};
use crate::secret::redact_url;

#[derive(Debug, thiserror::Error)]
pub enum ChannelsRedisError {
    #[error("no Redis hosts configured")]
    NoHosts,
    #[error("Redis host #{index}: {source}")]
    Url {
        index: usize,
        #[source]
        source: RedisUrlError,
    },
    #[error("Redis host #{index} ({url}): {source}")]
    Redis {
        index: usize,
        url: String,
        #[source]
        source: RedisError,
    },
    /// `channels.exceptions.ChannelFull`, as Python's `send()` raises it.
    #[error("channel {channel} is full (capacity {capacity})")]
    ChannelFull { channel: String, capacity: usize },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Name(#[from] NameError),
}

impl ChannelsRedisError {
    /// The host could not be reached or stopped answering (as opposed to a refusal such as
    /// `ChannelFull`, a bad message or a server error reply): the caller may wait for it.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ChannelsRedisError::Redis { source, .. } => {
                is_connection_error(source) || needs_new_master(source)
            }
            _ => false,
        }
    }

    /// The index of the host this error came from, if it came from one.
    pub fn host(&self) -> Option<usize> {
        match self {
            ChannelsRedisError::Redis { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// What one `group_send` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupSendReport {
    /// Live members of the group (after expired ones were removed).
    pub members: usize,
    /// Distinct queue keys written: one per process, whatever its number of member channels.
    pub keys: usize,
    /// Keys that were full, so missed this message (channels_redis drops silently, logs INFO).
    pub over_capacity: usize,
}

/// Tuning of the receive loop.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverOptions {
    /// `BZPOPMIN` timeout (whole seconds on the wire, for Redis 5). Shutdown does not wait for it.
    pub pop_timeout: Duration,
    /// Most members fetched by one non-blocking `ZPOPMIN` after a blocking pop returned.
    pub batch: usize,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            pop_timeout: Duration::from_secs(2),
            batch: 100,
        }
    }
}

/// What the receive loop hands to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverEvent {
    /// A message for one of this node's channels, without `__asgi_channel__`.
    Message { channel: String, message: Value },
    /// The receive connection to host `host` failed (or could not be opened). Reported once per
    /// outage; the loop keeps retrying with backoff.
    Disconnected { host: usize, error: String },
    /// Host `host` answers again after a [`ReceiverEvent::Disconnected`]. Redis may have restarted
    /// and lost every group membership: re-register them (`group_add`) now.
    Reconnected { host: usize },
}

/// Counters of a running receiver.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    received: AtomicU64,
    dropped: AtomicU64,
}

impl ReceiverStats {
    /// Members popped and delivered.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Members popped and dropped: unreadable, unroutable, or for a channel of another node.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The running receive loops (one per host); dropping it stops them too.
#[derive(Debug)]
pub struct Receiver {
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<ReceiverStats>,
}

impl Receiver {
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Stops every loop at once (an in-flight blocking pop is abandoned) and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                tracing::error!("channels_redis receive loop ended abnormally: {e}");
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Shard {
    url: String,
    /// Set when the shard is a sentinel group: its master is whichever server they name now.
    sentinel: Option<SentinelShard>,
    current: std::sync::Mutex<Arc<Conn>>,
    /// One sentinel look-up at a time per shard.
    refreshing: tokio::sync::Mutex<()>,
}

/// The server a shard's commands go to now.
struct Conn {
    client: Client,
    commands: ConnectionManager,
    /// `host:port` (the master a sentinel named, or the URL's).
    address: String,
}

/// The command connection to one server: commands fail within a few seconds while it is down,
/// instead of queueing for the whole default retry schedule; the next command reconnects.
async fn open_conn(url: &RedisUrl) -> Result<Conn, RedisError> {
    let client = url.client().map_err(|e| {
        RedisError::from((ErrorKind::InvalidClientConfig, "bad URL", e.to_string()))
    })?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1));
    let commands = ConnectionManager::new_with_config(client.clone(), manager_config).await?;
    let address = client.get_connection_info().addr().to_string();
    Ok(Conn {
        client,
        commands,
        address,
    })
}

/// A server error that means "not the master (any more)": ask the sentinels again.
fn needs_new_master(e: &RedisError) -> bool {
    matches!(e.code(), Some("READONLY" | "UNBLOCKED" | "MASTERDOWN"))
}

struct Inner {
    config: ChannelsRedisConfig,
    shards: Vec<Shard>,
    codec: Codec,
    group_send_script: Script,
    send_script: Script,
}

/// A `channels_redis`-compatible client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct ChannelsRedis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChannelsRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelsRedis")
            .field("config", &self.inner.config)
            .finish()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `time.time()`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ChannelsRedis {
    /// Opens one command connection per host; fails if any host does not answer now (the caller
    /// may retry). Receiving starts with [`ChannelsRedis::spawn_receiver`].
    pub async fn connect(config: ChannelsRedisConfig) -> Result<Self, ChannelsRedisError> {
        if config.hosts.is_empty() {
            return Err(ChannelsRedisError::NoHosts);
        }
        crate::tls::install_crypto_provider();
        let codec = Codec::new(&config.symmetric_encryption_keys, config.expiry)?;
        let mut shards = Vec::with_capacity(config.hosts.len());
        for (index, host) in config.hosts.iter().enumerate() {
            let url = redact_url(host);
            let fail = |source| ChannelsRedisError::Redis {
                index,
                url: url.clone(),
                source,
            };
            let bad_url = |source| ChannelsRedisError::Url { index, source };
            let (target, sentinel) = if sentinel::is_sentinel_entry(host) {
                let group = SentinelShard::parse(host, config.sentinel_password.as_deref())
                    .map_err(bad_url)?;
                (group.master().await.map_err(fail)?, Some(group))
            } else {
                (RedisUrl::parse(host).map_err(bad_url)?, None)
            };
            if !target.ignored().is_empty() {
                tracing::info!(
                    "channels_redis host #{index} ({url}): ignoring the option(s) {}",
                    target.ignored().join(", ")
                );
            }
            let conn = open_conn(&target).await.map_err(fail)?;
            if let Some(group) = &sentinel {
                tracing::info!(
                    "channels_redis host #{index}: master {} of {:?} (from its sentinels)",
                    conn.address,
                    group.master_name
                );
            }
            shards.push(Shard {
                url,
                sentinel,
                current: std::sync::Mutex::new(Arc::new(conn)),
                refreshing: tokio::sync::Mutex::new(()),
            });
        }
        Ok(ChannelsRedis {
            inner: Arc::new(Inner {
                config,
                shards,
                codec,
                group_send_script: Script::new(GROUP_SEND_LUA),
                send_script: Script::new(SEND_LUA),
            }),
        })
    }

    pub fn config(&self) -> &ChannelsRedisConfig {
        &self.inner.config
    }

    /// The host index channels_redis uses for `name` (a group, or a `non_local_name`).
    pub fn shard_of(&self, name: &str) -> usize {
        consistent_hash(name, self.inner.shards.len())
    }

    /// `{prefix}:group:{group}` (core.py `_group_key`).
    pub fn group_key(&self, group: &GroupName) -> String {
        format!("{}:group:{}", self.inner.config.prefix, group)
    }

    /// `{prefix}{non_local_name}`: no separator (core.py `send`: `self.prefix + channel_non_local_name`).
    pub fn queue_key(&self, non_local: &str) -> String {
        format!("{}{}", self.inner.config.prefix, non_local)
    }

    /// Wraps a failure of host `index`; on a sentinel shard a failure that may mean a failover
    /// sends a look-up of the current master on its way (the failed command is not repeated).
    fn redis_error(&self, index: usize) -> impl Fn(RedisError) -> ChannelsRedisError + '_ {
        move |source| {
            if self.inner.shards[index].sentinel.is_some()
                && (is_connection_error(&source) || needs_new_master(&source))
            {
                let this = self.clone();
                tokio::spawn(async move { this.refresh_master(index).await });
            }
            ChannelsRedisError::Redis {
                index,
                url: self.inner.shards[index].url.clone(),
                source,
            }
        }
    }

    fn conn(&self, index: usize) -> Arc<Conn> {
        let current = self.inner.shards[index]
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.clone()
    }

    fn commands(&self, index: usize) -> ConnectionManager {
        self.conn(index).commands.clone()
    }

    /// The master each shard uses now (`host:port`), for `/healthz` and `check`: `Some` for the
    /// shards behind sentinels, `None` for fixed servers.
    pub fn masters(&self) -> Vec<Option<String>> {
        (0..self.inner.shards.len())
            .map(|index| {
                self.inner.shards[index]
                    .sentinel
                    .as_ref()
                    .map(|_| self.conn(index).address.clone())
            })
            .collect()
    }

    /// On a sentinel shard: asks the sentinels for the current master and, if it moved, points
    /// the shard's commands at it. `true` when the master changed.
    pub async fn refresh_master(&self, index: usize) -> bool {
        let shard = &self.inner.shards[index];
        let Some(group) = &shard.sentinel else {
            return false;
        };
        let _one_at_a_time = shard.refreshing.lock().await;
        let master = match group.master().await {
            Ok(master) => master,
            Err(e) => {
                tracing::warn!("channels_redis host #{index}: no sentinel answered: {e}");
                return false;
            }
        };
        let address = master
            .client()
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_default();
        if address == self.conn(index).address {
            return false;
        }
        match open_conn(&master).await {
            Ok(conn) => {
                tracing::warn!(
                    "channels_redis host #{index}: the sentinels name a new master {} of {:?} \
                     (was {}); switching to it",
                    conn.address,
                    group.master_name,
                    self.conn(index).address
                );
                *shard
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(conn);
                true
            }
            Err(e) => {
                tracing::warn!(
                    "channels_redis host #{index}: the new master {address} does not answer: {e}"
                );
                false
            }
        }
    }

    /// Runs commands that are safe to repeat, a second time if the connection was lost: the
    /// manager only notices a dead connection (e.g. after a Redis restart) when a command fails
    /// on it, then reconnects. Never used to write messages, which must not be duplicated.
    async fn idempotent<T: redis::FromRedisValue>(
        &self,
        index: usize,
        pipe: &redis::Pipeline,
    ) -> Result<T, ChannelsRedisError> {
        let mut conn = self.commands(index);
        match pipe.query_async(&mut conn).await {
            Err(e) if is_connection_error(&e) || needs_new_master(&e) => {
                tracing::debug!("channels_redis host #{index}: {e}; retrying on a new connection");
                // Behind sentinels the master may have moved: ask before retrying.
                if self.refresh_master(index).await {
                    conn = self.commands(index);
                }
                pipe.query_async(&mut conn)
                    .await
                    .map_err(self.redis_error(index))
            }
            result => result.map_err(self.redis_error(index)),
        }
    }

    /// `PUBLISH channel payload` on the first host: ferrochat's own notices to its other nodes
    /// (never a channels_redis key or group, which Daphne nodes read).
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<(), ChannelsRedisError> {
        let mut conn = self.commands(0);
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(self.redis_error(0))
    }

    /// The first host's client (its current master), for a subscription to what
    /// [`ChannelsRedis::publish`] sends.
    pub fn first_host_client(&self) -> Client {
        self.conn(0).client.clone()
    }

    /// PING every host (health checks).
    pub async fn ping(&self) -> Result<(), ChannelsRedisError> {
        for index in 0..self.inner.shards.len() {
            let (_pong,): (String,) = self.idempotent(index, redis::pipe().cmd("PING")).await?;
        }
        Ok(())
    }

    /// core.py `group_add`: `ZADD {prefix}:group:{group} <now> <channel>`, then
    /// `EXPIRE … group_expiry`, on shard `hash(group)` (one round trip here). Calling it again
    /// refreshes the membership, which otherwise lapses after `group_expiry`.
    pub async fn group_add(
        &self,
        group: &GroupName,
        channel: &ChannelName,
    ) -> Result<(), ChannelsRedisError> {
        let index = self.shard_of(group.as_str());
        let key = self.group_key(group);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&key)
            .arg(now())
            .arg(channel.as_str())
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.inner.config.group_expiry)
            .ignore();
        self.idempotent(index, &pipe).await
    }

    /// core.py `group_discard`: `ZREM {prefix}:group:{group} <channel>` on shard `hash(group)`.
    pub async fn group_discard(
        &self,
        group: &GroupName,
        channel: &ChannelName,
    ) -> Result<(), ChannelsRedisError> {
        let index = self.shard_of(group.as_str());
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(self.group_key(group))
            .arg(channel.as_str())
            .ignore();
        self.idempotent(index, &pipe).await
    }

    /// core.py `send`: to a `!` channel the message carries `__asgi_channel__` = the full name;
    /// trim expired, refuse at capacity ([`ChannelsRedisError::ChannelFull`]), `ZADD`, `EXPIRE`,
    /// atomically. Written on shard `hash(non_local_name)`, where Python's receiver reads (Python's
    /// own `send` hashes the full name: channels_redis PR #220).
    pub async fn send(
        &self,
        channel: &ChannelName,
        message: &Value,
    ) -> Result<(), ChannelsRedisError> {
        let target = if channel.is_process_specific() {
            Target::One(channel.as_str())
        } else {
            Target::None
        };
        let payload = self.inner.codec.encode(message, target)?;
        let non_local = channel.non_local_name();
        let index = self.shard_of(non_local);
        let capacity = self.inner.config.capacity;
        let mut conn = self.commands(index);
        let stored: i64 = self
            .inner
            .send_script
            .key(self.queue_key(non_local))
            .arg(payload)
            .arg(capacity)
            .arg(now())
            .arg(self.inner.config.expiry)
            .invoke_async(&mut conn)
            .await
            .map_err(self.redis_error(index))?;
        if stored == 1 {
            Ok(())
        } else {
            Err(ChannelsRedisError::ChannelFull {
                channel: channel.to_string(),
                capacity,
            })
        }
    }

    /// core.py `group_send` (4.2.0 lines 520-595): drop members older than `group_expiry`, read
    /// all members, write one message per distinct queue key listing that key's member channels
    /// in `__asgi_channel__`, with the exact group-send Lua per shard. Full keys miss the message
    /// silently, as in channels_redis; see [`GroupSendReport::over_capacity`].
    pub async fn group_send(
        &self,
        group: &GroupName,
        message: &Value,
    ) -> Result<GroupSendReport, ChannelsRedisError> {
        self.group_send_except(group, message, None).await
    }

    /// [`ChannelsRedis::group_send`] to every member but those queued at `except` (a
    /// `non_local_name`, e.g. this node's `specific.<node-id>!`): a node that has already
    /// delivered a message to its own sockets leaves itself out. Python has no such call; the
    /// other members get exactly what Python's `group_send` would write.
    pub async fn group_send_except(
        &self,
        group: &GroupName,
        message: &Value,
        except: Option<&str>,
    ) -> Result<GroupSendReport, ChannelsRedisError> {
        // Refuse a bad message before any Redis work, even for an empty group.
        check_message(message)?;
        let config = &self.inner.config;
        let gindex = self.shard_of(group.as_str());
        let gkey = self.group_key(group);
        let now = now();
        // Reading the members writes no message, so it may be retried.
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&gkey)
            .arg(0)
            .arg(now.floor() as i64 - config.group_expiry as i64)
            .ignore()
            .cmd("ZRANGE")
            .arg(&gkey)
            .arg(0)
            .arg(-1);
        let (raw_members,): (Vec<Vec<u8>>,) = self.idempotent(gindex, &pipe).await?;

        let members: Vec<&str> = raw_members
            .iter()
            .filter_map(|m| match std::str::from_utf8(m) {
                Ok(name) => Some(name),
                Err(_) => {
                    tracing::warn!("skipping a non-UTF-8 member of {gkey}");
                    None
                }
            })
            .collect();

        // _map_channel_keys_to_connection: queue keys in first-seen (score) order, the members
        // of each, and the shard of each key (hash of the non-local name).
        let mut key_index: HashMap<&str, usize> = HashMap::new();
        let mut keys: Vec<(&str, Vec<&str>)> = Vec::new();
        for &member in &members {
            let non_local = non_local_name(member);
            if except == Some(non_local) {
                continue;
            }
            match key_index.get(non_local) {
                Some(&i) => keys[i].1.push(member),
                None => {
                    key_index.insert(non_local, keys.len());
                    keys.push((non_local, vec![member]));
                }
            }
        }
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); self.inner.shards.len()];
        for (i, (non_local, _)) in keys.iter().enumerate() {
            by_shard[self.shard_of(non_local)].push(i);
        }

        let mut over_capacity = 0;
        for (index, key_ids) in by_shard.iter().enumerate() {
            if key_ids.is_empty() {
                continue;
            }
            let mut redis_keys = Vec::with_capacity(key_ids.len());
            let mut payloads = Vec::with_capacity(key_ids.len());
            for &i in key_ids {
                let (non_local, channels) = &keys[i];
                redis_keys.push(self.queue_key(non_local));
                payloads.push(self.inner.codec.encode(message, Target::Many(channels))?);
            }
            over_capacity += self
                .group_send_on_shard(index, &redis_keys, &payloads)
                .await?;
        }
        if over_capacity > 0 {
            tracing::info!(
                "{over_capacity} of {} channels over capacity in group {group}",
                members.len()
            );
        }
        Ok(GroupSendReport {
            members: members.len(),
            keys: keys.len(),
            over_capacity,
        })
    }

    /// One round trip: the expiry trims Python pipelines before the Lua (here on the keys' own
    /// shard; Python trims on the group's: channels_redis.md §1.9), then `EVALSHA` of the
    /// group-send Lua with a fresh `time.time()` as score, like core.py line 582. On `NOSCRIPT`
    /// (a restarted Redis has an empty script cache) the script is loaded and the pipeline sent
    /// once more: nothing was written by the failed `EVALSHA`, so nothing is duplicated.
    async fn group_send_on_shard(
        &self,
        index: usize,
        keys: &[String],
        payloads: &[Vec<u8>],
    ) -> Result<usize, ChannelsRedisError> {
        let config = &self.inner.config;
        let now = now();
        let script = &self.inner.group_send_script;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let trim_before = now.floor() as i64 - config.expiry as i64;
        for key in keys {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg(0)
                .arg(trim_before)
                .ignore();
        }
        let eval = pipe
            .cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys);
        for payload in payloads {
            eval.arg(payload.as_slice());
        }
        for _ in keys {
            eval.arg(config.capacity);
        }
        eval.arg(now).arg(config.expiry);

        let mut conn = self.commands(index);
        for attempt in 0..2 {
            let replies: Vec<redis::Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(self.redis_error(index))?;
            match replies.into_iter().next_back() {
                Some(redis::Value::Int(n)) => return Ok(usize::try_from(n).unwrap_or(0)),
                Some(redis::Value::ServerError(e))
                    if attempt == 0 && e.kind() == Some(ServerErrorKind::NoScript) =>
                {
                    script
                        .load_async(&mut conn)
                        .await
                        .map_err(self.redis_error(index))?;
                }
                Some(redis::Value::ServerError(e)) => {
                    return Err(self.redis_error(index)(e.into()));
                }
                other => {
                    let detail = format!("unexpected group_send reply {other:?}");
                    return Err(self.redis_error(index)(RedisError::from((
                        ErrorKind::UnexpectedReturnType,
                        "group_send",
                        detail,
                    ))));
                }
            }
        }
        Err(self.redis_error(index)(RedisError::from((
            ErrorKind::Server(ServerErrorKind::NoScript),
            "group_send script missing after SCRIPT LOAD",
        ))))
    }

    /// `DEL {prefix}specific.<node-id>!` on every host: discards what queued for this node while
    /// it was down (channels_redis.md §4(c)). Call before [`ChannelsRedis::spawn_receiver`].
    pub async fn purge_queue(&self, node: &NodeId) -> Result<(), ChannelsRedisError> {
        let key = self.queue_key(&node.non_local_name());
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&key).ignore();
        for index in 0..self.inner.shards.len() {
            self.idempotent::<()>(index, &pipe).await?;
        }
        Ok(())
    }

    /// Starts draining this node's queue `{prefix}specific.<node-id>!` on **every** host (Python's
    /// `send` may write to another shard than the receiver's, PR #220): `BZPOPMIN`, then
    /// non-blocking `ZPOPMIN` batches, decode, demultiplex by `__asgi_channel__`, and
    /// [`ReceiverEvent`]s into `events`. Unreadable members are logged and dropped. When `events`
    /// is closed the loops end.
    pub fn spawn_receiver(
        &self,
        node: &NodeId,
        options: ReceiverOptions,
        events: mpsc::Sender<ReceiverEvent>,
    ) -> Receiver {
        let shutdown = CancellationToken::new();
        let stats = Arc::new(ReceiverStats::default());
        let queue_key: Arc<str> = self.queue_key(&node.non_local_name()).into();
        let tasks = (0..self.inner.shards.len())
            .map(|host| {
                let receive = ReceiveLoop {
                    layer: self.clone(),
                    host,
                    node: node.clone(),
                    queue_key: queue_key.clone(),
                    options,
                    events: events.clone(),
                    shutdown: shutdown.clone(),
                    stats: stats.clone(),
                };
                tokio::spawn(receive.run())
            })
            .collect();
        Receiver {
            shutdown,
            tasks,
            stats,
        }
    }
}

struct ReceiveLoop {
    layer: ChannelsRedis,
    host: usize,
    node: NodeId,
    queue_key: Arc<str>,
    options: ReceiverOptions,
    events: mpsc::Sender<ReceiverEvent>,
    shutdown: CancellationToken,
    stats: Arc<ReceiverStats>,
}

/// Why the inner loop stopped.
enum Stop {
    /// Shutdown, or nobody listens any more.
    Done,
    /// The connection is unusable: reconnect.
    Lost(RedisError),
}

/// Connection-level failures mean reconnecting; a server error reply (e.g. `LOADING` right after
/// a restart, `WRONGTYPE`) does not.
fn is_connection_error(e: &RedisError) -> bool {
    !matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

impl ReceiveLoop {
    async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut outage: bool = false;
        loop {
            let connected = tokio::select! {
                () = self.shutdown.cancelled() => return,
                c = self.connect() => c,
            };
            let error = match connected {
                Ok(mut conn) => {
                    if outage {
                        outage = false;
                        tracing::info!("channels_redis host #{} is back", self.host);
                        if !self
                            .emit(ReceiverEvent::Reconnected { host: self.host })
                            .await
                        {
                            return;
                        }
                    }
                    backoff = MIN_BACKOFF;
                    match self.drain(&mut conn).await {
                        Stop::Done => return,
                        Stop::Lost(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !outage {
                outage = true;
                tracing::warn!(
                    "channels_redis host #{} ({}): receive connection lost: {error}; retrying",
                    self.host,
                    self.layer.inner.shards[self.host].url
                );
                let event = ReceiverEvent::Disconnected {
                    host: self.host,
                    error: error.to_string(),
                };
                if !self.emit(event).await {
                    return;
                }
            }
            if !self.sleep(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        // A response timeout longer than the blocking pop: never cuts a pop short, but a silently
        // dead TCP connection is noticed instead of stalling forever.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.pop_timeout_secs() + COMMAND_TIMEOUT));
        // Behind sentinels every (re)connection asks them where the master is now.
        self.layer.refresh_master(self.host).await;
        let client = self.layer.conn(self.host).client.clone();
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    fn pop_timeout_secs(&self) -> Duration {
        Duration::from_secs(self.options.pop_timeout.as_secs().max(1))
    }

    /// Pops until shutdown or a connection failure.
    async fn drain(&self, conn: &mut MultiplexedConnection) -> Stop {
        let mut server_backoff = MIN_BACKOFF;
        let batch = self.options.batch.max(1);
        // Built once: every pop sends the same command.
        let mut bzpopmin = redis::cmd("BZPOPMIN");
        bzpopmin
            .arg(&*self.queue_key)
            .arg(self.pop_timeout_secs().as_secs());
        let mut zpopmin = redis::cmd("ZPOPMIN");
        zpopmin.arg(&*self.queue_key).arg(batch);
        loop {
            let popped = tokio::select! {
                () = self.shutdown.cancelled() => return Stop::Done,
                r = bzpopmin.query_async::<redis::Value>(conn) => r,
            };
            let mut members = match popped {
                Ok(reply) => popped_members(reply),
                // A master turned replica unblocks its pops (UNBLOCKED) and refuses writes.
                Err(e) if is_connection_error(&e) || needs_new_master(&e) => {
                    return Stop::Lost(e);
                }
                Err(e) => {
                    tracing::error!(
                        "channels_redis BZPOPMIN {} on host #{}: {e}",
                        self.queue_key,
                        self.host
                    );
                    if !self.sleep(server_backoff).await {
                        return Stop::Done;
                    }
                    server_backoff = (server_backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            server_backoff = MIN_BACKOFF;
            // Then whatever else is queued, without blocking, a batch per round trip, until a
            // short batch says the queue is empty.
            let mut blocking = true;
            while !members.is_empty() {
                let short = !blocking && members.len() < batch;
                blocking = false;
                for member in members.drain(..) {
                    if !self.deliver(&member).await {
                        return Stop::Done;
                    }
                }
                if short {
                    break;
                }
                let popped = tokio::select! {
                    () = self.shutdown.cancelled() => return Stop::Done,
                    r = zpopmin.query_async::<redis::Value>(conn) => r,
                };
                members = match popped {
                    Ok(reply) => popped_members(reply),
                    Err(e) if is_connection_error(&e) || needs_new_master(&e) => {
                        return Stop::Lost(e);
                    }
                    Err(e) => {
                        tracing::error!(
                            "channels_redis ZPOPMIN {} on host #{}: {e}",
                            self.queue_key,
                            self.host
                        );
                        Vec::new()
                    }
                };
            }
        }
    }

    /// Decodes one member and hands it on; `false` when the loop must end.
    async fn deliver(&self, member: &[u8]) -> bool {
        let decoded = match self.layer.inner.codec.decode(member) {
            Ok(Decoded {
                targets: Some(targets),
                message,
            }) => (targets, message),
            Ok(Decoded { targets: None, .. }) => {
                // Python would park it in a buffer nobody reads (channels_redis.md §1.6).
                return self.drop_member(&WireError::NoTarget);
            }
            Err(e) => return self.drop_member(&e),
        };
        let (targets, message) = decoded;
        let mut mine: Vec<String> = targets
            .into_vec()
            .into_iter()
            .filter(|channel| {
                let ours = self.node.local_part(channel).is_some();
                if !ours {
                    tracing::warn!(
                        "dropping a message for {channel:?}, not a channel of this node"
                    );
                }
                ours
            })
            .collect();
        let Some(last) = mine.pop() else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        for channel in mine {
            let event = ReceiverEvent::Message {
                channel,
                message: message.clone(),
            };
            if !self.emit(event).await {
                return false;
            }
        }
        self.emit(ReceiverEvent::Message {
            channel: last,
            message,
        })
        .await
    }

    fn drop_member(&self, error: &WireError) -> bool {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "dropping an unreadable message from {} on host #{}: {error}",
            self.queue_key,
            self.host
        );
        true
    }

    /// Sends an event unless shut down or nobody listens; `false` then.
    async fn emit(&self, event: ReceiverEvent) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            sent = self.events.send(event) => sent.is_ok(),
        }
    }

    /// Sleeps unless shut down first; `false` then.
    async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(duration) => true,
        }
    }
}

/// Members out of a `BZPOPMIN` reply (`[key, member, score]` or nil) or a `ZPOPMIN key count`
/// reply (RESP2 flat `[member, score, …]`, RESP3 `[[member, score], …]`).
fn popped_members(reply: redis::Value) -> Vec<Vec<u8>> {
    let redis::Value::Array(items) = reply else {
        return Vec::new();
    };
    // BZPOPMIN: exactly [key, member, score] with a bulk key; ZPOPMIN replies have an even length
    // (flat) or contain arrays (RESP3), so three plain items can only be BZPOPMIN.
    if items.len() == 3 && !matches!(items[0], redis::Value::Array(_)) {
        return match items.into_iter().nth(1) {
            Some(redis::Value::BulkString(member)) => vec![member],
            _ => Vec::new(),
        };
    }
    let mut members = Vec::with_capacity(items.len() / 2 + 1);
    let mut flat_member_next = true;
    for item in items {
        match item {
            redis::Value::Array(pair) => {
                if let Some(redis::Value::BulkString(member)) = pair.into_iter().next() {
                    members.push(member);
                }
            }
            redis::Value::BulkString(member) if flat_member_next => {
                members.push(member);
                flat_member_next = false;
            }
            _ => flat_member_next = true,
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as R;

    fn bulk(s: &[u8]) -> R {
        R::BulkString(s.to_vec())
    }

    #[test]
    fn bzpopmin_reply() {
        let reply = R::Array(vec![bulk(b"asgispecific.x!"), bulk(b"m1"), bulk(b"1.5")]);
        assert_eq!(popped_members(reply), vec![b"m1".to_vec()]);
        assert!(popped_members(R::Nil).is_empty());
    }

    #[test]
    fn zpopmin_replies_resp2_and_resp3() {
        let flat = R::Array(vec![bulk(b"m1"), bulk(b"1.5"), bulk(b"m2"), bulk(b"2.5")]);
        assert_eq!(popped_members(flat), vec![b"m1".to_vec(), b"m2".to_vec()]);
        let nested = R::Array(vec![
            R::Array(vec![bulk(b"m1"), R::Double(1.5)]),
            R::Array(vec![bulk(b"m2"), R::Double(2.5)]),
            R::Array(vec![bulk(b"m3"), R::Double(3.5)]),
        ]);
        assert_eq!(popped_members(nested).len(), 3);
        assert!(popped_members(R::Array(vec![])).is_empty());
    }
}
