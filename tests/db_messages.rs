//! Group commit: many sockets' messages saved through one writer, in as few transactions as the
//! load allows, each sender getting its own id back — and one bad message failing alone.

mod support;

use ferrochat::db::messages::{MessageWriter, NewMessage};
use ferrochat::db::users::NewUser;
use ferrochat::db::{datetime, schema};
use ferrochat::django::validators::Username;
use support::TestDb;

async fn seeded(db: &TestDb) -> (ferrochat::db::Db, i64, i64) {
    let conn = db.connect().await;
    schema::migrate(&conn).await.expect("migrate");
    let user = conn
        .create_user(NewUser {
            username: Username::parse("writer").expect("valid username"),
            email: String::new(),
            password_hash: "!unusable".into(),
            is_staff: false,
            is_superuser: false,
        })
        .await
        .expect("user");
    let room = conn.room_get_or_create("lobby").await.expect("room");
    (conn, user.id, room.id)
}

async fn concurrent_saves_all_land(db: TestDb) {
    let (conn, user_id, room_id) = seeded(&db).await;
    let writer = MessageWriter::spawn(conn.clone(), 64);
    let mut tasks = Vec::new();
    for sender in 0..20 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for seq in 0..25 {
                let id = writer
                    .save(NewMessage {
                        room_id,
                        user_id,
                        content: format!("{sender}:{seq}"),
                        timestamp: datetime::now(),
                    })
                    .await
                    .expect("saved");
                ids.push(id);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let ids = task.await.expect("task");
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "a sender's ids are in its send order: {ids:?}"
        );
        all.extend(ids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 500, "every save got its own id");
    let stored = conn
        .messages_latest(room_id, 1000)
        .await
        .expect("read back");
    assert_eq!(stored.len(), 500);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_all_land_on_sqlite() {
    concurrent_saves_all_land(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_all_land_on_postgres() {
    concurrent_saves_all_land(TestDb::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_all_land_on_mysql() {
    concurrent_saves_all_land(TestDb::mysql()).await;
}

/// A message whose author does not exist violates the foreign key at commit; the batch it was
/// in is retried one by one, so only that message fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_message_fails_alone() {
    let db = TestDb::sqlite();
    let (conn, user_id, room_id) = seeded(&db).await;
    let good = NewMessage {
        room_id,
        user_id,
        content: "fine".into(),
        timestamp: datetime::now(),
    };
    let bad = NewMessage {
        user_id: 999_999,
        ..good.clone()
    };
    let err = conn
        .message_insert_batch(&[good.clone(), bad.clone(), good.clone()])
        .await;
    assert!(
        err.is_err(),
        "the batch as a whole violates the foreign key"
    );
    assert!(
        conn.messages_latest(room_id, 10)
            .await
            .expect("read")
            .is_empty(),
        "nothing of a failed batch is saved"
    );

    let writer = MessageWriter::spawn(conn.clone(), 64);
    let (a, b, c) = tokio::join!(
        writer.save(good.clone()),
        writer.save(bad),
        writer.save(good)
    );
    assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    assert!(b.is_err(), "the bad message fails");
    assert_eq!(
        conn.messages_latest(room_id, 10).await.expect("read").len(),
        2
    );
    conn.close().await;
}

/// The room page's one-statement read (`room_history`) gives what `Room.objects.get` plus the
/// latest 50 messages give: no room, a room without history, and 60 messages (some sharing a
/// timestamp, ordered by id then) of which the latest 50 come back oldest first.
async fn room_history_matches_get_and_latest(db: TestDb) {
    let (conn, user_id, room_id) = seeded(&db).await;
    assert_eq!(conn.room_history("nowhere", 50).await.expect("read"), None);
    assert_eq!(
        conn.room_history("lobby", 50).await.expect("read"),
        Some(Vec::new())
    );
    let start = datetime::now();
    let batch: Vec<NewMessage> = (0..60i64)
        .map(|i| NewMessage {
            room_id,
            user_id,
            content: format!("message {i}"),
            timestamp: start + chrono::TimeDelta::milliseconds(i / 3),
        })
        .collect();
    conn.message_insert_batch(&batch).await.expect("insert");
    let latest = conn.messages_latest(room_id, 50).await.expect("latest");
    assert_eq!(latest.len(), 50);
    assert_eq!(
        latest.last().map(|m| m.content.as_str()),
        Some("message 59")
    );
    assert_eq!(
        conn.room_history("lobby", 50).await.expect("read"),
        Some(latest)
    );
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_history_matches_get_and_latest_on_sqlite() {
    room_history_matches_get_and_latest(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_history_matches_get_and_latest_on_postgres() {
    room_history_matches_get_and_latest(TestDb::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_history_matches_get_and_latest_on_mysql() {
    room_history_matches_get_and_latest(TestDb::mysql()).await;
}
