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
//!   client's reading, not the server's load, and reconnecting would not help it. Also 1008: a
//!   client sending faster than `FERROCHAT_WS_RATE` (opt-in).
//! - 1011 the database refused to save a message (the legacy consumer crashes the same way).
//! - A peer that answers no ping within `FERROCHAT_WS_PING_TIMEOUT`, or a write that stalls as
//!   long, is dropped without a close frame (Daphne drops it too).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::ops::logging::ACCESS_TARGET;
use crate::ops::metrics::{CloseReason, metrics};
use crate::ops::rate::{Rate, TokenBucket};

/// The largest client frame or message accepted. The biggest legitimate one, 4000 code points
/// each escaped as a `\uXXXX\uXXXX` surrogate pair, is under 49 KiB.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// How long a closing socket waits for its close frame to be written and for the peer's
/// reply (or, after a framing error, for the peer to read the close frame before the
/// connection is dropped).
pub(super) const CLOSE_LINGER: Duration = Duration::from_secs(1);

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
    /// `FERROCHAT_WS_RATE`: messages per second (and burst) each socket may send.
    pub ws_rate: Option<Rate>,
}

/// The connection's `scope`: who, where, and the room membership joined before `accept()`.
pub struct Connection {
    pub user_id: i64,
    pub username: String,
    pub room_id: i64,
    pub membership: Membership,
    /// For the log: `ip:port`.
    pub peer: String,
    /// For the access log: the request path.
    pub path: String,
}

/// Why a socket ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The peer sent a close frame (tungstenite queued the reply; its code, 1005 when none) or
    /// the connection vanished.
    PeerClosed(u16),
    PeerGone,
    /// No pong and no frame in time, or a write stalled: drop without ceremony.
    Dead,
    /// Close with this code after the frames already queued.
    Close(u16, &'static str),
}

pub(super) const GOING_AWAY: End = End::Close(1001, "Server shutting down");
pub(super) const TOO_SLOW: End = End::Close(1008, "Too slow to read");
/// The user was deactivated (in the admin): their session no longer validates either.
pub(super) const ACCOUNT_DISABLED: End = End::Close(1008, "Account disabled");

pub(super) const TOO_FAST: End = End::Close(1008, "Message rate exceeded");

impl End {
    /// The `reason` label of `ferrochat_ws_closed_total`.
    pub(super) fn reason(self) -> CloseReason {
        match self {
            End::PeerClosed(_) | End::PeerGone => CloseReason::Normal,
            End::Dead => CloseReason::PingTimeout,
            e if e == GOING_AWAY => CloseReason::Shutdown,
            e if e == TOO_SLOW => CloseReason::SlowReader,
            e if e == TOO_FAST => CloseReason::Limit,
            e if e == ACCOUNT_DISABLED => CloseReason::Normal,
            End::Close(1009, _) => CloseReason::TooBig,
            End::Close(1007, _) => CloseReason::BadUtf8,
            End::Close(1011, _) => CloseReason::DbUnavailable,
            End::Close(_, _) => CloseReason::Protocol,
        }
    }

    /// The close code for the access log (1006: no close frame, RFC 6455 §7.1.5).
    pub(super) fn code(self) -> u16 {
        match self {
            End::PeerClosed(code) | End::Close(code, _) => code,
            End::PeerGone | End::Dead => 1006,
        }
    }
}

/// Messages of one socket that may await their save at once; at this many the socket stops
/// reading its client (TCP pushes back) until the oldest is saved. The legacy consumer handles
/// one at a time; a few in flight keep a fast sender's order and let group commit batch them.
pub(super) const MAX_SAVING: usize = 32;

/// Most frames written to a socket before one flush: a busy room costs one `write` per socket
/// per wake-up, not one per message.
pub(super) const MAX_BATCH: usize = 64;

/// Who a socket's messages are from and where they go, and its traffic for the access log
/// (its own task's counters, updated with plain loads and stores: nothing shared is touched
/// per frame).
pub(super) struct Author {
    pub(super) user_id: i64,
    pub(super) username: String,
    pub(super) room_id: i64,
    pub(super) peer: String,
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
}

/// This socket's messages awaiting their save, oldest first (the writer saves in queue order).
#[derive(Default)]
pub(super) struct Saving {
    queue: VecDeque<(PendingSave, String, DateTime<Utc>, Instant)>,
}

/// A message whose save finished (or failed).
pub(super) struct Saved {
    id: Result<i64, DbError>,
    message: String,
    timestamp: DateTime<Utc>,
    /// When the frame arrived (the latency histograms start here).
    received: Instant,
}

impl Saving {
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    fn push(&mut self, save: PendingSave, message: String, timestamp: DateTime<Utc>) {
        self.queue
            .push_back((save, message, timestamp, Instant::now()));
    }

    /// The oldest save once it finishes; pending forever while none is queued.
    pub(super) async fn next(&mut self) -> Saved {
        let Some((save, _, _, _)) = self.queue.front_mut() else {
            return std::future::pending().await;
        };
        let id = save.await;
        let (_, message, timestamp, received) = self
            .queue
            .pop_front()
            .expect("the front entry was just awaited");
        Saved {
            id,
            message,
            timestamp,
            received,
        }
    }
}

/// Adds to a counter only its own task writes (no read-modify-write instruction needed).
pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// Serves one accepted socket until it closes.
pub async fn run(mut ws: WebSocket, ctx: Arc<ConsumerContext>, conn: Connection) {
    let Connection {
        user_id,
        username,
        room_id,
        mut membership,
        peer,
        path,
    } = conn;
    let author = Author {
        user_id,
        username,
        room_id,
        peer,
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
    };
    let started = Instant::now();
    let room = membership.room().clone();
    tracing::info!(room = %room, user = %author.username, peer = %author.peer, "WSCONNECT /ws/chat/{room}/");
    let mut saving = Saving::default();
    let end = serve(&mut ws, &ctx, &author, &mut membership, &mut saving).await;
    // Counted when decided, not after the goodbye's linger.
    metrics().ws_closed(end.reason());
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
        End::PeerClosed(_) => {
            // Sends tungstenite's queued reply to the peer's close frame.
            let _ = Box::pin(timeout(CLOSE_LINGER, ws.close())).await;
        }
        End::PeerGone | End::Dead => {}
        End::Close(code, reason) => Box::pin(say_goodbye(ws, code, reason)).await,
    }
    let code = end.code();
    tracing::info!(
        target: ACCESS_TARGET,
        method = "GET",
        path,
        status = 101,
        close_code = code,
        close_reason = end.reason().label(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes_in = author.bytes_in.load(Ordering::Relaxed),
        bytes = author.bytes_out.load(Ordering::Relaxed),
        client = %author.peer,
        room = %room,
        user = %author.username,
        "WSDISCONNECT {path} {code}"
    );
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
    let mut bucket = ctx.ws_rate.map(TokenBucket::new);
    let kicked = membership.kicked(author.user_id);
    // Made once: a fresh `cancelled()` each pass would join and leave the token's waiter list,
    // under its lock shared by every socket (2-3 % of the CPU at the many-rooms peak).
    let shutdown = ctx.shutdown.cancelled();
    tokio::pin!(kicked, shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return GOING_AWAY,
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
                    Some(Ok(msg)) if msg.is_close() => {
                        return End::PeerClosed(msg.close_frame().map_or(1005, |(code, _)| code));
                    }
                    Some(Ok(msg)) => {
                        if (msg.is_text() || msg.is_binary())
                            && let Some(bucket) = bucket.as_mut()
                            && !bucket.take()
                        {
                            tracing::warn!(user = %author.username, peer = %author.peer, "closing a socket: over FERROCHAT_WS_RATE");
                            return TOO_FAST;
                        }
                        receive(ctx, author, membership.room(), saving, &msg);
                    }
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
pub(super) fn receive(
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
    add(&author.bytes_in, msg.as_bytes().len() as u64);
    let message = match parsed {
        Ok(message) => message,
        Err(reason) => {
            // No error frame exists in the protocol: the legacy room.js would print it.
            tracing::info!(room = %room, user = %author.username, %reason, "ignored a client frame");
            return;
        }
    };
    metrics().messages_received.inc();
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
pub(super) async fn broadcast(
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
    let m = metrics();
    m.messages_saved.inc();
    m.message_save_seconds
        .observe(saved.received.elapsed().as_secs_f64());
    let event = ChatEvent::new(id, saved.message, author.username.clone(), &saved.timestamp);
    // The layer hands the frame to every local member before it returns.
    let sent = ctx.layer.group_send(room, &event).await;
    m.message_delivery_seconds
        .observe(saved.received.elapsed().as_secs_f64());
    if let Err(e) = sent {
        // Saved, so a reload shows it; the socket itself is fine.
        tracing::error!(room = %room, id, error = %e, "could not broadcast a saved message");
    }
    Ok(())
}

/// Broadcasts the socket's remaining messages as their saves finish, within the linger a
/// closing socket has (the writer keeps saving whatever this gives up on).
pub(super) async fn finish_saving(
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
pub(super) async fn send(
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
        let mut bytes = 0;
        for frame in batch.drain(..) {
            bytes += frame.len() as u64;
            ws.feed(Message::text(frame)).await?;
        }
        add(&author.bytes_out, bytes);
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
pub(super) async fn say_goodbye(mut ws: WebSocket, code: u16, reason: &'static str) {
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
pub(super) fn read_error(e: &salvo::Error) -> End {
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
