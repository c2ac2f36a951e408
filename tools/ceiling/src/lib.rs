//! `ceiling`: the fastest room fan-out this machine allows, to measure ferrochat against.
//!
//! It speaks the transport side of ferrochat's WebSocket protocol and nothing else: a client
//! connects to `ws://HOST:PORT/ws/chat/<room>/`, and every text frame it sends is passed, as is,
//! to every socket in that room (the sender included). No authentication, no database, no JSON:
//! whatever ferrochat does on top of this costs the difference between the two in `BENCHMARKS.md`.
//!
//! What makes it fast is what ferrochat should do too:
//! * each frame is received once into a reference-counted buffer and shared with every member
//!   (a `tokio::sync::broadcast` ring per room: one write, no per-member copy or allocation);
//! * each socket drains everything queued for it into tungstenite's write buffer and flushes once,
//!   so a busy room costs one `write` per socket per wake-up, not one per message;
//! * a 4 KiB read buffer per socket (tungstenite's default is 128 KiB, allocated eagerly).
//!
//! A member that falls more than `queue` messages behind loses the oldest ones (counted as
//! `lagged`); the load generator counts them as lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Messages a room keeps for a member that is behind before it starts dropping.
    pub queue: usize,
    /// Most messages written to one socket before a flush.
    pub batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            queue: 4096,
            batch: 256,
        }
    }
}

/// What the server did, for its exit line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    pub rejected: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub lagged: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    rejected: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    lagged: AtomicU64,
}

struct Hub {
    rooms: Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>,
    opts: Options,
    counters: Counters,
}

impl Hub {
    fn join(&self, room: &str) -> (broadcast::Sender<Utf8Bytes>, broadcast::Receiver<Utf8Bytes>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let tx = rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(self.opts.queue.max(16)).0)
            .clone();
        let rx = tx.subscribe();
        (tx, rx)
    }

    fn leave(&self, room: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(room).is_some_and(|tx| tx.receiver_count() == 0) {
            rooms.remove(room);
        }
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            connections: c.connections.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            frames_in: c.frames_in.load(Ordering::Relaxed),
            frames_out: c.frames_out.load(Ordering::Relaxed),
            lagged: c.lagged.load(Ordering::Relaxed),
        }
    }
}

/// `/ws/chat/<room>/` with the legacy app's room-name rule `^[A-Za-z0-9_-]{1,64}$`.
pub fn room_from_path(path: &str) -> Option<&str> {
    let room = path.strip_prefix("/ws/chat/")?.strip_suffix('/')?;
    let valid = (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(room)
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(4 * 1024 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

// The callback signature (and its large `Err`) is tungstenite's `Callback` trait.
#[allow(clippy::result_large_err)]
async fn connection(hub: Arc<Hub>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut room: Option<String> = None;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match room_from_path(req.uri().path()) {
            Some(name) => {
                room = Some(name.to_owned());
                Ok(resp)
            }
            None => {
                let mut err = ErrorResponse::new(Some("not found".into()));
                *err.status_mut() = StatusCode::NOT_FOUND;
                Err(err)
            }
        }
    };
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config())).await;
    let (Ok(mut ws), Some(room)) = (ws, room) else {
        hub.counters.rejected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    hub.counters.connections.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = hub.join(&room);
    'conn: loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    hub.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                    // Err only when nobody listens, and the sender itself always does.
                    let _ = tx.send(text);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            queued = rx.recv() => {
                let first = match queued {
                    Ok(text) => text,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        hub.counters.lagged.fetch_add(n, Ordering::Relaxed);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let mut sent = 1;
                if ws.feed(Message::Text(first)).await.is_err() {
                    break 'conn;
                }
                while sent < hub.opts.batch {
                    match rx.try_recv() {
                        Ok(text) => {
                            sent += 1;
                            if ws.feed(Message::Text(text)).await.is_err() {
                                break 'conn;
                            }
                        }
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            hub.counters.lagged.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                hub.counters.frames_out.fetch_add(sent as u64, Ordering::Relaxed);
                if ws.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    drop(rx);
    hub.leave(&room);
}

/// Serves until `shutdown` completes; returns what it did.
pub async fn serve(
    listener: TcpListener,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) -> Stats {
    let hub = Arc::new(Hub {
        rooms: Mutex::new(HashMap::new()),
        opts,
        counters: Counters::default(),
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(connection(hub.clone(), stream)); }
                // EMFILE and friends: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
    hub.stats()
}

#[cfg(test)]
mod tests {
    use super::room_from_path;

    #[test]
    fn room_paths_follow_the_legacy_route() {
        assert_eq!(room_from_path("/ws/chat/lobby/"), Some("lobby"));
        assert_eq!(room_from_path("/ws/chat/a-b_C9/"), Some("a-b_C9"));
        assert_eq!(room_from_path("/ws/chat/lobby"), None);
        assert_eq!(room_from_path("/ws/chat//"), None);
        assert_eq!(room_from_path("/ws/chat/a b/"), None);
        assert_eq!(
            room_from_path(&format!("/ws/chat/{}/", "x".repeat(65))),
            None
        );
    }
}
