//! Operating ferrochat as an operator would: Prometheus scrapes of a two-node cluster while a
//! chat runs, JSON logs that parse line by line, the access log behind a trusted proxy, and
//! each connection and message limit.

mod support;

use std::time::Duration;

use serde_json::Value as Json;
use support::node::{Node, Scrape};
use support::redis_env::{PrivateRedis, eventually};
use support::server::free_port;
use support::ws::{self, Event};
use support::{Client, TestDb, TestServer};

const PASSWORD: &str = "correct horse battery";

async fn add_user(db: &ferrochat::db::Db, username: &str) {
    db.create_user(ferrochat::db::users::NewUser {
        username: ferrochat::django::validators::Username::parse(username).expect("valid"),
        email: String::new(),
        password_hash: ferrochat::django::hashers::make_password_with(
            PASSWORD,
            "testsaltTESTSALT123456",
            1000,
        ),
        is_staff: false,
        is_superuser: false,
    })
    .await
    .expect("create user");
}

/// Logs in on `base`; the session key.
async fn log_in(base: &str, username: &str) -> String {
    let client = Client::new();
    let page = client.login(base, username, PASSWORD).await;
    assert_eq!(page.status, 302, "login as {username}: {}", page.body);
    client
        .cookie(&format!("{base}/"), "sessionid")
        .expect("a session cookie")
}

fn borrow(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn room_url(node: &Node, room: &str) -> String {
    format!("ws://127.0.0.1:{}/ws/chat/{room}/", node.port)
}

/// The sum of every sample of `family` (each label set).
fn family_total(scrape: &Scrape, family: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|(k, _)| *k == family || k.starts_with(&format!("{family}{{")))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_scrape_shows_every_metric_move_as_a_chat_runs() {
    let db = TestDb::sqlite();
    let mut redis = PrivateRedis::start().await;
    let (port_a, port_b) = (free_port(), free_port());
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let room = format!("ops{}", support::redis_env::random_hex(8));
    let common = |metrics: u16, node: &'static str| {
        vec![
            ("DATABASE_URL".to_owned(), db.url().to_owned()),
            ("CHANNEL_LAYER".to_owned(), "redis".to_owned()),
            ("REDIS_URL".to_owned(), redis.url()),
            ("FERROCHAT_NODE_ID".to_owned(), node.to_owned()),
            (
                "FERROCHAT_METRICS_ADDR".to_owned(),
                format!("127.0.0.1:{metrics}"),
            ),
            ("FERROCHAT_LOG_FORMAT".to_owned(), "json".to_owned()),
        ]
    };
    let mut env_a = common(metrics_a, "opsa");
    env_a.push(("FERROCHAT_MAX_CONNECTIONS_PER_USER".into(), "1".into()));
    env_a.push(("FERROCHAT_TRUSTED_PROXIES".into(), "127.0.0.0/8".into()));
    let env_b = common(metrics_b, "opsb");
    // A first: it creates the SQLite schema.
    let mut a = Node::start(port_a, &borrow(&env_a)).await;
    let mut b = Node::start(port_b, &borrow(&env_b)).await;
    let scrape_a = || Scrape::get(format!("http://127.0.0.1:{metrics_a}/metrics"));
    let scrape_b = || Scrape::get(format!("http://127.0.0.1:{metrics_b}/metrics"));
    let before_a = scrape_a().await;
    let before_b = scrape_b().await;

    // Never on the public port.
    let public = reqwest::get(a.url("/metrics")).await.expect("GET");
    assert_eq!(public.status().as_u16(), 404);

    let conn = db.connect().await;
    add_user(&conn, "alice").await;
    add_user(&conn, "bob").await;
    let failed = Client::new()
        .login(&a.url(""), "alice", "wrong password")
        .await;
    assert_eq!(failed.status, 200, "a failed login shows the form again");
    let alice = log_in(&a.url(""), "alice").await;
    let bob = log_in(&b.url(""), "bob").await;

    // A chat across the two nodes.
    let mut ws_a = ws::connect(&room_url(&a, &room), &alice).await;
    let mut ws_b = ws::connect(&room_url(&b, &room), &bob).await;
    let during_a = scrape_a().await;
    assert_eq!(during_a.value("ferrochat_ws_connections"), 1.0);
    assert_eq!(during_a.value("ferrochat_rooms_active"), 1.0);
    eventually(
        Duration::from_secs(10),
        "both nodes joined the room's group",
        || async { ws_probe(&redis, &room).await },
    )
    .await;
    ws_a.say("hello from a").await;
    for socket in [&mut ws_a, &mut ws_b] {
        assert_eq!(socket.next_json().await["message"], "hello from a");
    }
    ws_b.say("hello from b").await;
    for socket in [&mut ws_a, &mut ws_b] {
        assert_eq!(socket.next_json().await["message"], "hello from b");
    }

    // Every refusal, on node A.
    let url = room_url(&a, &room);
    let cookie = format!("sessionid={alice}");
    assert_eq!(
        ws::try_connect(&url, Some(&cookie), Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        ws::try_connect(&url, None, Some(&ws::origin_of(&url)))
            .await
            .err(),
        Some(403)
    );
    let bad_route = format!("ws://127.0.0.1:{port_a}/ws/chat/a%20b/");
    assert_eq!(
        ws::try_connect(&bad_route, Some(&cookie), Some(&ws::origin_of(&url)))
            .await
            .err(),
        Some(404)
    );
    // FERROCHAT_MAX_CONNECTIONS_PER_USER=1: alice already has her socket.
    assert_eq!(
        ws::try_connect(&url, Some(&cookie), Some(&ws::origin_of(&url)))
            .await
            .err(),
        Some(503)
    );
    // Closes: a frame over the limit (1009), and a client's goodbye.
    let mut big = ws::connect(&room_url(&b, &room), &bob).await;
    big.send_text(&"x".repeat(70 * 1024)).await;
    assert_eq!(big.expect_close().await, 1009);
    ws_a.stream.close(None).await.expect("close");

    let after_a = scrape_a().await;
    let after_b = scrape_b().await;
    let moved = |before: &Scrape, after: &Scrape, sample: &str| {
        assert!(
            after.value(sample) > before.samples.get(sample).copied().unwrap_or(0.0),
            "{sample} did not move: {:?} -> {}",
            before.samples.get(sample),
            after.value(sample)
        );
    };
    for sample in [
        "ferrochat_messages_received_total",
        "ferrochat_messages_saved_total",
        "ferrochat_deliveries_total",
        "ferrochat_message_save_seconds_count",
        "ferrochat_message_delivery_seconds_count",
        "ferrochat_logins_total{result=\"success\"}",
        "ferrochat_logins_total{result=\"failure\"}",
        "ferrochat_password_hash_seconds_count",
        "ferrochat_http_requests_total{handler=\"login\",status=\"302\"}",
        "ferrochat_http_request_duration_seconds_count{handler=\"login\"}",
        "ferrochat_channel_layer_messages_total{direction=\"sent\"}",
        "ferrochat_channel_layer_messages_total{direction=\"received\"}",
        "ferrochat_ws_rejected_total{reason=\"origin\"}",
        "ferrochat_ws_rejected_total{reason=\"auth\"}",
        "ferrochat_ws_rejected_total{reason=\"route\"}",
        "ferrochat_ws_rejected_total{reason=\"limit\"}",
        "process_cpu_seconds_total",
    ] {
        moved(&before_a, &after_a, sample);
    }
    for sample in [
        "ferrochat_messages_received_total",
        "ferrochat_deliveries_total",
        "ferrochat_channel_layer_messages_total{direction=\"received\"}",
        "ferrochat_ws_closed_total{reason=\"too_big\"}",
    ] {
        moved(&before_b, &after_b, sample);
    }
    eventually(
        Duration::from_secs(10),
        "node A counts the normal close",
        || async {
            let s = scrape_a().await;
            s.value("ferrochat_ws_closed_total{reason=\"normal\"}") >= 1.0
                && s.value("ferrochat_ws_connections") == 0.0
                && s.value("ferrochat_rooms_active") == 0.0
        },
    )
    .await;
    assert_eq!(before_a.value("ferrochat_channel_layer_up"), 1.0);
    for (name, s) in [("A", &after_a), ("B", &after_b)] {
        assert!(s.value("process_resident_memory_bytes") > 0.0, "{name}");
        assert!(s.value("process_open_fds") > 0.0, "{name}");
        assert!(
            family_total(s, "ferrochat_db_pool_connections") >= 1.0,
            "{name}: the pool has connections"
        );
    }

    // Redis goes away: the layer counts errors and says it is down.
    redis.kill().await;
    eventually(
        Duration::from_secs(15),
        "node B sees Redis down",
        || async {
            let s = scrape_b().await;
            s.value("ferrochat_channel_layer_up") == 0.0
                && s.value("ferrochat_channel_layer_errors_total")
                    > before_b.value("ferrochat_channel_layer_errors_total")
        },
    )
    .await;

    drop(ws_b);
    assert!(a.terminate().await, "node A exits cleanly on SIGTERM");
    assert!(b.terminate().await, "node B exits cleanly on SIGTERM");

    // FERROCHAT_LOG_FORMAT=json: every line is one JSON object.
    let log = a.log_text();
    let lines: Vec<Json> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let access: Vec<&Json> = lines
        .iter()
        .filter(|l| l["target"] == "ferrochat::access")
        .collect();
    let login = access
        .iter()
        .find(|l| l["path"] == "/login/" && l["method"] == "POST" && l["status"] == 302)
        .unwrap_or_else(|| panic!("no access line for the login in:\n{log}"));
    assert!(login["duration_ms"].as_f64().is_some(), "{login}");
    assert!(login["bytes"].as_u64().is_some(), "{login}");
    assert!(
        login["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1")),
        "{login}"
    );
    let session_end = access
        .iter()
        .find(|l| l["path"] == format!("/ws/chat/{room}/") && l.get("close_code").is_some())
        .unwrap_or_else(|| panic!("no access line for the socket's end in:\n{log}"));
    // The client closed without a code: 1005, as RFC 6455 reports it.
    assert_eq!(session_end["close_code"], 1005, "{session_end}");
    assert!(
        session_end["bytes"].as_u64().is_some_and(|b| b > 0),
        "{session_end}"
    );
}

/// Whether both nodes are members of the room's group in Redis.
async fn ws_probe(redis: &PrivateRedis, room: &str) -> bool {
    let mut conn = redis.conn().await;
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("asgi:group:chat_{room}"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    members.len() >= 2
}

#[tokio::test]
async fn the_client_address_comes_from_a_trusted_proxy_only() {
    let db = TestDb::sqlite();
    let trusting = free_port();
    let mut node = Node::start(
        trusting,
        &[
            ("DATABASE_URL", db.url()),
            ("CHANNEL_LAYER", "memory"),
            ("FERROCHAT_LOG_FORMAT", "json"),
            ("FERROCHAT_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await;
    let other_db = TestDb::sqlite();
    let wary = free_port();
    let mut other = Node::start(
        wary,
        &[
            ("DATABASE_URL", other_db.url()),
            ("CHANNEL_LAYER", "memory"),
            ("FERROCHAT_LOG_FORMAT", "json"),
            ("FERROCHAT_TRUSTED_PROXIES", "10.0.0.0/8"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    for n in [&node, &other] {
        let resp = http
            .get(n.url("/login/"))
            .header("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert!(node.terminate().await);
    assert!(other.terminate().await);
    let client_of = |n: &Node| -> String {
        n.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .find(|l| l["target"] == "ferrochat::access" && l["path"] == "/login/")
            .and_then(|l| l["client"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no access line:\n{}", n.log_text()))
    };
    // The right-most address that is not a trusted proxy.
    assert!(
        client_of(&node).starts_with("203.0.113.7:"),
        "{}",
        client_of(&node)
    );
    // The peer is not trusted there: the header is ignored.
    assert!(
        client_of(&other).starts_with("127.0.0.1:"),
        "{}",
        client_of(&other)
    );
}

#[tokio::test]
async fn a_bad_operator_variable_stops_the_server_naming_it() {
    for (var, value) in [
        ("FERROCHAT_LOG_FORMAT", "xml"),
        ("FERROCHAT_METRICS_ADDR", "nowhere"),
        ("FERROCHAT_WS_RATE", "fast"),
        ("FERROCHAT_TRUSTED_PROXIES", "10.0.0.0/99"),
    ] {
        let out = tokio::process::Command::new(support::ferrochat_bin())
            .args(["runserver", "127.0.0.1:0"])
            .env("CHANNEL_LAYER", "memory")
            .env("DATABASE_URL", "sqlite://:memory:")
            .env(var, value)
            .output()
            .await
            .expect("run ferrochat");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
}

// Limits, on an in-process server.

#[tokio::test]
async fn max_connections_refuses_the_handshake_beyond_it_with_503() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[("FERROCHAT_MAX_CONNECTIONS", "2")]).await;
    let (_, ann) = ws::logged_in(&server, "ann").await;
    let (_, ben) = ws::logged_in(&server, "ben").await;
    let url = ws::room_url(&server, "lobby");
    let first = ws::connect(&url, &ann).await;
    let _second = ws::connect(&url, &ben).await;
    let refused = ws::try_connect(
        &url,
        Some(&format!("sessionid={ben}")),
        Some(&ws::origin_of(&url)),
    )
    .await;
    assert_eq!(refused.err(), Some(503));
    // A closed socket gives its place back.
    drop(first);
    eventually(Duration::from_secs(10), "a place frees up", || async {
        server.state.connections.open() < 2
    })
    .await;
    let _third = ws::connect(&url, &ben).await;
    assert_eq!(
        ferrochat::ops::metrics::metrics()
            .encode()
            .lines()
            .find(|l| l.starts_with("ferrochat_ws_rejected_total{reason=\"limit\"}"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.to_owned()),
        Some("1".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn max_connections_per_user_refuses_that_users_next_socket_only() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[("FERROCHAT_MAX_CONNECTIONS_PER_USER", "2")]).await;
    let (_, ann) = ws::logged_in(&server, "ann").await;
    let (_, ben) = ws::logged_in(&server, "ben").await;
    let url = ws::room_url(&server, "lobby");
    let _a1 = ws::connect(&url, &ann).await;
    let _a2 = ws::connect(&ws::room_url(&server, "other"), &ann).await;
    let refused = ws::try_connect(
        &url,
        Some(&format!("sessionid={ann}")),
        Some(&ws::origin_of(&url)),
    )
    .await;
    assert_eq!(refused.err(), Some(503));
    let _b1 = ws::connect(&url, &ben).await;
    server.stop().await;
}

#[tokio::test]
async fn a_socket_over_its_message_rate_is_closed_with_1008() {
    let db = TestDb::sqlite();
    // A burst of 3, then one message every 100 s: the 4th message in a row is over.
    let server = TestServer::start(&db, &[("FERROCHAT_WS_RATE", "0.01,3")]).await;
    let (_, ann) = ws::logged_in(&server, "ann").await;
    let (_, ben) = ws::logged_in(&server, "ben").await;
    let url = ws::room_url(&server, "lobby");
    let mut fast = ws::connect(&url, &ann).await;
    let mut calm = ws::connect(&url, &ben).await;
    for i in 0..4 {
        fast.say(&format!("m{i}")).await;
    }
    let mut got = Vec::new();
    let code = loop {
        match fast.next_event().await {
            Event::Text(t) => got.push(t),
            Event::Close(code, _) => break code,
            Event::Gone => panic!("closed without a close frame"),
        }
    };
    assert_eq!(code, 1008);
    assert!(got.len() <= 3, "{got:?}");
    // The room goes on for everyone else.
    calm.say("still here").await;
    loop {
        let v = calm.next_json().await;
        if v["message"] == "still here" {
            break;
        }
    }
    eventually(Duration::from_secs(10), "the close is counted", || async {
        ferrochat::ops::metrics::metrics()
            .encode()
            .contains("ferrochat_ws_closed_total{reason=\"limit\"} 1\n")
    })
    .await;
    server.stop().await;
}

/// `GET /healthz` over a Unix socket; the status code.
async fn healthz_over_unix(path: &std::path::Path) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(path).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.ok()?;
    reply.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn runserver_listens_on_a_unix_socket_with_its_mode_and_replaces_a_stale_one() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("fc.sock");
    let listen = format!("unix:{}", socket.display());
    let env = [("DATABASE_URL", db.url()), ("CHANNEL_LAYER", "memory")];
    let start = || Node::start_with(&listen, None, &env, &["--socket-mode", "660"]);
    let up = |socket: std::path::PathBuf| async move {
        eventually(
            Duration::from_secs(60),
            "ferrochat answers on its socket",
            || {
                let socket = socket.clone();
                async move { healthz_over_unix(&socket).await == Some(200) }
            },
        )
        .await;
    };

    let mut first = start().await;
    up(socket.clone()).await;
    let mode = std::fs::metadata(&socket)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    // A second server on a live socket refuses to start, naming it.
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(support::ferrochat_bin())
            .args(["runserver", &listen])
            .envs(env)
            .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
            .output(),
    )
    .await
    .expect("the second server gives up at once")
    .expect("run ferrochat");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is in use by another server"), "{stderr}");
    assert!(first.terminate().await, "exits cleanly on SIGTERM");

    // A file left behind (as by a crash) is replaced.
    let _ = std::os::unix::net::UnixListener::bind(dir.path().join("other.sock"));
    if !socket.exists() {
        std::fs::rename(dir.path().join("other.sock"), &socket).expect("a stale socket file");
    }
    let mut again = start().await;
    up(socket.clone()).await;
    assert!(again.terminate().await);
}
