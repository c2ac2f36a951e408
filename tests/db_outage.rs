//! The database goes away mid-chat and nothing is lost: a private PostgreSQL restarted with
//! `pg_ctl restart -m fast` and a private MariaDB restarted, while clients chat; every message
//! sent meanwhile arrives once, in order, and no socket closes. An outage longer than
//! `FERROCHAT_DB_OUTAGE_HOLD_SECS` closes the senders' sockets with 1011 and the log names every
//! unsaved message. And `kill -9` in the middle of a flood: whatever a client received is in
//! the database (saved before broadcast).

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use ferrochat::db::{DatabaseUrl, Db, schema};
use support::node::closes_counted;
use support::private::{Certs, PrivateMariaDb, PrivatePostgres};
use support::redis_env::{eventually, health, random_hex};
use support::server::free_port;
use support::ws::{Event, Ws, connect, logged_in, room_url};
use support::{Client, TestDb, TestServer};

const WAIT: Duration = Duration::from_secs(30);

async fn migrate(raw: &str) {
    let url = DatabaseUrl::parse(raw, std::path::Path::new("/")).expect("URL");
    let db = Db::connect(&url).await.expect("connect");
    schema::migrate(&db).await.expect("migrate");
    db.close().await;
}

async fn ferrochat_on(database_url: &str, env: &[(&str, &str)]) -> TestServer {
    let placeholder = TestDb::sqlite();
    let mut all = vec![("DATABASE_URL", database_url)];
    all.extend_from_slice(env);
    TestServer::start(&placeholder, &all).await
}

fn message_of(frame: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(frame).expect("a JSON frame");
    v["message"].as_str().unwrap_or_default().to_owned()
}

/// Reads frames until `count` chat messages arrived; a close fails the test.
async fn read_messages(ws: &mut Ws, count: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match ws.next_event_within(WAIT).await {
            Event::Text(text) => got.push(message_of(&text)),
            other => panic!("after {} messages: {other:?}", got.len()),
        }
    }
    got
}

/// Alice sends `total` messages 25 ms apart while `outage` runs (started after a fifth of
/// them); Alice and Bob each get all of them, once, in order, and their sockets stay open.
async fn chat_through(server: &TestServer, total: usize, outage: impl FnOnce() + Send + 'static) {
    let room = format!("out{}", random_hex(8));
    let (_a, alice_key) = logged_in(server, "alice").await;
    let (_b, bob_key) = logged_in(server, "bob").await;
    let mut alice = connect(&room_url(server, &room), &alice_key).await;
    let mut bob = connect(&room_url(server, &room), &bob_key).await;
    let sent: Vec<String> = (0..total).map(|i| format!("m{i}")).collect();
    let mut outage = Some(outage);
    let mut outage_task = None;
    for (i, text) in sent.iter().enumerate() {
        if i == total / 5 {
            let run = outage.take().expect("once");
            outage_task = Some(tokio::task::spawn_blocking(run));
        }
        alice.say(text).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    outage_task
        .expect("the outage ran")
        .await
        .expect("the outage finished");
    assert_eq!(read_messages(&mut alice, total).await, sent);
    assert_eq!(read_messages(&mut bob, total).await, sent);
    alice.expect_silence(Duration::from_millis(300)).await;
    bob.expect_silence(Duration::from_millis(300)).await;
    let status = health(&server.url("")).await;
    assert_eq!(status["messages_held"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_chat_loses_nothing() {
    let certs = Certs::make();
    let pg = std::sync::Arc::new(PrivatePostgres::start(&certs));
    let ca = certs.ca_pem().display().to_string();
    let url = pg.url(&format!("sslmode=verify-full&sslrootcert={ca}"));
    migrate(&url).await;
    let server = ferrochat_on(&url, &[]).await;
    let restarted = pg.clone();
    chat_through(&server, 200, move || restarted.restart_fast()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restart_mid_chat_loses_nothing() {
    let certs = Certs::make();
    let mariadb = std::sync::Arc::new(std::sync::Mutex::new(PrivateMariaDb::start(&certs)));
    let ca = certs.ca_pem().display().to_string();
    let url = mariadb
        .lock()
        .expect("lock")
        .url(&format!("ssl_ca={ca}&ssl_verify_cert=true"));
    migrate(&url).await;
    let server = ferrochat_on(&url, &[]).await;
    let restarted = mariadb.clone();
    chat_through(&server, 200, move || {
        restarted.lock().expect("lock").restart();
    })
    .await;
    server.stop().await;
}

/// `ferrochat runserver` as its own process, its log (stderr) going to a file.
struct Process {
    child: tokio::process::Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(database_url: &str, env: &[(&str, &str)]) -> Process {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("ferrochat.log");
        let port = free_port();
        let child = tokio::process::Command::new(support::ferrochat_bin())
            .arg("runserver")
            .arg(format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
            .env("CHANNEL_LAYER", "memory")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("start ferrochat");
        let process = Process {
            child,
            port,
            log,
            _dir: dir,
        };
        let base = process.url("");
        eventually(WAIT, "ferrochat answers /healthz", || async {
            reqwest::get(format!("{base}/healthz")).await.is_ok()
        })
        .await;
        process
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn room(&self, room: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/chat/{room}/", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A user with a cheap hash, logged in on `base`; its session key.
async fn user_on(db: &Db, base: &str, name: &str) -> String {
    let password = "correct horse battery";
    db.create_user(ferrochat::db::users::NewUser {
        username: ferrochat::django::validators::Username::parse(name).expect("valid username"),
        email: String::new(),
        password_hash: ferrochat::django::hashers::make_password_with(
            password,
            "testsaltTESTSALT123456",
            1000,
        ),
        is_staff: false,
        is_superuser: false,
    })
    .await
    .expect("create user");
    let client = Client::new();
    let page = client.login(base, name, password).await;
    assert_eq!(page.status, 302, "login: {}", page.body);
    client
        .cookie(&format!("{base}/"), "sessionid")
        .expect("session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_beyond_the_hold_closes_with_1011_and_logs_every_unsaved_message() {
    let certs = Certs::make();
    let pg = PrivatePostgres::start(&certs);
    let url = pg.url("sslmode=require");
    migrate(&url).await;
    let server = Process::start(
        &url,
        &[
            ("FERROCHAT_DB_OUTAGE_HOLD_SECS", "2"),
            ("FERROCHAT_DB_CONNECT_TIMEOUT", "2"),
        ],
    )
    .await;
    let parsed = DatabaseUrl::parse(&url, std::path::Path::new("/")).expect("URL");
    let db = Db::connect(&parsed).await.expect("connect");
    let key = user_on(&db, &server.url(""), "carol").await;
    db.close().await;
    let room = format!("long{}", random_hex(8));
    let mut carol = connect(&server.room(&room), &key).await;
    carol.say("before").await;
    assert_eq!(read_messages(&mut carol, 1).await, ["before"]);

    pg.stop();
    for text in ["lost-1", "lost-2", "lost-3"] {
        carol.say(text).await;
    }
    // Not broadcast unsaved: the next thing the socket sees is its close.
    match carol.next_event_within(Duration::from_secs(60)).await {
        Event::Close(code, _) => assert_eq!(code, 1011),
        other => panic!("expected the socket to close with 1011, got {other:?}"),
    }
    let log = server.log();
    let unsaved: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not save a message"))
        .collect();
    assert_eq!(unsaved.len(), 3, "one line per unsaved message:\n{log}");
    for line in &unsaved {
        assert!(line.contains(&room) && line.contains("carol"), "{line}");
    }
    pg.start_again();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_flood_every_received_message_is_stored() {
    let tdb = TestDb::postgres();
    migrate(tdb.url()).await;
    let mut server = Process::start(tdb.url(), &[]).await;
    let db = tdb.connect().await;
    let room = format!("flood{}", random_hex(8));
    let mut senders = Vec::new();
    for k in 0..3 {
        let key = user_on(&db, &server.url(""), &format!("flooder{k}")).await;
        senders.push(connect(&server.room(&room), &key).await);
    }
    let watcher_key = user_on(&db, &server.url(""), "watcher").await;
    let mut watcher = connect(&server.room(&room), &watcher_key).await;

    // Several thousand messages as fast as the sockets take them.
    let flood = tokio::spawn(async move {
        for i in 0..1500 {
            for (k, ws) in senders.iter_mut().enumerate() {
                ws.send_text(&serde_json::json!({ "message": format!("f{k}-{i}") }).to_string())
                    .await;
            }
        }
        senders
    });
    let mut received = BTreeSet::new();
    while received.len() < 1000 {
        match watcher.next_event_within(WAIT).await {
            Event::Text(text) => received.insert(message_of(&text)),
            other => panic!("the flood stopped early: {other:?}"),
        };
    }
    // SIGKILL: no shutdown, no goodbye.
    server.child.start_kill().expect("kill -9");
    let _ = server.child.wait().await;
    // Whatever else was already on its way to the watcher.
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(2), watcher.stream.next()).await
    {
        if let Message::Text(text) = frame {
            received.insert(message_of(text.as_str()));
        }
    }
    flood.abort();
    let stored: BTreeSet<String> = support::db::strings(&db, "SELECT content FROM chatapp_message")
        .await
        .into_iter()
        .collect();
    let missing: Vec<&String> = received.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} of {} received messages are not in the database: {:?}",
        missing.len(),
        received.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    assert!(stored.len() >= received.len());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_locked_by_another_process_is_waited_out() {
    let tdb = TestDb::sqlite();
    let server = TestServer::start(&tdb, &[]).await;
    let room = format!("lock{}", random_hex(8));
    let (_a, key) = logged_in(&server, "alice").await;
    let mut alice = connect(&room_url(&server, &room), &key).await;
    alice.say("before").await;
    assert_eq!(read_messages(&mut alice, 1).await, ["before"]);

    // Another process holds an exclusive lock for longer than SQLite's 5 s busy timeout.
    let path = tdb.sqlite_path().expect("a SQLite file");
    let mut locker = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(8)\n\
             c.execute('COMMIT')\n",
        )
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = tokio::io::BufReader::new(locker.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
        .await
        .expect("the locker reports");
    assert_eq!(line.trim(), "locked");
    for text in ["during-1", "during-2", "during-3"] {
        alice.say(text).await;
    }
    // Held while the file is locked, then saved and broadcast in order; the socket stays open.
    assert_eq!(
        read_messages(&mut alice, 3).await,
        ["during-1", "during-2", "during-3"]
    );
    assert!(locker.wait().await.expect("the locker ends").success());
    let stored = support::db::strings(
        &server.state.db,
        "SELECT content FROM chatapp_message ORDER BY id",
    )
    .await;
    assert_eq!(stored, ["before", "during-1", "during-2", "during-3"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_not_held_the_socket_closes_with_1011() {
    let tdb = TestDb::sqlite();
    // A hold far longer than the test waits: only a refusal that is not held can pass.
    let server = TestServer::start(&tdb, &[("FERROCHAT_DB_OUTAGE_HOLD_SECS", "3600")]).await;
    let room = format!("gone{}", random_hex(8));
    let (_b, key) = logged_in(&server, "bob").await;
    let mut bob = connect(&room_url(&server, &room), &key).await;
    // Bob's account is deleted while his socket is open: his next message cannot be saved.
    support::db::exec(
        &server.state.db,
        "DELETE FROM auth_user WHERE username = 'bob'",
    )
    .await;
    bob.say("from a deleted user").await;
    match bob.next_event_within(WAIT).await {
        Event::Close(code, _) => assert_eq!(code, 1011),
        other => panic!("expected the socket to close with 1011, got {other:?}"),
    }
    assert_eq!(health(&server.url("")).await["messages_held"], 0);
    closes_counted("db_unavailable", 1.0).await;
    server.stop().await;
}
