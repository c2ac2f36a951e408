//! The live frontend is opt-in: `FERROCHAT_FRONTEND=live` serves its room page (the legacy
//! markup plus a member list and a typing line, history lines carrying their ids) and its files;
//! without it, the legacy page and files are served exactly as before.

mod support;

use chrono::Utc;
use ferrochat::db::messages::NewMessage;
use support::{Client, TestDb, TestServer, repo_root};

const PASSWORD: &str = "a live frontend passphrase";

/// A logged-in client on `server` and the ids of three messages stored in `room`, one of them
/// markup.
async fn room_with_history(server: &TestServer, room: &str) -> (Client, Vec<i64>) {
    server.create_user("alice", PASSWORD).await;
    let db = &server.state.db;
    let user = db
        .user_by_username("alice")
        .await
        .expect("query")
        .expect("alice exists");
    let stored = db.room_get_or_create(room).await.expect("room");
    let mut ids = Vec::new();
    for text in ["first", "<b>second</b> & \"third\"", "last"] {
        let id = db
            .message_insert(&NewMessage {
                room_id: stored.id,
                user_id: user.id,
                content: text.to_owned(),
                timestamp: Utc::now(),
            })
            .await
            .expect("insert");
        ids.push(id);
    }
    let client = Client::new();
    let login = client.login(&server.url(""), "alice", PASSWORD).await;
    assert_eq!(login.status, 302, "{}", login.body);
    (client, ids)
}

/// The page with its CSRF token (a fresh mask per response) blanked out.
fn masked(body: &str) -> String {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find(marker) {
        let (head, tail) = rest.split_at(i + marker.len());
        out.push_str(head);
        out.push_str("MASKED");
        rest = tail.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}

async fn get_ok(client: &Client, url: &str) -> String {
    let page = client.get(url).await;
    assert_eq!(page.status, 200, "{url}: {}", page.body);
    page.body
}

#[tokio::test]
async fn the_live_frontend_serves_its_page_and_files() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[("FERROCHAT_FRONTEND", "live")]).await;
    let (client, ids) = room_with_history(&server, "live-room").await;

    let body = get_ok(&client, &server.url("/chat/live-room/")).await;
    for needle in [
        r#"<script src="/static/ferrochat/live/live.js"></script>"#,
        r#"<link rel="stylesheet" href="/static/ferrochat/live/live.css">"#,
        r#"<ul id="chat-members" class="chat-member-list"></ul>"#,
        r#"<div id="chat-typing" class="chat-typing" aria-live="polite"></div>"#,
        r#"<script id="room-name" type="application/json">"live-room"</script>"#,
        r#"<script id="username" type="application/json">"alice"</script>"#,
        "&lt;b&gt;second&lt;/b&gt; &amp; &quot;third&quot;",
    ] {
        assert!(body.contains(needle), "no {needle} in:\n{body}");
    }
    assert!(!body.contains("chatapp/room.js"), "{body}");
    assert!(!body.contains("<b>second"), "unescaped history:\n{body}");
    // Every history line carries its id, oldest first: the script resumes after the highest.
    let shown: Vec<i64> = body
        .split(r#"<div class="message" data-id=""#)
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .and_then(|id| id.parse().ok())
                .expect("a numeric data-id")
        })
        .collect();
    assert_eq!(shown, ids);

    for (path, content_type) in [
        ("ferrochat/live/live.js", "text/javascript; charset=utf-8"),
        ("ferrochat/live/live.css", "text/css; charset=utf-8"),
    ] {
        let resp = reqwest::get(server.url(&format!("/static/{path}")))
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type),
            "{path}"
        );
        let served = resp.bytes().await.expect("body");
        let file = std::fs::read(repo_root().join("static").join(path)).expect("the file");
        assert!(served.as_ref() == file.as_slice(), "{path} differs");
    }
    // The legacy files are still there for anyone who links them.
    let legacy = client.get(&server.url("/static/chatapp/room.js")).await;
    assert_eq!(legacy.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn without_it_the_legacy_page_and_files_are_unchanged() {
    let db = TestDb::sqlite();
    let default = TestServer::start(&db, &[]).await;
    let legacy = TestServer::start(&db, &[("FERROCHAT_FRONTEND", "legacy")]).await;
    let live = TestServer::start(&db, &[("FERROCHAT_FRONTEND", "live")]).await;
    let (client, _) = room_with_history(&default, "same-room").await;

    let page = masked(&get_ok(&client, &default.url("/chat/same-room/")).await);
    let explicit = masked(&get_ok(&client, &legacy.url("/chat/same-room/")).await);
    let live_page = masked(&get_ok(&client, &live.url("/chat/same-room/")).await);
    assert_eq!(page, explicit, "FERROCHAT_FRONTEND=legacy is the default");
    assert!(
        page.contains(r#"<script src="/static/chatapp/room.js"></script>"#),
        "{page}"
    );
    assert!(!page.contains("ferrochat/live"), "{page}");
    assert!(!page.contains("chat-members"), "{page}");

    // The live page is the legacy page, line for line, plus its own lines; only the script
    // differs.
    let legacy_script = r#"<script src="/static/chatapp/room.js"></script>"#;
    let mut live_lines = live_page.lines();
    for line in page.lines().filter(|l| l.trim() != legacy_script) {
        assert!(
            live_lines.any(|l| l == line),
            "the live page lacks (or reorders) the legacy line {line:?}:\n{live_page}"
        );
    }

    // The legacy frontend's files are the vendored ones, byte for byte, on every frontend.
    for server in [&default, &live] {
        for name in ["room.js", "style.css"] {
            let served = reqwest::get(server.url(&format!("/static/chatapp/{name}")))
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body");
            let vendored = std::fs::read(repo_root().join(format!(
                "vendor/legacy-django/chat_project/chatapp/static/chatapp/{name}"
            )))
            .expect("the vendored file");
            assert!(served.as_ref() == vendored.as_slice(), "{name} differs");
        }
    }
    for server in [default, legacy, live] {
        server.stop().await;
    }
}
