//! The Redis channel layer: ferrochat nodes and Daphne nodes share rooms through one
//! `channels_redis` 4.x Redis (COMPAT §7, `shared/reference/channels_redis.md` §4).
//!
//! Design:
//! - **One channel per process per room**, `specific.<node-id>!<room>`, all queued at
//!   `{prefix}specific.<node-id>!`. A Django `group_send` then costs one Redis write per ferrochat
//!   node; the hub fans out to the local sockets with one serialized frame.
//! - **Memberships** follow the hub: `group_add("chat_<room>")` when the first local socket joins
//!   (the handshake waits for it, as the legacy consumer's `group_add` precedes `accept()`),
//!   `group_discard` when the last one leaves and at shutdown, refreshed every
//!   `group_expiry / 4` (at most hourly), re-added after Redis comes back. One task owns them all,
//!   so an opening and a closing of the same room can never be applied out of order.
//! - **Own messages** are delivered to this node's sockets directly, then sent to every *other*
//!   member of the group (the group-send Lua, leaving out this node's own queue). So a local
//!   socket gets a local message exactly once and at once, whatever Redis does, and a Redis
//!   outage or restart can never deliver it twice.
//! - **Faults**: while Redis cannot be reached at startup, a background task retries (a warning
//!   per attempt) and the node serves its own sockets; the same holds during an outage later.
//!   `status()` says so (`/healthz`). Nothing panics and no task stalls silently: every lost
//!   connection, retry and recovery is logged with its cause.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rand::RngExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::channels_redis::{
    ChannelName, ChannelsRedis, ChannelsRedisConfig, GroupName, NodeId, ReceiverEvent,
    ReceiverOptions, wire,
};
use super::hub::{Hub, RoomChange};
use super::{ChannelLayer, LayerError, LayerKind, LayerStatus};
use crate::django::chat_json::ChatEvent;
use crate::django::room_name::RoomName;
use crate::ops::metrics::metrics;

/// Longest wait for one connection attempt at startup (all hosts).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Delays between connection attempts at startup.
const CONNECT_BACKOFF: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(5),
];
/// Longest wait for one membership command or one broadcast: a socket's sender waits for its
/// broadcast, so a Redis that stopped answering must not hold it up for long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a new room's first socket waits for the membership before its handshake completes.
const JOIN_WAIT: Duration = Duration::from_secs(3);
/// How soon failed membership work is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Refresh memberships at least this often, whatever the group expiry (channels_redis.md §4(c)).
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Longest the layer's shutdown (leaving every group) may take.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Bound of the queue between the Redis receive loops and the hub.
const EVENT_QUEUE: usize = 1024;

/// The default node id of a server listening on `addr`: a hash of the host name and the
/// address, so it is the same after a restart, differs between processes of one host (they
/// cannot listen on the same address) and between hosts, and is 18 characters long.
pub fn default_node_id(addr: &SocketAddr) -> NodeId {
    node_id_for(&addr.to_string())
}

/// The default node id of a server listening on `place` (an address, `unix:/path`).
pub fn node_id_for(place: &str) -> NodeId {
    NodeId::derive(&format!("{}|{place}", host_name()))
}

/// A node id for a server with no stable address (tests, port 0): random, so two such servers
/// never share a queue.
pub fn random_node_id() -> NodeId {
    let mut bytes = [0u8; 8];
    rand::rng().fill(&mut bytes[..]);
    NodeId::derive(&hex::encode(bytes))
}

/// `uname -n` (Linux), else `$HOSTNAME`, else `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What the tasks of one layer share.
struct Shared {
    config: ChannelsRedisConfig,
    node: NodeId,
    /// `specific.<node-id>!`: this node's queue, left out of its own broadcasts.
    own_queue: String,
    /// Set once the first connection succeeded.
    client: OnceLock<ChannelsRedis>,
    /// Why the last connection attempt at startup failed (until one succeeds).
    connect_error: Mutex<Option<String>>,
    /// Hosts whose receive connection is down, with the cause.
    down: Mutex<BTreeMap<usize, String>>,
    /// Rooms whose membership Redis holds now (as far as this node knows).
    registered: Mutex<HashSet<RoomName>>,
    /// Woken whenever `registered` or `down` changes (handshakes wait on it).
    changed: Notify,
    /// Memberships still to be (re-)registered: the node is not fully in the cluster yet.
    resync_pending: AtomicBool,
    /// Messages sent on this node that only reached its own sockets during the current outage.
    local_only: AtomicU64,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single insert/remove/read: a panic elsewhere cannot leave the
    // data half-updated, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn connected(&self) -> Option<&ChannelsRedis> {
        self.client.get()
    }

    fn is_down(&self, host: usize) -> bool {
        lock(&self.down).contains_key(&host)
    }

    fn any_down(&self) -> bool {
        !lock(&self.down).is_empty()
    }

    fn group(room: &RoomName) -> Result<GroupName, LayerError> {
        GroupName::parse(&room.group()).map_err(|e| LayerError::Config(e.to_string()))
    }

    fn channel(&self, room: &RoomName) -> Result<ChannelName, LayerError> {
        self.node
            .channel(room.as_str())
            .map_err(|e| LayerError::Config(e.to_string()))
    }
}

/// Requests to the membership task besides the hub's room changes.
#[derive(Debug)]
enum Control {
    /// (Re-)register every local room: connected for the first time, or a host is back.
    Resync,
    /// A message arrived for a room with no local socket: a membership left behind (by a
    /// crashed process with this node id); remove it unless the room is open again.
    Stray(RoomName),
}

pub struct RedisLayer {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RedisLayer {
    /// Starts the layer; returns at once. Connecting (with retries), receiving and membership
    /// upkeep run in the background; until Redis answers, messages reach this node's sockets.
    pub fn start(
        config: ChannelsRedisConfig,
        node: NodeId,
        hub: Arc<Hub>,
        changes: mpsc::UnboundedReceiver<RoomChange>,
    ) -> RedisLayer {
        tracing::info!(
            node = %node,
            hosts = ?(0..config.hosts.len()).map(|i| config.redacted_host(i)).collect::<Vec<_>>(),
            prefix = %config.prefix,
            encrypted = !config.symmetric_encryption_keys.is_empty(),
            "channel layer: channels_redis, this node's channels are specific.{node}!<room>"
        );
        let shared = Arc::new(Shared {
            own_queue: node.non_local_name(),
            config,
            node,
            client: OnceLock::new(),
            connect_error: Mutex::new(None),
            down: Mutex::new(BTreeMap::new()),
            registered: Mutex::new(HashSet::new()),
            changed: Notify::new(),
            resync_pending: AtomicBool::new(true),
            local_only: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let memberships = Memberships {
            shared: shared.clone(),
            hub: hub.clone(),
            pending_discards: HashSet::new(),
            resync: true,
            strays: HashSet::new(),
        };
        let tasks = vec![
            tokio::spawn(memberships.run(changes, control_rx)),
            tokio::spawn(connect_and_receive(shared.clone(), hub.clone(), control)),
            tokio::spawn(disconnect_listener(shared.clone(), hub.clone())),
        ];
        RedisLayer {
            hub,
            shared,
            tasks: Mutex::new(tasks),
        }
    }

    /// Sends to every other member of the room's group (Daphne processes, other ferrochat
    /// nodes), leaving out this node, which has delivered the message itself.
    async fn broadcast(
        &self,
        client: &ChannelsRedis,
        room: &RoomName,
        event: &ChatEvent,
    ) -> Result<(), LayerError> {
        let group = Shared::group(room)?;
        let value = wire::event_to_value(event);
        let sent = bounded(client.group_send_except(&group, &value, Some(&self.shared.own_queue)))
            .await
            .map(drop)
            .map_err(LayerError::NotBroadcast);
        let m = metrics();
        match sent {
            Ok(()) => m.channel_layer_sent.inc(),
            Err(_) => m.channel_layer_errors.inc(),
        };
        sent
    }
}

impl ChannelLayer for RedisLayer {
    fn kind(&self) -> LayerKind {
        LayerKind::Redis
    }

    fn status(&self) -> LayerStatus {
        let shared = &self.shared;
        if shared.connected().is_none() {
            return match lock(&shared.connect_error).clone() {
                Some(cause) => LayerStatus::Unreachable(cause),
                None => LayerStatus::Connecting,
            };
        }
        let down = lock(&shared.down);
        if !down.is_empty() {
            let causes: Vec<String> = down
                .iter()
                .map(|(host, cause)| {
                    format!(
                        "host #{host} ({}): {cause}",
                        shared.config.redacted_host(*host)
                    )
                })
                .collect();
            return LayerStatus::Unreachable(causes.join("; "));
        }
        if shared.resync_pending.load(Ordering::Relaxed) {
            LayerStatus::Connecting
        } else {
            LayerStatus::Ok
        }
    }

    fn masters(&self) -> Vec<String> {
        self.shared
            .connected()
            .map(|client| client.masters().into_iter().flatten().collect())
            .unwrap_or_default()
    }

    fn joined<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let shared = &self.shared;
            let deadline = Instant::now() + JOIN_WAIT;
            loop {
                let notified = shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // Nothing to wait for while Redis is away: the room works locally meanwhile and
                // is registered when Redis is back.
                if shared.connected().is_none()
                    || shared.any_down()
                    || lock(&shared.registered).contains(room)
                {
                    return;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    tracing::warn!(room = %room, "channel layer: the room's membership is not registered after {JOIN_WAIT:?}; accepting the socket anyway");
                    return;
                }
            }
        })
    }

    fn group_send<'a>(
        &'a self,
        room: &'a RoomName,
        event: &'a ChatEvent,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            // This node's sockets first, with one shared frame: they get it exactly once and at
            // once, whatever happens to Redis.
            self.hub.deliver(room, Utf8Bytes::from(event.to_frame()));
            let shared = &self.shared;
            let Some(client) = shared.connected() else {
                shared.local_only.fetch_add(1, Ordering::Relaxed);
                metrics().channel_layer_errors.inc();
                return Ok(());
            };
            if shared.is_down(client.shard_of(&room.group())) {
                // Reported when the host went away; the count is logged when it is back.
                shared.local_only.fetch_add(1, Ordering::Relaxed);
                metrics().channel_layer_errors.inc();
                return Ok(());
            }
            self.broadcast(client, room, event).await
        })
    }

    fn disconnect_users<'a>(&'a self, user_ids: &'a [i64]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // This node at once, whatever Redis does; the others through the notice (this
            // node gets it too: closing an already closed socket does nothing).
            self.hub.disconnect_users(user_ids);
            let Some(client) = self.shared.connected() else {
                tracing::warn!(
                    ?user_ids,
                    "Redis not connected: sockets on other nodes stay open"
                );
                return;
            };
            let payload = user_ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let channel = disconnect_channel(&self.shared.config.prefix);
            if let Err(e) = bounded(client.publish(&channel, &payload)).await {
                tracing::warn!(error = %e, ?user_ids, "could not ask the other nodes to close the sockets");
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.shutdown.cancel();
            let tasks = std::mem::take(&mut *lock(&self.tasks));
            for mut task in tasks {
                match timeout(SHUTDOWN_WAIT, &mut task).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("channel layer task ended abnormally: {e}"),
                    Err(_) => {
                        tracing::warn!(
                            "channel layer: leaving the groups took over {SHUTDOWN_WAIT:?}; \
                             the rest lapse after the group expiry"
                        );
                        task.abort();
                    }
                }
            }
        })
    }
}

/// `future` with [`COMMAND_TIMEOUT`]; errors as text for the log.
async fn bounded<T, E: std::fmt::Display>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout(COMMAND_TIMEOUT, future).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {COMMAND_TIMEOUT:?}")),
    }
}

/// Connects (retrying until it works or the server stops), then receives until shutdown.
/// The ferrochat-only pub/sub channel of disconnect notices: `<prefix>:ferrochat:disconnect`,
/// beside channels_redis' keys but never one of them (pub/sub channels are not keys).
fn disconnect_channel(prefix: &str) -> String {
    format!("{prefix}:ferrochat:disconnect")
}

/// Closes the local sockets of the users other nodes name on the disconnect channel; resubscribes
/// after a lost connection (a notice sent meanwhile is lost, as the sessions are already dead).
async fn disconnect_listener(shared: Arc<Shared>, hub: Arc<Hub>) {
    use futures_util::StreamExt;
    let channel = disconnect_channel(&shared.config.prefix);
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let Some(client) = shared.connected() else {
                return Err("not connected yet".to_owned());
            };
            let mut pubsub = client
                .first_host_client()
                .get_async_pubsub()
                .await
                .map_err(|e| e.to_string())?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                let ids: Vec<i64> = payload.split(',').filter_map(|i| i.parse().ok()).collect();
                tracing::info!(?ids, "closing the sockets of deactivated users");
                hub.disconnect_users(&ids);
            }
            Err::<(), String>("subscription ended".to_owned())
        };
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            result = attempt => {
                if let Err(cause) = result {
                    tracing::debug!(%cause, "disconnect notices: resubscribing");
                }
            }
        }
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn connect_and_receive(
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    control: mpsc::UnboundedSender<Control>,
) {
    let Some(client) = connect(&shared).await else {
        return;
    };
    // Whatever was queued for this node id while no process had it is stale (its sockets are
    // gone); a restarted node starts clean, as channels_redis.md §4(c) advises.
    if let Err(e) = bounded(client.purge_queue(&shared.node)).await {
        tracing::warn!("channel layer: could not clear this node's stale queue: {e}");
    }
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let receiver = client.spawn_receiver(&shared.node, ReceiverOptions::default(), events_tx);
    let _ = shared.client.set(client);
    *lock(&shared.connect_error) = None;
    shared.changed.notify_waiters();
    let _ = control.send(Control::Resync);
    loop {
        let event = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            event = events.recv() => event,
        };
        let Some(event) = event else {
            tracing::error!("channel layer: the Redis receive loop stopped");
            break;
        };
        match event {
            ReceiverEvent::Message { channel, message } => {
                metrics().channel_layer_received.inc();
                deliver(&shared, &hub, &control, &channel, &message);
            }
            ReceiverEvent::Disconnected { host, error } => {
                metrics().channel_layer_errors.inc();
                let first = {
                    let mut down = lock(&shared.down);
                    let first = down.is_empty();
                    down.insert(host, error.clone());
                    first
                };
                // A restarted Redis has forgotten every membership: nothing counts as registered
                // until the resync after the host is back.
                lock(&shared.registered).clear();
                shared.changed.notify_waiters();
                if first {
                    shared.local_only.store(0, Ordering::Relaxed);
                    tracing::warn!(
                        "channel layer: Redis host #{host} ({}) is unreachable: {error}; until it is \
                         back, messages sent on this node reach only this node's sockets and \
                         messages from other nodes do not arrive",
                        shared.config.redacted_host(host)
                    );
                }
            }
            ReceiverEvent::Reconnected { host } => {
                let all_back = {
                    let mut down = lock(&shared.down);
                    down.remove(&host);
                    down.is_empty()
                };
                if all_back {
                    tracing::info!(
                        "channel layer: Redis is back; re-registering this node's rooms ({} \
                         message(s) sent meanwhile reached only this node's sockets)",
                        shared.local_only.swap(0, Ordering::Relaxed)
                    );
                }
                shared.resync_pending.store(true, Ordering::Relaxed);
                shared.changed.notify_waiters();
                let _ = control.send(Control::Resync);
            }
        }
    }
    receiver.shutdown().await;
}

/// First connection, retried with backoff and a warning per attempt; `None` on shutdown.
async fn connect(shared: &Shared) -> Option<ChannelsRedis> {
    let mut attempt: usize = 0;
    loop {
        attempt += 1;
        let tried = tokio::select! {
            () = shared.shutdown.cancelled() => return None,
            tried = timeout(CONNECT_TIMEOUT, ChannelsRedis::connect(shared.config.clone())) => tried,
        };
        let cause = match tried {
            Ok(Ok(client)) => {
                if attempt > 1 {
                    tracing::info!("channel layer: connected to Redis after {attempt} attempts");
                }
                return Some(client);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
        };
        metrics().channel_layer_errors.inc();
        let delay = CONNECT_BACKOFF[(attempt - 1).min(CONNECT_BACKOFF.len() - 1)];
        tracing::warn!(
            "channel layer: cannot reach Redis (attempt {attempt}): {cause}; retrying in \
             {delay:?}; meanwhile this node serves only its own sockets"
        );
        *lock(&shared.connect_error) = Some(cause);
        tokio::select! {
            () = shared.shutdown.cancelled() => return None,
            () = sleep(delay) => {}
        }
    }
}

/// One message from Redis to the local sockets of its room, serialized once.
fn deliver(
    shared: &Shared,
    hub: &Hub,
    control: &mpsc::UnboundedSender<Control>,
    channel: &str,
    message: &rmpv::Value,
) {
    let Some(room) = shared
        .node
        .local_part(channel)
        .and_then(|local| RoomName::parse(local).ok())
    else {
        tracing::warn!("channel layer: ignoring a message for {channel:?}, not a room channel");
        return;
    };
    let Some(event) = wire::event_from_value(message) else {
        // Only `chat.message` belongs in a `chat_<room>` group (COMPAT §7).
        let kind = match message {
            rmpv::Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("type"))
                .map(|(_, v)| v.to_string()),
            _ => None,
        };
        tracing::warn!(room = %room, "channel layer: ignoring an event that is not a chat.message (type {kind:?})");
        return;
    };
    let frame = Utf8Bytes::from(event.to_frame());
    if hub.deliver(&room, frame) == 0 {
        let _ = control.send(Control::Stray(room));
    }
}

/// The one task that changes this node's memberships.
struct Memberships {
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    /// Rooms closed locally whose `group_discard` failed: retried.
    pending_discards: HashSet<RoomName>,
    /// Some open room may be missing from Redis: re-register all.
    resync: bool,
    /// Left-behind memberships removed since the last refresh.
    strays: HashSet<RoomName>,
}

impl Memberships {
    async fn run(
        mut self,
        mut changes: mpsc::UnboundedReceiver<RoomChange>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let every = Duration::from_secs(self.shared.config.group_expiry / 4)
            .clamp(Duration::from_secs(1), MAX_REFRESH);
        let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A steady clock for retries, so a stream of room changes cannot postpone them.
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let retry_due = self.resync || !self.pending_discards.is_empty();
            tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => break,
                change = changes.recv() => match change {
                    Some(RoomChange::Opened(room)) => self.add(&room).await,
                    Some(RoomChange::Closed(room)) => self.discard(&room).await,
                    // The hub is gone: the server is stopping.
                    None => break,
                },
                Some(request) = control.recv() => match request {
                    Control::Resync => {
                        self.resync = true;
                        self.resync().await;
                    }
                    Control::Stray(room) => {
                        // A busy left-behind room sends a burst before the removal lands.
                        if !self.hub.is_open(&room) && self.strays.insert(room.clone()) {
                            tracing::info!(room = %room, "channel layer: removing a membership left behind by an earlier process with this node id");
                            self.discard(&room).await;
                        }
                    }
                },
                _ = refresh.tick() => {
                    self.strays.clear();
                    self.resync = true;
                    self.resync().await;
                }
                _ = retry.tick(), if retry_due => self.resync().await,
            }
        }
        self.leave_all().await;
    }

    fn ready(&self, room: &RoomName) -> Option<ChannelsRedis> {
        let client = self.shared.connected()?;
        (!self.shared.is_down(client.shard_of(&room.group()))).then(|| client.clone())
    }

    async fn add(&mut self, room: &RoomName) {
        let Some(client) = self.ready(room) else {
            // Registered by the resync once Redis answers.
            self.resync = true;
            return;
        };
        match self.group_add(&client, room).await {
            Ok(()) => {
                lock(&self.shared.registered).insert(room.clone());
                self.shared.changed.notify_waiters();
            }
            Err(e) => {
                tracing::warn!(room = %room, "channel layer: group_add failed: {e}; retrying");
                metrics().channel_layer_errors.inc();
                self.resync = true;
                self.shared.resync_pending.store(true, Ordering::Relaxed);
            }
        }
    }

    async fn discard(&mut self, room: &RoomName) {
        if self.hub.is_open(room) {
            // Reopened since: the Opened that follows keeps the membership.
            return;
        }
        lock(&self.shared.registered).remove(room);
        let Some(client) = self.ready(room) else {
            self.pending_discards.insert(room.clone());
            return;
        };
        match self.group_discard(&client, room).await {
            Ok(()) => {
                self.pending_discards.remove(room);
            }
            Err(e) => {
                tracing::warn!(room = %room, "channel layer: group_discard failed: {e}; retrying");
                metrics().channel_layer_errors.inc();
                self.pending_discards.insert(room.clone());
            }
        }
    }

    /// Registers every open room (also the periodic refresh) and retries failed discards.
    async fn resync(&mut self) {
        if self.shared.connected().is_none() || self.shared.any_down() {
            return;
        }
        self.resync = false;
        let open: HashSet<RoomName> = self.hub.open_rooms().into_iter().collect();
        for room in &open {
            self.add(room).await;
            if self.shared.shutdown.is_cancelled() {
                return;
            }
        }
        let stale: Vec<RoomName> = {
            let registered = lock(&self.shared.registered);
            registered
                .iter()
                .chain(self.pending_discards.iter())
                .filter(|room| !open.contains(*room))
                .cloned()
                .collect()
        };
        for room in stale {
            self.discard(&room).await;
        }
        if !self.resync {
            self.shared.resync_pending.store(false, Ordering::Relaxed);
            self.shared.changed.notify_waiters();
        }
    }

    /// Shutdown: every membership this node may hold goes, then its queue.
    async fn leave_all(&mut self) {
        let Some(client) = self.shared.connected().cloned() else {
            return;
        };
        let mut rooms: HashSet<RoomName> = std::mem::take(&mut *lock(&self.shared.registered));
        rooms.extend(self.pending_discards.drain());
        rooms.extend(self.hub.open_rooms());
        if self.shared.any_down() {
            tracing::warn!(
                "channel layer: Redis is unreachable at shutdown; this node's {} membership(s) \
                 lapse after the group expiry",
                rooms.len()
            );
            return;
        }
        let mut left = 0;
        for room in &rooms {
            match self.group_discard(&client, room).await {
                Ok(()) => left += 1,
                Err(e) => {
                    tracing::warn!(room = %room, "channel layer: group_discard at shutdown failed: {e}; the membership lapses after the group expiry")
                }
            }
        }
        if let Err(e) = bounded(client.purge_queue(&self.shared.node)).await {
            tracing::debug!("channel layer: could not delete this node's queue at shutdown: {e}");
        }
        tracing::info!("channel layer: left {left} room group(s)");
    }

    async fn group_add(&self, client: &ChannelsRedis, room: &RoomName) -> Result<(), String> {
        let group = Shared::group(room).map_err(|e| e.to_string())?;
        let channel = self.shared.channel(room).map_err(|e| e.to_string())?;
        bounded(client.group_add(&group, &channel)).await
    }

    async fn group_discard(&self, client: &ChannelsRedis, room: &RoomName) -> Result<(), String> {
        let group = Shared::group(room).map_err(|e| e.to_string())?;
        let channel = self.shared.channel(room).map_err(|e| e.to_string())?;
        bounded(client.group_discard(&group, &channel)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_node_ids_are_stable_per_address() {
        let a: SocketAddr = "127.0.0.1:8000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:8001".parse().expect("addr");
        assert_eq!(default_node_id(&a), default_node_id(&a));
        assert_ne!(default_node_id(&a), default_node_id(&b));
        assert!(NodeId::parse(default_node_id(&a).as_str()).is_ok());
        assert_ne!(random_node_id(), random_node_id());
    }

    #[test]
    fn events_convert_both_ways_in_the_legacy_key_order() {
        let event = ChatEvent {
            id: 5,
            message: "h\u{e9}".into(),
            username: "ann".into(),
            timestamp: "2026-11-24T04:36:42+00:00".into(),
        };
        let value = wire::event_to_value(&event);
        let keys: Vec<&str> = match &value {
            rmpv::Value::Map(entries) => entries.iter().filter_map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(keys, ["type", "id", "message", "username", "timestamp"]);
        let back = wire::event_from_value(&value);
        assert_eq!(back, Some(event));
    }
}
