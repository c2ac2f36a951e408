//! Redis Sentinel: a private master, replica and three sentinels; two ferrochat nodes and a
//! Daphne node of the legacy app (configured through a test-only settings module with a
//! channels_redis `{"sentinels": [...], "master_name": ...}` host) share one room. Then
//! `SENTINEL FAILOVER` mid-chat: both ferrochat nodes find the new master, and every message
//! sent after they report it reaches every ferrochat client.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use ferrochat::db::schema;
use support::private::redis::{SentinelGroup, cli};
use support::redis_env::{eventually, health, node_id, random_hex};
use support::ws::{Ws, connect, logged_in, room_url};
use support::{Daphne, Legacy, TestDb, TestServer, repo_root};

const WAIT: Duration = Duration::from_secs(60);

fn message_of(frame: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(frame).expect("a JSON frame");
    v["message"].as_str().unwrap_or_default().to_owned()
}

/// Everything a socket receives, collected in the background.
fn collect(ws: Ws) -> Arc<Mutex<Vec<String>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let (_, mut stream) = ws.stream.split();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(text) = frame {
                sink.lock().expect("lock").push(message_of(text.as_str()));
            }
        }
    });
    got
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn masters(server: &TestServer) -> serde_json::Value {
    health(&server.url("")).await["redis_masters"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_chat_loses_nothing_sent_after_the_switch() {
    let name = format!("fc{}", random_hex(6));
    let group = SentinelGroup::start(&name).await;
    let tdb = TestDb::postgres();
    let db = tdb.connect().await;
    schema::migrate(&db).await.expect("migrate");
    db.close().await;

    let sentinels = group.sentinels();
    let node_env = |node: &str| {
        vec![
            ("CHANNEL_LAYER".to_owned(), "redis".to_owned()),
            // The master's address comes from the sentinels; the database number from here.
            (
                "REDIS_URL".to_owned(),
                "redis://ignored.invalid:6379/0".to_owned(),
            ),
            ("FERROCHAT_REDIS_SENTINELS".to_owned(), sentinels.clone()),
            ("FERROCHAT_REDIS_SENTINEL_MASTER".to_owned(), name.clone()),
            ("FERROCHAT_NODE_ID".to_owned(), node.to_owned()),
        ]
    };
    let (env1, env2) = (node_env(&node_id("sa")), node_env(&node_id("sb")));
    let f1 = TestServer::start(&tdb, &as_refs(&env1)).await;
    let f2 = TestServer::start(&tdb, &as_refs(&env2)).await;
    let first = format!("127.0.0.1:{}", group.master_port);
    assert_eq!(masters(&f1).await, serde_json::json!([first]));

    // The legacy app behind the same sentinels, configured as channels_redis is for Sentinel.
    let legacy = Legacy::new(tdb.url())
        .env_remove("CHANNEL_LAYER")
        .env("DJANGO_SETTINGS_MODULE", "chat_project.sentinel_settings")
        .env("TEST_SENTINELS", &sentinels)
        .env("TEST_SENTINEL_MASTER", &name);
    std::fs::copy(
        repo_root().join("tests/django_settings/sentinel_settings.py"),
        legacy
            .project_dir()
            .join("chat_project/sentinel_settings.py"),
    )
    .expect("copy the test settings into the legacy project copy");
    let daphne = Daphne::start(legacy).await;

    let room = format!("sen{}", random_hex(8));
    let (_a, alice_key) = logged_in(&f1, "alice").await;
    let (_b, bob_key) = logged_in(&f2, "bob").await;
    let (_d, dora_key) = logged_in(&f1, "dora").await;
    let mut alice = connect(&room_url(&f1, &room), &alice_key).await;
    // Daphne's consumer may die when its Redis master goes away (the legacy consumer does):
    // after the failover only the ferrochat clients are checked.
    let bob_ws = connect(&room_url(&f2, &room), &bob_key).await;
    let mut dora = connect(
        &format!("ws://127.0.0.1:{}/ws/chat/{room}/", daphne.port),
        &dora_key,
    )
    .await;
    let bob = collect(bob_ws);

    // Before the failover: all three nodes share the room.
    alice.say("before").await;
    dora.say("from daphne").await;
    let dora_got = collect(dora);
    eventually(WAIT, "every client has the first messages", || async {
        let want = ["before", "from daphne"];
        [&bob, &dora_got].iter().all(|got| {
            let got = got.lock().expect("lock");
            want.iter().all(|w| got.iter().any(|g| g == w))
        })
    })
    .await;

    // Alice keeps sending while the sentinels fail over.
    let alice_got = collect(alice);
    let sent = Arc::new(AtomicUsize::new(0));
    let f1_url = room_url(&f1, &room);
    let sender_key = alice_key.clone();
    let counter = sent.clone();
    let sender = tokio::spawn(async move {
        // A second socket of Alice's on node 1, sending m0, m1, … until stopped.
        let mut ws = connect(&f1_url, &sender_key).await;
        for i in 0.. {
            counter.store(i, Ordering::SeqCst);
            let frame = serde_json::json!({ "message": format!("m{i}") }).to_string();
            if ws.stream.send(Message::text(frame)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    eventually(WAIT, "the chat is under way", || async {
        sent.load(Ordering::SeqCst) >= 10
    })
    .await;
    let out = cli(group.sentinel_ports[0], &["SENTINEL", "FAILOVER", &name]).await;
    assert!(out.contains("OK"), "SENTINEL FAILOVER: {out}");
    let new_master = format!("127.0.0.1:{}", group.replica_port);
    eventually(WAIT, "the sentinels name the replica", || async {
        group.current_master().await == group.replica_port
    })
    .await;
    eventually(WAIT, "both nodes report the new master", || async {
        let want = serde_json::json!([new_master]);
        masters(&f1).await == want && masters(&f2).await == want
    })
    .await;
    eventually(WAIT, "both nodes are back in the cluster", || async {
        health(&f1.url("")).await["channel_layer_status"] == "ok"
            && health(&f2.url("")).await["channel_layer_status"] == "ok"
    })
    .await;
    // `ferrochat check` names the master the sentinels give it.
    let out = tokio::process::Command::new(support::ferrochat_bin())
        .arg("check")
        .envs(env1.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("DATABASE_URL", tdb.url())
        .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
        .output()
        .await
        .expect("run ferrochat check");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains(&format!("reachable at master {new_master}")),
        "{report}"
    );
    let from = sent.load(Ordering::SeqCst) + 1;
    eventually(WAIT, "twenty more messages are sent", || async {
        sent.load(Ordering::SeqCst) >= from + 20
    })
    .await;
    sender.abort();
    let last = sent.load(Ordering::SeqCst).saturating_sub(1);
    let wanted: BTreeSet<String> = (from..last).map(|i| format!("m{i}")).collect();
    eventually(
        WAIT,
        "every ferrochat client has every message sent after the switch",
        || async {
            [&bob, &alice_got].iter().all(|got| {
                let got: BTreeSet<String> = got.lock().expect("lock").iter().cloned().collect();
                wanted.is_subset(&got)
            })
        },
    )
    .await;
    f1.stop().await;
    f2.stop().await;
    drop(daphne);
    drop(group);
}
