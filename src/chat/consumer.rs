//! One task per WebSocket: the legacy `chatapp/consumers.py: ChatConsumer` after `accept()`.
//!
//! The task `select!`s over the client's frames, the room's waiting frames, its own messages'
//! saves, a ping timer and the server's shutdown token; nothing else runs per socket. For each
//! text frame it does what `ChatConsumer.receive` does: parse and validate (ignored input is
//! logged and the socket stays open), **save the message first**, then `group_send` it to the
//! room, sender included. Up to [`MAX_SAVING`] messages of one socket may await their save at
//! once (group commit batches them with everyone else's); they are broadcast in the order sent.
//! Whatever the room has for the socket is written as one batch with one flush.
//!
//! Close codes (RFC 6455 §7.4.1), always after the frames already queued for the socket:
//! - 1001 the server is shutting down;
//! - 1007 a text frame that is not UTF-8; 1009 a frame over [`MAX_CLIENT_FRAME`], refused from
//!   its header, before the payload is buffered; 1002 any other protocol violation;
//! - 1008 (policy) a client that reads too slowly: the room got `FERROCHAT_WS_QUEUE` frames (or
//!   8 MiB) ahead of it. 1008 rather than 1013 ("try again later"), because the cause is the
//!   client's reading, not the server's load, and reconnecting would not help it.
//! - 1011 the database refused to save a message (the legacy consumer crashes the same way).
//! - A peer that answers no ping within `FERROCHAT_WS_PING_TIMEOUT`, or a write that stalls as
//!   long, is dropped without a close frame (Daphne drops it too).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::SinkExt;
use salvo::websocket::{Message, WebSocket};
use tokio::time::{Instant, Sleep, sleep, timeout};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::db::DbError;
use crate::db::messages::{MessageWriter, NewMessage, PendingSave};
use crate::layer::ChannelLayer;

use super::clock::Clock;
use crate::django::chat_json::{ChatEvent, Ignored, parse_client_text};
use crate::django::room_name::RoomName;
use crate::layer::hub::Membership;

/// The largest client frame or message accepted. The biggest legitimate one, 4000 code points
/// each escaped as a `\uXXXX\uXXXX` surrogate pair, is under 49 KiB.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// How long a closing socket waits for its close frame to be written and for the peer's
/// reply (or, after a framing error, for the peer to read the close frame before the
/// connection is dropped).
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What every socket of a server shares.
pub struct ConsumerContext {
    pub db: Db,
    /// Saves messages with group commit (one transaction for all that queued up meanwhile).
    pub messages: MessageWriter,
    pub layer: Arc<dyn ChannelLayer>,
    pub clock: Arc<Clock>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

/// The connection's `scope`: who, where, and the room membership joined before `accept()`.
pub struct Connection {
    pub user_id: i64,
    pub username: String,
    pub room_id: i64,
    pub membership: Membership,
    /// For the log: `ip:port`.
    pub peer: String,
}

/// Why a socket ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer sent a close frame (tungstenite queued the reply) or the connection vanished.
    PeerClosed,
    PeerGone,
    /// No pong and no frame in time, or a write stalled: drop without ceremony.
    Dead,
    /// Close with this code after the frames already queued.
    Close(u16, &'static str),
}

const GOING_AWAY: End = End::Close(1001, "Server shutting down");
const TOO_SLOW: End = End::Close(1008, "Too slow to read");
/// The user was deactivated (in the admin): their session no longer validates either.
const ACCOUNT_DISABLED: End = End::Close(1008, "Account disabled");

/// Messages of one socket that may await their save at once; at this many the socket stops
/// reading its client (TCP pushes back) until the oldest is saved. The legacy consumer handles
/// one at a time; a few in flight keep a fast sender's order and let group commit batch them.
const MAX_SAVING: usize = 32;

/// Most frames written to a socket before one flush: a busy room costs one `write` per socket
/// per wake-up, not one per message.
const MAX_BATCH: usize = 64;

/// Who a socket's messages are from and where they go.
struct Author {
    user_id: i64,
    username: String,
    room_id: i64,
    peer: String,
}

/// This socket's messages awaiting their save, oldest first (the writer saves in queue order).
#[derive(Default)]
struct Saving {
    queue: VecDeque<(PendingSave, String, DateTime<Utc>)>,
}

/// A message whose save finished (or failed).
struct Saved {
    id: Result<i64, DbError>,
    message: String,
    timestamp: DateTime<Utc>,
}

impl Saving {
    fn len(&self) -> usize {
        self.queue.len()
    }

    fn push(&mut self, save: PendingSave, message: String, timestamp: DateTime<Utc>) {
        self.queue.push_back((save, message, timestamp));
    }

    /// The oldest save once it finishes; pending forever while none is queued.
    async fn next(&mut self) -> Saved {
        let Some((save, _, _)) = self.queue.front_mut() else {
            return std::future::pending().await;
        };
        let id = save.await;
        let (_, message, timestamp) = self
            .queue
            .pop_front()
            .expect("the front entry was just awaited");
        Saved {
            id,
            message,
            timestamp,
        }
    }
}

/// Serves one accepted socket until it closes.
pub async fn run(mut ws: WebSocket, ctx: Arc<ConsumerContext>, conn: Connection) {
    let Connection {
        user_id,
        username,
        room_id,
        mut membership,
        peer,
    } = conn;
    let author = Author {
        user_id,
        username,
        room_id,
        peer,
    };
    let room = membership.room().clone();
    tracing::info!(room = %room, user = %author.username, peer = %author.peer, "WSCONNECT /ws/chat/{room}/");
    let mut saving = Saving::default();
    let end = serve(&mut ws, &ctx, &author, &mut membership, &mut saving).await;
    // Messages the client sent before the end are broadcast once saved, as the legacy consumer
    // finishes its `receive` calls before `disconnect`: nothing accepted is lost.
    Box::pin(finish_saving(&ctx, &author, &room, &mut saving)).await;
    if end == GOING_AWAY {
        // Writes in flight finish first: what the room sent this socket before the shutdown
        // is delivered, then the close frame.
        Box::pin(drain(&mut ws, &ctx, &mut membership)).await;
    }
    // The room forgets the socket now, not after the goodbye below.
    drop(membership);
    match end {
        End::PeerClosed => {
            // Sends tungstenite's queued reply to the peer's close frame.
            let _ = Box::pin(timeout(CLOSE_LINGER, ws.close())).await;
        }
        End::PeerGone | End::Dead => {}
        End::Close(code, reason) => Box::pin(say_goodbye(ws, code, reason)).await,
    }
    tracing::info!(room = %room, user = %author.username, peer = %author.peer, reason = ?end, "WSDISCONNECT /ws/chat/{room}/");
}

async fn serve(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    author: &Author,
    membership: &mut Membership,
    saving: &mut Saving,
) -> End {
    let mut ping = tokio::time::interval_at(Instant::now() + ctx.ping_interval, ctx.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Armed when a ping goes out, disarmed by any frame from the peer.
    let mut pong_deadline: Option<Pin<Box<Sleep>>> = None;
    // Reused for every batch: no allocation per wake-up once it has grown.
    let mut batch: Vec<Utf8Bytes> = Vec::new();
    let kicked = membership.kicked(author.user_id);
    tokio::pin!(kicked);
    loop {
        tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => return GOING_AWAY,
            () = &mut kicked => return ACCOUNT_DISABLED,
            taken = membership.next_batch(MAX_BATCH, &mut batch) => {
                if taken.is_err() {
                    return TOO_SLOW;
                }
                if let Err(end) = Box::pin(send(ws, ctx, author, membership, saving, None, &mut batch)).await {
                    return end;
                }
            }
            saved = saving.next() => {
                if let Err(end) = Box::pin(broadcast(ctx, author, membership.room(), saved)).await {
                    return end;
                }
            }
            incoming = ws.recv(), if saving.len() < MAX_SAVING => {
                // Any frame proves the peer alive, not only a pong.
                pong_deadline = None;
                match incoming {
                    None => return End::PeerGone,
                    Some(Err(e)) => return read_error(&e),
                    Some(Ok(msg)) if msg.is_close() => return End::PeerClosed,
                    Some(Ok(msg)) => receive(ctx, author, membership.room(), saving, &msg),
                }
            }
            _ = ping.tick() => {
                if pong_deadline.is_none() {
                    pong_deadline = Some(Box::pin(sleep(ctx.ping_timeout)));
                    let ping = Some(Message::ping(Vec::new()));
                    if let Err(end) = Box::pin(send(ws, ctx, author, membership, saving, ping, &mut batch)).await {
                        return end;
                    }
                }
            }
            () = async { if let Some(deadline) = pong_deadline.as_mut() { deadline.await } }, if pong_deadline.is_some() => {
                tracing::info!(user = %author.username, peer = %author.peer, "no pong within {:?}: dropping the socket", ctx.ping_timeout);
                return End::Dead;
            }
        }
    }
}

/// `ChatConsumer.receive`, first half: one client frame, parsed and validated, queued for its
/// save. The broadcast follows in [`broadcast`] once the save is committed.
fn receive(
    ctx: &ConsumerContext,
    author: &Author,
    room: &RoomName,
    saving: &mut Saving,
    msg: &Message,
) {
    let parsed = if msg.is_text() {
        match msg.as_str() {
            Ok(text) => parse_client_text(text),
            Err(_) => Err(Ignored::InvalidJson),
        }
    } else if msg.is_binary() {
        Err(Ignored::Binary)
    } else {
        // Ping (tungstenite answers it) or pong.
        return;
    };
    let message = match parsed {
        Ok(message) => message,
        Err(reason) => {
            // No error frame exists in the protocol: the legacy room.js would print it.
            tracing::info!(room = %room, user = %author.username, %reason, "ignored a client frame");
            return;
        }
    };
    // Saved first (`Message.objects.create`), then broadcast: a reload shows every message
    // anyone saw, whatever happens to the broadcast.
    let timestamp = ctx.clock.now();
    let save = ctx.messages.enqueue(NewMessage {
        room_id: author.room_id,
        user_id: author.user_id,
        content: message.clone(),
        timestamp,
    });
    saving.push(save, message, timestamp);
}

/// `ChatConsumer.receive`, second half: `group_send` of a saved message to the room, sender
/// included. A failed save closes the socket with 1011, as the legacy consumer crashes.
async fn broadcast(
    ctx: &ConsumerContext,
    author: &Author,
    room: &RoomName,
    saved: Saved,
) -> Result<(), End> {
    let id = match saved.id {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(room = %room, user = %author.username, error = %e, "could not save a message");
            return Err(End::Close(1011, "Internal error"));
        }
    };
    let event = ChatEvent::new(id, saved.message, author.username.clone(), &saved.timestamp);
    if let Err(e) = ctx.layer.group_send(room, &event).await {
        // Saved, so a reload shows it; the socket itself is fine.
        tracing::error!(room = %room, id, error = %e, "could not broadcast a saved message");
    }
    Ok(())
}

/// Broadcasts the socket's remaining messages as their saves finish, within the linger a
/// closing socket has (the writer keeps saving whatever this gives up on).
async fn finish_saving(
    ctx: &ConsumerContext,
    author: &Author,
    room: &RoomName,
    saving: &mut Saving,
) {
    let deadline = Instant::now() + ctx.ping_timeout.min(Duration::from_secs(5));
    while saving.len() > 0 {
        match tokio::time::timeout_at(deadline, saving.next()).await {
            // A failed save is logged by `broadcast`; the socket is closing anyway.
            Ok(saved) => {
                let _ = broadcast(ctx, author, room, saved).await;
            }
            Err(_) => {
                tracing::warn!(room = %room, user = %author.username, left = saving.len(), "gave up waiting to broadcast a closing socket's messages (they are saved)");
                return;
            }
        }
    }
}

/// Writes `first` (a control frame) and the room's frames in `batch`, with one flush.
/// Meanwhile finished saves are broadcast; a socket whose room gets more than the queue limit
/// ahead of it during the write is closed (1008), and a write that stalls for the ping timeout
/// drops it.
async fn send(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    author: &Author,
    membership: &mut Membership,
    saving: &mut Saving,
    first: Option<Message>,
    batch: &mut Vec<Utf8Bytes>,
) -> Result<(), End> {
    let stalled = sleep(ctx.ping_timeout);
    let io = async {
        if let Some(msg) = first {
            ws.feed(msg).await?;
        }
        for frame in batch.drain(..) {
            ws.feed(Message::text(frame)).await?;
        }
        ws.flush().await
    };
    tokio::pin!(stalled, io);
    loop {
        tokio::select! {
            biased;
            sent = &mut io => return sent.map_err(|e| {
                tracing::debug!(error = %e, "write failed");
                End::PeerGone
            }),
            _ = membership.lagged() => return Err(TOO_SLOW),
            saved = saving.next() => broadcast(ctx, author, membership.room(), saved).await?,
            () = &mut stalled => return Err(End::Dead),
        }
    }
}

/// The frames already waiting for this socket when it closes (shutdown only), with the
/// linger as their deadline: a slow peer cannot hold the shutdown.
async fn drain(ws: &mut WebSocket, ctx: &ConsumerContext, membership: &mut Membership) {
    let mut frames = Vec::new();
    if membership.take(usize::MAX, &mut frames).is_err() {
        return;
    }
    let deadline = Instant::now() + ctx.ping_timeout.min(Duration::from_secs(5));
    let io = async {
        for frame in frames {
            ws.feed(Message::text(frame)).await?;
        }
        ws.flush().await
    };
    let _ = tokio::time::timeout_at(deadline, io).await;
}

/// Sends the close frame and waits (briefly) for the peer's reply before dropping the
/// connection, so the peer reads the close code instead of a reset.
async fn say_goodbye(mut ws: WebSocket, code: u16, reason: &'static str) {
    let deadline = Instant::now() + CLOSE_LINGER;
    if !matches!(
        tokio::time::timeout_at(deadline, ws.send(Message::close_with(code, reason))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    // After a framing error the stream is finished and yields nothing: this is then a plain
    // linger, letting the close frame reach the peer before the socket closes.
    let _ = tokio::time::timeout_at(deadline, async {
        loop {
            match ws.recv().await {
                Some(Ok(msg)) if msg.is_close() => return,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    std::future::pending::<()>().await;
                }
            }
        }
    })
    .await;
}

/// Maps a read error to how the socket ends: the size and UTF-8 limits close with their
/// codes, a vanished peer just ends.
fn read_error(e: &salvo::Error) -> End {
    let ws_error = match e {
        salvo::Error::Other(inner) => inner.downcast_ref::<tungstenite::Error>(),
        _ => None,
    };
    match ws_error {
        Some(tungstenite::Error::Capacity(c)) => {
            tracing::info!(error = %c, "closing a socket: frame too big");
            End::Close(1009, "Message too big")
        }
        Some(tungstenite::Error::Utf8(detail)) => {
            tracing::info!(%detail, "closing a socket: text frame is not UTF-8");
            End::Close(1007, "Invalid UTF-8")
        }
        Some(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ),
        ) => End::PeerGone,
        Some(tungstenite::Error::Protocol(p)) => {
            tracing::info!(error = %p, "closing a socket: protocol violation");
            End::Close(1002, "Protocol error")
        }
        _ => {
            tracing::debug!(error = %e, "socket read failed");
            End::PeerGone
        }
    }
}
