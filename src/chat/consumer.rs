//! One task per WebSocket: the legacy `chatapp/consumers.py: ChatConsumer` after `accept()`.
//!
//! The task `select!`s over the client's frames, the room's outgoing frames, a ping timer and
//! the server's shutdown token; nothing else runs per socket. For each text frame it does what
//! `ChatConsumer.receive` does: parse and validate (ignored input is logged and the socket
//! stays open), **save the message first**, then `group_send` it to the room, sender included.
//!
//! Close codes (RFC 6455 §7.4.1), always after the frames already queued for the socket:
//! - 1001 the server is shutting down;
//! - 1007 a text frame that is not UTF-8; 1009 a frame over [`MAX_CLIENT_FRAME`], refused from
//!   its header, before the payload is buffered; 1002 any other protocol violation;
//! - 1008 (policy) a client that reads too slowly: its queue of unsent frames reached
//!   `FERROCHAT_WS_QUEUE` (the room's ring lapping a socket whose own save stalled that long
//!   counts the same). 1008 rather than 1013 ("try again later"), because the cause is the
//!   client's reading, not the server's load, and reconnecting would not help it.
//! - 1011 the database refused to save a message (the legacy consumer crashes the same way).
//! - A peer that answers no ping within `FERROCHAT_WS_PING_TIMEOUT`, or a write that stalls as
//!   long, is dropped without a close frame (Daphne drops it too).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use salvo::websocket::{Message, WebSocket};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::db::messages::{MessageWriter, NewMessage};
use crate::layer::ChannelLayer;

use super::clock::Clock;
use super::frame::{ChatEvent, Ignored, parse_client_text};
use super::hub::{Membership, Outgoing};

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
    /// Frames a socket may have waiting beyond the one being written.
    pub queue: usize,
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

/// Serves one accepted socket until it closes.
pub async fn run(mut ws: WebSocket, ctx: Arc<ConsumerContext>, mut conn: Connection) {
    let room = conn.membership.room().clone();
    tracing::info!(room = %room, user = %conn.username, peer = %conn.peer, "WSCONNECT /ws/chat/{room}/");
    let mut pending = VecDeque::new();
    let end = serve(&mut ws, &ctx, &mut conn, &mut pending).await;
    let mut membership = conn.membership;
    if end == GOING_AWAY {
        // Writes in flight finish first: what the room sent this socket before the shutdown
        // is delivered, then the close frame.
        drain(&mut ws, &ctx, &mut membership, &mut pending).await;
    }
    // The room forgets the socket now, not after the goodbye below.
    drop(membership);
    match end {
        End::PeerClosed => {
            // Sends tungstenite's queued reply to the peer's close frame.
            let _ = timeout(CLOSE_LINGER, ws.close()).await;
        }
        End::PeerGone | End::Dead => {}
        End::Close(code, reason) => say_goodbye(ws, code, reason).await,
    }
    tracing::info!(room = %room, user = %conn.username, peer = %conn.peer, reason = ?end, "WSDISCONNECT /ws/chat/{room}/");
}

async fn serve(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    conn: &mut Connection,
    pending: &mut VecDeque<Utf8Bytes>,
) -> End {
    let mut ping = tokio::time::interval_at(Instant::now() + ctx.ping_interval, ctx.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pong_deadline: Option<Instant> = None;
    loop {
        // Frames that queued up while a slow write was in progress go first, in order.
        if let Some(frame) = pending.pop_front() {
            if let Err(end) =
                write(ws, ctx, &mut conn.membership, pending, Message::text(frame)).await
            {
                return end;
            }
            continue;
        }
        tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => return GOING_AWAY,
            out = conn.membership.next() => match out {
                Outgoing::Frame(frame) => {
                    if let Err(end) = write(ws, ctx, &mut conn.membership, pending, Message::text(frame)).await {
                        return end;
                    }
                }
                Outgoing::Lagged(_) => return TOO_SLOW,
            },
            incoming = ws.recv() => {
                // Any frame proves the peer alive, not only a pong.
                pong_deadline = None;
                match incoming {
                    None => return End::PeerGone,
                    Some(Err(e)) => return read_error(&e),
                    Some(Ok(msg)) if msg.is_close() => return End::PeerClosed,
                    Some(Ok(msg)) => {
                        if let Err(end) = receive(ctx, conn, &msg).await {
                            return end;
                        }
                    }
                }
            }
            _ = ping.tick() => {
                if pong_deadline.is_none() {
                    pong_deadline = Some(Instant::now() + ctx.ping_timeout);
                    if let Err(end) = write(ws, ctx, &mut conn.membership, pending, Message::ping(Vec::new())).await {
                        return end;
                    }
                }
            }
            () = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                tracing::info!(user = %conn.username, peer = %conn.peer, "no pong within {:?}: dropping the socket", ctx.ping_timeout);
                return End::Dead;
            }
        }
    }
}

/// `ChatConsumer.receive`: one client frame.
async fn receive(ctx: &ConsumerContext, conn: &Connection, msg: &Message) -> Result<(), End> {
    let parsed = if msg.is_text() {
        match msg.as_str() {
            Ok(text) => parse_client_text(text),
            Err(_) => Err(Ignored::InvalidJson),
        }
    } else if msg.is_binary() {
        Err(Ignored::Binary)
    } else {
        // Ping (tungstenite answers it) or pong.
        return Ok(());
    };
    let message = match parsed {
        Ok(message) => message,
        Err(reason) => {
            // No error frame exists in the protocol: the legacy room.js would print it.
            tracing::info!(room = %conn.membership.room(), user = %conn.username, %reason, "ignored a client frame");
            return Ok(());
        }
    };
    // Saved first (`Message.objects.create`), then broadcast: a reload shows every message
    // anyone saw, whatever happens to the broadcast.
    let timestamp = ctx.clock.now();
    let new = NewMessage {
        room_id: conn.room_id,
        user_id: conn.user_id,
        content: message.clone(),
        timestamp,
    };
    let id = match ctx.messages.save(new).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(room = %conn.membership.room(), user = %conn.username, error = %e, "could not save a message");
            return Err(End::Close(1011, "Internal error"));
        }
    };
    let event = ChatEvent::new(id, message, conn.username.clone(), &timestamp);
    if let Err(e) = ctx.layer.group_send(conn.membership.room(), &event).await {
        // Saved, so a reload shows it; the socket itself is fine.
        tracing::error!(room = %conn.membership.room(), id, error = %e, "could not broadcast a saved message");
    }
    Ok(())
}

/// Writes one message. While the peer reads slowly, the room's next frames are taken into
/// `pending` (so the room's ring never laps this socket unnoticed); one more than the queue
/// allows closes the socket (1008), and a write that stalls for the ping timeout drops it.
async fn write(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    membership: &mut Membership,
    pending: &mut VecDeque<Utf8Bytes>,
    msg: Message,
) -> Result<(), End> {
    let stalled = sleep(ctx.ping_timeout);
    let send = ws.send(msg);
    tokio::pin!(stalled, send);
    loop {
        tokio::select! {
            biased;
            sent = &mut send => return sent.map_err(|e| {
                tracing::debug!(error = %e, "write failed");
                End::PeerGone
            }),
            out = membership.next() => match out {
                Outgoing::Frame(frame) if pending.len() < ctx.queue => pending.push_back(frame),
                Outgoing::Frame(_) | Outgoing::Lagged(_) => return Err(TOO_SLOW),
            },
            () = &mut stalled => return Err(End::Dead),
        }
    }
}

/// The frames already queued for this socket when it closes (shutdown only), each with the
/// linger as its deadline: a slow peer cannot hold the shutdown.
async fn drain(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    membership: &mut Membership,
    pending: &mut VecDeque<Utf8Bytes>,
) {
    let mut frames: Vec<Utf8Bytes> = pending.drain(..).collect();
    while let Some(Outgoing::Frame(frame)) = membership.try_next() {
        frames.push(frame);
    }
    let deadline = Instant::now() + ctx.ping_timeout.min(Duration::from_secs(5));
    for frame in frames {
        match tokio::time::timeout_at(deadline, ws.send(Message::text(frame))).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
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
