//! ferrochat's Redis channel layer against the real `channels_redis` 4.2.0 of the legacy venv:
//! a Django-side `group_send` reaches ferrochat sockets, a ferrochat message reaches a Django
//! channel as the exact legacy event dict (plain and encrypted), memberships are kept tidy, and
//! a node without Redis at startup serves its own sockets and joins the cluster when Redis comes.
//!
//! Shared Redis tests use a random database in 8..=15 and a random prefix (deleted afterwards);
//! the startup test owns a private `redis-server`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use support::redis_env::{PrivateRedis, Py, Space, eventually, health, node_id, random_hex};
use support::server::free_port;
use support::ws::{connect, logged_in, room_url};
use support::{TestDb, TestServer, ferrochat_bin};

const WAIT: Duration = Duration::from_secs(15);

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn new_room() -> String {
    format!("r{}", random_hex(10))
}

/// The legacy consumer's event dict, as a Django node sends it.
fn django_event(id: i64, message: &str, username: &str) -> Json {
    json!({
        "type": "chat.message",
        "id": id,
        "message": message,
        "username": username,
        "timestamp": "2024-01-02T03:04:05.678901+00:00",
    })
}

/// Python's `repr()` of the event dict ferrochat must send for a socket frame it also sent.
fn python_repr(frame: &Json) -> String {
    format!(
        "{{'type': 'chat.message', 'id': {}, 'message': {}, 'username': {}, 'timestamp': '{}'}}",
        frame["id"],
        py_str(frame["message"].as_str().expect("message")),
        py_str(frame["username"].as_str().expect("username")),
        frame["timestamp"].as_str().expect("timestamp"),
    )
}

/// `repr()` of a plain ASCII str without quotes inside.
fn py_str(s: &str) -> String {
    assert!(s.is_ascii() && !s.contains('\'') && !s.contains('\\'));
    format!("'{s}'")
}

/// (1) Django → ferrochat and ferrochat → Django through channels_redis, with one membership per
/// node and room, the exact dict on the Django side, and the sender's own node served once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_and_ferrochat_share_a_room_through_channels_redis() {
    let space = Space::new();
    let node = node_id("fc");
    let db = TestDb::sqlite();
    let env = space.ferrochat_env(&node);
    let server = TestServer::start(&db, &pairs(&env)).await;
    let (_client, key) = logged_in(&server, "alice").await;
    let room = new_room();
    let group = format!("chat_{room}");
    let mut a = connect(&room_url(&server, &room), &key).await;
    let mut b = connect(&room_url(&server, &room), &key).await;
    // The first socket's handshake waited for the membership: one per node and room, whatever
    // the number of sockets.
    assert_eq!(
        space.members(&group).await,
        [format!("specific.{node}!{room}")]
    );

    let mut py = Py::start(&[space.url()], &space.prefix, json!({})).await;
    let py_channel = py.new_channel().await;
    py.group_add(&group, &py_channel).await;

    // A Django consumer's group_send: both sockets get the legacy frame, byte for byte.
    py.group_send(
        &group,
        django_event(7, "h\u{e9}llo \"w\u{f6}rld\" \u{1f44b} <b>", "bob"),
    )
    .await;
    let expected = r#"{"id": 7, "message": "h\u00e9llo \"w\u00f6rld\" \ud83d\udc4b <b>", "username": "bob", "timestamp": "2024-01-02T03:04:05.678901+00:00"}"#;
    assert_eq!(a.next_text().await, expected);
    assert_eq!(b.next_text().await, expected);
    assert!(py.receive(&py_channel, 5.0).await.is_some());

    // Nothing but chat.message is handed to sockets; the socket stays open.
    py.group_send(&group, json!({"type": "chat.other", "x": 1}))
        .await;
    py.group_send(&group, django_event(8, "after", "bob")).await;
    assert_eq!(a.next_json().await["id"], 8);
    assert_eq!(b.next_json().await["id"], 8);
    py.receive(&py_channel, 5.0).await;
    py.receive(&py_channel, 5.0).await;

    // A ferrochat socket's message: Django's channel gets the exact dict the legacy consumer
    // sends, and the node's own sockets get it exactly once.
    a.say("hi from ferrochat").await;
    let frame = a.next_json().await;
    assert_eq!(b.next_json().await, frame);
    assert_eq!(frame["message"], "hi from ferrochat");
    assert_eq!(frame["username"], "alice");
    assert_eq!(
        py.receive(&py_channel, 5.0).await,
        Some(python_repr(&frame))
    );
    a.expect_silence(Duration::from_millis(500)).await;
    b.expect_silence(Duration::from_millis(100)).await;
    let health = health(&server.url("")).await;
    assert_eq!(
        (
            health["status"].as_str(),
            health["channel_layer"].as_str(),
            health["channel_layer_status"].as_str()
        ),
        (Some("ok"), Some("redis"), Some("ok")),
        "{health}"
    );
    server.stop().await;
}

/// (2) With `symmetric_encryption_keys` on the Django side and `FERROCHAT_REDIS_ENCRYPTION_KEYS`
/// on ferrochat, both directions work and what Redis holds is a Fernet token. (Auto-detected
/// Redis, `CHANNEL_LAYER` unset, runs the same layer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_layer_interoperates() {
    let space = Space::new();
    let node = node_id("enc");
    let db = TestDb::sqlite();
    let mut env = space.ferrochat_env(&node);
    env.push((
        "FERROCHAT_REDIS_ENCRYPTION_KEYS".into(),
        "new-secret,old-secret".into(),
    ));
    // CHANNEL_LAYER unset (auto): Redis answers, so the Redis layer runs.
    env.retain(|(k, _)| k != "CHANNEL_LAYER");
    env.push(("CHANNEL_LAYER".into(), String::new()));
    let server = TestServer::start(&db, &pairs(&env)).await;
    assert_eq!(health(&server.url("")).await["channel_layer"], "redis");
    let (_client, key) = logged_in(&server, "carol").await;
    let room = new_room();
    let group = format!("chat_{room}");
    let mut ws = connect(&room_url(&server, &room), &key).await;

    // Python decrypts with any key of its list: here it encrypts with the old one.
    let mut py = Py::start(
        &[space.url()],
        &space.prefix,
        json!({"keys": ["old-secret", "new-secret"]}),
    )
    .await;
    let py_channel = py.new_channel().await;
    py.group_add(&group, &py_channel).await;
    py.group_send(&group, django_event(11, "sealed", "dave"))
        .await;
    assert_eq!(ws.next_json().await["message"], "sealed");
    py.receive(&py_channel, 5.0).await;

    ws.say("sealed reply").await;
    let frame = ws.next_json().await;
    let py_queue = format!(
        "{}{}",
        space.prefix,
        &py_channel[..=py_channel.find('!').expect("a process channel")]
    );
    let mut conn = space.conn().await;
    let stored: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg(&py_queue)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE");
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0][12..].starts_with(b"gAAAAA"),
        "12 random bytes + a Fernet token"
    );
    assert_eq!(
        py.receive(&py_channel, 5.0).await,
        Some(python_repr(&frame))
    );
    server.stop().await;
}

/// (3) Membership hygiene: refreshed before it expires, removed when the last local socket
/// leaves and at shutdown, and one left behind by an earlier process with the same node id is
/// removed when a message shows it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_follow_the_local_sockets() {
    let space = Space::new();
    let node = node_id("mem");
    let db = TestDb::sqlite();
    let mut env = space.ferrochat_env(&node);
    // A 4 s group expiry: refreshed every second.
    env.push(("FERROCHAT_REDIS_GROUP_EXPIRY".into(), "4".into()));
    let server = TestServer::start(&db, &pairs(&env)).await;
    let (_client, key) = logged_in(&server, "erin").await;
    let room = new_room();
    let group = format!("chat_{room}");
    let group_key = format!("{}:group:{group}", space.prefix);
    let ours = format!("specific.{node}!{room}");
    let mut conn = space.conn().await;
    let score = |mut conn: redis::aio::MultiplexedConnection| {
        let (group_key, ours) = (group_key.clone(), ours.clone());
        async move {
            redis::cmd("ZSCORE")
                .arg(&group_key)
                .arg(&ours)
                .query_async::<Option<f64>>(&mut conn)
                .await
                .expect("ZSCORE")
        }
    };

    let first = connect(&room_url(&server, &room), &key).await;
    let second = connect(&room_url(&server, &room), &key).await;
    let added = score(conn.clone()).await.expect("registered");
    eventually(WAIT, "the membership is refreshed", || {
        let conn = conn.clone();
        let score = &score;
        async move { score(conn).await.is_some_and(|s| s > added + 0.5) }
    })
    .await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(&group_key)
        .query_async(&mut conn)
        .await
        .expect("TTL");
    assert!((1..=4).contains(&ttl), "group key TTL {ttl}");

    // A membership of a room this node no longer has (a crash of an earlier process with this
    // node id): the first message for it removes it.
    let ghost = format!("chat_{}", new_room());
    let ghost_channel = format!("specific.{node}!{}", &ghost[5..]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{}:group:{ghost}", space.prefix))
        .arg(now)
        .arg(&ghost_channel)
        .query_async(&mut conn)
        .await
        .expect("ZADD");
    let mut py = Py::start(&[space.url()], &space.prefix, json!({})).await;
    py.group_send(&ghost, django_event(1, "anyone?", "bob"))
        .await;
    eventually(WAIT, "the stale membership is removed", || async {
        space.members(&ghost).await.is_empty()
    })
    .await;

    // One socket leaves: the membership stays; the last leaves: it goes.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(space.members(&group).await, std::slice::from_ref(&ours));
    drop(second);
    eventually(
        WAIT,
        "the last socket's leaving removes the membership",
        || async { space.members(&group).await.is_empty() },
    )
    .await;

    // Shutdown leaves every group and deletes the node's queue.
    let _again = connect(&room_url(&server, &room), &key).await;
    assert_eq!(space.members(&group).await, std::slice::from_ref(&ours));
    server.stop().await;
    assert!(space.members(&group).await.is_empty());
    let queue_exists: bool = redis::cmd("EXISTS")
        .arg(format!("{}specific.{node}!", space.prefix))
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    assert!(!queue_exists);
}

/// (4) `CHANNEL_LAYER=redis` with Redis down at startup: the server starts anyway, says so on
/// `/healthz`, chats with its own sockets, and joins the cluster once Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_without_redis_joins_when_it_comes() {
    let mut redis = PrivateRedis::reserve();
    let node = node_id("late");
    let db = TestDb::sqlite();
    let url = redis.url();
    let server = TestServer::start(
        &db,
        &[
            ("CHANNEL_LAYER", "redis"),
            ("REDIS_URL", &url),
            ("FERROCHAT_NODE_ID", &node),
        ],
    )
    .await;
    let base = server.url("");
    eventually(WAIT, "/healthz reports Redis unreachable", || async {
        let h = health(&base).await;
        h["status"] == "degraded"
            && h["channel_layer_status"]
                .as_str()
                .is_some_and(|s| s.starts_with("unreachable: "))
    })
    .await;

    let (_client, key) = logged_in(&server, "frank").await;
    let room = new_room();
    let mut a = connect(&room_url(&server, &room), &key).await;
    let mut b = connect(&room_url(&server, &room), &key).await;
    a.say("local while Redis is away").await;
    let frame = a.next_text().await;
    assert_eq!(b.next_text().await, frame);

    redis.restart().await;
    eventually(WAIT, "/healthz reports the layer up", || async {
        health(&base).await["channel_layer_status"] == "ok"
    })
    .await;
    let group = format!("chat_{room}");
    let mut conn = redis.conn().await;
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("asgi:group:{group}"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE");
    assert_eq!(members, [format!("specific.{node}!{room}")]);
    let mut py = Py::start(std::slice::from_ref(&url), "asgi", json!({})).await;
    py.group_send(&group, django_event(3, "now through Redis", "bob"))
        .await;
    assert_eq!(a.next_json().await["message"], "now through Redis");
    assert_eq!(b.next_json().await["message"], "now through Redis");
    server.stop().await;
}

/// (5) The binary: `runserver` keeps retrying with a log line per attempt instead of exiting,
/// and `check` reports each channels_redis host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runserver_retries_and_check_names_each_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let dead = format!("redis://127.0.0.1:{}/0", free_port());
    let mut child = tokio::process::Command::new(ferrochat_bin())
        .args(["runserver", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CHANNEL_LAYER", "redis")
        .env("REDIS_URL", &dead)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start ferrochat runserver");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("cannot reach Redis (attempt 2)");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no retry lines:\n{}",
        seen.join("\n")
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("cannot reach Redis (attempt 1)")),
        "{seen:?}"
    );
    let h = health(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["channel_layer_status"]
            .as_str()
            .is_some_and(|s| s.starts_with("unreachable: ")),
        "{h}"
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still running"
    );
    child.kill().await.expect("kill runserver");

    let space = Space::new();
    let out = tokio::process::Command::new(ferrochat_bin())
        .arg("check")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
        .env("CHANNEL_LAYER", "redis")
        .env("FERROCHAT_REDIS_HOSTS", format!("{},{dead}", space.url()))
        .env("FERROCHAT_NODE_ID", "web-1")
        .output()
        .await
        .expect("run check");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("Redis host #0: reachable at {}", space.url())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Redis host #1: UNREACHABLE at {dead}")),
        "{stdout}"
    );
    assert!(stdout.contains("FERROCHAT_NODE_ID: web-1"), "{stdout}");
    assert!(
        stdout.contains("Channel layer: channels_redis, prefix \"asgi\", capacity 100"),
        "{stdout}"
    );
    assert!(stderr.contains("(ferrochat.E003)"), "{stderr}");
}
