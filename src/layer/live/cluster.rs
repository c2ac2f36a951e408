//! Presence and v1 events across ferrochat nodes, in Redis under ferrochat's own keys (never a
//! channels_redis group or queue: Daphne nodes read those and would crash on a new event type).
//!
//! - Each process registers under a random presence id of its own (a restarted process must not
//!   inherit the entries of the one that died): its liveness is a score in
//!   `<p>:ferrochat:presence:nodes` (the time its entries expire: 3/4 of
//!   `FERROCHAT_PRESENCE_TTL` after each refresh), refreshed and swept every quarter of it; `<p>:ferrochat:presence:room:<room>` holds `<id>|<username>` for
//!   each user with a socket in the room on that process.
//! - One task owns this node's entries: it compares what the node has with what it registered
//!   and runs the join/leave scripts for the difference. Each script decides ("the user's first
//!   live entry", "their last") and publishes the event in one atomic step, so events follow the
//!   state in order. The same task sweeps processes whose liveness expired and publishes their
//!   users' leaves; a sweep is claimed with `ZREM`, so one node sends them.
//! - A refresh that finds the node's liveness gone (Redis restarted, or this node was swept
//!   while cut off) registers everything again; after any loss the node's v1 sockets get a fresh
//!   `presence`.
//! - Events travel as JSON on the pub/sub channel `<p>:ferrochat:live`; every node, the
//!   publisher included, hands them to its own v1 sockets when they arrive.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;

use super::frames::{self, RoomEvent};
use super::{Live, TYPING_EVERY, lock};
use crate::django::room_name::RoomName;
use crate::layer::channels_redis::sentinel::{SentinelShard, is_sentinel_entry};
use crate::layer::channels_redis::{ChannelsRedisConfig, RedisUrl};
use crate::layer::redis::random_node_id;

/// Longest wait for one Redis command or script.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How soon failed work is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Longest the shutdown (removing this node's entries) may take.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Where the cluster's presence lives: the channel layer's Redis (its first host) and prefix.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis: ChannelsRedisConfig,
}

/// The key names, all under `<prefix>:ferrochat:`.
struct Keys {
    nodes: String,
    /// `…:presence:`; rooms are `room:<name>`, nodes' room lists `node:<id>`.
    presence: String,
    typing: String,
    channel: String,
}

impl Keys {
    /// Pub/sub channels ignore the database number, so the channel names it: deployments
    /// sharing one Redis server on different databases never hear each other.
    fn new(prefix: &str, db: i64) -> Keys {
        Keys {
            nodes: format!("{prefix}:ferrochat:presence:nodes"),
            presence: format!("{prefix}:ferrochat:presence:"),
            typing: format!("{prefix}:ferrochat:typing:"),
            channel: format!("{prefix}:ferrochat:live:{db}"),
        }
    }

    fn room(&self, room: &RoomName) -> String {
        format!("{}room:{room}", self.presence)
    }

    fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.presence)
    }

    fn typing(&self, room: &RoomName, user: &str) -> String {
        format!("{}{room}:{user}", self.typing)
    }
}

/// One event between nodes (also what the sweep script writes with `cjson`).
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    room: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<i64>,
}

impl Wire {
    fn encode(room: &RoomName, events: &[RoomEvent]) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = Vec::new();
        for event in events {
            match event {
                RoomEvent::Delete(id) => ids.push(*id),
                RoomEvent::Join(user) | RoomEvent::Leave(user) | RoomEvent::Typing(user) => {
                    out.push(Wire {
                        room: room.to_string(),
                        kind: event.kind().to_owned(),
                        username: Some(user.clone()),
                        ids: Vec::new(),
                    });
                }
            }
        }
        // Deletions of one room go together (an admin may delete thousands at once).
        for chunk in ids.chunks(1000) {
            out.push(Wire {
                room: room.to_string(),
                kind: "delete".to_owned(),
                username: None,
                ids: chunk.to_vec(),
            });
        }
        out.iter()
            .filter_map(|w| serde_json::to_string(w).ok())
            .collect()
    }

    fn decode(payload: &str) -> Option<(RoomName, Vec<RoomEvent>)> {
        let wire: Wire = serde_json::from_str(payload).ok()?;
        let room = RoomName::parse(&wire.room).ok()?;
        let user = || wire.username.clone();
        let events = match wire.kind.as_str() {
            "join" => vec![RoomEvent::Join(user()?)],
            "leave" => vec![RoomEvent::Leave(user()?)],
            "typing" => vec![RoomEvent::Typing(user()?)],
            "delete" => wire.ids.iter().map(|id| RoomEvent::Delete(*id)).collect(),
            _ => return None,
        };
        Some((room, events))
    }
}

/// The time on the Redis server in ms (one clock for every node's liveness), and whether a
/// user has an entry of a live node other than `except` among `fields`.
const LUA_HELPERS: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function present(fields, user, nodes, now, except)
  local suffix = '|' .. user
  for _, f in ipairs(fields) do
    if f ~= except and #f > #suffix and string.sub(f, -#suffix) == suffix then
      local s = redis.call('ZSCORE', nodes, string.sub(f, 1, #f - #suffix))
      if s and tonumber(s) > now then return true end
    end
  end
  return false
end
";

/// KEYS: nodes. ARGV: node, how long it lives (ms). 1 when the node was not registered (new, or lost).
const HEARTBEAT_LUA: &str = r"
return redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
";

/// KEYS: room hash, nodes, node's room set. ARGV: node, user, room, channel, payload.
const JOIN_LUA: &str = r"
redis.call('SADD', KEYS[3], ARGV[3])
local field = ARGV[1] .. '|' .. ARGV[2]
if redis.call('HSETNX', KEYS[1], field, '1') == 0 then return 0 end
if present(redis.call('HKEYS', KEYS[1]), ARGV[2], KEYS[2], now_ms(), field) then return 0 end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// KEYS: room hash, nodes. ARGV: node, user, channel, payload.
const LEAVE_LUA: &str = r"
local field = ARGV[1] .. '|' .. ARGV[2]
if redis.call('HDEL', KEYS[1], field) == 0 then return 0 end
if present(redis.call('HKEYS', KEYS[1]), ARGV[2], KEYS[2], now_ms(), field) then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// KEYS: nodes. ARGV: presence key prefix, channel. Removes up to 16 expired nodes' entries
/// (each claimed by its ZREM) and publishes the leaves of users left nowhere; returns how many.
const SWEEP_LUA: &str = r"
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 16)
local left = 0
for _, node in ipairs(dead) do
  redis.call('ZREM', KEYS[1], node)
  local setkey = ARGV[1] .. 'node:' .. node
  local prefix = node .. '|'
  for _, room in ipairs(redis.call('SMEMBERS', setkey)) do
    local key = ARGV[1] .. 'room:' .. room
    local gone = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if string.sub(f, 1, #prefix) == prefix then
        redis.call('HDEL', key, f)
        gone[#gone + 1] = string.sub(f, #prefix + 1)
      end
    end
    if #gone > 0 then
      local rest = redis.call('HKEYS', key)
      for _, user in ipairs(gone) do
        if not present(rest, user, KEYS[1], now, nil) then
          redis.call('PUBLISH', ARGV[2], cjson.encode({room = room, kind = 'leave', username = user}))
          left = left + 1
        end
      end
    end
  end
  redis.call('DEL', setkey)
end
return left
";

/// KEYS: room hash, nodes. The usernames with an entry of a live node (repeats possible).
const USERS_LUA: &str = r"
local now = now_ms()
local out = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local bar = string.find(f, '|', 1, true)
  if bar then
    local s = redis.call('ZSCORE', KEYS[2], string.sub(f, 1, bar - 1))
    if s and tonumber(s) > now then out[#out + 1] = string.sub(f, bar + 1) end
  end
end
return out
";

/// KEYS: typing key. ARGV: channel, payload, throttle ms. Publishes unless throttled.
const TYPING_LUA: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[3])) then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return 1
end
return 0
";

struct Scripts {
    heartbeat: Script,
    join: Script,
    leave: Script,
    sweep: Script,
    users: Script,
    typing: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_helpers = |body: &str| Script::new(&format!("{LUA_HELPERS}{body}"));
        Scripts {
            heartbeat: with_helpers(HEARTBEAT_LUA),
            join: with_helpers(JOIN_LUA),
            leave: with_helpers(LEAVE_LUA),
            sweep: with_helpers(SWEEP_LUA),
            users: with_helpers(USERS_LUA),
            typing: Script::new(TYPING_LUA),
        }
    }
}

struct Shared {
    config: ChannelsRedisConfig,
    keys: Keys,
    /// This process's presence id.
    node: String,
    ttl: Duration,
    scripts: Scripts,
    /// The first host's client (for the subscription) and command connection, once connected.
    conn: Mutex<Option<(Client, ConnectionManager)>>,
    /// This node's entries changed, or a resend is due.
    wake: Notify,
    /// Local v1 sockets may have missed events: send them a fresh `presence`.
    resend: AtomicBool,
    shutdown: CancellationToken,
}

/// Work for the owner task besides reconciling.
enum Request {
    Publish(RoomName, Vec<RoomEvent>),
}

/// What [`Live`] keeps of the cluster.
pub(super) struct Handle {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The tasks, started once the [`Live`] they serve exists.
pub(super) struct Tasks {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedReceiver<Request>,
}

impl Handle {
    pub(super) fn new(config: ClusterConfig, ttl: Duration) -> (Handle, Tasks) {
        let node = random_node_id().as_str().to_owned();
        tracing::info!(presence_id = %node, "presence: shared through Redis");
        let shared = Arc::new(Shared {
            keys: Keys::new(&config.redis.prefix, first_db(&config.redis)),
            config: config.redis,
            node,
            ttl,
            scripts: Scripts::new(),
            conn: Mutex::new(None),
            wake: Notify::new(),
            resend: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = Handle {
            shared: shared.clone(),
            requests: tx,
            tasks: Mutex::new(Vec::new()),
        };
        (
            handle,
            Tasks {
                shared,
                requests: rx,
            },
        )
    }

    /// This node's entries changed: the owner task brings Redis up to date.
    pub(super) fn wake(&self) {
        self.shared.wake.notify_one();
    }

    pub(super) fn publish(&self, room: RoomName, events: Vec<RoomEvent>) {
        let _ = self.requests.send(Request::Publish(room, events));
    }

    /// The users other nodes (and this one) registered in `room`; empty while Redis is away.
    pub(super) async fn users(&self, room: &RoomName) -> Vec<String> {
        let Some(mut conn) = self.shared.connection() else {
            return Vec::new();
        };
        let (scripts, keys) = (&self.shared.scripts, &self.shared.keys);
        match timeout(
            COMMAND_TIMEOUT,
            scripts
                .users
                .key(keys.room(room))
                .key(&keys.nodes)
                .invoke_async::<Vec<String>>(&mut conn),
        )
        .await
        {
            Ok(Ok(users)) => users,
            Ok(Err(e)) => {
                tracing::warn!(room = %room, error = %e, "presence: could not read the room's users");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!(room = %room, "presence: reading the room's users timed out");
                Vec::new()
            }
        }
    }

    pub(super) async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for mut task in tasks {
            if timeout(SHUTDOWN_WAIT, &mut task).await.is_err() {
                tracing::warn!(
                    "presence: leaving Redis took over {SHUTDOWN_WAIT:?}; this node's entries \
                     lapse after FERROCHAT_PRESENCE_TTL"
                );
                task.abort();
            }
        }
    }
}

impl Tasks {
    pub(super) fn spawn(self, live: &Arc<Live>) {
        let Some(handle) = live.cluster.as_ref() else {
            return;
        };
        let owner = Owner {
            shared: self.shared.clone(),
            live: Arc::clone(live),
            synced: HashSet::new(),
            registered: false,
        };
        let listener = tokio::spawn(listen(self.shared.clone(), Arc::clone(live)));
        let owner = tokio::spawn(owner.run(self.requests));
        lock(&handle.tasks).extend([owner, listener]);
    }
}

impl Shared {
    fn connection(&self) -> Option<ConnectionManager> {
        lock(&self.conn).as_ref().map(|(_, c)| c.clone())
    }

    fn client(&self) -> Option<Client> {
        lock(&self.conn).as_ref().map(|(c, _)| c.clone())
    }

    /// The command connection, opened (the sentinels asked for the master first) if needed.
    async fn connect(&self) -> Result<ConnectionManager, String> {
        if let Some(conn) = self.connection() {
            return Ok(conn);
        }
        let host = self
            .config
            .hosts
            .first()
            .ok_or_else(|| "no Redis host".to_owned())?;
        let target = if is_sentinel_entry(host) {
            let group = SentinelShard::parse(host, self.config.sentinel_password.as_deref())
                .map_err(|e| e.to_string())?;
            group.master().await.map_err(|e| e.to_string())?
        } else {
            RedisUrl::parse(host).map_err(|e| e.to_string())?
        };
        let client = target.client().map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = timeout(
            COMMAND_TIMEOUT,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| format!("no answer within {COMMAND_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
        *lock(&self.conn) = Some((client, conn.clone()));
        Ok(conn)
    }

    /// Forgets the connection after a failure: the next attempt opens a new one (and asks the
    /// sentinels again).
    fn disconnect(&self) {
        *lock(&self.conn) = None;
    }
}

/// The database number of the first host (0 for a sentinel entry, whose URL form differs).
fn first_db(config: &ChannelsRedisConfig) -> i64 {
    config
        .hosts
        .first()
        .and_then(|host| RedisUrl::parse(host).ok())
        .map_or(0, |url| url.db())
}

/// `future` with [`COMMAND_TIMEOUT`], errors as text.
async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, String> {
    match timeout(COMMAND_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {COMMAND_TIMEOUT:?}")),
    }
}

/// The one task that changes this node's entries in Redis.
struct Owner {
    shared: Arc<Shared>,
    live: Arc<Live>,
    /// What Redis holds of this node, as far as it knows.
    synced: HashSet<(RoomName, String)>,
    /// The node registered at least once (a later "not registered" means it was lost).
    registered: bool,
}

impl Owner {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        // A node is live for 3/4 of the TTL after each refresh and refreshes every quarter
        // (two refreshes may fail before it counts as dead); sweeping every quarter too, a
        // dead node's users leave within the TTL.
        let every = (self.shared.ttl / 4).max(Duration::from_millis(100));
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        let mut reported = false;
        loop {
            let sweep = tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => break,
                Some(request) = requests.recv() => {
                    match request {
                        Request::Publish(room, events) => self.publish(&room, &events).await,
                    }
                    continue;
                }
                () = self.shared.wake.notified() => false,
                _ = beat.tick() => true,
                () = sleep(RETRY), if failing => true,
            };
            match self.pass(sweep).await {
                Ok(()) => {
                    if reported {
                        tracing::info!(
                            "presence: Redis answers again; this node's presence is registered"
                        );
                    }
                    failing = false;
                    reported = false;
                }
                Err(e) => {
                    self.shared.disconnect();
                    if !reported {
                        tracing::warn!(error = %e, "presence: Redis is unreachable; presence and typing across nodes pause until it is back");
                        reported = true;
                    }
                    failing = true;
                }
            }
        }
        self.leave_all().await;
    }

    /// Refreshes the node, registers what changed, sweeps dead nodes (`sweep`), and sends a
    /// fresh `presence` where one is due.
    async fn pass(&mut self, sweep: bool) -> Result<(), String> {
        let mut conn = self.shared.connect().await?;
        let (shared, keys) = (&self.shared, &self.shared.keys);
        let live_ms = u64::try_from((shared.ttl * 3 / 4).as_millis()).unwrap_or(u64::MAX);
        let added: i64 = bounded(
            shared
                .scripts
                .heartbeat
                .key(&keys.nodes)
                .arg(&shared.node)
                .arg(live_ms)
                .invoke_async(&mut conn),
        )
        .await?;
        if added == 1 && self.registered {
            tracing::warn!(
                "presence: Redis no longer had this node (restarted, or it swept this node while \
                 cut off): registering its {} user(s) again",
                self.synced.len()
            );
            self.synced.clear();
            shared.resend.store(true, Ordering::Relaxed);
        }
        self.registered = true;
        let desired = self.live.local_entries();
        let joins: Vec<_> = desired.difference(&self.synced).cloned().collect();
        for (room, user) in joins {
            let payload = Wire::encode(&room, &[RoomEvent::Join(user.clone())]).concat();
            bounded(
                shared
                    .scripts
                    .join
                    .key(keys.room(&room))
                    .key(&keys.nodes)
                    .key(keys.node(&shared.node))
                    .arg(&shared.node)
                    .arg(&user)
                    .arg(room.as_str())
                    .arg(&keys.channel)
                    .arg(payload)
                    .invoke_async::<i64>(&mut conn),
            )
            .await?;
            self.synced.insert((room, user));
        }
        let leaves: Vec<_> = self.synced.difference(&desired).cloned().collect();
        for (room, user) in leaves {
            self.leave(&mut conn, &room, &user).await?;
            self.synced.remove(&(room, user));
        }
        if sweep {
            let left: i64 = bounded(
                shared
                    .scripts
                    .sweep
                    .key(&keys.nodes)
                    .arg(&keys.presence)
                    .arg(&keys.channel)
                    .invoke_async(&mut conn),
            )
            .await?;
            if left > 0 {
                tracing::info!(
                    left,
                    "presence: swept the users of nodes whose presence expired"
                );
            }
        }
        if shared.resend.swap(false, Ordering::Relaxed) {
            for room in self.live.subscribed_rooms() {
                let users = self.live.snapshot(&room).await;
                self.live
                    .deliver_frame(&room, frames::presence(&users), None);
            }
        }
        Ok(())
    }

    async fn leave(
        &self,
        conn: &mut ConnectionManager,
        room: &RoomName,
        user: &str,
    ) -> Result<(), String> {
        let (shared, keys) = (&self.shared, &self.shared.keys);
        let payload = Wire::encode(room, &[RoomEvent::Leave(user.to_owned())]).concat();
        bounded(
            shared
                .scripts
                .leave
                .key(keys.room(room))
                .key(&keys.nodes)
                .arg(&shared.node)
                .arg(user)
                .arg(&keys.channel)
                .arg(payload)
                .invoke_async::<i64>(conn),
        )
        .await
        .map(drop)
    }

    /// Typing (throttled cluster-wide) and deletions; while Redis is away, this node's own
    /// sockets still get them.
    async fn publish(&mut self, room: &RoomName, events: &[RoomEvent]) {
        let sent = async {
            let mut conn = self.shared.connect().await?;
            let keys = &self.shared.keys;
            for (event, payload) in events.iter().zip(Wire::encode(room, events)) {
                match event {
                    RoomEvent::Typing(user) => {
                        let ms = u64::try_from(TYPING_EVERY.as_millis()).unwrap_or(2000);
                        bounded(
                            self.shared
                                .scripts
                                .typing
                                .key(keys.typing(room, user))
                                .arg(&keys.channel)
                                .arg(payload)
                                .arg(ms)
                                .invoke_async::<i64>(&mut conn),
                        )
                        .await?;
                    }
                    _ => {
                        bounded(
                            redis::cmd("PUBLISH")
                                .arg(&keys.channel)
                                .arg(payload)
                                .query_async::<i64>(&mut conn),
                        )
                        .await?;
                    }
                }
            }
            Ok::<(), String>(())
        };
        if let Err(e) = sent.await {
            tracing::warn!(room = %room, error = %e, "presence: could not tell the other nodes; this node's sockets only");
            self.shared.disconnect();
            for event in events {
                self.live.deliver(room, event);
            }
        }
    }

    /// Shutdown: every entry of this node goes now (with the leaves), then the node.
    async fn leave_all(&mut self) {
        let Ok(mut conn) = self.shared.connect().await else {
            return;
        };
        let entries: Vec<_> = self.synced.drain().collect();
        for (room, user) in &entries {
            if let Err(e) = self.leave(&mut conn, room, user).await {
                tracing::warn!(error = %e, "presence: could not remove this node's entries at shutdown; they lapse after FERROCHAT_PRESENCE_TTL");
                return;
            }
        }
        let keys = &self.shared.keys;
        let _ = bounded(
            redis::pipe()
                .cmd("ZREM")
                .arg(&keys.nodes)
                .arg(&self.shared.node)
                .ignore()
                .cmd("DEL")
                .arg(keys.node(&self.shared.node))
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await;
    }
}

/// Hands the events other nodes (and this one) publish to this node's v1 sockets;
/// resubscribes after a lost connection and then asks for a fresh `presence` (events sent
/// meanwhile are lost).
async fn listen(shared: Arc<Shared>, live: Arc<Live>) {
    let mut backoff = Duration::from_millis(100);
    let mut lost = false;
    loop {
        let attempt = async {
            let Some(client) = shared.client() else {
                return Err::<(), String>("not connected yet".to_owned());
            };
            let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
            pubsub
                .subscribe(&shared.keys.channel)
                .await
                .map_err(|e| e.to_string())?;
            if lost {
                shared.resend.store(true, Ordering::Relaxed);
                shared.wake.notify_one();
            }
            lost = true;
            backoff = Duration::from_millis(100);
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                match Wire::decode(&payload) {
                    Some((room, events)) => {
                        for event in &events {
                            live.deliver(&room, event);
                        }
                    }
                    None => tracing::warn!(%payload, "presence: ignoring an unknown event"),
                }
            }
            Err("subscription ended".to_owned())
        };
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            result = attempt => {
                if let Err(cause) = result {
                    tracing::debug!(%cause, "presence: resubscribing");
                }
            }
        }
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_travel_as_json_and_come_back() {
        let room = RoomName::parse("lobby").expect("room");
        let events = [
            RoomEvent::Join("ann".into()),
            RoomEvent::Typing("bob".into()),
            RoomEvent::Delete(3),
            RoomEvent::Delete(4),
        ];
        let payloads = Wire::encode(&room, &events);
        assert_eq!(payloads.len(), 3, "deletions go together");
        let back: Vec<RoomEvent> = payloads
            .iter()
            .flat_map(|p| Wire::decode(p).expect("decodes").1)
            .collect();
        assert_eq!(back, events);
        // What the sweep script writes with cjson.
        let (r, e) =
            Wire::decode(r#"{"username":"ann","kind":"leave","room":"lobby"}"#).expect("decodes");
        assert_eq!((r, e), (room, vec![RoomEvent::Leave("ann".into())]));
        assert!(Wire::decode(r#"{"room":"lobby","kind":"nope"}"#).is_none());
    }
}
