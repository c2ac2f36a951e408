//! One task per `ferrochat.v1` socket (docs/protocol.md): the legacy consumer's loop, with its
//! saves, broadcasts, limits and close codes (`super::consumer`), plus the catch-up replay right
//! after the 101, the room's v1 events (presence, typing, deletions) and `typing` from the
//! client.
//!
//! Chat messages come from the same room log the legacy sockets read, as the legacy frame every
//! node sends (it carries the message id, whoever saved it, Daphne included); this task copies
//! each into its v1 form, so a legacy socket never pays for v1.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use futures_util::SinkExt;
use salvo::websocket::{Message, WebSocket};
use tokio::time::{Instant, Sleep, sleep};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::consumer::{
    ACCOUNT_DISABLED, Author, CLOSE_LINGER, Connection, ConsumerContext, End, GOING_AWAY,
    MAX_BATCH, MAX_SAVING, Saving, TOO_FAST, TOO_SLOW, add, broadcast, finish_saving, read_error,
    receive, say_goodbye, send,
};
use crate::django::chat_json::ChatEvent;
use crate::django::room_name::RoomName;
use crate::layer::hub::Membership;
use crate::layer::live::frames::{self, ClientFrame};
use crate::layer::live::{Live, Subscription};
use crate::ops::logging::ACCESS_TARGET;
use crate::ops::metrics::metrics;
use crate::ops::rate::TokenBucket;

/// The subprotocol a client asks for in `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "ferrochat.v1";

/// What a v1 socket has besides the legacy connection, all taken before the 101.
pub struct V1 {
    /// `?after=`: the highest message id the client has.
    pub after: Option<i64>,
    /// The room's v1 events since before the 101.
    pub events: Subscription,
    pub live: Arc<Live>,
}

/// Serves one accepted v1 socket until it closes.
pub async fn run(mut ws: WebSocket, ctx: Arc<ConsumerContext>, conn: Connection, mut v1: V1) {
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
    tracing::info!(room = %room, user = %author.username, peer = %author.peer, after = ?v1.after, "WSCONNECT /ws/chat/{room}/ ({PROTOCOL})");
    let mut saving = Saving::default();
    let end = serve(
        &mut ws,
        &ctx,
        &author,
        &mut membership,
        &mut saving,
        &mut v1,
    )
    .await;
    metrics().ws_closed(end.reason());
    Box::pin(finish_saving(&ctx, &author, &room, &mut saving)).await;
    if end == GOING_AWAY {
        Box::pin(drain(&mut ws, &ctx, &mut membership)).await;
    }
    drop(membership);
    drop(v1);
    match end {
        End::PeerClosed(_) => {
            let _ = Box::pin(tokio::time::timeout(CLOSE_LINGER, ws.close())).await;
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
        protocol = PROTOCOL,
        "WSDISCONNECT {path} {code}"
    );
}

async fn serve(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    author: &Author,
    membership: &mut Membership,
    saving: &mut Saving,
    v1: &mut V1,
) -> End {
    // The room log and the events were joined before the 101, so anything saved since reaches
    // this socket live; the replay reads the database only now: no gap between the two.
    let mut replayed = match Box::pin(catch_up(ws, ctx, author, membership.room(), v1)).await {
        Ok(replayed) => replayed,
        Err(end) => return end,
    };
    let mut ping = tokio::time::interval_at(Instant::now() + ctx.ping_interval, ctx.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pong_deadline: Option<Pin<Box<Sleep>>> = None;
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
                to_v1(&mut batch, &replayed);
                if let Err(end) = Box::pin(send(ws, ctx, author, membership, saving, None, &mut batch)).await {
                    return end;
                }
            }
            event = v1.events.next() => {
                let Ok(frame) = event else {
                    return TOO_SLOW;
                };
                batch.push(frame);
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
                        receive_v1(ctx, author, membership.room(), saving, &v1.live, &msg);
                    }
                }
            }
            _ = ping.tick() => {
                // Replayed messages arrive live within moments of the replay, if at all.
                replayed = HashSet::new();
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

/// The room's legacy frames in their v1 form, without those the replay already sent.
fn to_v1(batch: &mut Vec<Utf8Bytes>, replayed: &HashSet<i64>) {
    batch.retain_mut(|frame| {
        if !replayed.is_empty()
            && frames::legacy_id(frame.as_str()).is_some_and(|id| replayed.contains(&id))
        {
            return false;
        }
        if let Some(v1) = frames::message_from_legacy(frame.as_str()) {
            *frame = Utf8Bytes::from(v1);
        }
        true
    });
}

/// A client frame: `typing` goes to the room's other users, a message is the legacy
/// consumer's, any other `type` is ignored.
fn receive_v1(
    ctx: &ConsumerContext,
    author: &Author,
    room: &RoomName,
    saving: &mut Saving,
    live: &Live,
    msg: &Message,
) {
    if let Some(text) = msg.is_text().then(|| msg.as_str().ok()).flatten() {
        match frames::classify(text) {
            ClientFrame::Message => {}
            ClientFrame::Typing => {
                add(&author.bytes_in, text.len() as u64);
                live.typing(room, &author.username);
                return;
            }
            ClientFrame::Other(kind) => {
                add(&author.bytes_in, text.len() as u64);
                tracing::info!(room = %room, user = %author.username, %kind, "ignored a client frame of an unknown type");
                return;
            }
        }
    }
    receive(ctx, author, room, saving, msg);
}

/// Right after the 101: `gap` (if the replay was cut), the replay, `caught_up`, `presence`,
/// written with one flush. Returns the replayed ids (their live copies are skipped).
async fn catch_up(
    ws: &mut WebSocket,
    ctx: &ConsumerContext,
    author: &Author,
    room: &RoomName,
    v1: &V1,
) -> Result<HashSet<i64>, End> {
    let mut out: Vec<String> = Vec::new();
    let mut replayed = HashSet::new();
    let mut last = None;
    if let Some(after) = v1.after {
        let settings = v1.live.settings();
        let window = TimeDelta::from_std(settings.catchup_window).unwrap_or(TimeDelta::days(1));
        let found = match ctx
            .db
            .messages_after(author.room_id, after, window, settings.catchup_max)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(room = %room, user = %author.username, error = %e, "could not read the catch-up");
                return Err(End::Close(1011, "Internal error"));
            }
        };
        if found.gap
            && let Some(oldest) = found.messages.first()
        {
            out.push(frames::gap(after, oldest.id));
        }
        for m in found.messages {
            replayed.insert(m.id);
            last = Some(m.id);
            let legacy = ChatEvent::new(m.id, m.content, m.username, &m.timestamp).to_frame();
            out.extend(frames::message_from_legacy(&legacy));
        }
    }
    out.push(frames::caught_up(last));
    out.push(frames::presence(&v1.live.snapshot(room).await));
    let bytes: usize = out.iter().map(String::len).sum();
    let io = async {
        for frame in out {
            ws.feed(Message::text(frame)).await?;
        }
        ws.flush().await
    };
    match tokio::time::timeout(ctx.ping_timeout, io).await {
        Ok(Ok(())) => {
            add(&author.bytes_out, bytes as u64);
            Ok(replayed)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "write failed");
            Err(End::PeerGone)
        }
        Err(_) => Err(End::Dead),
    }
}

/// Shutdown: the frames already waiting for this socket, in their v1 form, within the linger.
async fn drain(ws: &mut WebSocket, ctx: &ConsumerContext, membership: &mut Membership) {
    let mut frames = Vec::new();
    if membership.take(usize::MAX, &mut frames).is_err() {
        return;
    }
    to_v1(&mut frames, &HashSet::new());
    let deadline = Instant::now() + ctx.ping_timeout.min(std::time::Duration::from_secs(5));
    let io = async {
        for frame in frames {
            ws.feed(Message::text(frame)).await?;
        }
        ws.flush().await
    };
    let _ = tokio::time::timeout_at(deadline, io).await;
}
