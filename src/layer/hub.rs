//! The local room hub: every socket of this process that is in a room, and the fan-out to them.
//!
//! Each room keeps one log of the frames its members have not all written yet: a frame is
//! stored once (shared `Utf8Bytes`) however many sockets it goes to, and each member reads the
//! log at its own cursor, taking everything waiting in one go (one lock, one flush per batch).
//! The log holds only what some member still lacks, so an idle room costs a few words and a
//! burst costs what it holds; a member that falls more than the queue limit behind (frames or
//! bytes) is told it lagged and disconnected, so a slow reader never slows the room or grows
//! memory without bound. The hub tells the channel layer when a room gains its first local
//! socket or loses its last one, so the layer keeps one membership per process per room, not
//! one per socket.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::django::room_name::RoomName;
use crate::ops::metrics::metrics;

/// Frames a socket may fall behind its room before it is disconnected.
pub const DEFAULT_SOCKET_QUEUE: usize = 4096;

/// Disconnect requests a socket may not have looked at yet.
const KICK_QUEUE: usize = 1024;

/// Bytes of frames a socket may fall behind its room before it is disconnected, whatever their
/// number: a few large frames must not pin megabytes per slow reader.
pub const MAX_LAG_BYTES: usize = 8 * 1024 * 1024;

/// Sent to the channel layer as local rooms open and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    Opened(RoomName),
    Closed(RoomName),
}

/// One frame in a room's log and how many members have yet to take it.
struct Entry {
    frame: Utf8Bytes,
    unread: u32,
}

/// A member's place in its room's log.
struct Reader {
    /// Absolute position of the next frame it takes.
    cursor: u64,
    /// Set while it waits for a frame.
    waker: Option<Waker>,
}

#[derive(Default)]
struct Log {
    /// Absolute position of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    /// Members by slot; a free slot is `None` (slots are reused).
    readers: Vec<Option<Reader>>,
    members: usize,
}

impl Log {
    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    fn push(&mut self, frame: Utf8Bytes, max_frames: usize) -> usize {
        if self.members == 0 {
            return 0;
        }
        self.bytes += frame.len();
        self.entries.push_back(Entry {
            frame,
            // `members` counts sockets of one process: far below u32::MAX.
            unread: u32::try_from(self.members).unwrap_or(u32::MAX),
        });
        // Past the limit the oldest frames go: whoever had not taken them has lagged and finds
        // out on its next read.
        while self.entries.len() > max_frames || self.bytes > MAX_LAG_BYTES {
            self.pop_front();
        }
        for reader in self.readers.iter_mut().flatten() {
            if let Some(waker) = reader.waker.take() {
                waker.wake();
            }
        }
        self.members
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.frame.len();
            self.base += 1;
        }
    }

    /// Drops the frames every member has taken (and the memory of a burst once it is over).
    fn trim(&mut self) {
        while self.entries.front().is_some_and(|e| e.unread == 0) {
            self.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 64 {
            self.entries = VecDeque::new();
        }
    }

    fn join(&mut self) -> usize {
        let reader = Reader {
            cursor: self.end(),
            waker: None,
        };
        self.members += 1;
        match self.readers.iter().position(Option::is_none) {
            Some(slot) => {
                self.readers[slot] = Some(reader);
                slot
            }
            None => {
                self.readers.push(Some(reader));
                self.readers.len() - 1
            }
        }
    }

    fn leave(&mut self, slot: usize) {
        let Some(reader) = self.readers.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.members -= 1;
        // What it had not taken no longer waits for it.
        let from = usize::try_from(reader.cursor.saturating_sub(self.base)).unwrap_or(usize::MAX);
        for entry in self.entries.iter_mut().skip(from) {
            entry.unread = entry.unread.saturating_sub(1);
        }
        self.trim();
        while self.readers.last().is_some_and(Option::is_none) {
            self.readers.pop();
        }
    }

    /// Wakes `slot` at the next push.
    fn wait(&mut self, slot: usize, waker: &Waker) {
        if let Some(reader) = self.readers.get_mut(slot).and_then(Option::as_mut) {
            match &reader.waker {
                Some(current) if current.will_wake(waker) => {}
                _ => reader.waker = Some(waker.clone()),
            }
        }
    }

    /// Moves up to `max` waiting frames of `slot` into `out`.
    fn take(&mut self, slot: usize, max: usize, out: &mut Vec<Utf8Bytes>) -> Result<usize, Lagged> {
        let base = self.base;
        let Some(reader) = self.readers.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(0);
        };
        if reader.cursor < base {
            return Err(Lagged(base - reader.cursor));
        }
        let from = usize::try_from(reader.cursor - base).unwrap_or(usize::MAX);
        let mut taken = 0;
        for entry in self.entries.iter_mut().skip(from).take(max) {
            entry.unread = entry.unread.saturating_sub(1);
            out.push(entry.frame.clone());
            taken += 1;
        }
        reader.cursor += taken as u64;
        if from == 0 && taken > 0 {
            self.trim();
        }
        Ok(taken)
    }
}

/// A socket fell this many frames behind its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged(pub u64);

struct LocalRoom {
    log: Arc<Mutex<Log>>,
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    // Every update leaves the log consistent before anything can panic (no user code runs
    // under the lock), so recover from poisoning instead of failing.
    log.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Hub {
    rooms: Mutex<HashMap<RoomName, LocalRoom>>,
    queue: usize,
    changes: mpsc::UnboundedSender<RoomChange>,
    /// Users whose sockets must close now (an account deactivated in the admin).
    kicks: broadcast::Sender<i64>,
}

impl Hub {
    /// A hub whose sockets may fall `queue` frames behind, and whose room openings/closings go
    /// to `changes` (the layer drains it).
    pub fn new(queue: usize) -> (Arc<Hub>, mpsc::UnboundedReceiver<RoomChange>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Hub {
            rooms: Mutex::new(HashMap::new()),
            queue: queue.max(1),
            changes: tx,
            kicks: broadcast::channel(KICK_QUEUE).0,
        };
        (Arc::new(hub), rx)
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, LocalRoom>> {
        // A panic while holding this lock cannot leave the map inconsistent (every update is a
        // single insert/remove), so recover from poisoning instead of failing.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket to `room`; the returned membership leaves the room when dropped.
    pub fn join(self: &Arc<Self>, room: &RoomName) -> Membership {
        let mut rooms = self.rooms();
        let entry = rooms.entry(room.clone()).or_insert_with(|| {
            let _ = self.changes.send(RoomChange::Opened(room.clone()));
            LocalRoom {
                log: Arc::default(),
            }
        });
        let log = Arc::clone(&entry.log);
        let slot = lock(&log).join();
        Membership {
            hub: Arc::clone(self),
            room: room.clone(),
            log,
            slot,
        }
    }

    fn leave(&self, room: &RoomName, log: &Mutex<Log>, slot: usize) {
        // Hub lock first, then the room's: the order `join` takes them in.
        let mut rooms = self.rooms();
        let empty = {
            let mut log = lock(log);
            log.leave(slot);
            log.members == 0
        };
        if empty {
            rooms.remove(room);
            let _ = self.changes.send(RoomChange::Closed(room.clone()));
        }
    }

    /// Hands one serialized frame to every local socket in `room`; returns how many it reached.
    pub fn deliver(&self, room: &RoomName, frame: Utf8Bytes) -> usize {
        let log = match self.rooms().get(room) {
            Some(entry) => Arc::clone(&entry.log),
            None => return 0,
        };
        let reached = lock(&log).push(frame, self.queue);
        // Once per fan-out, never per socket.
        metrics().deliveries.inc_by(reached as u64);
        reached
    }

    /// Whether `room` has at least one local socket now.
    pub fn is_open(&self, room: &RoomName) -> bool {
        self.rooms().contains_key(room)
    }

    /// The rooms with at least one local socket (the layer re-registers these after a reconnect).
    pub fn open_rooms(&self) -> Vec<RoomName> {
        self.rooms().keys().cloned().collect()
    }

    /// Rooms with at least one local socket.
    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// Closes every local socket of these users.
    pub fn disconnect_users(&self, user_ids: &[i64]) {
        for id in user_ids {
            // No receiver means no socket is open: nothing to close.
            let _ = self.kicks.send(*id);
        }
    }

    /// Resolves when `user_id`'s sockets must close; pending forever otherwise.
    pub fn kicked(&self, user_id: i64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.kicks.subscribe();
        async move {
            loop {
                match rx.recv().await {
                    Ok(id) if id == user_id => return,
                    Ok(_) => {}
                    // Only a burst of KICK_QUEUE deactivations between two polls gets here.
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "missed socket disconnect requests");
                    }
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        }
    }

    pub fn socket_count(&self) -> usize {
        self.rooms().values().map(|r| lock(&r.log).members).sum()
    }
}

/// One socket's place in a room.
pub struct Membership {
    hub: Arc<Hub>,
    room: RoomName,
    log: Arc<Mutex<Log>>,
    slot: usize,
}

impl Membership {
    /// Resolves when this socket's user must be disconnected ([`Hub::disconnect_users`]).
    pub fn kicked(&self, user_id: i64) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.hub.kicked(user_id)
    }

    pub fn room(&self) -> &RoomName {
        &self.room
    }

    /// Moves up to `max` frames already waiting for this socket into `out`, without blocking;
    /// returns how many.
    pub fn take(&mut self, max: usize, out: &mut Vec<Utf8Bytes>) -> Result<usize, Lagged> {
        lock(&self.log).take(self.slot, max, out)
    }

    /// Waits until at least one frame is waiting for this socket (or it has lagged), then moves
    /// up to `max` of them into `out`. Cancel-safe: nothing is taken unless this returns.
    pub async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<Utf8Bytes>,
    ) -> Result<usize, Lagged> {
        poll_fn(|cx| {
            let mut log = lock(&self.log);
            match log.take(self.slot, max.max(1), out) {
                Ok(0) => {
                    log.wait(self.slot, cx.waker());
                    Poll::Pending
                }
                taken => Poll::Ready(taken),
            }
        })
        .await
    }

    /// Resolves once this socket has fallen more than the queue limit behind (while a slow
    /// write holds it up, the room goes on without it).
    pub async fn lagged(&mut self) -> Lagged {
        poll_fn(|cx| {
            let mut log = lock(&self.log);
            let base = log.base;
            match log.readers.get(self.slot).and_then(Option::as_ref) {
                Some(reader) if reader.cursor < base => Poll::Ready(Lagged(base - reader.cursor)),
                _ => {
                    log.wait(self.slot, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, &self.log, self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("valid")
    }

    fn texts(frames: &[Utf8Bytes]) -> Vec<&str> {
        frames.iter().map(|f| f.as_str()).collect()
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
        let mut got = Vec::new();
        assert_eq!(a1.next_batch(8, &mut got).await, Ok(1));
        assert_eq!(a2.next_batch(8, &mut got).await, Ok(1));
        assert_eq!(texts(&got), ["x", "x"]);
        assert_eq!(hub.deliver(&room("b"), "y".into()), 1);
        got.clear();
        assert_eq!(b.next_batch(8, &mut got).await, Ok(1));
        assert_eq!(texts(&got), ["y"]);
        assert_eq!(hub.deliver(&room("nobody"), "z".into()), 0);
    }

    #[tokio::test]
    async fn a_member_takes_what_waits_in_order_in_batches() {
        let (hub, _changes) = Hub::new(100);
        let mut m = hub.join(&room("a"));
        for i in 0..10 {
            hub.deliver(&room("a"), i.to_string().into());
        }
        let mut got = Vec::new();
        assert_eq!(m.next_batch(4, &mut got).await, Ok(4));
        assert_eq!(m.take(100, &mut got), Ok(6));
        assert_eq!(
            texts(&got),
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        );
        assert_eq!(m.take(100, &mut got), Ok(0));
    }

    #[tokio::test]
    async fn a_member_sees_only_what_was_sent_after_it_joined() {
        let (hub, _changes) = Hub::new(8);
        let mut early = hub.join(&room("a"));
        hub.deliver(&room("a"), "before".into());
        let mut late = hub.join(&room("a"));
        hub.deliver(&room("a"), "after".into());
        let mut got = Vec::new();
        late.take(8, &mut got).expect("not lagged");
        assert_eq!(texts(&got), ["after"]);
        got.clear();
        early.take(8, &mut got).expect("not lagged");
        assert_eq!(texts(&got), ["before", "after"]);
    }

    #[tokio::test]
    async fn frames_are_kept_only_until_every_member_took_them() {
        let (hub, _changes) = Hub::new(8);
        let mut fast = hub.join(&room("a"));
        let mut slow = hub.join(&room("a"));
        for i in 0..3 {
            hub.deliver(&room("a"), i.to_string().into());
        }
        fast.take(8, &mut Vec::new()).expect("not lagged");
        assert_eq!(
            lock(&fast.log).entries.len(),
            3,
            "the slow member still needs them"
        );
        slow.take(2, &mut Vec::new()).expect("not lagged");
        assert_eq!(lock(&fast.log).entries.len(), 1);
        // A member leaving releases what it had not taken.
        drop(slow);
        assert_eq!(lock(&fast.log).entries.len(), 0);
        assert_eq!(lock(&fast.log).bytes, 0);
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_it_lagged_and_the_room_goes_on() {
        let (hub, _changes) = Hub::new(4);
        let mut slow = hub.join(&room("a"));
        let mut fast = hub.join(&room("a"));
        let mut got = Vec::new();
        for i in 0..10 {
            hub.deliver(&room("a"), i.to_string().into());
            fast.take(8, &mut got).expect("keeps up");
        }
        assert_eq!(got.len(), 10);
        assert_eq!(slow.take(8, &mut Vec::new()), Err(Lagged(6)));
        assert_eq!(slow.lagged().await, Lagged(6));
        // It holds at most the queue limit until it goes (its socket is closed with 1008).
        assert_eq!(lock(&fast.log).entries.len(), 4);
        drop(slow);
        assert_eq!(lock(&fast.log).entries.len(), 0);
    }

    #[tokio::test]
    async fn a_waiting_member_is_woken_by_a_delivery() {
        let (hub, _changes) = Hub::new(8);
        let mut m = hub.join(&room("a"));
        let deliver = {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                hub.deliver(&room("a"), "late".into())
            })
        };
        let mut got = Vec::new();
        assert_eq!(m.next_batch(8, &mut got).await, Ok(1));
        assert_eq!(texts(&got), ["late"]);
        assert_eq!(deliver.await.expect("joined"), 1);
    }

    #[tokio::test]
    async fn last_leave_closes_the_room() {
        let (hub, mut changes) = Hub::new(8);
        let m1 = hub.join(&room("a"));
        let m2 = hub.join(&room("a"));
        assert_eq!(changes.recv().await, Some(RoomChange::Opened(room("a"))));
        assert_eq!(hub.socket_count(), 2);
        drop(m1);
        assert!(changes.try_recv().is_err(), "still one member");
        // The slot is reused by the next member.
        let m3 = hub.join(&room("a"));
        assert_eq!(m3.slot, 0);
        drop(m2);
        drop(m3);
        assert_eq!(changes.recv().await, Some(RoomChange::Closed(room("a"))));
        assert_eq!(hub.socket_count(), 0);
        assert!(hub.open_rooms().is_empty());
        assert!(!hub.is_open(&room("a")));
    }
}
