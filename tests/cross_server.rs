//! The migration story: the real legacy Django (under Daphne) and ferrochat on the **same**
//! database with the same secret key. A user logged in on one is logged in on the other, a
//! logout on either ends the session on both, a user made on one logs in on the other.

mod support;

use ferrochat::db::schema;
use support::{Client, Daphne, Legacy, TestDb, TestServer};

/// Django's schema, made by ferrochat's `migrate`.
async fn migrated(db: &TestDb) {
    let conn = db.connect().await;
    schema::migrate(&conn).await.expect("ferrochat migrate");
    conn.close().await;
}

async fn servers(db: &TestDb) -> (TestServer, Daphne) {
    let ferrochat = TestServer::start(db, &[]).await;
    let daphne = Daphne::start(Legacy::new(db.url())).await;
    (ferrochat, daphne)
}

/// A user made with Django's own `createsuperuser` (so a real Django hash).
async fn django_user(db: &TestDb, username: &str, password: &str) {
    Legacy::new(db.url())
        .env("DJANGO_SUPERUSER_PASSWORD", password)
        .env("DJANGO_SUPERUSER_EMAIL", "")
        .manage_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            "",
        ])
        .await;
}

fn logged_in_as(page: &support::Page, username: &str) -> bool {
    page.status == 200
        && page
            .body
            .contains(&format!("<span class=\"nav-user\">{username}</span>"))
}

async fn sessions_cross_over(db: TestDb) {
    migrated(&db).await;
    django_user(&db, "alice", "correct horse battery").await;
    let (ferro, daphne) = servers(&db).await;
    let (f, d) = (ferro.url(""), daphne.url(""));

    // A Django login cookie opens ferrochat's pages.
    let client = Client::new();
    let login = client.login(&d, "alice", "correct horse battery").await;
    assert_eq!(login.status, 302, "Django login failed: {}", login.body);
    assert!(logged_in_as(&client.get(&format!("{d}/")).await, "alice"));
    let page = client.get(&format!("{f}/")).await;
    assert!(
        logged_in_as(&page, "alice"),
        "ferrochat did not accept Django's session: {} {}",
        page.status,
        page.body
    );

    // Logging out on ferrochat ends the session on Django too.
    let out = client
        .post(
            &format!("{f}/logout/"),
            &[("csrfmiddlewaretoken", &page.csrf_token())],
        )
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(
        client.get(&format!("{d}/")).await.status,
        302,
        "Django still accepts a session ferrochat logged out"
    );

    // A ferrochat login cookie opens Django's pages; logging out on Django ends it on ferrochat.
    let client = Client::new();
    let login = client.login(&f, "alice", "correct horse battery").await;
    assert_eq!(login.status, 302, "ferrochat login failed: {}", login.body);
    let page = client.get(&format!("{d}/")).await;
    assert!(
        logged_in_as(&page, "alice"),
        "Django did not accept ferrochat's session: {} {}",
        page.status,
        page.body
    );
    let out = client
        .post(
            &format!("{d}/logout/"),
            &[("csrfmiddlewaretoken", &page.csrf_token())],
        )
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(
        client.get(&format!("{f}/")).await.status,
        302,
        "ferrochat still accepts a session Django logged out"
    );

    // A user who signed up on ferrochat logs in on Django.
    let client = Client::new();
    let form = client.get(&format!("{f}/signup/")).await;
    let signup = client
        .post(
            &format!("{f}/signup/"),
            &[
                ("csrfmiddlewaretoken", form.csrf_token().as_str()),
                ("username", "bob.smith"),
                ("password1", "a-Strong-pass-42"),
                ("password2", "a-Strong-pass-42"),
            ],
        )
        .await;
    assert_eq!(signup.status, 302, "{}", signup.body);
    assert!(
        logged_in_as(&client.get(&format!("{d}/")).await, "bob.smith"),
        "the signup session is not Django's"
    );
    let fresh = Client::new();
    assert_eq!(
        fresh
            .login(&d, "bob.smith", "a-Strong-pass-42")
            .await
            .status,
        302,
        "Django rejects ferrochat's hash"
    );

    // Rooms and messages made on either side show on the other.
    let room = fresh.get(&format!("{d}/chat/from-django/")).await;
    assert_eq!(room.status, 200);
    let index = fresh.get(&format!("{f}/")).await;
    assert!(
        index.body.contains("href=\"/chat/from-django/\""),
        "{}",
        index.body
    );

    // A password change (the hash changes) logs the user out of every existing session.
    let client = Client::new();
    assert_eq!(
        client
            .login(&d, "alice", "correct horse battery")
            .await
            .status,
        302
    );
    assert!(logged_in_as(&client.get(&format!("{f}/")).await, "alice"));
    let conn = db.connect().await;
    let alice = conn
        .user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let new_hash = ferrochat::django::hashers::make_password("another horse battery");
    conn.set_password(alice.id, &new_hash)
        .await
        .expect("set password");
    conn.close().await;
    assert_eq!(
        client.get(&format!("{d}/")).await.status,
        302,
        "Django kept a session after the password changed"
    );
    let client2 = Client::new();
    assert_eq!(
        client2
            .login(&d, "alice", "another horse battery")
            .await
            .status,
        302
    );
    assert_eq!(
        client.get(&format!("{f}/")).await.status,
        302,
        "ferrochat kept a session after the password changed"
    );

    ferro.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_over_on_sqlite() {
    sessions_cross_over(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_over_on_postgres() {
    sessions_cross_over(TestDb::postgres()).await;
}

/// `DJANGO_SECRET_KEY_FALLBACKS`: a session made under the old key keeps the user logged in on
/// ferrochat after a key rotation, and is re-signed with the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_secret_key_sessions_survive_a_rotation() {
    let db = TestDb::sqlite();
    migrated(&db).await;
    django_user(&db, "carol", "correct horse battery").await;
    let daphne = Daphne::start(Legacy::new(db.url()).env(
        "DJANGO_SECRET_KEY",
        "the-old-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    ))
    .await;
    let client = Client::new();
    assert_eq!(
        client
            .login(&daphne.url(""), "carol", "correct horse battery")
            .await
            .status,
        302
    );
    drop(daphne);

    let rotated = TestServer::start(
        &db,
        &[
            (
                "DJANGO_SECRET_KEY",
                "the-new-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            ),
            (
                "DJANGO_SECRET_KEY_FALLBACKS",
                "the-old-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            ),
        ],
    )
    .await;
    let page = client.get(&rotated.url("/")).await;
    assert!(
        logged_in_as(&page, "carol"),
        "{} {}",
        page.status,
        page.body
    );
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("sessionid=")),
        "the session was not cycled"
    );
    rotated.stop().await;

    let without_fallback = TestServer::start(
        &db,
        &[(
            "DJANGO_SECRET_KEY",
            "a-third-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        )],
    )
    .await;
    assert_eq!(client.get(&without_fallback.url("/")).await.status, 302);
    without_fallback.stop().await;
}
