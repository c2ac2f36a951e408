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
//! Everything is checked before the 101, so a rejected handshake costs no socket task.

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::http::header::{CONNECTION, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use salvo::prelude::*;
use salvo::websocket::WebSocketUpgrade;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::chat::consumer::{self, Connection, MAX_CLIENT_FRAME};
use crate::django::http::{ParsedUrl, is_same_domain, urlparse};
use crate::django::room_name::RoomName;

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
        return reject(res);
    }
    let Some(room) = match_route(req.uri().path()) else {
        errors::not_found(res);
        return;
    };
    match accept(&state, req, res, room).await {
        Ok(()) => {}
        Err(Refusal::Anonymous) => reject(res),
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
    let stored = state.db.room_get_or_create(room.as_str()).await?;
    // group_add before accept(), as the legacy consumer: nothing sent to the room after this
    // point is missed.
    let membership = state.hub.join(&room);
    // With Redis, the node's membership of the room's group (for its first local socket).
    state.chat.layer.joined(&room).await;
    let peer = req.remote_addr().to_string();
    let conn = Connection {
        user_id: user.id,
        username: user.username,
        room_id: stored.id,
        membership,
        peer,
    };
    let ctx = state.chat.clone();
    // Counted until the socket task ends (or the upgrade fails and the closure is dropped):
    // shutdown waits for it, since salvo's graceful stop does not see upgraded connections.
    let tracked = state.sockets.token();
    WebSocketUpgrade::with_config(socket_config())
        .upgrade(req, res, move |ws| async move {
            consumer::run(ws, ctx, conn).await;
            drop(tracked);
        })
        .await
        .map_err(Refusal::Handshake)
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
    let decoded = percent_decode(raw_path);
    let path = decoded.trim_start_matches('/');
    let name = path.strip_prefix("ws/chat/")?.strip_suffix('/')?;
    RoomName::parse(name).ok()
}

/// `urllib.parse.unquote`: `%XX` sequences to bytes, then UTF-8 with replacement characters.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits make one byte: hi * 16 + lo <= 255.
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `AllowedHostsOriginValidator`: `OriginValidator` over `ALLOWED_HOSTS` (or, with `DEBUG` and
/// an empty list, `localhost`, `127.0.0.1`, `[::1]`). A missing Origin passes only with `*`.
/// Where Python would raise (an unparsable Origin or pattern) the legacy app answers 500;
/// here the Origin is simply not allowed.
pub fn origin_allowed(origin: Option<&str>, allowed_hosts: &[String], debug: bool) -> bool {
    let debug_defaults = [
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
    ];
    let allowed = if debug && allowed_hosts.is_empty() {
        &debug_defaults[..]
    } else {
        allowed_hosts
    };
    let parsed = match origin {
        None => return allowed.iter().any(|p| p == "*"),
        Some(raw) => match urlparse(raw) {
            Ok(parsed) => parsed,
            Err(_) => return false,
        },
    };
    allowed
        .iter()
        .any(|pattern| pattern == "*" || match_allowed_origin(&parsed, pattern))
}

/// `OriginValidator.match_allowed_origin`.
fn match_allowed_origin(origin: &ParsedUrl, pattern: &str) -> bool {
    let Ok(parsed_pattern) = urlparse(&pattern.to_lowercase()) else {
        return false;
    };
    let Some(origin_host) = hostname(&origin.netloc) else {
        return false;
    };
    if parsed_pattern.scheme.is_empty() {
        let pattern_host = match urlparse(&format!("//{pattern}")) {
            Ok(p) => hostname(&p.netloc).unwrap_or_else(|| pattern.to_owned()),
            Err(_) => return false,
        };
        return is_same_domain(&origin_host, &pattern_host);
    }
    let (Ok(origin_port), Ok(pattern_port)) = (default_port(origin), default_port(&parsed_pattern))
    else {
        return false;
    };
    parsed_pattern.scheme == origin.scheme
        && origin_port == pattern_port
        && hostname(&parsed_pattern.netloc).is_some_and(|h| is_same_domain(&origin_host, &h))
}

/// `OriginValidator.get_origin_port`: the explicit port, else 80/443 for http(s)/ws(s).
fn default_port(url: &ParsedUrl) -> Result<Option<u16>, ()> {
    match port(&url.netloc)? {
        Some(p) => Ok(Some(p)),
        None => Ok(match url.scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        }),
    }
}

/// `SplitResult._hostinfo`: (hostname, port) of a netloc, brackets removed.
fn hostinfo(netloc: &str) -> (&str, &str) {
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    match hostinfo.split_once('[') {
        Some((_, bracketed)) => {
            let (host, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, rest.split_once(':').map_or("", |(_, p)| p))
        }
        None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
    }
}

/// `SplitResult.hostname`: lower-cased (not the `%zone`), `None` when empty.
fn hostname(netloc: &str) -> Option<String> {
    let (host, _) = hostinfo(netloc);
    if host.is_empty() {
        return None;
    }
    Some(match host.split_once('%') {
        Some((addr, zone)) => format!("{}%{zone}", addr.to_lowercase()),
        None => host.to_lowercase(),
    })
}

/// `SplitResult.port`: ASCII digits in 0..=65535, or Python's `ValueError`.
fn port(netloc: &str) -> Result<Option<u16>, ()> {
    let (_, port) = hostinfo(netloc);
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let digits = port.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(());
    }
    digits
        .parse::<u32>()
        .map_or(Ok(Some(0)), |p| u16::try_from(p).map(Some).map_err(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origin_host_part_only_as_channels() {
        let allowed = hosts(&["localhost", "127.0.0.1"]);
        for ok in [
            "http://localhost:8000",
            "https://localhost",
            "http://127.0.0.1:1234",
            "http://LOCALHOST:8000",
            "ws://user:pw@localhost:9",
            "ftp://localhost",
            "http://localhost:notaport",
        ] {
            assert!(origin_allowed(Some(ok), &allowed, false), "{ok}");
        }
        for bad in [
            "http://evil.com",
            "null",
            "localhost",
            "http://localhost.evil.com",
            "http://[::1]:80",
            "http://[::1",
            "",
        ] {
            assert!(!origin_allowed(Some(bad), &allowed, false), "{bad}");
        }
        assert!(
            !origin_allowed(None, &allowed, false),
            "a missing Origin needs *"
        );
    }

    #[test]
    fn wildcards_subdomains_ipv6_and_schemes() {
        assert!(origin_allowed(None, &hosts(&["*"]), false));
        assert!(origin_allowed(Some("http://x"), &hosts(&["a", "*"]), false));
        let sub = hosts(&[".example.com"]);
        assert!(origin_allowed(
            Some("https://chat.example.com"),
            &sub,
            false
        ));
        assert!(origin_allowed(Some("https://example.com"), &sub, false));
        assert!(!origin_allowed(Some("https://badexample.com"), &sub, false));
        assert!(origin_allowed(
            Some("http://[::1]:8000"),
            &hosts(&["[::1]"]),
            false
        ));
        // With DEBUG and no hosts, Channels' own defaults (not Django's ".localhost").
        assert!(origin_allowed(Some("http://[::1]:8000"), &[], true));
        assert!(!origin_allowed(Some("http://a.localhost"), &[], true));
        assert!(!origin_allowed(Some("http://localhost"), &[], false));
        // A pattern with a scheme compares scheme and port too.
        let with_scheme = hosts(&["https://chat.example.com"]);
        assert!(origin_allowed(
            Some("https://chat.example.com:443"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("http://chat.example.com"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("https://chat.example.com:8443"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("https://chat.example.com:99999"),
            &with_scheme,
            false
        ));
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

    #[test]
    fn percent_decoding_is_unquote() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("%C3%A9%FF"), "é\u{fffd}");
    }

    #[test]
    fn python_port_rules() {
        assert_eq!(port("h:0080"), Ok(Some(80)));
        assert_eq!(port("h:"), Ok(None));
        assert_eq!(port("h:65536"), Err(()));
        assert_eq!(port("h:8a"), Err(()));
        assert_eq!(port("[::1]:443"), Ok(Some(443)));
        assert_eq!(
            hostname("u@[FE80::1%Zone]:1").as_deref(),
            Some("fe80::1%Zone")
        );
        assert_eq!(hostname(":80"), None);
    }
}
