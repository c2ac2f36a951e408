//! The foundation a newcomer sees first: `runserver` with no configuration serves a fresh
//! SQLite database, answers its health check and serves the legacy frontend byte-identical.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Backend, Client, TestDb, TestServer, ferrochat_bin, repo_root, server::free_port};

#[tokio::test]
async fn health_touches_the_database_and_names_the_channel_layer() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let page = Client::new().get(&server.url("/healthz")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let health: serde_json::Value = serde_json::from_str(&page.body).expect("JSON health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["database_vendor"], "sqlite");
    assert_eq!(health["channel_layer"], "memory");
    server.stop().await;
}

/// The 503 branch, for real: the server's PostgreSQL database is dropped (its sessions ended)
/// under it, and the next health check says so.
#[tokio::test]
async fn health_answers_503_when_the_database_goes_away() {
    let db = TestDb::postgres();
    let pool = db.connect().await;
    ferrochat::db::schema::migrate(&pool)
        .await
        .expect("migrate");
    pool.close().await;
    let server = TestServer::start(&db, &[]).await;
    let client = Client::new();
    let page = client.get(&server.url("/healthz")).await;
    assert_eq!(page.status, 200, "{}", page.body);

    support::db::admin(
        Backend::Postgres,
        &format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, db.database_name()),
    )
    .expect("drop the server's database");

    let page = client.get(&server.url("/healthz")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    let health: serde_json::Value = serde_json::from_str(&page.body).expect("JSON health");
    assert_eq!(health["status"], "error", "{health}");
    let database = health["database"].as_str().expect("database is a string");
    assert!(database.starts_with("error: "), "{health}");
    assert_eq!(health["database_vendor"], "postgresql");
    // The checks that do not need the database still answer.
    assert_eq!(health["channel_layer"], "memory");
    server.stop().await;
}

#[tokio::test]
async fn static_files_are_the_legacy_files_byte_for_byte() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let client = Client::new();
    for (name, ctype) in [("room.js", "text/javascript"), ("style.css", "text/css")] {
        let legacy = std::fs::read(
            repo_root()
                .join("vendor/legacy-django/chat_project/chatapp/static/chatapp")
                .join(name),
        )
        .expect("legacy file");
        let resp = client
            .http
            .get(server.url(&format!("/static/chatapp/{name}")))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(content_type.starts_with(ctype), "{content_type}");
        assert_eq!(
            resp.bytes().await.expect("body").as_ref(),
            legacy.as_slice(),
            "{name} differs"
        );
    }
    for missing in [
        "/static/chatapp/nope.js",
        "/static/../Cargo.toml",
        "/static/chatapp/%2e%2e/%2e%2e/Cargo.toml",
    ] {
        let page = client.get(&server.url(missing)).await;
        assert_eq!(page.status, 404, "{missing}");
    }
    server.stop().await;
}

/// The README's run command, minus cargo: the binary started with no configuration at all in an
/// empty directory creates `db.sqlite3` with Django's schema and serves.
#[tokio::test]
async fn runserver_with_no_configuration_serves_a_new_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = std::process::Command::new(ferrochat_bin())
        .args(["runserver", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // No Redis must not be needed: point auto mode at a closed port.
        .env("REDIS_URL", format!("redis://127.0.0.1:{}/0", free_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrochat runserver");
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(resp) = client
            .http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            break resp.text().await.expect("health body");
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            panic!(
                "runserver exited with {status}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            Instant::now() < deadline,
            "runserver did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(health.contains("\"channel_layer\":\"memory\""), "{health}");
    assert!(
        dir.path().join("db.sqlite3").is_file(),
        "db.sqlite3 was not created in the working directory"
    );
    let js = client
        .http
        .get(format!("http://127.0.0.1:{port}/static/chatapp/room.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(js.status(), 200);

    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(
                status.success(),
                "runserver exited with {status} on SIGTERM"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runserver did not stop within 15 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Its log went to a pipe: plain text, no terminal colour codes.
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr is piped"), &mut log)
        .expect("read the log");
    assert!(log.contains("INFO"), "no log lines on stderr: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI codes in a piped log: {log:?}"
    );

    // The file it made is a Django database: the legacy app's migrate has nothing to do.
    let url =
        format!("sqlite:////{}", dir.path().join("db.sqlite3").display()).replace("/////", "////");
    let out = support::Legacy::new(&url).manage_ok(&["migrate"]).await;
    assert!(out.stdout.contains("No migrations to apply."), "{out}");
}

/// `FERROCHAT_STATIC_DIR` and `FERROCHAT_TEMPLATES_DIR` let a team serve its own files and
/// ported templates without rebuilding.
#[tokio::test]
async fn a_team_can_bring_its_own_static_files_and_templates() {
    let static_dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(static_dir.path().join("chatapp")).expect("mkdir");
    std::fs::write(
        static_dir.path().join("chatapp/extra.css"),
        "body { color: teal }",
    )
    .expect("write");
    let templates_dir = tempfile::tempdir().expect("tempdir");
    let builtin = repo_root().join("templates");
    for name in [
        "base.html",
        "index.html",
        "room.html",
        "registration/login.html",
        "registration/signup.html",
    ] {
        let to = templates_dir.path().join(name);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        let text = std::fs::read_to_string(builtin.join(name)).expect("read template");
        let text = if name == "registration/login.html" {
            text.replace("<h1>Log in</h1>", "<h1>Team login</h1>")
        } else {
            text
        };
        std::fs::write(&to, text).expect("write template");
    }
    let db = TestDb::sqlite();
    let server = TestServer::start(
        &db,
        &[
            (
                "FERROCHAT_STATIC_DIR",
                static_dir.path().to_str().expect("utf-8 path"),
            ),
            (
                "FERROCHAT_TEMPLATES_DIR",
                templates_dir.path().to_str().expect("utf-8 path"),
            ),
        ],
    )
    .await;
    let client = Client::new();
    let css = client.get(&server.url("/static/chatapp/extra.css")).await;
    assert_eq!(
        (css.status, css.body.as_str()),
        (200, "body { color: teal }")
    );
    assert_eq!(
        client
            .get(&server.url("/static/chatapp/room.js"))
            .await
            .status,
        404,
        "only the team's directory is served"
    );
    let login = client.get(&server.url("/login/")).await;
    assert!(login.body.contains("<h1>Team login</h1>"), "{}", login.body);
    server.stop().await;
}
