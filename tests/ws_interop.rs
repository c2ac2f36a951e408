//! ferrochat beside the real legacy app under Daphne, on one database: a Django session opens a
//! ferrochat socket (and a ferrochat session a Daphne one), and the frames both servers send
//! for the same message are the same bytes but for the row's id and time.
//! Each side runs its in-process channel layer, so each delivers only to its own sockets.

mod support;

use ferrochat::django::dates::isoformat;
use support::ws::{connect, room_url};
use support::{Client, Daphne, Legacy, TestDb, TestServer};

/// `{"id": 12, …, "timestamp": "…"}` with the id and timestamp values replaced, and both values.
fn shape(frame: &str) -> (String, i64, String) {
    let value: serde_json::Value =
        serde_json::from_str(frame).unwrap_or_else(|e| panic!("{e}: {frame}"));
    let id = value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id: {frame}"));
    let timestamp = value["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp: {frame}"))
        .to_owned();
    let shape = frame
        .replacen(&format!("{{\"id\": {id}, "), "{\"id\": ID, ", 1)
        .replacen(
            &format!("\"timestamp\": \"{timestamp}\"}}"),
            "\"timestamp\": \"TS\"}",
            1,
        );
    (shape, id, timestamp)
}

/// Python's `isoformat()` of an aware UTC datetime.
fn is_isoformat(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let base = b.len() >= 25
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let tail = &ts[19.min(ts.len())..];
    base && (tail == "+00:00"
        || (tail.len() == 13
            && tail.starts_with('.')
            && tail.ends_with("+00:00")
            && digits(20..26)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daphne_and_ferrochat_send_the_same_frame_to_the_same_sessions() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let legacy = Legacy::new(db.url());
    let username = "d\u{e9}j\u{e0}";
    let password = "a sturdy passphrase 42";
    legacy
        .python_ok(&format!(
            "from django.contrib.auth.models import User\nUser.objects.create_user({username:?}, password={password:?})"
        ))
        .await;
    let daphne = Daphne::start(legacy).await;

    // A session Django made opens a ferrochat socket.
    let client = Client::new();
    let login = client.login(&daphne.url(""), username, password).await;
    assert_eq!(login.status, 302, "Django login: {}", login.body);
    let django_key = client
        .cookie(&daphne.url("/"), "sessionid")
        .expect("Django's session cookie");
    let mut on_ferrochat = connect(&room_url(&server, "interop"), &django_key).await;
    let daphne_room = format!("ws://127.0.0.1:{}/ws/chat/interop/", daphne.port);
    let mut on_daphne = connect(&daphne_room, &django_key).await;

    let text =
        "  h\u{e9}llo \"q\" <b>&amp;</b> \u{1f600} \u{2028} back\\slash \u{1} tab\tend\u{3000} ";
    on_daphne.say(text).await;
    let from_daphne = on_daphne.next_text().await;
    on_ferrochat.say(text).await;
    let from_ferrochat = on_ferrochat.next_text().await;

    let (daphne_shape, daphne_id, daphne_ts) = shape(&from_daphne);
    let (ferrochat_shape, ferrochat_id, ferrochat_ts) = shape(&from_ferrochat);
    assert_eq!(
        ferrochat_shape, daphne_shape,
        "\nferrochat: {from_ferrochat}\nDaphne:    {from_daphne}"
    );
    assert!(is_isoformat(&daphne_ts), "{daphne_ts}");
    assert!(is_isoformat(&ferrochat_ts), "{ferrochat_ts}");
    assert_ne!(daphne_id, ferrochat_id);

    // Both rows are in the one database, and ferrochat reads Django's timestamp back as Django
    // wrote it in its frame.
    let room = server
        .state
        .db
        .room_by_name("interop")
        .await
        .expect("db")
        .expect("room");
    let rows = server
        .state
        .db
        .messages_latest(room.id, 10)
        .await
        .expect("db");
    assert_eq!(rows.len(), 2);
    for (id, ts) in [(daphne_id, &daphne_ts), (ferrochat_id, &ferrochat_ts)] {
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("the row of each frame");
        assert_eq!(&isoformat(&row.timestamp), ts, "row {id}");
        assert_eq!(row.username, username);
        assert_eq!(row.content, text.trim_matches(|c: char| c.is_whitespace()));
    }
    // Each in-process layer delivered only to its own server's sockets.
    on_daphne
        .expect_silence(std::time::Duration::from_millis(300))
        .await;

    // And the other way round: a ferrochat login opens a Daphne socket.
    let fresh = Client::new();
    let login = fresh.login(&server.url(""), username, password).await;
    assert_eq!(login.status, 302, "ferrochat login: {}", login.body);
    let ferrochat_key = fresh
        .cookie(&server.url("/"), "sessionid")
        .expect("ferrochat's session cookie");
    let mut on_daphne = connect(&daphne_room, &ferrochat_key).await;
    on_daphne.say("from a ferrochat session").await;
    assert_eq!(
        on_daphne.next_json().await["message"],
        "from a ferrochat session"
    );
    server.stop().await;
}
