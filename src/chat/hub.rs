//! The local room hub: every socket of this process that is in a room, and the fan-out to them.
//!
//! One `tokio::sync::broadcast` ring per room holds each frame once (shared `Utf8Bytes`), so a
//! room message costs one serialization and no per-socket copy; a socket that falls a whole ring
//! behind is told it lagged and is disconnected, so a slow reader never slows the room or grows
//! memory. The hub tells the channel layer when a room gains its first local socket or loses its
//! last one, so the layer keeps one membership per process per room, not one per socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::room_name::RoomName;

/// Frames a socket may fall behind before it is disconnected.
pub const DEFAULT_SOCKET_QUEUE: usize = 256;

/// Sent to the channel layer as local rooms open and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    Opened(RoomName),
    Closed(RoomName),
}

struct LocalRoom {
    sender: broadcast::Sender<Utf8Bytes>,
    members: usize,
}

pub struct Hub {
    rooms: Mutex<HashMap<RoomName, LocalRoom>>,
    queue: usize,
    changes: mpsc::UnboundedSender<RoomChange>,
}

impl Hub {
    /// A hub whose room openings/closings go to `changes` (the layer drains it).
    pub fn new(queue: usize) -> (Arc<Hub>, mpsc::UnboundedReceiver<RoomChange>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Hub {
            rooms: Mutex::new(HashMap::new()),
            queue: queue.max(1),
            changes: tx,
        };
        (Arc::new(hub), rx)
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, LocalRoom>> {
        // A panic while holding this lock cannot leave the map inconsistent (every update is a
        // single insert/remove/counter change), so recover from poisoning instead of failing.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket to `room`; the returned membership leaves the room when dropped.
    pub fn join(self: &Arc<Self>, room: &RoomName) -> Membership {
        let mut rooms = self.rooms();
        let entry = rooms.entry(room.clone()).or_insert_with(|| {
            let _ = self.changes.send(RoomChange::Opened(room.clone()));
            LocalRoom {
                sender: broadcast::channel(self.queue).0,
                members: 0,
            }
        });
        entry.members += 1;
        let receiver = entry.sender.subscribe();
        Membership {
            hub: Arc::clone(self),
            room: room.clone(),
            receiver,
        }
    }

    fn leave(&self, room: &RoomName) {
        let mut rooms = self.rooms();
        if let Some(entry) = rooms.get_mut(room) {
            entry.members = entry.members.saturating_sub(1);
            if entry.members == 0 {
                rooms.remove(room);
                let _ = self.changes.send(RoomChange::Closed(room.clone()));
            }
        }
    }

    /// Hands one serialized frame to every local socket in `room`; returns how many it reached.
    pub fn deliver(&self, room: &RoomName, frame: Utf8Bytes) -> usize {
        let sender = match self.rooms().get(room) {
            Some(entry) => entry.sender.clone(),
            None => return 0,
        };
        sender.send(frame).unwrap_or(0)
    }

    /// Whether `room` has at least one local socket now.
    pub fn is_open(&self, room: &RoomName) -> bool {
        self.rooms().contains_key(room)
    }

    /// The rooms with at least one local socket (the layer re-registers these after a reconnect).
    pub fn open_rooms(&self) -> Vec<RoomName> {
        self.rooms().keys().cloned().collect()
    }

    pub fn socket_count(&self) -> usize {
        self.rooms().values().map(|r| r.members).sum()
    }
}

/// One socket's place in a room.
pub struct Membership {
    hub: Arc<Hub>,
    room: RoomName,
    receiver: broadcast::Receiver<Utf8Bytes>,
}

/// What a socket's next outgoing event is.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    Frame(Utf8Bytes),
    /// The socket fell more than the queue behind: disconnect it.
    Lagged(u64),
}

impl Membership {
    pub fn room(&self) -> &RoomName {
        &self.room
    }

    /// The next frame if one is already waiting, without blocking (a closing socket drains its
    /// queue with this before it says goodbye).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        match self.receiver.try_recv() {
            Ok(frame) => Some(Outgoing::Frame(frame)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Outgoing::Lagged(n)),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                None
            }
        }
    }

    /// Waits for the next frame for this socket. Never returns while the room exists, because
    /// the hub holds the sender for as long as any member does.
    pub async fn next(&mut self) -> Outgoing {
        loop {
            match self.receiver.recv().await {
                Ok(frame) => return Outgoing::Frame(frame),
                Err(broadcast::error::RecvError::Lagged(n)) => return Outgoing::Lagged(n),
                // Unreachable while we are a member; wait forever rather than spin.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("valid")
    }

    #[tokio::test]
    async fn fan_out_reaches_every_member_of_the_room_only() {
        let (hub, mut changes) = Hub::new(8);
        let mut a1 = hub.join(&room("a"));
        let mut a2 = hub.join(&room("a"));
        let mut b = hub.join(&room("b"));
        assert_eq!(changes.recv().await, Some(RoomChange::Opened(room("a"))));
        assert_eq!(changes.recv().await, Some(RoomChange::Opened(room("b"))));
        assert_eq!(hub.deliver(&room("a"), "x".into()), 2);
        assert_eq!(a1.next().await, Outgoing::Frame("x".into()));
        assert_eq!(a2.next().await, Outgoing::Frame("x".into()));
        assert_eq!(hub.deliver(&room("b"), "y".into()), 1);
        assert_eq!(b.next().await, Outgoing::Frame("y".into()));
        assert_eq!(hub.deliver(&room("nobody"), "z".into()), 0);
    }

    #[tokio::test]
    async fn last_leave_closes_the_room() {
        let (hub, mut changes) = Hub::new(8);
        let m1 = hub.join(&room("a"));
        let m2 = hub.join(&room("a"));
        assert_eq!(changes.recv().await, Some(RoomChange::Opened(room("a"))));
        drop(m1);
        assert!(changes.try_recv().is_err(), "still one member");
        drop(m2);
        assert_eq!(changes.recv().await, Some(RoomChange::Closed(room("a"))));
        assert_eq!(hub.socket_count(), 0);
        assert!(hub.open_rooms().is_empty());
        assert!(!hub.is_open(&room("a")));
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_it_lagged() {
        let (hub, _changes) = Hub::new(4);
        let mut slow = hub.join(&room("a"));
        for i in 0..10 {
            hub.deliver(&room("a"), i.to_string().into());
        }
        assert!(matches!(slow.next().await, Outgoing::Lagged(6)));
        assert_eq!(slow.try_next(), Some(Outgoing::Frame("6".into())));
    }

    #[tokio::test]
    async fn try_next_does_not_wait() {
        let (hub, _changes) = Hub::new(4);
        let mut m = hub.join(&room("a"));
        assert_eq!(m.try_next(), None);
        hub.deliver(&room("a"), "x".into());
        assert_eq!(m.try_next(), Some(Outgoing::Frame("x".into())));
        assert_eq!(m.try_next(), None);
    }
}
