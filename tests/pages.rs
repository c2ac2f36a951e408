//! The legacy pages served by ferrochat: login, logout, signup, rooms, with Django's sessions,
//! CSRF protection, redirects and escaping — exercised over real HTTP against the real server.

mod support;

use support::{Client, TestDb, TestServer};

async fn user(server: &TestServer, username: &str, password: &str) {
    server.create_user(username, password).await;
}

async fn started() -> (TestDb, TestServer) {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    (db, server)
}

#[tokio::test]
async fn anonymous_users_are_sent_to_the_login_page_with_next() {
    let (_db, server) = started().await;
    let client = Client::new();
    for (path, next) in [
        ("/", "/"),
        ("/chat/lobby/", "/chat/lobby/"),
        ("/chat/lobby/?a=1&b=2", "/chat/lobby/%3Fa%3D1%26b%3D2"),
    ] {
        let page = client.get(&server.url(path)).await;
        assert_eq!(page.status, 302, "{path}");
        assert_eq!(
            page.location(),
            Some(format!("/login/?next={next}").as_str()),
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn login_then_rooms_then_logout() {
    let (_db, server) = started().await;
    user(&server, "alice", "correct horse").await;
    let client = Client::new();

    let page = client.get(&server.url("/login/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("cache-control")
            .is_some_and(|c| c.contains("no-store")),
        "{:?}",
        page.headers
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        client.cookie(&server.url("/"), "csrftoken").is_some(),
        "the login page sets the CSRF cookie"
    );

    let bad = client.login(&server.url(""), "alice", "wrong").await;
    assert_eq!(bad.status, 200);
    assert!(
        bad.body
            .contains("Your username and password didn't match. Please try again."),
        "{}",
        bad.body
    );

    let ok = client
        .login(&server.url(""), "alice", "correct horse")
        .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert_eq!(ok.location(), Some("/"));
    let key = client
        .cookie(&server.url("/"), "sessionid")
        .expect("session cookie set");
    assert_eq!(key.len(), 32);
    // The weak hash was upgraded on login, as Django's check_password setter does.
    let stored = server
        .state
        .db
        .user_by_username("alice")
        .await
        .expect("db")
        .expect("user");
    assert!(
        stored.password.starts_with("pbkdf2_sha256$720000$"),
        "{}",
        stored.password
    );
    assert!(stored.last_login.is_some());

    let index = client.get(&server.url("/")).await;
    assert_eq!(index.status, 200);
    assert!(
        index.body.contains("<span class=\"nav-user\">alice</span>"),
        "{}",
        index.body
    );
    assert!(
        index
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains("Cookie"))
    );

    let join = client
        .post(
            &server.url("/"),
            &[
                ("csrfmiddlewaretoken", &index.csrf_token()),
                ("room_name", "lobby"),
            ],
        )
        .await;
    assert_eq!(join.status, 302);
    assert_eq!(join.location(), Some("/chat/lobby/"));
    let room = client.get(&server.url("/chat/lobby/")).await;
    assert_eq!(room.status, 200);
    assert!(room.body.contains("<h1>#lobby</h1>"), "{}", room.body);
    assert!(
        room.body
            .contains(r#"<script id="room-name" type="application/json">"lobby"</script>"#)
    );

    let bad_name = client
        .post(
            &server.url("/"),
            &[
                ("csrfmiddlewaretoken", &index.csrf_token()),
                ("room_name", "no spaces"),
            ],
        )
        .await;
    assert_eq!(bad_name.status, 200);
    assert!(
        bad_name
            .body
            .contains("Room names must be 1 to 64 characters long"),
        "{}",
        bad_name.body
    );
    assert_eq!(client.get(&server.url("/chat/bad.name/")).await.status, 404);

    let logout_get = client.get(&server.url("/logout/")).await;
    assert_eq!(logout_get.status, 405);
    let out = client
        .post(
            &server.url("/logout/"),
            &[("csrfmiddlewaretoken", &room.csrf_token())],
        )
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(out.location(), Some("/login/"));
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("sessionid=\"\"") || c.starts_with("sessionid=;")),
        "{:?}",
        out.set_cookies()
    );
    // The row is gone: the old cookie no longer opens anything.
    let replay = Client::new();
    replay.set_cookie(&server.url("/"), "sessionid", &key);
    assert_eq!(replay.get(&server.url("/")).await.status, 302);
    server.stop().await;
}

#[tokio::test]
async fn missing_or_forged_csrf_is_forbidden() {
    let (_db, server) = started().await;
    user(&server, "bob", "correct horse").await;
    let client = Client::new();
    let form = client.get(&server.url("/login/")).await;
    let fields = [("username", "bob"), ("password", "correct horse")];

    let no_token = client.post(&server.url("/login/"), &fields).await;
    assert_eq!(no_token.status, 403);
    assert!(
        no_token
            .body
            .contains("CSRF verification failed. Request aborted."),
        "{}",
        no_token.body
    );

    let forged = "a".repeat(64);
    let with_forged = client
        .post(
            &server.url("/login/"),
            &[
                ("csrfmiddlewaretoken", forged.as_str()),
                ("username", "bob"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(with_forged.status, 403);

    let fresh = Client::new();
    let no_cookie = fresh
        .post(
            &server.url("/login/"),
            &[
                ("csrfmiddlewaretoken", form.csrf_token().as_str()),
                ("username", "bob"),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(no_cookie.status, 403);

    let foreign_origin = client
        .http
        .post(server.url("/login/"))
        .header("Origin", "http://evil.example")
        .form(&[
            ("csrfmiddlewaretoken", form.csrf_token().as_str()),
            ("username", "bob"),
            ("password", "correct horse"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(foreign_origin.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn next_is_followed_only_when_safe() {
    let (_db, server) = started().await;
    user(&server, "carol", "correct horse").await;
    for (next, expected) in [
        ("/chat/lobby/", "/chat/lobby/"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("http://evil.example/chat/", "/"),
    ] {
        let client = Client::new();
        let form = client.get(&server.url("/login/")).await;
        let page = client
            .post(
                &server.url("/login/"),
                &[
                    ("csrfmiddlewaretoken", form.csrf_token().as_str()),
                    ("username", "carol"),
                    ("password", "correct horse"),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.status, 302, "{next}");
        assert_eq!(page.location(), Some(expected), "next={next}");
    }
    server.stop().await;
}

#[tokio::test]
async fn tampered_and_unknown_session_cookies_are_anonymous() {
    let (_db, server) = started().await;
    user(&server, "dave", "correct horse").await;
    let client = Client::new();
    client.login(&server.url(""), "dave", "correct horse").await;
    let key = client
        .cookie(&server.url("/"), "sessionid")
        .expect("logged in");

    // The row's signed data, tampered with, is no session.
    let sqlite = Client::new();
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    sqlite.set_cookie(
        &server.url("/"),
        "sessionid",
        &format!("{}{last}", &key[..31]),
    );
    let page = sqlite.get(&server.url("/")).await;
    assert_eq!(page.status, 302);
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("sessionid=")),
        "an unknown key deletes the cookie"
    );

    let db = &server.state.db;
    let row = db
        .session_load(&key, &ferrochat::db::datetime::now())
        .await
        .expect("db")
        .expect("row");
    let tampered = row.session_data.replacen('.', "-", 1);
    db.session_update(&key, &tampered, &row.expire_date)
        .await
        .expect("update");
    assert_eq!(
        client.get(&server.url("/")).await.status,
        302,
        "tampered data is anonymous"
    );

    // An expired row is no session either.
    let client = Client::new();
    client.login(&server.url(""), "dave", "correct horse").await;
    let key = client
        .cookie(&server.url("/"), "sessionid")
        .expect("logged in");
    let row = db
        .session_load(&key, &ferrochat::db::datetime::now())
        .await
        .expect("db")
        .expect("row");
    let past = ferrochat::db::datetime::now() - chrono::TimeDelta::seconds(1);
    db.session_update(&key, &row.session_data, &past)
        .await
        .expect("update");
    assert_eq!(
        client.get(&server.url("/")).await.status,
        302,
        "expired session is anonymous"
    );
    server.stop().await;
}

#[tokio::test]
async fn signup_creates_the_user_and_logs_in() {
    let (_db, server) = started().await;
    user(&server, "Erin", "correct horse").await;
    let client = Client::new();
    let form = client.get(&server.url("/signup/")).await;
    assert_eq!(form.status, 200);
    let token = form.csrf_token();

    let dup = client
        .post(
            &server.url("/signup/"),
            &[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", "erin"),
                ("password1", "a-Strong-pass-42"),
                ("password2", "a-Strong-pass-42"),
            ],
        )
        .await;
    assert_eq!(dup.status, 200);
    assert!(
        dup.body
            .contains("A user with that username already exists."),
        "{}",
        dup.body
    );

    let weak = client
        .post(
            &server.url("/signup/"),
            &[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", "frank"),
                ("password1", "12345678"),
                ("password2", "12345678"),
            ],
        )
        .await;
    assert!(
        weak.body.contains("This password is too common."),
        "{}",
        weak.body
    );
    assert!(
        weak.body.contains("This password is entirely numeric."),
        "{}",
        weak.body
    );

    let ok = client
        .post(
            &server.url("/signup/"),
            &[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", "frank"),
                ("password1", "a-Strong-pass-42"),
                ("password2", "a-Strong-pass-42"),
            ],
        )
        .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert_eq!(ok.location(), Some("/"));
    let index = client.get(&server.url("/")).await;
    assert!(
        index.body.contains("<span class=\"nav-user\">frank</span>"),
        "{}",
        index.body
    );
    server.stop().await;
}

#[tokio::test]
async fn html_is_escaped_in_room_names_usernames_and_messages() {
    let (_db, server) = started().await;
    // Django's `create_user` stores any name; the page must escape whatever is stored.
    server
        .insert_user_row("<b>mallory</b>", "correct horse")
        .await;
    let client = Client::new();
    let ok = client
        .login(&server.url(""), "<b>mallory</b>", "correct horse")
        .await;
    assert_eq!(ok.status, 302);
    let db = &server.state.db;
    let room = db.room_get_or_create("lobby").await.expect("room");
    let author = db
        .user_by_username("<b>mallory</b>")
        .await
        .expect("db")
        .expect("user");
    db.message_insert(&ferrochat::db::messages::NewMessage {
        room_id: room.id,
        user_id: author.id,
        content: "<script>alert('x')</script> & \"q\"".into(),
        timestamp: ferrochat::db::datetime::now(),
    })
    .await
    .expect("insert");
    let page = client.get(&server.url("/chat/lobby/")).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("&lt;b&gt;mallory&lt;/b&gt;"));
    assert!(
        page.body
            .contains(r#""\u003Cb\u003Emallory\u003C/b\u003E"</script>"#),
        "{}",
        page.body
    );
    server.stop().await;
}

#[tokio::test]
async fn append_slash_and_unknown_paths() {
    let (_db, server) = started().await;
    let client = Client::new();
    let page = client.get(&server.url("/login")).await;
    assert_eq!(page.status, 301);
    assert_eq!(page.location(), Some("/login/"));
    let page = client.get(&server.url("/chat/lobby?x=1")).await;
    assert_eq!(page.status, 301);
    assert_eq!(page.location(), Some("/chat/lobby/?x=1"));
    let missing = client.get(&server.url("/nope/")).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("<h1>Not Found</h1>"),
        "{}",
        missing.body
    );
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
    let bad_host = client
        .http
        .get(server.url("/login/"))
        .header("Host", "evil.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(bad_host.status(), 400);
    server.stop().await;
}
