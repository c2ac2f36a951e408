//! The migration story: one room on a Daphne node of the legacy app and on ferrochat nodes at
//! once, on one PostgreSQL database and one Redis. Every client gets every message exactly once,
//! in send order per sender, while nodes leave and join; and a Redis restart mid-run.
//!
//! The legacy settings read only `REDIS_URL`, so Daphne and ferrochat share channels_redis'
//! default prefix `asgi`: the shared-Redis test uses a random database in 8..=15 and a random
//! room, and deletes that room's keys afterwards; the restart test owns a private `redis-server`.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use ferrochat::db::schema;
use support::redis_env::{PrivateRedis, Space, eventually, health, node_id, random_hex};
use support::ws::{Event, Stream, Ws, connect, logged_in, room_url};
use support::{Daphne, Legacy, TestDb, TestServer};

const WAIT: Duration = Duration::from_secs(20);
/// Messages per sender.
const EACH: usize = 50;
/// Messages each sender sends before the node change.
const PHASE_ONE: usize = 20;
/// Between two messages of one sender: 3 senders make about 100 messages a second, which the
/// Daphne node drains easily (beyond its channel capacity channels_redis would drop silently).
const SPACING: Duration = Duration::from_millis(30);

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn migrated_postgres() -> TestDb {
    let tdb = TestDb::postgres();
    let db = tdb.connect().await;
    schema::migrate(&db).await.expect("ferrochat migrate");
    db.close().await;
    tdb
}

fn daphne_room(daphne: &Daphne, room: &str) -> String {
    format!("ws://127.0.0.1:{}/ws/chat/{room}/", daphne.port)
}

/// `s<sender>-<i>` → `(sender, i)`.
fn parse_tag(frame: &str) -> (usize, usize) {
    let value: serde_json::Value =
        serde_json::from_str(frame).unwrap_or_else(|e| panic!("{e}: {frame}"));
    let message = value["message"].as_str().unwrap_or_default();
    message
        .strip_prefix('s')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(k, i)| Some((k.parse().ok()?, i.parse().ok()?)))
        .unwrap_or_else(|| panic!("not a test message: {frame}"))
}

/// One chat client: what it received over all its connections, in arrival order.
struct Member {
    name: &'static str,
    got: Arc<Mutex<Vec<(usize, usize)>>>,
    sink: SplitSink<Stream, Message>,
    reader: JoinHandle<Event>,
}

impl Member {
    async fn open(name: &'static str, url: &str, key: &str) -> Member {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (sink, reader) = Self::attach(url, key, got.clone()).await;
        Member {
            name,
            got,
            sink,
            reader,
        }
    }

    async fn attach(
        url: &str,
        key: &str,
        got: Arc<Mutex<Vec<(usize, usize)>>>,
    ) -> (SplitSink<Stream, Message>, JoinHandle<Event>) {
        let ws = connect(url, key).await;
        let (sink, stream) = ws.stream.split();
        (sink, tokio::spawn(read_all(stream, got)))
    }

    /// Reconnects (to another node) after the previous connection ended; returns how it ended.
    async fn reconnect(&mut self, url: &str, key: &str) -> Event {
        let (sink, reader) = Self::attach(url, key, self.got.clone()).await;
        self.sink = sink;
        let old = std::mem::replace(&mut self.reader, reader);
        tokio::time::timeout(WAIT, old)
            .await
            .expect("the old connection ended")
            .expect("reader task")
    }

    async fn say(&mut self, text: &str) {
        let frame = serde_json::json!({ "message": text }).to_string();
        self.sink
            .send(Message::text(frame))
            .await
            .unwrap_or_else(|e| panic!("{} cannot send: {e}", self.name));
    }

    fn received(&self) -> Vec<(usize, usize)> {
        self.got.lock().expect("lock").clone()
    }

    fn has_all(&self, wanted: &BTreeSet<(usize, usize)>) -> bool {
        let got: BTreeSet<(usize, usize)> = self.received().into_iter().collect();
        wanted.is_subset(&got)
    }
}

async fn read_all(mut stream: SplitStream<Stream>, got: Arc<Mutex<Vec<(usize, usize)>>>) -> Event {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => got.lock().expect("lock").push(parse_tag(t.as_str())),
            Some(Ok(Message::Close(frame))) => {
                // Reading on sends the reply to the close frame, as a browser does at once.
                let _ =
                    tokio::time::timeout(WAIT, async { while stream.next().await.is_some() {} })
                        .await;
                return match frame {
                    Some(f) => Event::Close(f.code.into(), f.reason.as_str().to_owned()),
                    None => Event::Close(1005, String::new()),
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Event::Gone,
        }
    }
}

/// Sender `k` sends `s<k>-<i>` for `range`, counting each message in `started` before it goes.
async fn send_run(
    member: &mut Member,
    k: usize,
    range: std::ops::Range<usize>,
    started: &[AtomicUsize; 3],
) {
    for i in range {
        started[k].store(i + 1, Ordering::SeqCst);
        member.say(&format!("s{k}-{i}")).await;
        tokio::time::sleep(SPACING).await;
    }
}

fn all_of(senders: &[usize], range: std::ops::Range<usize>) -> BTreeSet<(usize, usize)> {
    senders
        .iter()
        .flat_map(|&k| range.clone().map(move |i| (k, i)))
        .collect()
}

/// Every message at most once, and each sender's messages in send order.
fn assert_once_in_order(member: &Member) {
    let got = member.received();
    let mut last: [Option<usize>; 3] = [None; 3];
    for &(k, i) in &got {
        assert!(
            last[k].is_none_or(|prev| i > prev),
            "{}: s{k}-{i} after s{k}-{:?} (duplicate or out of order): {got:?}",
            member.name,
            last[k]
        );
        last[k] = Some(i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daphne_and_ferrochat_nodes_share_a_room_while_nodes_leave_and_join() {
    let room = format!("mix{}", random_hex(10));
    let group = format!("chat_{room}");
    let space = Space::legacy(std::slice::from_ref(&group));
    let tdb = migrated_postgres().await;
    let daphne = Daphne::start(
        Legacy::new(tdb.url())
            .env_remove("CHANNEL_LAYER")
            .env("REDIS_URL", &space.url()),
    )
    .await;
    let (n1, n2, n3) = (node_id("fa"), node_id("fb"), node_id("fc"));
    let f1 = TestServer::start(&tdb, &pairs(&space.ferrochat_env(&n1))).await;
    let f2 = TestServer::start(&tdb, &pairs(&space.ferrochat_env(&n2))).await;

    let mut keys = Vec::new();
    for name in ["sender0", "sender1", "sender2", "watcher"] {
        keys.push(logged_in(&f1, name).await.1);
    }
    let on_daphne = daphne_room(&daphne, &room);
    // Sender k and a watcher on each node: Daphne, ferrochat 1, ferrochat 2.
    let mut s0 = Member::open("sender0@daphne", &on_daphne, &keys[0]).await;
    let mut s1 = Member::open("sender1@f1", &room_url(&f1, &room), &keys[1]).await;
    let mut s2 = Member::open("sender2@f2", &room_url(&f2, &room), &keys[2]).await;
    let w0 = Member::open("watcher@daphne", &on_daphne, &keys[3]).await;
    let w1 = Member::open("watcher@f1", &room_url(&f1, &room), &keys[3]).await;
    let mut w2 = Member::open("watcher@f2", &room_url(&f2, &room), &keys[3]).await;
    // Two Daphne consumers, one channel for each ferrochat node.
    let members = space.members(&group).await;
    assert_eq!(members.len(), 4, "{members:?}");
    assert!(members.contains(&format!("specific.{n1}!{room}")));
    assert!(members.contains(&format!("specific.{n2}!{room}")));

    // Phase one: everybody everywhere.
    let started: [AtomicUsize; 3] = Default::default();
    tokio::join!(
        send_run(&mut s0, 0, 0..PHASE_ONE, &started),
        send_run(&mut s1, 1, 0..PHASE_ONE, &started),
        send_run(&mut s2, 2, 0..PHASE_ONE, &started),
    );
    let phase_one = all_of(&[0, 1, 2], 0..PHASE_ONE);
    eventually(WAIT, "every client has phase one", || async {
        [&s0, &s1, &s2, &w0, &w1, &w2]
            .iter()
            .all(|m| m.has_all(&phase_one))
    })
    .await;

    // Phase two: senders 0 and 1 keep going while ferrochat 2 stops, ferrochat 3 starts and the
    // clients of node 2 reconnect to node 3, where sender 2 goes on.
    let others = async {
        tokio::join!(
            send_run(&mut s0, 0, PHASE_ONE..EACH, &started),
            send_run(&mut s1, 1, PHASE_ONE..EACH, &started),
        );
    };
    let node_change = async {
        eventually(WAIT, "senders 0 and 1 are under way", || async {
            started[0].load(Ordering::SeqCst) >= PHASE_ONE + 5
                && started[1].load(Ordering::SeqCst) >= PHASE_ONE + 5
        })
        .await;
        // What node 2's clients must have before it goes: everything sent so far.
        let before: [usize; 2] = [0, 1].map(|k| started[k].load(Ordering::SeqCst));
        let sent_so_far: BTreeSet<(usize, usize)> = (0..2)
            .flat_map(|k| (0..before[k]).map(move |i| (k, i)))
            .collect();
        eventually(WAIT, "node 2's clients caught up", || async {
            s2.has_all(&sent_so_far) && w2.has_all(&sent_so_far)
        })
        .await;
        f2.stop().await;
        let f3 = TestServer::start(&tdb, &pairs(&space.ferrochat_env(&n3))).await;
        let ended = s2.reconnect(&room_url(&f3, &room), &keys[2]).await;
        assert_eq!(ended, Event::Close(1001, "Server shutting down".into()));
        let ended = w2.reconnect(&room_url(&f3, &room), &keys[3]).await;
        assert_eq!(ended, Event::Close(1001, "Server shutting down".into()));
        // Everything sent from now on reaches the reconnected clients.
        let after: [usize; 2] = [0, 1].map(|k| started[k].load(Ordering::SeqCst));
        send_run(&mut s2, 2, PHASE_ONE..EACH, &started).await;
        (before, after, f3)
    };
    let ((), (before, after, f3)) = tokio::join!(others, node_change);
    eprintln!("node change while senders 0/1 were at {before:?} (stop) .. {after:?} (reconnected)");

    let everything = all_of(&[0, 1, 2], 0..EACH);
    let mut for_moved = all_of(&[2], 0..EACH);
    for k in 0..2 {
        for_moved.extend((0..before[k]).map(|i| (k, i)));
        for_moved.extend((after[k]..EACH).map(|i| (k, i)));
    }
    eventually(
        WAIT,
        "every client has every message it must have",
        || async {
            [&s0, &s1, &w0, &w1].iter().all(|m| m.has_all(&everything))
                && [&s2, &w2].iter().all(|m| m.has_all(&for_moved))
        },
    )
    .await;
    // Late duplicates would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for member in [&s0, &s1, &s2, &w0, &w1, &w2] {
        assert_once_in_order(member);
    }
    for member in [&s0, &s1, &w0, &w1] {
        assert_eq!(member.received().len(), 3 * EACH, "{}", member.name);
    }

    // The ferrochat nodes leave the group when they stop; Daphne's consumers stay.
    f1.stop().await;
    f3.stop().await;
    let members = space.members(&group).await;
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(
        members.iter().all(|m| !m.contains(&n1) && !m.contains(&n3)),
        "{members:?}"
    );
    drop((s0, s1, s2, w0, w1, w2));
}

/// Reads the next text frame or end within `wait`, without panicking on silence.
async fn next_within(ws: &mut Ws, wait: Duration) -> Option<Event> {
    let read = async {
        loop {
            match ws.stream.next().await {
                Some(Ok(Message::Text(t))) => return Event::Text(t.as_str().to_owned()),
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Event::Close(f.code.into(), f.reason.as_str().to_owned()),
                        None => Event::Close(1005, String::new()),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Event::Gone,
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run() {
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let tdb = migrated_postgres().await;
    let daphne = Daphne::start(
        Legacy::new(tdb.url())
            .env_remove("CHANNEL_LAYER")
            .env("REDIS_URL", &url),
    )
    .await;
    let (n1, n2) = (node_id("ra"), node_id("rb"));
    let env = |node: &str| {
        vec![
            ("CHANNEL_LAYER".to_owned(), "redis".to_owned()),
            ("REDIS_URL".to_owned(), url.clone()),
            ("FERROCHAT_NODE_ID".to_owned(), node.to_owned()),
        ]
    };
    let f1 = TestServer::start(&tdb, &pairs(&env(&n1))).await;
    let f2 = TestServer::start(&tdb, &pairs(&env(&n2))).await;
    let (_client, key) = logged_in(&f1, "ann").await;
    let room = format!("rst{}", random_hex(8));
    let mut a1 = connect(&room_url(&f1, &room), &key).await;
    let mut a2 = connect(&room_url(&f1, &room), &key).await;
    let mut b = connect(&room_url(&f2, &room), &key).await;
    let mut d = connect(&daphne_room(&daphne, &room), &key).await;
    let mut d_idle = connect(&daphne_room(&daphne, &room), &key).await;

    async fn all_get(clients: &mut [&mut Ws], text: &str) {
        for ws in clients.iter_mut() {
            assert_eq!(ws.next_json().await["message"], text);
        }
    }
    a1.say("before from f1").await;
    all_get(
        &mut [&mut a1, &mut a2, &mut b, &mut d, &mut d_idle],
        "before from f1",
    )
    .await;
    d.say("before from daphne").await;
    all_get(
        &mut [&mut a1, &mut a2, &mut b, &mut d, &mut d_idle],
        "before from daphne",
    )
    .await;

    // Redis dies.
    redis.kill().await;
    for server in [&f1, &f2] {
        let base = server.url("");
        eventually(WAIT, "/healthz reports Redis unreachable", || async {
            health(&base).await["channel_layer_status"]
                .as_str()
                .is_some_and(|s| s.starts_with("unreachable: "))
        })
        .await;
    }
    // Each ferrochat node keeps serving its own sockets.
    a1.say("during from f1").await;
    all_get(&mut [&mut a1, &mut a2], "during from f1").await;
    b.say("during from f2").await;
    all_get(&mut [&mut b], "during from f2").await;
    // The Daphne node (channels_redis 4.2.0, redis-py 5.0.1) closes every socket with 1011:
    // the consumers' blocking receive (BZPOPMIN) raises ConnectionError, and a consumer whose
    // group_send fails dies the same way. The legacy room.js then shows "Connection lost".
    d.say("during from daphne").await;
    assert_eq!(
        next_within(&mut d, WAIT).await,
        Some(Event::Close(1011, String::new()))
    );
    assert_eq!(
        next_within(&mut d_idle, WAIT).await,
        Some(Event::Close(1011, String::new()))
    );

    // Redis comes back, empty: the ferrochat nodes re-register by themselves.
    redis.restart().await;
    for server in [&f1, &f2] {
        let base = server.url("");
        eventually(WAIT, "the node is back in the cluster", || async {
            health(&base).await["channel_layer_status"] == "ok"
        })
        .await;
    }
    a1.say("after from f1").await;
    all_get(&mut [&mut a1, &mut a2, &mut b], "after from f1").await;
    b.say("after from f2").await;
    all_get(&mut [&mut a1, &mut a2, &mut b], "after from f2").await;
    // Nothing twice: the outage messages were delivered locally, once, and not again.
    for ws in [&mut a1, &mut a2, &mut b] {
        ws.expect_silence(Duration::from_millis(500)).await;
    }

    // A reloaded Daphne page chats with the ferrochat nodes again. Its first handshakes after
    // the restart may fail with HTTP 500 (group_add on a pooled connection Redis closed raises
    // ConnectionError); the next ones succeed.
    let on_daphne = daphne_room(&daphne, &room);
    let mut refusals = Vec::new();
    let mut fresh = None;
    for _ in 0..20 {
        let cookie = format!("sessionid={key}");
        let origin = support::ws::origin_of(&on_daphne);
        match support::ws::try_connect(&on_daphne, Some(&cookie), Some(&origin)).await {
            Ok(ws) => {
                fresh = Some(ws);
                break;
            }
            Err(status) => refusals.push(status),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("Daphne handshakes refused after the restart before one succeeded: {refusals:?}");
    assert!(refusals.iter().all(|&s| s == 500), "{refusals:?}");
    let mut d2 = fresh.expect("a Daphne socket opens again");
    d2.say("after from daphne").await;
    all_get(
        &mut [&mut d2, &mut a1, &mut a2, &mut b],
        "after from daphne",
    )
    .await;
    a1.say("after from f1 to daphne").await;
    all_get(
        &mut [&mut d2, &mut a1, &mut a2, &mut b],
        "after from f1 to daphne",
    )
    .await;
    f1.stop().await;
    f2.stop().await;
}
