//! `/ws/chat/<name>/`: the legacy `asgi.py` stack
//! `AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))` and
//! `ChatConsumer.connect`, in that order:
//!
//! 1. a WebSocket handshake at all (`Upgrade: websocket`, as Daphne decides; anything else is
//!    an ordinary request, which Django answers 404), and a well-formed one (else 400);
//! 2. the Origin against `ALLOWED_HOSTS` (`channels/security/websocket.py`), else 403;
//! 3. the route `ws/chat/(?P<room_name>[A-Za-z0-9_-]{1,64})/$` on the percent-decoded path,
//!    else 404 (the legacy app answers 500: a declared divergence);
//! 4. the Django session and its user (`channels.auth.get_user`: no fallback keys), else 403;
//! 5. `Room.objects.get_or_create`, `group_add`, then `accept()` (101).
//!
//! A client whose `Sec-WebSocket-Protocol` lists `ferrochat.v1` gets it selected in the 101 and
//! is served by `chat::v1` (docs/protocol.md); any other gets exactly the legacy answer.
//!
//! Everything is checked before the 101, so a rejected handshake costs no socket task.

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::http::header::{
    CONNECTION, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use salvo::prelude::*;
use salvo::websocket::WebSocketUpgrade;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::chat::consumer::{self, Connection, MAX_CLIENT_FRAME};
use crate::chat::v1::{self, V1};
use crate::django::hosts::origin_allowed;
use crate::django::http::unquote;
use crate::django::room_name::RoomName;
use crate::ops::metrics::{RejectReason, metrics};

use super::limits::LimitHit;
use super::session::{FallbackKeys, SESSION_COOKIE_NAME, Session, get_user};
use super::{AppState, app_state, errors, host};

/// Per-socket buffers: tungstenite's default 128 KiB read buffer, allocated up front for every
/// connection, is what makes a default socket cost ~136 KiB. Clients send small frames (a chat
/// line), so 1 KiB reads serve them; a larger frame takes more reads, not more memory at rest.
/// The consumer feeds a batch of frames and flushes once; the write buffer (unallocated until a
/// socket first writes) goes out early only past 16 KiB. A slow reader is bounded by the room's
/// queue limit and the cap.
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_frame_size(Some(MAX_CLIENT_FRAME))
        .max_message_size(Some(MAX_CLIENT_FRAME))
}

/// Every request under `/ws/`.
#[handler]
pub async fn chat_socket(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Ok(state) = app_state(depot) else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    if !is_websocket_handshake(req) {
        // Daphne hands a plain request to Django, whose URLconf has no /ws/ route.
        if host::allowed_host(req, &state.settings.allowed_hosts, state.settings.debug).is_none() {
            errors::bad_request(res);
        } else {
            errors::not_found(res);
        }
        return;
    }
    if let Err(problem) = handshake_is_valid(req) {
        tracing::debug!(problem, "bad WebSocket handshake");
        res.status_code(StatusCode::BAD_REQUEST);
        return;
    }
    if state.chat.shutdown.is_cancelled() {
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
        return;
    }
    let origin = last_header(req, ORIGIN.as_str());
    if !origin_allowed(
        origin.as_deref(),
        &state.settings.allowed_hosts,
        state.settings.debug,
    ) {
        tracing::info!(origin = ?origin, path = req.uri().path(), "WebSocket rejected: Origin not allowed");
        metrics().ws_rejected(RejectReason::Origin);
        return reject(res);
    }
    let Some(room) = match_route(req.uri().path()) else {
        metrics().ws_rejected(RejectReason::Route);
        errors::not_found(res);
        return;
    };
    match accept(&state, req, res, room).await {
        Ok(()) => {}
        Err(Refusal::Anonymous) => {
            metrics().ws_rejected(RejectReason::Auth);
            reject(res);
        }
        Err(Refusal::Limit(hit)) => {
            tracing::warn!(client = %req.remote_addr(), path = req.uri().path(), "WebSocket rejected: {hit}");
            metrics().ws_rejected(RejectReason::Limit);
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            let _ = res.write_body(Vec::<u8>::new());
        }
        Err(Refusal::Database(e)) => {
            tracing::error!(error = %e, "WebSocket handshake failed on the database");
            errors::server_error(res);
        }
        Err(Refusal::Handshake(e)) => {
            tracing::debug!(error = %e, "WebSocket upgrade refused");
            res.status_code(e.code);
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("no logged-in user")]
    Anonymous,
    #[error(transparent)]
    Limit(#[from] LimitHit),
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    #[error("{0}")]
    Handshake(StatusError),
}

/// Steps 4 and 5: the session's user, the room, the membership, the 101.
async fn accept(
    state: &Arc<AppState>,
    req: &mut Request,
    res: &mut Response,
    room: RoomName,
) -> Result<(), Refusal> {
    let cookie = req
        .cookie(SESSION_COOKIE_NAME)
        .map(|c| c.value().to_owned());
    let mut session = Session::load(&state.db, &state.session_signer, cookie.as_deref()).await?;
    let Some(user) = get_user(state, &mut session, FallbackKeys::Ignore).await? else {
        return Err(Refusal::Anonymous);
    };
    let slot = state.connections.acquire(user.id)?;
    let stored = state.db.room_get_or_create(room.as_str()).await?;
    // Only a client that asks gets ferrochat.v1; any other gets the legacy answer unchanged.
    let wants_v1 = offers_v1(req);
    // group_add before accept(), as the legacy consumer: nothing sent to the room after this
    // point is missed (a v1 socket's catch-up relies on it).
    let membership = state.hub.join(&room);
    // Every ferrochat socket counts in presence; v1 sockets also get the room's events.
    let presence = state.live.enter(&room, &user.username);
    let v1 = wants_v1.then(|| V1 {
        after: after_param(req.uri().query()),
        events: state.live.subscribe(&room, &user.username),
        live: state.live.clone(),
    });
    // With Redis, the node's membership of the room's group (for its first local socket).
    state.chat.layer.joined(&room).await;
    let peer = super::access::client_addr(req);
    let conn = Connection {
        user_id: user.id,
        username: user.username,
        room_id: stored.id,
        membership,
        peer,
        path: req.uri().path().to_owned(),
    };
    let ctx = state.chat.clone();
    // Counted until the socket task ends (or the upgrade fails and the closure is dropped):
    // shutdown waits for it, since salvo's graceful stop does not see upgraded connections.
    let tracked = state.sockets.token();
    let mut upgrade = WebSocketUpgrade::with_config(socket_config());
    if v1.is_some() {
        upgrade = upgrade.protocols(&[v1::PROTOCOL]);
    }
    upgrade
        .upgrade(req, res, move |ws| async move {
            match v1 {
                Some(v1) => v1::run(ws, ctx, conn, v1).await,
                None => consumer::run(ws, ctx, conn).await,
            }
            drop(presence);
            drop(slot);
            drop(tracked);
        })
        .await
        .map_err(Refusal::Handshake)
}

/// Whether `Sec-WebSocket-Protocol` lists `ferrochat.v1` (comma lists, any number of headers).
fn offers_v1(req: &Request) -> bool {
    req.headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == v1::PROTOCOL)
}

/// `after=<id>` of the query string: a non-negative integer, else none (docs/protocol.md).
fn after_param(query: Option<&str>) -> Option<i64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "after")
        .and_then(|(_, value)| value.parse::<i64>().ok())
        .filter(|id| *id >= 0)
}

/// Channels answers a refused handshake with 403 (`WebsocketDenier`, or `close()` before
/// `accept()`).
fn reject(res: &mut Response) {
    res.status_code(StatusCode::FORBIDDEN);
    let _ = res.write_body(Vec::<u8>::new());
}

/// Daphne hands a request to its WebSocket protocol when its first `Upgrade` header is
/// `websocket` (`daphne/http_protocol.py`); the handshake is then checked in full.
fn is_websocket_handshake(req: &Request) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// The RFC 6455 checks salvo makes in `upgrade()` (autobahn makes them for Daphne), done first
/// so a malformed handshake costs no database work.
fn handshake_is_valid(req: &Request) -> Result<(), &'static str> {
    if req.method() != salvo::http::Method::GET {
        return Err("not GET");
    }
    let connection_upgrade = req.headers().get_all(CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    if !connection_upgrade {
        return Err("Connection has no upgrade");
    }
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("Sec-WebSocket-Version is not 13");
    }
    if req.headers().get(SEC_WEBSOCKET_KEY).is_none() {
        return Err("no Sec-WebSocket-Key");
    }
    Ok(())
}

/// The last value of a header, decoded as Latin-1 (as the ASGI scope carries it; Channels'
/// loop over the headers keeps the last Origin).
fn last_header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(name)
        .iter()
        .next_back()
        .map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect())
}

/// `URLRouter`: the percent-decoded path (Daphne's `unquote`), leading slashes stripped, must be
/// exactly `ws/chat/<name>/` (`re_path(r"ws/chat/(?P<room_name>[A-Za-z0-9_-]{1,64})/$")`, which
/// Django matches with `fullmatch`).
pub fn match_route(raw_path: &str) -> Option<RoomName> {
    let decoded = unquote(raw_path);
    let path = decoded.trim_start_matches('/');
    let name = path.strip_prefix("ws/chat/")?.strip_suffix('/')?;
    RoomName::parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_is_a_non_negative_integer_or_nothing() {
        assert_eq!(after_param(Some("after=42")), Some(42));
        assert_eq!(after_param(Some("x=1&after=0")), Some(0));
        assert_eq!(after_param(Some("after=-1")), None);
        assert_eq!(after_param(Some("after=abc")), None);
        assert_eq!(after_param(Some("after")), None);
        assert_eq!(after_param(None), None);
    }

    #[test]
    fn route_is_the_legacy_regex_on_the_decoded_path() {
        assert_eq!(
            match_route("/ws/chat/lobby/").map(|r| r.to_string()),
            Some("lobby".into())
        );
        assert_eq!(
            match_route("//ws/chat/A-b_9/").map(|r| r.to_string()),
            Some("A-b_9".into())
        );
        assert_eq!(
            match_route("/ws/chat/%6cobby/").map(|r| r.to_string()),
            Some("lobby".into())
        );
        assert_eq!(
            match_route("/ws%2Fchat%2Flobby%2F").map(|r| r.to_string()),
            Some("lobby".into())
        );
        let long = format!("/ws/chat/{}/", "x".repeat(64));
        assert!(match_route(&long).is_some());
        for bad in [
            "/ws/chat/lobby",
            "/ws/chat/lobby//",
            "/ws/chat//",
            "/ws/chat/lob%20by/",
            "/ws/chat/l%C3%A9/",
            "/ws/chat/a/b/",
            "/chat/lobby/",
            "/ws/chat/lobby/x",
            &format!("/ws/chat/{}/", "x".repeat(65)),
        ] {
            assert!(match_route(bad).is_none(), "{bad}");
        }
    }
}
