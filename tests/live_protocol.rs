//! `ferrochat.v1` (docs/protocol.md) against the real server: the subprotocol is selected only
//! for a client that asks, legacy sockets in the same room keep getting only legacy frames,
//! reconnecting clients catch up with no gap, presence, typing and deletions work on one node and
//! across ferrochat nodes through Redis, a killed node's users leave, and a Daphne node in the
//! same room keeps working.
//!
//! Tests named `cluster_*` start several servers (nextest's `heavy` group).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use ferrochat::db::Db;
use support::redis_env::{PrivateRedis, Space, node_id, random_hex};
use support::server::free_port;
use support::ws::{Event, FRAME_WAIT, Ws, connect, logged_in, origin_of, room_url};
use support::{Client, Daphne, Legacy, TestDb, TestServer};

const V1: &str = "ferrochat.v1";

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn new_room() -> String {
    format!("live{}", random_hex(10))
}

/// Opens the chat socket at `url` (query included) with the session `key`, offering
/// `protocols` in `Sec-WebSocket-Protocol`; returns it and the protocol the server selected.
async fn open(url: &str, key: &str, protocols: Option<&str>) -> (Ws, Option<String>) {
    let mut request = url.into_client_request().expect("a ws:// URL");
    let headers = request.headers_mut();
    let cookie = format!("sessionid={key}");
    headers.insert("cookie", HeaderValue::from_str(&cookie).expect("cookie"));
    let origin = origin_of(url);
    headers.insert("origin", HeaderValue::from_str(&origin).expect("origin"));
    if let Some(protocols) = protocols {
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocols).expect("protocols"),
        );
    }
    let (stream, response) =
        tokio::time::timeout(FRAME_WAIT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("the handshake to {url} took over {FRAME_WAIT:?}"))
            .unwrap_or_else(|e| panic!("the handshake to {url} failed: {e}"));
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    (Ws { stream }, selected)
}

/// A v1 socket; `after` is the `?after=` id.
async fn v1(base: &str, key: &str, after: Option<i64>) -> Ws {
    let url = match after {
        Some(id) => format!("{base}?after={id}"),
        None => base.to_owned(),
    };
    let (ws, selected) = open(&url, key, Some(V1)).await;
    assert_eq!(selected.as_deref(), Some(V1), "the server selects {V1}");
    ws
}

/// What a v1 socket gets right after the handshake.
#[derive(Debug)]
struct Hello {
    gap: Option<Json>,
    messages: Vec<Json>,
    last_id: Option<i64>,
    users: Vec<String>,
}

async fn hello(ws: &mut Ws) -> Hello {
    let mut first = ws.next_json().await;
    let gap = if first["type"] == "gap" {
        let gap = first;
        first = ws.next_json().await;
        Some(gap)
    } else {
        None
    };
    let mut messages = Vec::new();
    while first["type"] == "message" {
        messages.push(first);
        first = ws.next_json().await;
    }
    assert_eq!(first["type"], "caught_up", "{first}");
    let last_id = first["last_id"].as_i64();
    assert_eq!(
        last_id,
        messages.last().and_then(|m| m["id"].as_i64()),
        "caught_up names the last id replayed"
    );
    let presence = ws.next_json().await;
    assert_eq!(presence["type"], "presence", "{presence}");
    let users = names(&presence["users"]);
    Hello {
        gap,
        messages,
        last_id,
        users,
    }
}

fn names(list: &Json) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|u| u.as_str().expect("a username").to_owned())
        .collect()
}

/// The next frame of `kind`, skipping others (for live streams with chat traffic).
async fn next_of(ws: &mut Ws, kind: &str) -> Json {
    let deadline = Instant::now() + FRAME_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next_event_within(left).await {
            Event::Text(t) => {
                let frame: Json = serde_json::from_str(&t).expect("JSON");
                if frame["type"] == kind {
                    return frame;
                }
            }
            other => panic!("expected a {kind} frame, got {other:?}"),
        }
    }
}

/// Reads until a fresh `presence`, with the `join`s and `leave`s after it applied as a client
/// applies them, lists exactly `want`.
async fn converges_to(ws: &mut Ws, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|u| (*u).to_owned()).collect();
    let mut view: Option<BTreeSet<String>> = None;
    let deadline = Instant::now() + FRAME_WAIT;
    while view.as_ref() != Some(&want) {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame: Json = match ws.next_event_within(left).await {
            Event::Text(t) => serde_json::from_str(&t).expect("JSON"),
            other => panic!("presence is {view:?}, expected {want:?}; then {other:?}"),
        };
        let user = || frame["username"].as_str().expect("username").to_owned();
        match (frame["type"].as_str(), view.as_mut()) {
            (Some("presence"), _) => view = Some(names(&frame["users"]).into_iter().collect()),
            (Some("join"), Some(v)) => drop(v.insert(user())),
            (Some("leave"), Some(v)) => drop(v.remove(&user())),
            _ => {}
        }
    }
}

/// Every message of `room` in the database: id → (message, username), and the room's id.
async fn stored(db: &Db, room: &str) -> BTreeMap<i64, (String, String)> {
    let room = db.room_get_or_create(room).await.expect("room");
    db.messages_latest(room.id, 100_000)
        .await
        .expect("messages")
        .into_iter()
        .map(|m| (m.id, (m.content, m.username)))
        .collect()
}

fn as_entry(frame: &Json) -> (i64, (String, String)) {
    (
        frame["id"].as_i64().expect("id"),
        (
            frame["message"].as_str().expect("message").to_owned(),
            frame["username"].as_str().expect("username").to_owned(),
        ),
    )
}

/// A legacy frame: exactly the legacy consumer's four keys, in its order.
fn assert_legacy(frame: &str) -> Json {
    assert!(
        frame.starts_with("{\"id\": "),
        "not a legacy frame: {frame}"
    );
    let value: Json = serde_json::from_str(frame).expect("JSON");
    let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["id", "message", "username", "timestamp"], "{frame}");
    value
}

/// Waits until Redis lists `users` (and no one else) in `room`'s presence hash.
async fn registered(space_url: &str, prefix: &str, room: &str, users: &[&str]) {
    let mut conn = redis::Client::open(space_url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let key = format!("{prefix}:ferrochat:presence:room:{room}");
    let want: BTreeSet<String> = users.iter().map(|u| (*u).to_owned()).collect();
    let deadline = Instant::now() + FRAME_WAIT;
    loop {
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("HKEYS");
        let got: BTreeSet<String> = fields
            .iter()
            .filter_map(|f| f.split_once('|').map(|(_, u)| u.to_owned()))
            .collect();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "presence of {room} in Redis is {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` processes listen on the live channel of `prefix` on database `db`.
async fn listening(space_url: &str, prefix: &str, db: u32, n: i64) {
    let mut conn = redis::Client::open(space_url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let channel = format!("{prefix}:ferrochat:live:{db}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .expect("PUBSUB NUMSUB");
        if subscribers >= n {
            return;
        }
        assert!(Instant::now() < deadline, "nobody listens on {channel}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One node: the two protocols side by side in one room. Presence counts every ferrochat socket,
/// join/leave only for a user's first/last socket, typing goes to the other users' v1 sockets
/// (once per 2 s), unknown types are ignored, and the legacy socket sees only legacy frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_speaks_both_protocols_in_one_room() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (_, ann) = logged_in(&server, "ann").await;
    let (_, bob) = logged_in(&server, "bob").await;
    let (_, carol) = logged_in(&server, "carol").await;
    let room = new_room();
    let url = room_url(&server, &room);

    // A client that does not ask gets no subprotocol and nothing at connect.
    let (mut legacy, selected) = open(&url, &carol, None).await;
    assert_eq!(selected, None);

    let mut a = v1(&url, &ann, None).await;
    let h = hello(&mut a).await;
    assert_eq!(
        (h.gap.is_none(), h.messages.len(), h.last_id),
        (true, 0, None)
    );
    assert_eq!(h.users, ["ann", "carol"]);
    let mut b = v1(&url, &bob, None).await;
    assert_eq!(hello(&mut b).await.users, ["ann", "bob", "carol"]);
    assert_eq!(
        a.next_json().await,
        json!({"type": "join", "username": "bob"})
    );
    // A second socket of a user already in the room is no join.
    let mut b2 = v1(&url, &bob, None).await;
    hello(&mut b2).await;

    legacy.say("from the legacy socket").await;
    let frame = legacy.next_text().await;
    let plain = assert_legacy(&frame);
    for ws in [&mut a, &mut b, &mut b2] {
        let got = ws.next_json().await;
        let mut want = plain.clone();
        want["type"] = json!("message");
        assert_eq!(got, want, "the v1 frame is the legacy frame with a type");
    }

    b.send_text(r#"{"type": "typing"}"#).await;
    b.send_text(r#"{"type": "typing"}"#).await;
    assert_eq!(
        a.next_json().await,
        json!({"type": "typing", "username": "bob"})
    );
    a.send_text(r#"{"type": "dance"}"#).await;
    a.send_text(r#"{"type": "message", "message": "  from v1  "}"#)
        .await;
    let frame = a.next_json().await;
    assert_eq!(
        (frame["type"].as_str(), frame["message"].as_str()),
        (Some("message"), Some("from v1")),
        "the second typing was throttled, the unknown type ignored: {frame}"
    );
    assert_eq!(b.next_json().await, frame, "bob's own typing is not his");
    assert_eq!(b2.next_json().await, frame);
    let frame = legacy.next_text().await;
    assert_eq!(assert_legacy(&frame)["message"], "from v1");

    drop(b2.stream.close(None).await);
    a.expect_silence(Duration::from_millis(300)).await;
    drop(b.stream.close(None).await);
    assert_eq!(
        a.next_json().await,
        json!({"type": "leave", "username": "bob"})
    );
    drop(legacy.stream.close(None).await);
    assert_eq!(
        a.next_json().await,
        json!({"type": "leave", "username": "carol"})
    );
    server.stop().await;
}

/// A client back after 500 messages gets exactly them, in id order, then `caught_up`; with a
/// lower `FERROCHAT_CATCHUP_MAX` the replay starts with `gap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_client_gets_the_500_messages_it_missed() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (_, ann) = logged_in(&server, "ann").await;
    let (_, bob) = logged_in(&server, "bob").await;
    let room = new_room();
    let url = room_url(&server, &room);

    let mut a = v1(&url, &ann, None).await;
    hello(&mut a).await;
    a.say("before").await;
    let seen = a.next_json().await["id"].as_i64().expect("id");
    drop(a.stream.close(None).await);

    let mut sender = connect(&url, &bob).await;
    for i in 0..500 {
        sender.say(&format!("m{i}")).await;
    }
    for _ in 0..500 {
        sender.next_text().await;
    }

    let mut a = v1(&url, &ann, Some(seen)).await;
    let h = hello(&mut a).await;
    assert!(h.gap.is_none());
    let all = stored(&server.state.db, &room).await;
    let missed: Vec<(i64, (String, String))> = all
        .range(seen + 1..)
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    assert_eq!(missed.len(), 500);
    let replayed: Vec<(i64, (String, String))> = h.messages.iter().map(as_entry).collect();
    // The `after` message itself is within the late-commit window: replayed again, first.
    assert_eq!(replayed[0].0, seen);
    assert_eq!(
        replayed[1..],
        missed[..],
        "exactly the missed ones, in id order"
    );
    assert_eq!(h.last_id, Some(missed[499].0));
    // The live stream goes on after the replay.
    sender.say("live").await;
    assert_eq!(a.next_json().await["message"], "live");

    // A narrower server on the same database: at most 100 replayed, after a gap frame.
    let narrow = TestServer::start(
        &db,
        &[
            ("FERROCHAT_CATCHUP_MAX", "100"),
            ("FERROCHAT_CATCHUP_WINDOW", "0.001"),
        ],
    )
    .await;
    let mut c = v1(&room_url(&narrow, &room), &ann, Some(seen)).await;
    let h = hello(&mut c).await;
    let ids: Vec<i64> = h
        .messages
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    // "live" was stored since `all` was read.
    let now = stored(&server.state.db, &room).await;
    let newest: Vec<i64> = now.keys().rev().take(100).rev().copied().collect();
    assert_eq!(ids, newest);
    assert_eq!(
        h.gap,
        Some(json!({"type": "gap", "after": seen, "oldest": newest[0]}))
    );
    narrow.stop().await;
    server.stop().await;
}

/// Two ferrochat nodes on one Redis: presence, join/leave, typing, messages (with their ids) and
/// an admin deletion reach the v1 sockets of the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_presence_typing_and_deletions_cross_nodes() {
    let db = TestDb::sqlite();
    let space = Space::new();
    let f1 = TestServer::start(&db, &pairs(&space.ferrochat_env(&node_id("la")))).await;
    let f2 = TestServer::start(&db, &pairs(&space.ferrochat_env(&node_id("lb")))).await;
    listening(&space.url(), &space.prefix, space.db, 2).await;
    let (_, ann) = logged_in(&f1, "ann").await;
    let (_, bob) = logged_in(&f1, "bob").await;
    let room = new_room();

    let mut a = v1(&room_url(&f1, &room), &ann, None).await;
    assert_eq!(hello(&mut a).await.users, ["ann"]);
    registered(&space.url(), &space.prefix, &room, &["ann"]).await;
    let mut b = v1(&room_url(&f2, &room), &bob, None).await;
    assert_eq!(hello(&mut b).await.users, ["ann", "bob"]);
    assert_eq!(
        a.next_json().await,
        json!({"type": "join", "username": "bob"})
    );

    b.send_text(r#"{"type": "typing"}"#).await;
    assert_eq!(
        a.next_json().await,
        json!({"type": "typing", "username": "bob"})
    );
    a.say("across").await;
    let mine = a.next_json().await;
    assert_eq!(
        b.next_json().await,
        mine,
        "the other node's frame has the id"
    );
    let id = mine["id"].as_i64().expect("id");
    assert!(stored(&f1.state.db, &room).await.contains_key(&id));

    // The admin of node 2 deletes the message: both screens drop it.
    support::db::exec(
        &f1.state.db,
        "UPDATE auth_user SET is_staff = TRUE, is_superuser = TRUE WHERE username = 'bob'",
    )
    .await;
    let admin = Client::new();
    assert_eq!(
        admin
            .login(&f2.url(""), "bob", "correct horse battery")
            .await
            .status,
        302
    );
    let url = f2.url(&format!("/admin/chatapp/message/{id}/delete/"));
    let form = admin.get(&url).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = form.csrf_token();
    let done = admin
        .post(
            &url,
            &[("csrfmiddlewaretoken", token.as_str()), ("post", "yes")],
        )
        .await;
    assert_eq!(done.status, 302, "{}", done.body);
    let gone = json!({"type": "delete", "id": id});
    assert_eq!(a.next_json().await, gone);
    assert_eq!(b.next_json().await, gone);

    drop(b.stream.close(None).await);
    assert_eq!(
        a.next_json().await,
        json!({"type": "leave", "username": "bob"})
    );
    f1.stop().await;
    f2.stop().await;
}

/// While another node's client sends 200 messages a second, a v1 client drops and comes back
/// twice with `?after=`: after deduplication by id it holds exactly what the database stored,
/// each connection's replay in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_catch_up_while_another_node_sends_200_a_second() {
    const TOTAL: usize = 600;
    let db = TestDb::sqlite();
    let space = Space::new();
    let f1 = TestServer::start(&db, &pairs(&space.ferrochat_env(&node_id("lc")))).await;
    let f2 = TestServer::start(&db, &pairs(&space.ferrochat_env(&node_id("ld")))).await;
    let (_, ann) = logged_in(&f1, "ann").await;
    let (_, bob) = logged_in(&f1, "bob").await;
    let room = new_room();
    let on_f1 = room_url(&f1, &room);

    let mut a = v1(&on_f1, &ann, Some(0)).await;
    hello(&mut a).await;
    // The sender's socket on node 2, read all along so it never lags.
    let sender = connect(&room_url(&f2, &room), &bob).await;
    let (mut sink, mut stream) = sender.stream.split();
    let done = Arc::new(AtomicBool::new(false));
    let echoes = tokio::spawn(async move {
        let mut n = 0;
        while n < TOTAL {
            match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => n += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("the sender's socket ended after {n} echoes: {other:?}"),
            }
        }
    });
    let sending = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for i in 0..TOTAL {
                tick.tick().await;
                let frame = json!({ "message": format!("m{i}") }).to_string();
                sink.send(Message::text(frame)).await.expect("send");
            }
            done.store(true, Ordering::SeqCst);
            sink
        })
    };

    let mut held: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut reconnects = 0;
    loop {
        // Read for a while, then drop the connection and come back after more was sent.
        let until = Instant::now() + Duration::from_millis(700);
        while let Ok(event) = tokio::time::timeout(
            until.saturating_duration_since(Instant::now()),
            a.next_event(),
        )
        .await
        {
            let Event::Text(t) = event else {
                panic!("the v1 socket ended: {event:?}");
            };
            let frame: Json = serde_json::from_str(&t).expect("JSON");
            if frame["type"] == "message" {
                let (id, entry) = as_entry(&frame);
                held.insert(id, entry);
            }
        }
        if reconnects == 2 {
            break;
        }
        drop(a.stream.close(None).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = held.keys().next_back().copied().unwrap_or(0);
        a = v1(&on_f1, &ann, Some(after)).await;
        let h = hello(&mut a).await;
        assert!(h.gap.is_none());
        let ids: Vec<i64> = h
            .messages
            .iter()
            .map(|m| m["id"].as_i64().expect("id"))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "replay in id order: {ids:?}"
        );
        held.extend(h.messages.iter().map(as_entry));
        reconnects += 1;
    }
    let _sink = sending.await.expect("sender");
    assert!(done.load(Ordering::SeqCst));
    echoes.await.expect("all echoes");
    // The rest arrives live.
    let deadline = Instant::now() + FRAME_WAIT;
    while held.len() < TOTAL && Instant::now() < deadline {
        let frame = a.next_json().await;
        if frame["type"] == "message" {
            let (id, entry) = as_entry(&frame);
            held.insert(id, entry);
        }
    }
    let all = stored(&f1.state.db, &room).await;
    assert_eq!(all.len(), TOTAL);
    assert_eq!(held, all, "after deduplication: exactly what was stored");
    f1.stop().await;
    f2.stop().await;
}

/// A node killed without a goodbye: its users leave the other nodes' presence within
/// `FERROCHAT_PRESENCE_TTL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_killed_nodes_users_leave_within_the_ttl() {
    const TTL: Duration = Duration::from_secs(2);
    let db = TestDb::sqlite();
    let space = Space::new();
    let mut env = space.ferrochat_env(&node_id("le"));
    env.push(("FERROCHAT_PRESENCE_TTL".into(), "2".into()));
    let f1 = TestServer::start(&db, &pairs(&env)).await;
    let (_, ann) = logged_in(&f1, "ann").await;
    let (_, bob) = logged_in(&f1, "bob").await;
    let port = free_port();
    let mut env2 = space.ferrochat_env(&node_id("lf"));
    env2.push(("FERROCHAT_PRESENCE_TTL".into(), "2".into()));
    env2.push(("DATABASE_URL".into(), db.url().to_owned()));
    let node = support::node::Node::start(port, &pairs(&env2)).await;
    let room = new_room();

    let on_node = format!("ws://127.0.0.1:{port}/ws/chat/{room}/");
    let _bob_socket = connect(&on_node, &bob).await;
    registered(&space.url(), &space.prefix, &room, &["bob"]).await;
    let mut a = v1(&room_url(&f1, &room), &ann, None).await;
    assert_eq!(hello(&mut a).await.users, ["ann", "bob"]);

    // SIGKILL (the child is killed on drop): no shutdown, no leave of its own.
    let killed = Instant::now();
    drop(node);
    let leave = next_of(&mut a, "leave").await;
    assert_eq!(leave["username"], "bob");
    let took = killed.elapsed();
    assert!(
        took <= TTL + Duration::from_millis(500),
        "bob left {took:?} after the kill"
    );
    registered(&space.url(), &space.prefix, &room, &["ann"]).await;
    f1.stop().await;
}

/// Redis restarts empty: each node registers its users again and its v1 sockets get a fresh
/// `presence`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_presence_comes_back_after_a_redis_restart() {
    let mut redis = PrivateRedis::start().await;
    let db = TestDb::sqlite();
    let env = |node: &str| {
        vec![
            ("CHANNEL_LAYER".to_owned(), "redis".to_owned()),
            ("REDIS_URL".to_owned(), redis.url()),
            ("FERROCHAT_NODE_ID".to_owned(), node_id(node)),
            ("FERROCHAT_PRESENCE_TTL".to_owned(), "2".to_owned()),
        ]
    };
    let f1 = TestServer::start(&db, &pairs(&env("lg"))).await;
    let f2 = TestServer::start(&db, &pairs(&env("lh"))).await;
    let (_, ann) = logged_in(&f1, "ann").await;
    let (_, bob) = logged_in(&f1, "bob").await;
    let room = new_room();
    let _b = connect(&room_url(&f2, &room), &bob).await;
    registered(&redis.url(), "asgi", &room, &["bob"]).await;
    let mut a = v1(&room_url(&f1, &room), &ann, None).await;
    assert_eq!(hello(&mut a).await.users, ["ann", "bob"]);

    redis.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    registered(&redis.url(), "asgi", &room, &["ann", "bob"]).await;
    // Each node registers again on its own schedule: ann's fresh `presence` may come before bob
    // is back, with bob's `join` after it. What a client makes of the frames converges.
    converges_to(&mut a, &["ann", "bob"]).await;
    f1.stop().await;
    f2.stop().await;
}

/// A Daphne node in the room of two ferrochat nodes: its clients get every chat message (from
/// v1 clients too) and nothing else, it keeps serving while v1 sockets come and go and type, and
/// v1 clients get the Daphne node's messages with their stored ids. Daphne's sockets are not in
/// presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_daphne_node_in_the_room_keeps_working() {
    let room = new_room();
    let group = format!("chat_{room}");
    let space = Space::legacy(std::slice::from_ref(&group));
    let tdb = TestDb::postgres();
    {
        let db = tdb.connect().await;
        ferrochat::db::schema::migrate(&db)
            .await
            .expect("ferrochat migrate");
        db.close().await;
    }
    let daphne = Daphne::start(
        Legacy::new(tdb.url())
            .env_remove("CHANNEL_LAYER")
            .env("REDIS_URL", &space.url()),
    )
    .await;
    let f1 = TestServer::start(&tdb, &pairs(&space.ferrochat_env(&node_id("li")))).await;
    let f2 = TestServer::start(&tdb, &pairs(&space.ferrochat_env(&node_id("lj")))).await;
    listening(&space.url(), "asgi", space.db, 2).await;
    let (_, dave) = logged_in(&f1, "dave").await;
    let (_, ann) = logged_in(&f1, "ann").await;
    let (_, bob) = logged_in(&f1, "bob").await;
    let (_, erin) = logged_in(&f1, "erin").await;

    let on_daphne = format!("ws://127.0.0.1:{}/ws/chat/{room}/", daphne.port);
    let mut d = connect(&on_daphne, &dave).await;
    let mut e = connect(&room_url(&f2, &room), &erin).await;
    let mut a = v1(&room_url(&f1, &room), &ann, None).await;
    assert_eq!(
        hello(&mut a).await.users,
        ["ann", "erin"],
        "Daphne's sockets are not counted"
    );

    for i in 0..20 {
        d.say(&format!("daphne {i}")).await;
    }
    let mut from_daphne = Vec::new();
    for _ in 0..20 {
        from_daphne.push(assert_legacy(&d.next_text().await));
        assert_legacy(&e.next_text().await);
        let frame = a.next_json().await;
        assert_eq!(frame["type"], "message");
        from_daphne.push(frame);
    }
    let all = stored(&f1.state.db, &room).await;
    for frame in &from_daphne {
        let (id, entry) = as_entry(frame);
        assert_eq!(
            all.get(&id),
            Some(&entry),
            "the frame's id is the stored row's"
        );
    }

    // v1 traffic that is not a message: Daphne's client sees none of it.
    a.send_text(r#"{"type": "typing"}"#).await;
    let mut b = v1(&room_url(&f2, &room), &bob, None).await;
    hello(&mut b).await;
    assert_eq!(
        next_of(&mut a, "join").await,
        json!({"type": "join", "username": "bob"})
    );
    drop(b.stream.close(None).await);
    assert_eq!(
        next_of(&mut a, "leave").await,
        json!({"type": "leave", "username": "bob"})
    );
    for i in 0..10 {
        a.say(&format!("v1 {i}")).await;
    }
    for i in 0..10 {
        let frame = assert_legacy(&d.next_text().await);
        assert_eq!(frame["message"], format!("v1 {i}"));
        assert_eq!(assert_legacy(&e.next_text().await), frame);
    }
    // And Daphne still serves.
    d.say("still here").await;
    assert_eq!(assert_legacy(&d.next_text().await)["message"], "still here");
    d.expect_silence(Duration::from_millis(300)).await;
    f1.stop().await;
    f2.stop().await;
}
