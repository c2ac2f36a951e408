//! Two people chat through ferrochat in headless Chromium (Debian's `/usr/bin/chromium`, driven
//! by playwright-core from `tests/browser/`) with the legacy frontend files: login, join, send
//! with Enter and with the button, live delivery, history on reload, "Connection lost" when
//! the server stops. The screenshot lands in `target/artifacts/room.png`.
//!
//! A missing Chromium or `tests/browser/node_modules` fails this test (`tools/test-all`
//! installs both).

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ferrochat::db::users::NewUser;
use ferrochat::django::hashers::make_password_with;
use ferrochat::django::validators::Username;
use support::{TestDb, TestServer, repo_root};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "a long browser passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_chromium_with_the_legacy_frontend() {
    let browser_dir = repo_root().join("tests/browser");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's package with `apt-get install -y chromium` (tools/test-all does)"
    );
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser (tools/test-all does)"
    );
    let artifacts = repo_root().join("target/artifacts");
    let _ = std::fs::remove_file(artifacts.join("room.png"));

    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    for username in ["alice", "bob"] {
        server
            .state
            .db
            .create_user(NewUser {
                username: Username::parse(username).expect("valid username"),
                email: String::new(),
                password_hash: make_password_with(PASSWORD, "browserSALTbrowserSALT", 1000),
                is_staff: false,
                is_superuser: false,
            })
            .await
            .expect("create user");
    }
    let base = server.url("");
    // The frontend under test is the legacy file, byte for byte.
    let served = reqwest::get(server.url("/static/chatapp/room.js"))
        .await
        .expect("GET room.js");
    assert_eq!(served.status().as_u16(), 200);
    let legacy_js = std::fs::read(
        repo_root().join("vendor/legacy-django/chat_project/chatapp/static/chatapp/room.js"),
    )
    .expect("the vendored legacy room.js");
    assert!(
        served.bytes().await.expect("body").as_ref() == legacy_js.as_slice(),
        "room.js differs from the legacy file"
    );

    // Fetching this URL stops the server (SIGTERM's path: sockets are closed with 1001).
    let control = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stop URL");
    let stop_url = format!("http://{}/stop", control.local_addr().expect("addr"));
    let stopper = tokio::spawn(async move {
        let Ok((mut conn, _)) = control.accept().await else {
            return false;
        };
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        server.stop().await;
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        true
    });

    let node = tokio::process::Command::new("node")
        .args(["--test", "chat.test.mjs"])
        .current_dir(&browser_dir)
        .env("FERROCHAT_URL", &base)
        .env("FERROCHAT_STOP_URL", &stop_url)
        .env("FERROCHAT_PASSWORD", PASSWORD)
        .env("FERROCHAT_ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(240), node).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run node (is Node.js installed?): {e}"),
        Err(_) => panic!("the browser test did not finish within 240 s"),
    };
    let report = format!(
        "--- node --test stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser test failed ({}):\n{report}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# fail 0"),
        "{report}"
    );
    assert!(
        artifacts.join("room.png").is_file(),
        "no screenshot at target/artifacts/room.png\n{report}"
    );
    assert!(
        stopper.await.unwrap_or(false),
        "the page never asked the server to stop\n{report}"
    );
}

/// A moderator works through ferrochat's admin in Chromium (`tests/browser/admin.test.mjs`):
/// staff login, search, delete with confirmation, deactivation logging the author out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_cleans_up_through_the_admin_in_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    assert!(Path::new(CHROMIUM).is_file(), "{CHROMIUM} is missing");
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser"
    );
    let artifacts = repo_root().join("target/artifacts");
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    for (username, staff) in [("moderator", true), ("carol", false)] {
        server
            .state
            .db
            .create_user(NewUser {
                username: Username::parse(username).expect("valid username"),
                email: String::new(),
                password_hash: make_password_with(PASSWORD, "browserSALTbrowserSALT", 1000),
                is_staff: staff,
                is_superuser: false,
            })
            .await
            .expect("create user");
    }
    // The moderator may see and delete messages and see and change users; nothing else.
    support::db::exec(
        &server.state.db,
        "INSERT INTO auth_user_user_permissions (user_id, permission_id) SELECT u.id, p.id \
         FROM auth_user u, auth_permission p WHERE u.username = 'moderator' AND p.codename IN \
         ('view_message', 'delete_message', 'view_user', 'change_user')",
    )
    .await;
    let node = tokio::process::Command::new("node")
        .args(["--test", "admin.test.mjs"])
        .current_dir(&browser_dir)
        .env("FERROCHAT_URL", server.url(""))
        .env("FERROCHAT_PASSWORD", PASSWORD)
        .env("FERROCHAT_ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(240), node).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run node (is Node.js installed?): {e}"),
        Err(_) => panic!("the browser test did not finish within 240 s"),
    };
    let report = format!(
        "--- node --test stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the admin browser test failed ({}):\n{report}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# fail 0"),
        "{report}"
    );
    server.stop().await;
}
