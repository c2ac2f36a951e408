//! What `ferrochat.v1` sockets get besides messages (docs/protocol.md): presence (who is in a
//! room, across the cluster), `join`/`leave`, `typing` and `delete` events.
//!
//! Every socket of this node, legacy or v1, counts in its room's presence while its
//! [`PresenceGuard`] lives; v1 sockets also hold a [`Subscription`] to the room's events. Events
//! are serialized once per node and shared by the room's v1 sockets; legacy sockets never see
//! them, and nothing here touches the channels_redis group. With one node everything happens in
//! memory; with Redis, [`cluster`] keeps this node's presence under ferrochat's own keys and
//! carries the events between ferrochat nodes on a ferrochat-only pub/sub channel.

pub mod cluster;
pub mod frames;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::django::room_name::RoomName;

use super::hub::Lagged;
pub use frames::RoomEvent;

/// How often one user's `typing` is relayed per room, at most.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// Events a v1 socket may not have taken yet; beyond it the socket is too slow (1008).
const EVENT_QUEUE: usize = 1024;

/// `FERROCHAT_CATCHUP_WINDOW`, `FERROCHAT_CATCHUP_MAX`, `FERROCHAT_PRESENCE_TTL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// Messages saved this long before the client's `after` message are replayed again.
    pub catchup_window: Duration,
    /// The most messages a catch-up replays.
    pub catchup_max: usize,
    /// How long a node's presence lives in Redis without a refresh.
    pub presence_ttl: Duration,
}

impl Default for LiveSettings {
    fn default() -> LiveSettings {
        LiveSettings {
            catchup_window: Duration::from_secs(10),
            catchup_max: 1000,
            presence_ttl: Duration::from_secs(30),
        }
    }
}

/// One event as the room's v1 sockets take it: the frame, and whose sockets skip it (the user
/// it is about).
#[derive(Debug, Clone)]
struct Outgoing {
    frame: Utf8Bytes,
    except: Option<Arc<str>>,
}

#[derive(Default)]
struct LocalRoom {
    /// Created with the room's first v1 subscription.
    events: Option<broadcast::Sender<Outgoing>>,
    /// Sockets per username on this node.
    users: HashMap<String, usize>,
}

impl LocalRoom {
    /// Hands a frame to the room's v1 sockets on this node (none listening: nothing to do).
    fn send(&self, frame: String, except: Option<Arc<str>>) {
        if let Some(tx) = self.events.as_ref().filter(|tx| tx.receiver_count() > 0) {
            let _ = tx.send(Outgoing {
                frame: Utf8Bytes::from(frame),
                except,
            });
        }
    }

    fn is_unused(&self) -> bool {
        self.users.is_empty()
            && self
                .events
                .as_ref()
                .is_none_or(|tx| tx.receiver_count() == 0)
    }
}

/// This node's presence and v1 event fan-out.
pub struct Live {
    settings: LiveSettings,
    rooms: Mutex<HashMap<RoomName, LocalRoom>>,
    /// When each (room, user) last had a `typing` relayed from this node.
    typing: Mutex<HashMap<(RoomName, String), Instant>>,
    /// `None`: one node, everything in memory.
    cluster: Option<cluster::Handle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a few map updates with nothing that can panic halfway.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// One node: presence and events in memory.
    pub fn in_memory(settings: LiveSettings) -> Arc<Live> {
        Arc::new(Live {
            settings,
            rooms: Mutex::default(),
            typing: Mutex::default(),
            cluster: None,
        })
    }

    /// Presence and events shared with the other ferrochat nodes through Redis (the first host
    /// of `redis`); connects and reconnects in the background.
    pub fn clustered(settings: LiveSettings, redis: cluster::ClusterConfig) -> Arc<Live> {
        let (handle, tasks) = cluster::Handle::new(redis, settings.presence_ttl);
        let live = Arc::new(Live {
            settings,
            rooms: Mutex::default(),
            typing: Mutex::default(),
            cluster: Some(handle),
        });
        tasks.spawn(&live);
        live
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Counts a socket of `username` in `room` until the guard drops.
    pub fn enter(self: &Arc<Self>, room: &RoomName, username: &str) -> PresenceGuard {
        {
            let mut rooms = lock(&self.rooms);
            let local = rooms.entry(room.clone()).or_default();
            let count = local.users.entry(username.to_owned()).or_insert(0);
            *count += 1;
            if *count == 1 {
                // Under the lock: a join and a leave of one user are told in their order.
                self.presence_changed(local, RoomEvent::Join(username.to_owned()));
            }
        }
        PresenceGuard {
            live: Arc::clone(self),
            room: room.clone(),
            username: username.to_owned(),
        }
    }

    fn exit(&self, room: &RoomName, username: &str) {
        let mut rooms = lock(&self.rooms);
        let Some(local) = rooms.get_mut(room) else {
            return;
        };
        match local.users.get_mut(username) {
            Some(count) if *count > 1 => *count -= 1,
            Some(_) => {
                local.users.remove(username);
                self.presence_changed(local, RoomEvent::Leave(username.to_owned()));
            }
            None => {}
        }
        if local.is_unused() {
            rooms.remove(room);
        }
    }

    /// A user's first socket on this node appeared or its last one went: one node tells its
    /// sockets at once; a cluster decides in Redis whether it is the first/last anywhere.
    fn presence_changed(&self, local: &LocalRoom, event: RoomEvent) {
        match &self.cluster {
            None => local.send(event.to_frame(), event.username().map(Arc::from)),
            Some(cluster) => cluster.wake(),
        }
    }

    /// The room's events for a v1 socket of `username`, from now on (subscribe before reading
    /// the snapshot or the database: nothing in between is missed).
    pub fn subscribe(self: &Arc<Self>, room: &RoomName, username: &str) -> Subscription {
        let rx = {
            let mut rooms = lock(&self.rooms);
            let local = rooms.entry(room.clone()).or_default();
            local
                .events
                .get_or_insert_with(|| broadcast::channel(EVENT_QUEUE).0)
                .subscribe()
        };
        Subscription {
            live: Arc::clone(self),
            room: room.clone(),
            username: username.into(),
            rx: Some(rx),
        }
    }

    fn unsubscribed(&self, room: &RoomName) {
        let mut rooms = lock(&self.rooms);
        if rooms.get(room).is_some_and(LocalRoom::is_unused) {
            rooms.remove(room);
        }
    }

    /// Hands `event` to this node's v1 sockets in `room`, except those of the user it is about:
    /// a socket is in the room while it is open, so its own user's join, leave or typing would
    /// tell it nothing (and in a cluster its own join arrives after its `presence`).
    fn deliver(&self, room: &RoomName, event: &RoomEvent) {
        let except = event.username().map(Arc::from);
        self.deliver_frame(room, event.to_frame(), except);
    }

    fn deliver_frame(&self, room: &RoomName, frame: String, except: Option<Arc<str>>) {
        if let Some(local) = lock(&self.rooms).get(room) {
            local.send(frame, except);
        }
    }

    /// The usernames in `room` across the cluster, sorted, each once. This node's own are
    /// always in it; the other nodes' only while Redis answers.
    pub fn snapshot<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut users: HashSet<String> = lock(&self.rooms)
                .get(room)
                .map(|r| r.users.keys().cloned().collect())
                .unwrap_or_default();
            if let Some(cluster) = &self.cluster {
                users.extend(cluster.users(room).await);
            }
            let mut users: Vec<String> = users.into_iter().collect();
            users.sort();
            users
        })
    }

    /// `username` is typing in `room`: relayed to the room's other users' v1 sockets, at most
    /// once per [`TYPING_EVERY`] (this node drops the rest; with Redis, so does the cluster).
    pub fn typing(&self, room: &RoomName, username: &str) {
        let now = Instant::now();
        {
            let mut typing = lock(&self.typing);
            let key = (room.clone(), username.to_owned());
            if typing
                .get(&key)
                .is_some_and(|last| now.duration_since(*last) < TYPING_EVERY)
            {
                return;
            }
            if typing.len() >= 4096 {
                typing.retain(|_, last| now.duration_since(*last) < TYPING_EVERY);
            }
            typing.insert(key, now);
        }
        let event = RoomEvent::Typing(username.to_owned());
        match &self.cluster {
            None => self.deliver(room, &event),
            Some(cluster) => cluster.publish(room.clone(), vec![event]),
        }
    }

    /// Messages were deleted (in the admin): every v1 socket of their rooms drops them.
    pub fn deleted(&self, messages: &[(i64, RoomName)]) {
        let mut by_room: HashMap<&RoomName, Vec<RoomEvent>> = HashMap::new();
        for (id, room) in messages {
            by_room
                .entry(room)
                .or_default()
                .push(RoomEvent::Delete(*id));
        }
        for (room, events) in by_room {
            match &self.cluster {
                None => {
                    for event in &events {
                        self.deliver(room, event);
                    }
                }
                Some(cluster) => cluster.publish(room.clone(), events),
            }
        }
    }

    /// Every (room, username) with a socket on this node now.
    fn local_entries(&self) -> HashSet<(RoomName, String)> {
        lock(&self.rooms)
            .iter()
            .flat_map(|(room, local)| local.users.keys().map(|u| (room.clone(), u.clone())))
            .collect()
    }

    /// Rooms where some v1 socket of this node listens.
    fn subscribed_rooms(&self) -> Vec<RoomName> {
        lock(&self.rooms)
            .iter()
            .filter(|(_, r)| r.events.as_ref().is_some_and(|tx| tx.receiver_count() > 0))
            .map(|(room, _)| room.clone())
            .collect()
    }

    /// Server shutdown, after every socket closed: this node's presence leaves Redis now
    /// rather than at the TTL.
    pub fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(cluster) = &self.cluster {
                cluster.shutdown().await;
            }
        })
    }
}

/// One socket counted in its room's presence.
pub struct PresenceGuard {
    live: Arc<Live>,
    room: RoomName,
    username: String,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.live.exit(&self.room, &self.username);
    }
}

/// A v1 socket's feed of its room's events.
pub struct Subscription {
    live: Arc<Live>,
    room: RoomName,
    username: Arc<str>,
    /// Always `Some` until dropped (taken first so the room sees the receiver gone).
    rx: Option<broadcast::Receiver<Outgoing>>,
}

impl Subscription {
    /// The next frame for this socket (events about its own user are skipped).
    /// Cancel-safe. `Err` when the socket fell [`EVENT_QUEUE`] events behind.
    pub async fn next(&mut self) -> Result<Utf8Bytes, Lagged> {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Ok(out) if out.except.as_deref() == Some(&*self.username) => {}
                Ok(out) => return Ok(out.frame),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(Lagged(n)),
                // The sender lives as long as the room has a subscriber (this one).
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        self.live.unsubscribed(&self.room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("valid")
    }

    async fn next(sub: &mut Subscription) -> String {
        tokio::time::timeout(Duration::from_secs(1), sub.next())
            .await
            .expect("a frame in time")
            .expect("not lagged")
            .as_str()
            .to_owned()
    }

    fn nothing_waits(sub: &mut Subscription) -> bool {
        sub.rx.as_mut().expect("subscribed").is_empty()
    }

    #[tokio::test]
    async fn one_node_tells_first_joins_and_last_leaves_only() {
        let live = Live::in_memory(LiveSettings::default());
        let lobby = room("lobby");
        let mut watcher = live.subscribe(&lobby, "w");
        let ann1 = live.enter(&lobby, "ann");
        assert_eq!(
            next(&mut watcher).await,
            r#"{"type": "join", "username": "ann"}"#
        );
        let ann2 = live.enter(&lobby, "ann");
        let _bob = live.enter(&room("other"), "bob");
        assert!(nothing_waits(&mut watcher), "a second socket is no join");
        assert_eq!(live.snapshot(&lobby).await, ["ann"]);
        drop(ann1);
        assert!(nothing_waits(&mut watcher), "one socket is left");
        drop(ann2);
        assert_eq!(
            next(&mut watcher).await,
            r#"{"type": "leave", "username": "ann"}"#
        );
        assert!(live.snapshot(&lobby).await.is_empty());
    }

    #[tokio::test]
    async fn typing_skips_the_typer_and_is_throttled() {
        let live = Live::in_memory(LiveSettings::default());
        let lobby = room("lobby");
        let mut ann = live.subscribe(&lobby, "ann");
        let mut bob = live.subscribe(&lobby, "bob");
        live.typing(&lobby, "ann");
        live.typing(&lobby, "ann");
        assert_eq!(
            next(&mut bob).await,
            r#"{"type": "typing", "username": "ann"}"#
        );
        assert!(nothing_waits(&mut bob), "throttled");
        live.deleted(&[(5, lobby.clone())]);
        assert_eq!(next(&mut ann).await, r#"{"type": "delete", "id": 5}"#);
    }

    #[tokio::test]
    async fn an_unused_room_is_forgotten() {
        let live = Live::in_memory(LiveSettings::default());
        let lobby = room("lobby");
        let sub = live.subscribe(&lobby, "ann");
        let guard = live.enter(&lobby, "ann");
        drop(guard);
        assert_eq!(lock(&live.rooms).len(), 1);
        drop(sub);
        assert!(lock(&live.rooms).is_empty());
    }
}
