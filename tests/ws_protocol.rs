//! The chat socket's protocol against the running server with a real WebSocket client: the
//! legacy `ChatConsumer` frames byte for byte, rooms, history, ignored input, and the
//! handshake checks of the legacy `asgi.py` stack.

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use ferrochat::django::dates::isoformat;
use support::node::{Scrape, closes_counted};
use support::ws::{Event, connect, logged_in, origin_of, room_url, try_connect};
use support::{Backend, TestDb, TestServer};
use tokio_tungstenite::tungstenite::Message;

/// How long "nothing arrives" is watched for after an ignored frame. The following valid
/// message is the real check: it must be the very next frame.
const QUIET: Duration = Duration::from_millis(200);

async fn started(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::new(backend);
    if backend != Backend::Sqlite {
        let pool = db.connect().await;
        ferrochat::db::schema::migrate(&pool)
            .await
            .expect("migrate");
        pool.close().await;
    }
    let server = TestServer::start(&db, &[]).await;
    (db, server)
}

/// The saved messages of a room, oldest first.
async fn saved(server: &TestServer, room: &str) -> Vec<ferrochat::db::messages::StoredMessage> {
    let room = server
        .state
        .db
        .room_by_name(room)
        .await
        .expect("db")
        .expect("the room exists");
    server
        .state
        .db
        .messages_latest(room.id, 1000)
        .await
        .expect("db")
}

#[tokio::test]
async fn everyone_in_the_room_gets_the_legacy_frame_byte_for_byte() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (_a, alice_key) = logged_in(&server, "alice").await;
    let (_z, zoe_key) = logged_in(&server, "zo\u{eb}").await;
    let mut alice = connect(&room_url(&server, "lobby"), &alice_key).await;
    let mut zoe = connect(&room_url(&server, "lobby"), &zoe_key).await;

    // Non-ASCII, quotes, markup, an astral character, U+2028, and whitespace Python strips.
    alice
        .say("  h\u{e9}llo \"q\" <b> \u{1f600} \u{2028}x\u{3000}\t")
        .await;
    let for_alice = alice.next_text().await;
    let for_zoe = zoe.next_text().await;
    assert_eq!(
        for_alice, for_zoe,
        "the sender gets the same frame as the room"
    );
    let stored = saved(&server, "lobby").await;
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(m.content, "h\u{e9}llo \"q\" <b> \u{1f600} \u{2028}x");
    assert_eq!(
        for_alice,
        format!(
            r#"{{"id": {}, "message": "h\u00e9llo \"q\" <b> \ud83d\ude00 \u2028x", "username": "alice", "timestamp": "{}"}}"#,
            m.id,
            isoformat(&m.timestamp)
        )
    );

    // A timestamp with zero microseconds: Python's isoformat() writes no fraction at all.
    let whole_second = Utc
        .with_ymd_and_hms(2026, 11, 24, 4, 36, 42)
        .single()
        .expect("valid");
    server.state.chat.clock.pin(Some(whole_second));
    zoe.say("zero \u{b5}s").await;
    let frame = zoe.next_text().await;
    assert_eq!(alice.next_text().await, frame);
    // The pinned time sorts before the first message: take the newest id.
    let id = saved(&server, "lobby")
        .await
        .iter()
        .map(|m| m.id)
        .max()
        .expect("saved");
    assert_eq!(
        frame,
        format!(
            r#"{{"id": {id}, "message": "zero \u00b5s", "username": "zo\u00eb", "timestamp": "2026-11-24T04:36:42+00:00"}}"#
        )
    );
    server.state.chat.clock.pin(None);
    server.stop().await;
}

#[tokio::test]
async fn two_rooms_do_not_leak_into_each_other() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (_a, alice_key) = logged_in(&server, "alice").await;
    let (_b, bob_key) = logged_in(&server, "bob").await;
    let mut alice = connect(&room_url(&server, "lobby"), &alice_key).await;
    let mut bob = connect(&room_url(&server, "other"), &bob_key).await;
    let mut alice_in_other = connect(&room_url(&server, "other"), &alice_key).await;

    alice.say("for the lobby").await;
    assert_eq!(alice.next_json().await["message"], "for the lobby");
    bob.say("for the other room").await;
    assert_eq!(bob.next_json().await["message"], "for the other room");
    // The same user in the other room sees only that room.
    assert_eq!(
        alice_in_other.next_json().await["message"],
        "for the other room"
    );
    alice.expect_silence(QUIET).await;
    alice_in_other.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    assert_eq!(saved(&server, "lobby").await.len(), 1);
    assert_eq!(saved(&server, "other").await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_history_page_shows_what_was_sent() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (client, key) = logged_in(&server, "alice").await;
    let mut ws = connect(&room_url(&server, "lobby"), &key).await;
    let whole_second = Utc
        .with_ymd_and_hms(2026, 11, 24, 4, 36, 42)
        .single()
        .expect("valid");
    server.state.chat.clock.pin(Some(whole_second));
    for text in ["first <b>line</b>", "second & last"] {
        ws.say(text).await;
        ws.next_text().await;
    }
    server.state.chat.clock.pin(None);
    let page = client.get(&server.url("/chat/lobby/")).await;
    assert_eq!(page.status, 200);
    let first = page
        .body
        .find("first &lt;b&gt;line&lt;/b&gt;")
        .expect("the first message, escaped");
    let second = page
        .body
        .find("second &amp; last")
        .expect("the second message, escaped");
    assert!(first < second, "oldest first");
    assert!(
        page.body
            .contains(r#"<time datetime="2026-11-24T04:36:42+00:00">04:36</time>"#),
        "{}",
        page.body
    );
    for m in saved(&server, "lobby").await {
        assert!(
            page.body.contains(&format!(r#"data-id="{}""#, m.id)),
            "{}",
            page.body
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn ignored_input_is_dropped_and_the_connection_stays_open() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (_c, key) = logged_in(&server, "alice").await;
    let mut ws = connect(&room_url(&server, "lobby"), &key).await;
    let mut watcher = connect(&room_url(&server, "lobby"), &key).await;

    let over_limit = serde_json::json!({ "message": "\u{e9}".repeat(4001) }).to_string();
    let ignored: Vec<(&str, Message)> = vec![
        ("empty", Message::text(r#"{"message": ""}"#)),
        (
            "whitespace only",
            Message::text("{\"message\": \" \\t\\n\\u3000\\u001f \"}"),
        ),
        ("no message key", Message::text("{}")),
        ("over 4000 code points", Message::text(over_limit)),
        ("invalid JSON", Message::text("{\"message\": ")),
        ("not JSON at all", Message::text("hello")),
        ("a JSON list", Message::text(r#"["message", "x"]"#)),
        ("a JSON string", Message::text(r#""message""#)),
        ("a number", Message::text(r#"{"message": 42}"#)),
        ("null", Message::text(r#"{"message": null}"#)),
        ("a list", Message::text(r#"{"message": ["x"]}"#)),
        (
            "binary",
            Message::binary(br#"{"message": "binary"}"#.to_vec()),
        ),
    ];
    for (i, (case, frame)) in ignored.into_iter().enumerate() {
        ws.send(frame).await;
        ws.expect_silence(QUIET).await;
        let valid = format!("still here after {case}");
        ws.say(&valid).await;
        assert_eq!(ws.next_json().await["message"], valid, "{case}");
        assert_eq!(watcher.next_json().await["message"], valid, "{case}");
        assert_eq!(
            saved(&server, "lobby").await.len(),
            i + 1,
            "{case}: only valid messages are saved"
        );
    }
    // Exactly 4000 code points is allowed.
    let at_limit = "\u{1f600}".repeat(4000);
    ws.say(&at_limit).await;
    assert_eq!(ws.next_json().await["message"], at_limit.as_str());
    server.stop().await;
}

#[tokio::test]
async fn handshakes_are_refused_as_the_legacy_stack_refuses_them() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (client, key) = logged_in(&server, "alice").await;
    let url = room_url(&server, "lobby");
    let origin = origin_of(&url);
    let cookie = format!("sessionid={key}");

    assert!(
        try_connect(&url, Some(&cookie), Some(&origin))
            .await
            .is_ok(),
        "the good handshake works"
    );
    // Origin, checked first.
    assert_eq!(
        try_connect(&url, Some(&cookie), Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        try_connect(&url, Some(&cookie), None).await.err(),
        Some(403)
    );
    assert_eq!(
        try_connect(&url, Some(&cookie), Some("null")).await.err(),
        Some(403)
    );
    let bad_path = format!("ws://{}/ws/chat/bad.name/", server.addr);
    assert_eq!(
        try_connect(&bad_path, Some(&cookie), Some("http://evil.example"))
            .await
            .err(),
        Some(403),
        "Origin before route"
    );
    // The route: the legacy regex, trailing slash required.
    for path in [
        "/ws/chat/bad.name/",
        "/ws/chat/lobby",
        "/ws/chat/lobby/x/",
        "/ws/other/",
        &format!("/ws/chat/{}/", "x".repeat(65)),
    ] {
        let url = format!("ws://{}{path}", server.addr);
        assert_eq!(
            try_connect(&url, Some(&cookie), Some(&origin)).await.err(),
            Some(404),
            "{path}"
        );
        assert_eq!(
            try_connect(&url, None, Some(&origin)).await.err(),
            Some(404),
            "{path}: route before session"
        );
    }
    // The session.
    assert_eq!(
        try_connect(&url, None, Some(&origin)).await.err(),
        Some(403),
        "no cookie"
    );
    assert_eq!(
        try_connect(&url, Some("sessionid=nonsense"), Some(&origin))
            .await
            .err(),
        Some(403),
        "unknown key"
    );
    let index = client.get(&server.url("/")).await;
    let out = client
        .post(
            &server.url("/logout/"),
            &[("csrfmiddlewaretoken", &index.csrf_token())],
        )
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(
        try_connect(&url, Some(&cookie), Some(&origin)).await.err(),
        Some(403),
        "logged-out cookie"
    );

    // A plain request to the socket's path is an ordinary 404 page.
    let page = support::Client::new()
        .get(&server.url("/ws/chat/lobby/"))
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Not Found"), "{}", page.body);
    server.stop().await;
}

#[tokio::test]
async fn allowed_hosts_star_accepts_any_origin_and_none() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[("DJANGO_ALLOWED_HOSTS", "*")]).await;
    let (_c, key) = logged_in(&server, "alice").await;
    let url = room_url(&server, "lobby");
    let cookie = format!("sessionid={key}");
    for origin in [None, Some("http://anything.example"), Some("null")] {
        let mut ws = try_connect(&url, Some(&cookie), origin)
            .await
            .unwrap_or_else(|s| panic!("{origin:?}: {s}"));
        ws.say("hi").await;
        assert_eq!(ws.next_json().await["message"], "hi");
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_delivers_what_was_queued_then_closes_with_1001() {
    let (_db, server) = started(Backend::Sqlite).await;
    let (_a, alice_key) = logged_in(&server, "alice").await;
    let (_b, bob_key) = logged_in(&server, "bob").await;
    let mut alice = connect(&room_url(&server, "lobby"), &alice_key).await;
    let mut bob = connect(&room_url(&server, "lobby"), &bob_key).await;
    for i in 0..20 {
        alice.say(&format!("m{i}")).await;
    }
    // Once alice has her last echo, all twenty are in bob's queue (he has read nothing).
    for i in 0..20 {
        assert_eq!(alice.next_json().await["message"], format!("m{i}"));
    }
    server.stop().await;
    for i in 0..20 {
        assert_eq!(bob.next_json().await["message"], format!("m{i}"));
    }
    assert_eq!(bob.expect_close().await, 1001);
    assert_eq!(alice.expect_close().await, 1001);
    assert_eq!(bob.next_event().await, Event::Gone);
    closes_counted("shutdown", 2.0).await;
    assert_eq!(
        Scrape::local().value("ferrochat_ws_closed_total{reason=\"normal\"}"),
        0.0
    );
}

/// Saving and the frame's id and timestamp on the server databases too.
#[tokio::test]
async fn frames_match_the_saved_rows_on_postgresql_and_mysql() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let (_db, server) = started(backend).await;
        let (_c, key) = logged_in(&server, "alice").await;
        let mut ws = connect(&room_url(&server, "Lobby"), &key).await;
        for text in ["one", "caf\u{e9} \u{1f600}"] {
            ws.say(text).await;
            let frame = ws.next_text().await;
            let m = saved(&server, "Lobby").await.pop().expect("saved");
            assert_eq!(m.content, text, "{backend:?}");
            let expected = serde_json::json!({"id": m.id, "message": text, "username": "alice", "timestamp": isoformat(&m.timestamp)});
            assert_eq!(
                ferrochat::django::py_json::dumps(&expected),
                frame,
                "{backend:?}"
            );
        }
        server.stop().await;
    }
}

/// A client that sends a burst without waiting for its echoes (several of its messages then
/// await their save at once, batched with group commit) and closes straight after: every
/// message is saved once, in the order sent, and reaches the room in that order, the last ones
/// too (the legacy consumer finishes each `receive` before `disconnect`).
#[tokio::test]
async fn a_burst_then_close_is_saved_and_delivered_in_order_on_every_database() {
    const BURST: usize = 300;
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        let (_db, server) = started(backend).await;
        let (_a, alice_key) = logged_in(&server, "alice").await;
        let (_b, bob_key) = logged_in(&server, "bob").await;
        let mut alice = connect(&room_url(&server, "burst"), &alice_key).await;
        let mut bob = connect(&room_url(&server, "burst"), &bob_key).await;
        for i in 0..BURST {
            alice.say(&format!("m{i}")).await;
        }
        alice.send(Message::Close(None)).await;
        let mut last_id = 0;
        for i in 0..BURST {
            let frame = bob.next_json().await;
            assert_eq!(frame["message"], format!("m{i}"), "{backend:?}");
            let id = frame["id"].as_i64().expect("an integer id");
            assert!(id > last_id, "{backend:?}: ids follow the sending order");
            last_id = id;
        }
        bob.expect_silence(QUIET).await;
        let rows = saved(&server, "burst").await;
        let contents: Vec<String> = rows.iter().map(|m| m.content.clone()).collect();
        let expected: Vec<String> = (0..BURST).map(|i| format!("m{i}")).collect();
        assert_eq!(contents, expected, "{backend:?}: saved once each, in order");
        assert_eq!(rows.last().map(|m| m.id), Some(last_id), "{backend:?}");
        server.stop().await;
    }
}

/// The real binary on SIGTERM: every socket is closed with 1001 and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_socket_with_1001_and_exits() {
    use ferrochat::db::users::NewUser;
    use ferrochat::django::hashers::make_password_with;
    use ferrochat::django::validators::Username;

    let db = TestDb::sqlite();
    let pool = db.connect().await;
    ferrochat::db::schema::migrate(&pool)
        .await
        .expect("migrate");
    pool.create_user(NewUser {
        username: Username::parse("alice").expect("valid username"),
        email: String::new(),
        password_hash: make_password_with("correct horse battery", "testsaltTESTSALT123456", 1000),
        is_staff: false,
        is_superuser: false,
    })
    .await
    .expect("create user");
    pool.close().await;

    let port = support::server::free_port();
    let mut child = tokio::process::Command::new(support::ferrochat_bin())
        .args(["runserver", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db.url())
        .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
        .env("CHANNEL_LAYER", "memory")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start ferrochat runserver");
    let base = format!("http://127.0.0.1:{port}");
    let client = support::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "runserver did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        client
            .login(&base, "alice", "correct horse battery")
            .await
            .status,
        302
    );
    let key = client
        .cookie(&format!("{base}/"), "sessionid")
        .expect("session cookie");
    let url = format!("ws://127.0.0.1:{port}/ws/chat/lobby/");
    let mut first = connect(&url, &key).await;
    let mut second = connect(&url, &key).await;
    first.say("before the signal").await;
    assert_eq!(first.next_json().await["message"], "before the signal");

    let pid = child.id().expect("the server's pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    // The frame already queued for the second socket comes first, then the close.
    assert_eq!(second.next_json().await["message"], "before the signal");
    assert_eq!(second.expect_close().await, 1001);
    assert_eq!(first.expect_close().await, 1001);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "runserver exited with {status}");
}
