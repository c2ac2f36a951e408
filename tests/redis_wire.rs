//! ferrochat's channels_redis client against the real `channels_redis` 4.2.0 from the legacy venv,
//! on the shared Redis at 127.0.0.1:6379 (databases 8-15; every key of a test starts with its own
//! random prefix and is deleted afterwards, so tests never touch each other's keys).
//!
//! The Python side is `tests/redis_wire/py_layer.py`, a real `RedisChannelLayer` driven over
//! stdin/stdout; its replies carry `repr()` of what Python received, which shows exact types.

mod support;

use std::process::Stdio;
use std::time::Duration;

use ferrochat::django::chat_json::ChatEvent;
use ferrochat::layer::channels_redis::wire::{event_from_value, event_to_value};
use ferrochat::layer::channels_redis::{
    ChannelName, ChannelsRedis, ChannelsRedisConfig, ChannelsRedisError, GroupName, NodeId,
    ReceiverEvent, ReceiverOptions, consistent_hash,
};
use rand::RngExt;
use redis::AsyncCommands;
use rmpv::Value;
use serde_json::{Value as Json, json};
use tokio::process::Command;
use tokio::sync::mpsc;

use support::redis_env::Py;

const REDIS: &str = "redis://127.0.0.1:6379";

// ---------------------------------------------------------------------------------- helpers

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)[..n].to_owned()
}

/// One test's slice of Redis: a database in 8..=15 and a key prefix nobody else uses. Dropping it
/// deletes every key with the prefix (also when the test panics).
struct Space {
    dbs: Vec<u32>,
    prefix: String,
}

impl Space {
    fn new(hosts: usize) -> Space {
        let first = rand::rng().random_range(8..=15u32);
        let dbs = (0..hosts as u32).map(|i| 8 + (first - 8 + i) % 8).collect();
        Space {
            dbs,
            prefix: format!("asgitest{}", random_hex(10)),
        }
    }

    fn url(&self, i: usize) -> String {
        format!("{REDIS}/{}", self.dbs[i])
    }

    fn urls(&self) -> Vec<String> {
        (0..self.dbs.len()).map(|i| self.url(i)).collect()
    }

    fn config(&self) -> ChannelsRedisConfig {
        ChannelsRedisConfig {
            hosts: self.urls(),
            prefix: self.prefix.clone(),
            ..ChannelsRedisConfig::default()
        }
    }

    async fn raw(&self, i: usize) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url(i))
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw Redis connection")
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        for i in 0..self.dbs.len() {
            let Ok(mut conn) = redis::Client::open(self.url(i)).and_then(|c| c.get_connection())
            else {
                continue;
            };
            let keys: Vec<String> = match redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut conn)
            {
                Ok(keys) => keys,
                Err(_) => continue,
            };
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}

fn chat_event(id: i64) -> ChatEvent {
    ChatEvent {
        id,
        message: "héllo \"wörld\" 👋 <b>".into(),
        username: "alice".into(),
        timestamp: "2024-01-02T03:04:05.678901+00:00".into(),
    }
}

/// The same event as Python sends it (legacy consumer's dict literal, key order included).
fn chat_event_json(id: i64) -> Json {
    let e = chat_event(id);
    json!({"type": "chat.message", "id": e.id, "message": e.message, "username": e.username, "timestamp": e.timestamp})
}

/// What Python's repr() of that dict looks like.
fn chat_event_repr(id: i64) -> String {
    format!(
        "{{'type': 'chat.message', 'id': {id}, 'message': 'héllo \"wörld\" 👋 <b>', \
         'username': 'alice', 'timestamp': '2024-01-02T03:04:05.678901+00:00'}}"
    )
}

fn node(tag: &str) -> NodeId {
    NodeId::parse(&format!("{tag}{}", random_hex(8))).expect("valid node id")
}

fn group(name: &str) -> GroupName {
    GroupName::parse(name).expect("valid group")
}

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).expect("valid channel")
}

fn fast() -> ReceiverOptions {
    ReceiverOptions {
        pop_timeout: Duration::from_secs(1),
        batch: 100,
    }
}

/// The next event, failing after `secs`.
async fn next_event(rx: &mut mpsc::Receiver<ReceiverEvent>, secs: u64) -> ReceiverEvent {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .expect("an event in time")
        .expect("receiver still running")
}

async fn next_message(rx: &mut mpsc::Receiver<ReceiverEvent>) -> (String, Value) {
    match next_event(rx, 10).await {
        ReceiverEvent::Message { channel, message } => (channel, message),
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn assert_quiet(rx: &mut mpsc::Receiver<ReceiverEvent>, millis: u64) {
    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(millis), rx.recv()).await {
        panic!("unexpected event {event:?}");
    }
}

// ------------------------------------------------------------------------------------ tests

/// (1) A Daphne-side `group_send` reaches a ferrochat channel in the group with the exact dict;
/// a Python `send()` to the ferrochat channel (str `__asgi_channel__`) arrives too.
#[tokio::test]
async fn python_group_send_reaches_a_rust_channel() {
    let space = Space::new(1);
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let node = node("py2rs");
    let lobby = node.channel("lobby").expect("channel");
    layer
        .group_add(&group("chat_lobby"), &lobby)
        .await
        .expect("group_add");
    let (tx, mut rx) = mpsc::channel(64);
    let receiver = layer.spawn_receiver(&node, fast(), tx);

    let mut py = Py::start(&space.urls(), &space.prefix, json!({})).await;
    let py_channel = py.new_channel().await;
    py.group_add("chat_lobby", &py_channel).await;
    py.group_send("chat_lobby", chat_event_json(7)).await;

    let (to, message) = next_message(&mut rx).await;
    assert_eq!(to, format!("specific.{node}!lobby"));
    assert_eq!(
        message,
        event_to_value(&chat_event(7)),
        "exact dict: types, values and key order"
    );
    assert_eq!(event_from_value(&message), Some(chat_event(7)));
    assert_eq!(py.receive(&py_channel, 5.0).await, Some(chat_event_repr(7)));

    py.call(json!({"op": "send", "channel": lobby.as_str(), "message": chat_event_json(8)}))
        .await;
    let (to, message) = next_message(&mut rx).await;
    assert_eq!(
        (to.as_str(), message),
        (lobby.as_str(), event_to_value(&chat_event(8)))
    );

    // After group_discard Python's group_send no longer writes to our queue.
    layer
        .group_discard(&group("chat_lobby"), &lobby)
        .await
        .expect("discard");
    py.group_send("chat_lobby", chat_event_json(9)).await;
    assert_eq!(py.receive(&py_channel, 5.0).await, Some(chat_event_repr(9)));
    assert_quiet(&mut rx, 1500).await;
    assert_eq!(
        (receiver.stats().received(), receiver.stats().dropped()),
        (2, 0)
    );
    receiver.shutdown().await;
}

/// (2) A ferrochat `group_send` is received by Python's `channel_layer.receive` with the exact
/// event dict, and the stored bytes are Python's `packb` of it behind 12 random bytes.
#[tokio::test]
async fn rust_group_send_is_received_by_python_with_the_exact_dict() {
    let space = Space::new(1);
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let mut py = Py::start(&space.urls(), &space.prefix, json!({})).await;
    let py_channel = py.new_channel().await;
    py.group_add("chat_lobby", &py_channel).await;
    let node = node("rs2py");
    let ours = node.channel("lobby").expect("channel");
    layer
        .group_add(&group("chat_lobby"), &ours)
        .await
        .expect("group_add");

    let report = layer
        .group_send(&group("chat_lobby"), &event_to_value(&chat_event(42)))
        .await
        .expect("group_send");
    assert_eq!(
        (report.members, report.keys, report.over_capacity),
        (2, 2, 0)
    );

    // Byte layout of what Python will read.
    let py_key = layer.queue_key(ferrochat::layer::channels_redis::non_local_name(
        &py_channel,
    ));
    let mut raw = space.raw(0).await;
    let members: Vec<Vec<u8>> = raw.zrange(&py_key, 0, -1).await.expect("zrange");
    assert_eq!(members.len(), 1);
    let mut with_target = chat_event_json(42);
    with_target["__asgi_channel__"] = json!([py_channel]);
    let py_hex = py
        .call(json!({"op": "packb", "message": with_target}))
        .await["hex"]
        .as_str()
        .expect("hex")
        .to_owned();
    assert_eq!(
        hex::encode(&members[0][12..]),
        py_hex,
        "msgpack identical to Python's packb"
    );
    let ttl: i64 = raw.ttl(&py_key).await.expect("ttl");
    assert!((55..=60).contains(&ttl), "queue TTL is expiry: {ttl}");

    assert_eq!(
        py.receive(&py_channel, 5.0).await,
        Some(chat_event_repr(42))
    );

    // Our own node is a member too: the broadcast comes back to it once.
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(42)))
    );

    // A direct send() to a Python channel: __asgi_channel__ as a str, stripped on receipt.
    let odd = Value::Map(vec![
        (Value::from("type"), Value::from("chat.direct")),
        (Value::from("n"), Value::from(-70000)),
        (Value::from("f"), Value::F64(0.1)),
        (Value::from("blob"), Value::Binary(vec![0, 255])),
        (Value::from("none"), Value::Nil),
        (
            Value::from("list"),
            Value::Array(vec![Value::from(1), Value::from("a"), Value::Boolean(true)]),
        ),
    ]);
    layer.send(&channel(&py_channel), &odd).await.expect("send");
    assert_eq!(
        py.receive(&py_channel, 5.0).await.as_deref(),
        Some(
            "{'type': 'chat.direct', 'n': -70000, 'f': 0.1, 'blob': b'\\x00\\xff', 'none': None, 'list': [1, 'a', True]}"
        )
    );
    receiver.shutdown().await;
}

/// (3) `symmetric_encryption_keys` on both sides, both directions; a layer without the keys
/// drops what it cannot read.
#[tokio::test]
async fn encrypted_layers_interoperate() {
    let space = Space::new(1);
    let keys = vec!["new-secret".to_owned(), "old-secret".to_owned()];
    let config = ChannelsRedisConfig {
        symmetric_encryption_keys: keys.clone(),
        ..space.config()
    };
    let layer = ChannelsRedis::connect(config).await.expect("connect");
    let mut py = Py::start(&space.urls(), &space.prefix, json!({"keys": keys})).await;
    let py_channel = py.new_channel().await;
    py.group_add("chat_vault", &py_channel).await;
    let node = node("enc");
    let ours = node.channel("vault").expect("channel");
    layer
        .group_add(&group("chat_vault"), &ours)
        .await
        .expect("group_add");
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);

    py.group_send("chat_vault", chat_event_json(1)).await;
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(1)))
    );
    assert_eq!(py.receive(&py_channel, 5.0).await, Some(chat_event_repr(1)));

    let report = layer
        .group_send(&group("chat_vault"), &event_to_value(&chat_event(2)))
        .await
        .expect("group_send");
    assert_eq!(report.keys, 2);
    let py_key = layer.queue_key(ferrochat::layer::channels_redis::non_local_name(
        &py_channel,
    ));
    let members: Vec<Vec<u8>> = space
        .raw(0)
        .await
        .zrange(&py_key, 0, -1)
        .await
        .expect("zrange");
    assert!(
        members[0][12..].starts_with(b"gAAAAA"),
        "12 random bytes + an ASCII Fernet token"
    );
    assert_eq!(py.receive(&py_channel, 5.0).await, Some(chat_event_repr(2)));
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(2)))
    );
    receiver.shutdown().await;

    // A ferrochat node configured without the keys drops the tokens, and keeps going.
    let plain = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = plain.spawn_receiver(&node, fast(), tx);
    py.group_send("chat_vault", chat_event_json(3)).await;
    assert_quiet(&mut rx, 1500).await;
    assert_eq!(receiver.stats().dropped(), 1);
    receiver.shutdown().await;
}

/// (4) Capacity: full queues miss group sends silently (on either side), `send()` to a full
/// queue is `ChannelFull` (on either side), and what was accepted is delivered in order.
#[tokio::test]
async fn over_capacity_sends_are_dropped_like_channels_redis() {
    let space = Space::new(1);
    let config = ChannelsRedisConfig {
        capacity: 3,
        ..space.config()
    };
    let layer = ChannelsRedis::connect(config).await.expect("connect");
    let mut py = Py::start(&space.urls(), &space.prefix, json!({"capacity": 3})).await;
    let py_channel = py.new_channel().await;
    py.group_add("cap", &py_channel).await;
    let node = node("cap");
    let ours = node.channel("cap").expect("channel");
    layer
        .group_add(&group("cap"), &ours)
        .await
        .expect("group_add");

    // Nobody reads yet: three fit in each queue, the rest are dropped.
    let mut over = Vec::new();
    for id in 0..5 {
        let report = layer
            .group_send(&group("cap"), &event_to_value(&chat_event(id)))
            .await
            .expect("group_send");
        over.push(report.over_capacity);
    }
    assert_eq!(over, [0, 0, 0, 2, 2]);
    py.group_send("cap", chat_event_json(99)).await; // Python drops it too (INFO log only)
    let mut raw = space.raw(0).await;
    for key in [
        layer.queue_key(&node.non_local_name()),
        layer.queue_key(ferrochat::layer::channels_redis::non_local_name(
            &py_channel,
        )),
    ] {
        let n: usize = raw.zcard(&key).await.expect("zcard");
        assert_eq!(n, 3, "{key}");
    }
    match layer
        .send(&channel(&py_channel), &event_to_value(&chat_event(100)))
        .await
    {
        Err(ChannelsRedisError::ChannelFull { capacity: 3, .. }) => {}
        other => panic!("expected ChannelFull, got {other:?}"),
    }
    let reply = py
        .call(json!({"op": "send", "channel": ours.as_str(), "message": chat_event_json(101)}))
        .await;
    assert_eq!(reply["error"], "ChannelFull");

    // Draining delivers exactly the accepted three, in send order, on both sides.
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);
    for id in 0..3 {
        assert_eq!(
            next_message(&mut rx).await,
            (ours.to_string(), event_to_value(&chat_event(id)))
        );
        assert_eq!(
            py.receive(&py_channel, 5.0).await,
            Some(chat_event_repr(id))
        );
    }
    assert_quiet(&mut rx, 1500).await;
    assert_eq!(py.receive(&py_channel, 0.5).await, None);

    // Drained, the queue takes messages again.
    py.group_send("cap", chat_event_json(5)).await;
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(5)))
    );
    receiver.shutdown().await;
}

/// (5) Two Redis hosts: every name goes to the host Python picks, and messages cross between
/// the layers whichever shard their group and queues live on.
#[tokio::test]
async fn consistent_hashing_over_two_hosts_matches_python() {
    // The hash function itself, for many names and ring sizes.
    let space = Space::new(2);
    let mut py = Py::start(&space.urls(), &space.prefix, json!({})).await;
    let mut names: Vec<String> = (0..300).map(|i| format!("chat_room{i}")).collect();
    names.extend((0..300).map(|_| format!("specific.{}!", random_hex(32))));
    names.extend(["".into(), "x".into(), "chat_".into(), "héllo".into()]);
    for ring in [1usize, 2, 3, 5, 8, 13] {
        let reply = py
            .call(json!({"op": "hash", "names": names, "ring": ring}))
            .await;
        let python: Vec<usize> = serde_json::from_value(reply["shards"].clone()).expect("shards");
        let rust: Vec<usize> = names.iter().map(|n| consistent_hash(n, ring)).collect();
        assert_eq!(rust, python, "ring of {ring}");
    }

    // Real routing over two databases (= two hosts, in the same order on both sides).
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let (node_a, node_b) = {
        let mut found = (None, None);
        while found.0.is_none() || found.1.is_none() {
            let n = node("sh");
            match layer.shard_of(&n.non_local_name()) {
                0 => found.0 = Some(n),
                _ => found.1 = Some(n),
            }
        }
        (
            found.0.expect("shard 0 node"),
            found.1.expect("shard 1 node"),
        )
    };
    let groups: Vec<String> = (0..24).map(|i| format!("chat_shard{i}")).collect();
    let mut raw = [space.raw(0).await, space.raw(1).await];
    let mut used = [0, 0];
    for g in &groups {
        let a = node_a.channel("r").expect("channel");
        layer.group_add(&group(g), &a).await.expect("group_add");
        let b = node_b.channel("r").expect("channel");
        layer.group_add(&group(g), &b).await.expect("group_add");
        let key = layer.group_key(&group(g));
        let python = consistent_hash(g, 2);
        let on: Vec<bool> = vec![
            raw[0].exists(&key).await.expect("exists"),
            raw[1].exists(&key).await.expect("exists"),
        ];
        assert!(
            on[python] && !on[1 - python],
            "{key} should be on host {python} only: {on:?}"
        );
        used[python] += 1;
    }
    assert!(
        used[0] > 0 && used[1] > 0,
        "both hosts hold groups: {used:?}"
    );

    // Python group_send into every group: each node's queue fills on its own shard.
    for (i, g) in groups.iter().enumerate() {
        py.group_send(g, chat_event_json(i as i64)).await;
    }
    for (n, shard) in [(&node_a, 0usize), (&node_b, 1usize)] {
        let key = layer.queue_key(&n.non_local_name());
        let here: usize = raw[shard].zcard(&key).await.expect("zcard");
        let there: usize = raw[1 - shard].zcard(&key).await.expect("zcard");
        assert_eq!(
            (here, there),
            (groups.len(), 0),
            "{key} lives on host {shard}"
        );
    }
    let (tx, mut rx) = mpsc::channel(128);
    let ra = layer.spawn_receiver(&node_a, fast(), tx.clone());
    let rb = layer.spawn_receiver(&node_b, fast(), tx);
    let mut got = Vec::new();
    for _ in 0..2 * groups.len() {
        let (to, message) = next_message(&mut rx).await;
        got.push((to, event_from_value(&message).expect("chat event").id));
    }
    got.sort();
    let mut want: Vec<(String, i64)> = (0..groups.len() as i64)
        .flat_map(|i| {
            [
                (format!("specific.{node_a}!r"), i),
                (format!("specific.{node_b}!r"), i),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(got, want);

    // The other way: ferrochat group_send reaches a Python member on either group shard.
    let py_channel = py.new_channel().await;
    for g in &groups {
        py.group_add(g, &py_channel).await;
    }
    for (i, g) in groups.iter().enumerate() {
        layer
            .group_send(&group(g), &event_to_value(&chat_event(1000 + i as i64)))
            .await
            .expect("group_send");
    }
    for i in 0..groups.len() as i64 {
        assert_eq!(
            py.receive(&py_channel, 5.0).await,
            Some(chat_event_repr(1000 + i))
        );
    }
    ra.shutdown().await;
    rb.shutdown().await;
}

/// (6) Garbage in the queue is logged and dropped; the loop keeps delivering.
#[tokio::test]
async fn bad_bytes_are_dropped_and_the_loop_continues() {
    let space = Space::new(1);
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let node = node("bad");
    let key = layer.queue_key(&node.non_local_name());
    let ours = node.channel("room").expect("channel");
    let prefix = |body: &[u8]| [&[0xab; 12][..], body].concat();
    let target = |v: &[u8]| {
        [
            &[0x82, 0xa4][..],
            b"type",
            &[0xa1, b'x', 0xb0],
            b"__asgi_channel__",
            v,
        ]
        .concat()
    };
    let bad: Vec<Vec<u8>> = vec![
        b"short".to_vec(),                             // no room for the prefix
        prefix(b""),                                   // empty body
        prefix(&[0xc1, 0xc1]),                         // not msgpack
        prefix(&[0x92, 0x01, 0x02]),                   // an array, not a map
        prefix(&[0x81, 0xa1, b'a', 0xa1, b'b']),       // no __asgi_channel__
        prefix(&[0x81, 0x01, 0x02]),                   // int map key
        prefix(&[0x81, 0xa1, b'a', 0xa2, 0xff, 0xfe]), // invalid UTF-8
        prefix(&[0x80, 0x00]),                         // trailing bytes
        prefix(&target(&[0x05])),                      // __asgi_channel__ not a str
        prefix(&target(&[
            0xa9, b'o', b't', b'h', b'e', b'r', b'!', b'x', b'y', b'z',
        ])), // not ours
        prefix(&[0xdf, 0xff, 0xff, 0xff, 0xff]),       // claims 4G entries
    ];
    let mut raw = space.raw(0).await;
    // Scores just before now: older than `expiry` would be trimmed by the next send.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for (i, member) in bad.iter().enumerate() {
        let score = now - 5.0 + i as f64 * 0.01;
        let _: () = raw
            .zadd(&key, member.as_slice(), score)
            .await
            .expect("zadd");
    }
    layer
        .send(&ours, &event_to_value(&chat_event(1)))
        .await
        .expect("send");

    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(1)))
    );
    assert_eq!(receiver.stats().dropped(), bad.len() as u64);

    // Still alive: more garbage, then a good message.
    let _: () = raw.zadd(&key, prefix(&[0xc1]), now).await.expect("zadd");
    layer
        .send(&ours, &event_to_value(&chat_event(2)))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut rx).await,
        (ours.to_string(), event_to_value(&chat_event(2)))
    );
    assert_eq!(receiver.stats().received(), 2);
    receiver.shutdown().await;
}

/// Group and queue keys look exactly like Python's: types, scores, TTLs, one queue per process.
#[tokio::test]
async fn keys_look_like_python_ones() {
    let space = Space::new(1);
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    let mut py = Py::start(&space.urls(), &space.prefix, json!({})).await;
    let py_channel = py.new_channel().await;
    py.group_add("chat_keys", &py_channel).await;
    let node = node("keys");
    for room in ["keys", "other"] {
        layer
            .group_add(&group("chat_keys"), &node.channel(room).expect("channel"))
            .await
            .expect("group_add");
    }
    let mut raw = space.raw(0).await;
    let gkey = format!("{}:group:chat_keys", space.prefix);
    assert_eq!(layer.group_key(&group("chat_keys")), gkey);
    let kind: String = redis::cmd("TYPE")
        .arg(&gkey)
        .query_async(&mut raw)
        .await
        .expect("type");
    assert_eq!(kind, "zset");
    let ttl: i64 = raw.ttl(&gkey).await.expect("ttl");
    assert!((86390..=86400).contains(&ttl), "group TTL: {ttl}");
    let scored: Vec<(String, f64)> = raw.zrange_withscores(&gkey, 0, -1).await.expect("zrange");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert_eq!(scored.len(), 3);
    for (member, score) in &scored {
        assert!(
            (now - score).abs() < 30.0,
            "{member} scored in float seconds: {score}"
        );
    }

    // Python's group_send writes ONE member to our queue listing both our channels.
    py.group_send("chat_keys", chat_event_json(5)).await;
    let qkey = format!("{}specific.{node}!", space.prefix);
    assert_eq!(layer.queue_key(&node.non_local_name()), qkey);
    let n: usize = raw.zcard(&qkey).await.expect("zcard");
    assert_eq!(n, 1);
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);
    let mut to = vec![next_message(&mut rx).await.0, next_message(&mut rx).await.0];
    to.sort();
    assert_eq!(
        to,
        [
            format!("specific.{node}!keys"),
            format!("specific.{node}!other")
        ]
    );
    receiver.shutdown().await;

    // purge_queue drops what waits for this node (e.g. queued while it was down).
    py.group_send("chat_keys", chat_event_json(6)).await;
    let n: usize = raw.zcard(&qkey).await.expect("zcard");
    assert_eq!(n, 1);
    layer.purge_queue(&node).await.expect("purge");
    let exists: bool = raw.exists(&qkey).await.expect("exists");
    assert!(!exists);
}

/// A private redis-server (never the shared one) restarts under a running receiver: the loss and
/// the return are reported, and delivery resumes once memberships are re-registered.
#[tokio::test]
async fn receiver_reports_a_redis_restart_and_recovers() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let start = || {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed")
    };
    let url = format!("redis://127.0.0.1:{port}/0");
    let wait_up = || async {
        for _ in 0..400 {
            if let Ok(c) = redis::Client::open(url.as_str())
                && c.get_multiplexed_async_connection().await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not come up");
    };
    let mut server = start();
    wait_up().await;

    let layer = ChannelsRedis::connect(ChannelsRedisConfig::with_host(&url))
        .await
        .expect("connect");
    let node = node("rst");
    let room = node.channel("room").expect("channel");
    layer
        .group_add(&group("chat_room"), &room)
        .await
        .expect("group_add");
    let (tx, mut rx) = mpsc::channel(8);
    let receiver = layer.spawn_receiver(&node, fast(), tx);
    layer
        .group_send(&group("chat_room"), &event_to_value(&chat_event(1)))
        .await
        .expect("group_send");
    assert_eq!(
        next_message(&mut rx).await,
        (room.to_string(), event_to_value(&chat_event(1)))
    );

    server.kill().await.expect("stop redis-server");
    assert!(matches!(
        next_event(&mut rx, 10).await,
        ReceiverEvent::Disconnected { host: 0, .. }
    ));
    let _server = start();
    wait_up().await;
    assert_eq!(
        next_event(&mut rx, 15).await,
        ReceiverEvent::Reconnected { host: 0 }
    );

    // The restarted Redis lost the membership: re-register, as the hub will on Reconnected.
    let report = layer
        .group_send(&group("chat_room"), &event_to_value(&chat_event(2)))
        .await;
    assert_eq!(report.expect("commands reconnect by themselves").members, 0);
    layer
        .group_add(&group("chat_room"), &room)
        .await
        .expect("group_add again");
    layer
        .group_send(&group("chat_room"), &event_to_value(&chat_event(3)))
        .await
        .expect("group_send");
    assert_eq!(
        next_message(&mut rx).await,
        (room.to_string(), event_to_value(&chat_event(3)))
    );
    receiver.shutdown().await;
}

/// Redis unreachable at startup: a clear error naming the host (password masked), quickly.
#[tokio::test]
async fn unreachable_host_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let started = std::time::Instant::now();
    let config = ChannelsRedisConfig::with_host(&format!("redis://:hunter2@127.0.0.1:{port}/0"));
    let err = ChannelsRedis::connect(config)
        .await
        .expect_err("nothing listens there");
    let text = err.to_string();
    assert!(
        text.starts_with("Redis host #0 (redis://:***@127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// A message Python could not take is refused before any Redis work, even for an empty group.
#[tokio::test]
async fn malformed_messages_are_refused() {
    let space = Space::new(1);
    let layer = ChannelsRedis::connect(space.config())
        .await
        .expect("connect");
    layer.ping().await.expect("ping");
    let reserved = Value::Map(vec![(Value::from("__asgi_channel__"), Value::from("x"))]);
    assert!(matches!(
        layer.group_send(&group("chat_empty"), &reserved).await,
        Err(ChannelsRedisError::Wire(_))
    ));
    assert!(matches!(
        layer.send(&channel("specific.x!y"), &Value::from(1)).await,
        Err(ChannelsRedisError::Wire(_))
    ));
}

/// Many concurrent group sends: each reaches the node exactly once, in send order per sender.
///
/// Eight senders flat out make ~10-25k sends/s here; at the default capacity of 100 that is a
/// 5 ms buffer, and a scheduling hiccup on a 2-core machine then drops sends at capacity, exactly
/// as channels_redis specifies (seen in 4 of 27 runs, as gaps only: never reordered or doubled).
/// A capacity of 1000 keeps this test about delivery, not about the CPU scheduler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_group_sends_arrive_once_in_order() {
    const SENDERS: i64 = 8;
    const EACH: i64 = 250;
    let space = Space::new(1);
    let config = ChannelsRedisConfig {
        capacity: 1000,
        ..space.config()
    };
    let layer = ChannelsRedis::connect(config).await.expect("connect");
    let node = node("load");
    let room = node.channel("load").expect("channel");
    layer
        .group_add(&group("chat_load"), &room)
        .await
        .expect("group_add");
    let (tx, mut rx) = mpsc::channel(1024);
    let receiver = layer.spawn_receiver(&node, ReceiverOptions::default(), tx);

    let started = std::time::Instant::now();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let layer = layer.clone();
        senders.push(tokio::spawn(async move {
            let mut over = 0;
            for i in 0..EACH {
                let event = event_to_value(&chat_event(sender * 1_000_000 + i));
                let report = layer
                    .group_send(&group("chat_load"), &event)
                    .await
                    .expect("group_send");
                over += report.over_capacity;
            }
            over
        }));
    }
    let mut got: Vec<i64> = Vec::new();
    while got.len() < (SENDERS * EACH) as usize {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ReceiverEvent::Message { message, .. })) => {
                got.push(event_from_value(&message).expect("chat event").id);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    let mut over = 0;
    for s in senders {
        over += s.await.expect("sender task");
    }
    let mut last = vec![-1i64; SENDERS as usize];
    let mut gaps = Vec::new();
    for id in &got {
        let (sender, i) = ((id / 1_000_000) as usize, id % 1_000_000);
        if i != last[sender] + 1 {
            gaps.push((sender, last[sender], i));
        }
        last[sender] = i;
    }
    assert!(
        over == 0 && gaps.is_empty() && got.len() == (SENDERS * EACH) as usize,
        "received {} of {}; {over} sends hit capacity; (sender, previous, next) gaps: {gaps:?}",
        got.len(),
        SENDERS * EACH
    );
    assert_quiet(&mut rx, 500).await;
    eprintln!(
        "{} group sends delivered in {elapsed:?} ({:.0}/s)",
        SENDERS * EACH,
        (SENDERS * EACH) as f64 / elapsed.as_secs_f64()
    );
    receiver.shutdown().await;
}
