//! The admin at `/admin/`, served by ferrochat beside the real Django admin (Daphne from the
//! legacy venv) on the same database: the same permission answers for the same users, and each
//! admin's actions in the other's history (`django_admin_log`), on SQLite, PostgreSQL and
//! MariaDB. Then ferrochat's own pages: search, filters, sorting, the delete action, forms,
//! passwords, and a deactivated user's socket closing.

mod support;

use ferrochat::db::Db;
use ferrochat::db::dynamic::{Kind, Sql};
use ferrochat::db::schema;
use support::{Client, Daphne, Legacy, Page, TestDb, TestServer};

const PASSWORD: &str = "correct horse battery staple";

async fn migrated(db: &TestDb) {
    let conn = db.connect().await;
    schema::migrate(&conn).await.expect("ferrochat migrate");
    conn.close().await;
}

/// A user with a cheap hash; returns the id.
async fn user(db: &Db, username: &str, staff: bool, superuser: bool) -> i64 {
    let hash =
        ferrochat::django::hashers::make_password_with(PASSWORD, "adminsaltADMINSALT1234", 1000);
    let mut sql = Sql::new(
        r#"INSERT INTO "auth_user" ("password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined") VALUES (?, NULL, ?, ?, '', '', '', ?, ?, ?)"#,
    );
    sql.bind(hash)
        .bind(superuser)
        .bind(username)
        .bind(staff)
        .bind(true)
        .bind(chrono::Utc::now());
    db.insert_returning_id(&sql).await.expect("insert user")
}

/// Grants `auth_permission` `codename` to the user directly.
async fn grant(db: &Db, user_id: i64, codename: &str) {
    let mut sql = Sql::new(
        r#"INSERT INTO "auth_user_user_permissions" ("user_id", "permission_id") SELECT ?, "id" FROM "auth_permission" WHERE "codename" = ?"#,
    );
    sql.bind(user_id).bind(codename);
    db.execute_sql(&sql).await.expect("grant");
}

async fn room(db: &Db, name: &str) -> i64 {
    let mut sql = Sql::new(r#"INSERT INTO "chatapp_room" ("name", "created_at") VALUES (?, ?)"#);
    sql.bind(name).bind(chrono::Utc::now());
    db.insert_returning_id(&sql).await.expect("insert room")
}

async fn message(db: &Db, room_id: i64, user_id: i64, content: &str) -> i64 {
    let mut sql = Sql::new(
        r#"INSERT INTO "chatapp_message" ("content", "timestamp", "room_id", "user_id") VALUES (?, ?, ?, ?)"#,
    );
    sql.bind(content)
        .bind(chrono::Utc::now())
        .bind(room_id)
        .bind(user_id);
    db.insert_returning_id(&sql).await.expect("insert message")
}

/// Logs in through `/admin/login/` at `base`.
async fn admin_login(base: &str, username: &str) -> (Client, Page) {
    let client = Client::new();
    let form = client.get(&format!("{base}/admin/login/")).await;
    let token = form.csrf_token();
    let page = client
        .post(
            &format!("{base}/admin/login/"),
            &[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", username),
                ("password", PASSWORD),
                ("next", "/admin/"),
            ],
        )
        .await;
    (client, page)
}

/// What one user gets from the admin of one server: (index status, which models it lists,
/// message changelist status, user changelist status, message add status).
async fn matrix_row(base: &str, username: &str) -> (u16, Vec<&'static str>, u16, u16, u16) {
    let (client, login) = admin_login(base, username).await;
    if login.status != 302 {
        assert!(
            login
                .body
                .contains("Please enter the correct username and password for a staff account."),
            "{base}: {username}: {}",
            login.body
        );
        let index = client.get(&format!("{base}/admin/")).await;
        assert_eq!(index.location(), Some("/admin/login/?next=/admin/"));
        return (index.status, Vec::new(), 0, 0, 0);
    }
    let index = client.get(&format!("{base}/admin/")).await;
    let listed = [
        "/admin/chatapp/message/",
        "/admin/chatapp/room/",
        "/admin/auth/user/",
        "/admin/auth/group/",
    ]
    .into_iter()
    .filter(|url| index.body.contains(&format!("href=\"{url}\"")))
    .collect();
    let messages = client
        .get(&format!("{base}/admin/chatapp/message/"))
        .await
        .status;
    let users = client.get(&format!("{base}/admin/auth/user/")).await.status;
    let add = client
        .get(&format!("{base}/admin/chatapp/message/add/"))
        .await
        .status;
    (index.status, listed, messages, users, add)
}

/// Django's admin and ferrochat's answer the same four users alike.
async fn permission_matrix(tdb: TestDb) {
    migrated(&tdb).await;
    let ferro = TestServer::start(&tdb, &[]).await;
    let db = &ferro.state.db;
    user(db, "boss", true, true).await;
    let viewer = user(db, "viewer", true, false).await;
    grant(db, viewer, "view_message").await;
    user(db, "idle", true, false).await;
    user(db, "member", false, false).await;
    let daphne = Daphne::start(Legacy::new(tdb.url())).await;

    let anonymous = Client::new().get(&ferro.url("/admin/")).await;
    assert_eq!(anonymous.status, 302);
    assert_eq!(anonymous.location(), Some("/admin/login/?next=/admin/"));

    for name in ["boss", "viewer", "idle", "member"] {
        let ours = matrix_row(&ferro.url(""), name).await;
        let django = matrix_row(&daphne.url(""), name).await;
        assert_eq!(ours, django, "{name}: ferrochat vs Django");
    }
    let boss = matrix_row(&ferro.url(""), "boss").await;
    assert_eq!(boss.0, 200);
    assert_eq!(boss.1.len(), 4);
    let viewer = matrix_row(&ferro.url(""), "viewer").await;
    assert_eq!(
        viewer,
        (200, vec!["/admin/chatapp/message/"], 200, 403, 403)
    );
    let idle = matrix_row(&ferro.url(""), "idle").await;
    assert_eq!(idle, (200, vec![], 403, 403, 403));
    ferro.stop().await;
}

#[tokio::test]
async fn permission_matrix_sqlite() {
    permission_matrix(TestDb::sqlite()).await;
}

#[tokio::test]
async fn permission_matrix_postgres() {
    permission_matrix(TestDb::postgres()).await;
}

#[tokio::test]
async fn permission_matrix_mysql() {
    permission_matrix(TestDb::mysql()).await;
}

/// The rows of `django_admin_log`, oldest first: (object_id, object_repr, flag, message).
async fn log_rows(db: &Db) -> Vec<(String, String, i64, String)> {
    db.fetch_rows(
        &Sql::new(r#"SELECT "object_id", "object_repr", "action_flag", "change_message" FROM "django_admin_log" ORDER BY "id""#),
        &[Kind::Text, Kind::Text, Kind::Int, Kind::Text],
    )
    .await
    .expect("log rows")
    .into_iter()
    .map(|r| (r[0].text().to_owned(), r[1].text().to_owned(), r[2].int().unwrap_or(0), r[3].text().to_owned()))
    .collect()
}

async fn post_form(client: &Client, url: &str, fields: &[(&str, &str)]) -> Page {
    let form = client.get(url).await;
    assert_eq!(form.status, 200, "GET {url}: {}", form.body);
    let token = form.csrf_token();
    let mut all = vec![("csrfmiddlewaretoken", token.as_str())];
    all.extend_from_slice(fields);
    client.post(url, &all).await
}

/// Each admin writes the log the other reads, with the same rows for the same actions.
async fn histories_cross_over(tdb: TestDb) {
    migrated(&tdb).await;
    let ferro = TestServer::start(&tdb, &[]).await;
    let db = ferro.state.db.clone();
    user(&db, "boss", true, true).await;
    let daphne = Daphne::start(Legacy::new(tdb.url())).await;
    let (f, d) = (ferro.url(""), daphne.url(""));
    let (fc, _) = admin_login(&f, "boss").await;
    let (dc, _) = admin_login(&d, "boss").await;

    // The same add, then the same rename, through each admin.
    let added = post_form(
        &fc,
        &format!("{f}/admin/chatapp/room/add/"),
        &[("name", "from-ferro"), ("_save", "Save")],
    )
    .await;
    assert_eq!(added.status, 302, "{}", added.body);
    let added = post_form(
        &dc,
        &format!("{d}/admin/chatapp/room/add/"),
        &[("name", "from-django"), ("_save", "Save")],
    )
    .await;
    assert_eq!(added.status, 302, "{}", added.body);
    let ids: Vec<i64> = db
        .fetch_rows(
            &Sql::new(r#"SELECT "id" FROM "chatapp_room" ORDER BY "id""#),
            &[Kind::Int],
        )
        .await
        .expect("rooms")
        .iter()
        .filter_map(|r| r[0].int())
        .collect();
    let (ferro_room, django_room) = (ids[0], ids[1]);
    let renamed = post_form(
        &fc,
        &format!("{f}/admin/chatapp/room/{django_room}/change/"),
        &[("name", "renamed-by-ferro"), ("_save", "Save")],
    )
    .await;
    assert_eq!(renamed.status, 302, "{}", renamed.body);
    let renamed = post_form(
        &dc,
        &format!("{d}/admin/chatapp/room/{ferro_room}/change/"),
        &[("name", "renamed-by-django"), ("_save", "Save")],
    )
    .await;
    assert_eq!(renamed.status, 302, "{}", renamed.body);

    let rows = log_rows(&db).await;
    let added = r#"[{"added": {}}]"#.to_owned();
    let changed = r#"[{"changed": {"fields": ["Name"]}}]"#.to_owned();
    assert_eq!(
        rows,
        [
            (
                ferro_room.to_string(),
                "from-ferro".to_owned(),
                1,
                added.clone()
            ),
            (django_room.to_string(), "from-django".to_owned(), 1, added),
            (
                django_room.to_string(),
                "renamed-by-ferro".to_owned(),
                2,
                changed.clone()
            ),
            (
                ferro_room.to_string(),
                "renamed-by-django".to_owned(),
                2,
                changed
            ),
        ]
    );

    // Each history page shows both admins' actions.
    for base in [&f, &d] {
        let client = if base == &f { &fc } else { &dc };
        let history = client
            .get(&format!("{base}/admin/chatapp/room/{ferro_room}/history/"))
            .await;
        assert_eq!(history.status, 200);
        assert!(history.body.contains("Added."), "{base}: {}", history.body);
        assert!(
            history.body.contains("Changed Name."),
            "{base}: {}",
            history.body
        );
        let index = client.get(&format!("{base}/admin/")).await;
        assert!(
            index.body.contains("renamed-by-ferro") && index.body.contains("renamed-by-django"),
            "{base}: {}",
            index.body
        );
    }

    // The delete action, on each side: the same rows.
    for (client, base, id) in [(&fc, &f, ferro_room), (&dc, &d, django_room)] {
        let url = format!("{base}/admin/chatapp/room/");
        let id = id.to_string();
        let confirm = post_form(
            client,
            &url,
            &[
                ("action", "delete_selected"),
                ("_selected_action", &id),
                ("index", "0"),
                ("select_across", "0"),
            ],
        )
        .await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        assert!(confirm.body.contains("Are you sure?"));
        let token = confirm.csrf_token();
        let done = client
            .post(
                &url,
                &[
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("action", "delete_selected"),
                    ("_selected_action", &id),
                    ("post", "yes"),
                ],
            )
            .await;
        assert_eq!(done.status, 302, "{}", done.body);
        let list = client.get(&url).await;
        assert!(
            list.body.contains("Successfully deleted 1 room."),
            "{base}: {}",
            list.body
        );
    }
    let rows = log_rows(&db).await;
    assert_eq!(
        rows[4],
        (
            ferro_room.to_string(),
            "renamed-by-django".to_owned(),
            3,
            String::new()
        )
    );
    assert_eq!(
        rows[5],
        (
            django_room.to_string(),
            "renamed-by-ferro".to_owned(),
            3,
            String::new()
        )
    );

    // A group with permissions, added on one admin and changed on the other, both ways.
    let perm = |codename: &'static str| {
        let db = db.clone();
        async move {
            let mut sql = Sql::new(r#"SELECT "id" FROM "auth_permission" WHERE "codename" = ?"#);
            sql.bind(codename);
            db.fetch_int(&sql).await.expect("permission id").to_string()
        }
    };
    let (view, delete) = (perm("view_message").await, perm("delete_message").await);
    for (first, first_base, second, second_base, name) in [
        (&fc, &f, &dc, &d, "ferro-mods"),
        (&dc, &d, &fc, &f, "django-mods"),
    ] {
        let added = post_form(
            first,
            &format!("{first_base}/admin/auth/group/add/"),
            &[("name", name), ("permissions", &view), ("_save", "Save")],
        )
        .await;
        assert_eq!(added.status, 302, "{first_base}: {}", added.body);
        let mut sql = Sql::new(r#"SELECT "id" FROM "auth_group" WHERE "name" = ?"#);
        sql.bind(name);
        let id = db.fetch_int(&sql).await.expect("group id");
        let changed = post_form(
            second,
            &format!("{second_base}/admin/auth/group/{id}/change/"),
            &[
                ("name", name),
                ("permissions", &view),
                ("permissions", &delete),
                ("_save", "Save"),
            ],
        )
        .await;
        assert_eq!(changed.status, 302, "{second_base}: {}", changed.body);
        let rows = log_rows(&db).await;
        let n = rows.len();
        assert_eq!(
            rows[n - 2],
            (
                id.to_string(),
                name.to_owned(),
                1,
                r#"[{"added": {}}]"#.to_owned()
            )
        );
        assert_eq!(
            rows[n - 1],
            (
                id.to_string(),
                name.to_owned(),
                2,
                r#"[{"changed": {"fields": ["Permissions"]}}]"#.to_owned()
            )
        );
        let mut sql =
            Sql::new(r#"SELECT COUNT(*) FROM "auth_group_permissions" WHERE "group_id" = ?"#);
        sql.bind(id);
        assert_eq!(db.fetch_int(&sql).await.expect("group permissions"), 2);
    }
    ferro.stop().await;
}

#[tokio::test]
async fn histories_cross_over_sqlite() {
    histories_cross_over(TestDb::sqlite()).await;
}

#[tokio::test]
async fn histories_cross_over_postgres() {
    histories_cross_over(TestDb::postgres()).await;
}

#[tokio::test]
async fn histories_cross_over_mysql() {
    histories_cross_over(TestDb::mysql()).await;
}

/// Search, filter, sort and the result count on the message changelist.
#[tokio::test]
async fn message_changelist_searches_filters_and_sorts() {
    let tdb = TestDb::sqlite();
    let ferro = TestServer::start(&tdb, &[]).await;
    let db = ferro.state.db.clone();
    user(&db, "boss", true, true).await;
    let alice = user(&db, "alice", false, false).await;
    let bob = user(&db, "bob", false, false).await;
    let lobby = room(&db, "lobby").await;
    let other = room(&db, "other").await;
    message(&db, lobby, alice, "hello <b>world</b>").await;
    message(&db, lobby, bob, "Hello there").await;
    message(&db, other, alice, "goodbye world").await;
    let (client, _) = admin_login(&ferro.url(""), "boss").await;
    let list = |q: &str| {
        let client = client.clone();
        let url = ferro.url(&format!("/admin/chatapp/message/{q}"));
        async move { client.get(&url).await }
    };
    let all = list("").await;
    assert_eq!(all.status, 200);
    assert!(all.body.contains("3 messages"), "{}", all.body);
    assert!(
        all.body.contains("hello &lt;b&gt;world&lt;/b&gt;"),
        "escaped: {}",
        all.body
    );
    // Every word must match some field: "hello" (content) and "bob" (user__username).
    let found = list("?q=HELLO+bob").await;
    assert!(
        found.body.contains("Hello there") && !found.body.contains("goodbye"),
        "{}",
        found.body
    );
    assert!(found.body.contains("1 result"), "{}", found.body);
    let found = list("?q=world").await;
    assert!(found.body.contains("2 results"), "{}", found.body);
    let filtered = list(&format!("?room__id__exact={other}")).await;
    assert!(
        filtered.body.contains("goodbye world") && !filtered.body.contains("Hello there"),
        "{}",
        filtered.body
    );
    // o=3 is "content" (after the action checkbox): "Hello there" < "goodbye…" < "hello…".
    let sorted = list("?o=3").await;
    let (a, b, c) = (
        sorted.body.find("Hello there").expect("a"),
        sorted.body.find("goodbye world").expect("b"),
        sorted.body.find("hello &lt;b&gt;").expect("c"),
    );
    assert!(a < b && b < c, "{}", sorted.body);
    ferro.stop().await;
}

/// Deactivating a user in the admin ends their session at once (Django's rule) and a password
/// set in the admin works and ends the user's other sessions.
#[tokio::test]
async fn deactivation_and_password_set_end_sessions() {
    let tdb = TestDb::sqlite();
    let ferro = TestServer::start(&tdb, &[]).await;
    let db = ferro.state.db.clone();
    user(&db, "boss", true, true).await;
    let alice = user(&db, "alice", false, false).await;
    let f = ferro.url("");
    let (boss, _) = admin_login(&f, "boss").await;
    let member = Client::new();
    assert_eq!(member.login(&f, "alice", PASSWORD).await.status, 302);
    assert_eq!(member.get(&format!("{f}/")).await.status, 200);

    let url = format!("{f}/admin/auth/user/{alice}/password/");
    let set = post_form(
        &boss,
        &url,
        &[
            ("password1", "a fresh pass 2026"),
            ("password2", "a fresh pass 2026"),
        ],
    )
    .await;
    assert_eq!(set.status, 302, "{}", set.body);
    assert_eq!(
        member.get(&format!("{f}/")).await.status,
        302,
        "the old session still works"
    );
    let again = Client::new();
    assert_eq!(
        again.login(&f, "alice", "a fresh pass 2026").await.status,
        302
    );
    assert_eq!(again.get(&format!("{f}/")).await.status, 200);

    let key = again.cookie(&f, "sessionid").expect("a session");
    let mut socket = support::ws::connect(&support::ws::room_url(&ferro, "lobby"), &key).await;

    let url = format!("{f}/admin/auth/user/{alice}/change/");
    let saved = post_form(
        &boss,
        &url,
        &[
            ("username", "alice"),
            ("email", ""),
            ("first_name", ""),
            ("last_name", ""),
            ("_save", "Save"),
        ],
    )
    .await;
    assert_eq!(saved.status, 302, "{}", saved.body);
    assert_eq!(
        again.get(&format!("{f}/")).await.status,
        302,
        "a deactivated user stays logged in"
    );
    assert_eq!(socket.expect_close().await, 1008, "the open socket closes");
    let rows = log_rows(&db).await;
    assert_eq!(rows[0].3, r#"[{"changed": {"fields": ["password"]}}]"#);
    assert_eq!(rows[1].3, r#"[{"changed": {"fields": ["Active"]}}]"#);
    ferro.stop().await;
}

/// Two ferrochat nodes on one Redis: a user deactivated in one node's admin loses the socket
/// open on the other node (the ferrochat-only disconnect notice).
#[tokio::test]
async fn deactivation_closes_sockets_on_other_nodes() {
    use support::redis_env::{Space, node_id};
    let tdb = TestDb::sqlite();
    let space = Space::new();
    let start = |node: String| {
        let env = space.ferrochat_env(&node);
        let tdb = &tdb;
        async move {
            let pairs: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            TestServer::start(tdb, &pairs).await
        }
    };
    let a = start(node_id("adm-a")).await;
    let b = start(node_id("adm-b")).await;
    let db = a.state.db.clone();
    user(&db, "boss", true, true).await;
    let alice = user(&db, "alice", false, false).await;

    // Both nodes listen for notices before anyone is deactivated.
    let channel = format!("{}:ferrochat:disconnect", space_prefix(&space));
    let mut conn = space.conn().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .expect("PUBSUB NUMSUB");
        if subscribers >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the nodes never subscribed to {channel}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let member = Client::new();
    assert_eq!(
        member.login(&b.url(""), "alice", PASSWORD).await.status,
        302
    );
    let key = member.cookie(&b.url(""), "sessionid").expect("a session");
    let mut socket = support::ws::connect(&support::ws::room_url(&b, "lobby"), &key).await;

    let (boss, _) = admin_login(&a.url(""), "boss").await;
    let url = a.url(&format!("/admin/auth/user/{alice}/change/"));
    let saved = post_form(
        &boss,
        &url,
        &[
            ("username", "alice"),
            ("email", ""),
            ("first_name", ""),
            ("last_name", ""),
            ("_save", "Save"),
        ],
    )
    .await;
    assert_eq!(saved.status, 302, "{}", saved.body);
    assert_eq!(
        socket.expect_close().await,
        1008,
        "the socket on the other node closes"
    );
    a.stop().await;
    b.stop().await;
}

/// The key prefix a test space gives ferrochat (`FERROCHAT_REDIS_PREFIX`, default `asgi`).
fn space_prefix(space: &support::redis_env::Space) -> String {
    space
        .ferrochat_env("x")
        .into_iter()
        .find(|(k, _)| k == "FERROCHAT_REDIS_PREFIX")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "asgi".to_owned())
}

/// Pages of 100 (`?p=`, 1-based as in Django 5), and a staff user with only the view
/// permission gets a read-only form without the delete action.
#[tokio::test]
async fn pages_of_a_hundred_and_read_only_forms() {
    let tdb = TestDb::sqlite();
    let ferro = TestServer::start(&tdb, &[]).await;
    let db = ferro.state.db.clone();
    let viewer = user(&db, "viewer", true, false).await;
    grant(&db, viewer, "view_room").await;
    for i in 0..150 {
        room(&db, &format!("room-{i:03}")).await;
    }
    let (client, _) = admin_login(&ferro.url(""), "viewer").await;
    let first = client.get(&ferro.url("/admin/chatapp/room/")).await;
    assert_eq!(first.status, 200);
    // Newest first (`-pk`): room-149 … room-050 on page 1.
    assert!(first.body.contains("room-149") && first.body.contains("room-050"));
    assert!(!first.body.contains("room-049"), "{}", first.body);
    assert!(first.body.contains("150 rooms"));
    assert!(
        !first.body.contains("delete_selected"),
        "no action without the delete permission"
    );
    let second = client.get(&ferro.url("/admin/chatapp/room/?p=2")).await;
    assert!(second.body.contains("room-049") && second.body.contains("room-000"));
    assert!(!second.body.contains("room-050"), "{}", second.body);
    let form = client
        .get(&ferro.url("/admin/chatapp/room/1/change/"))
        .await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("View room") && !form.body.contains("name=\"_save\""),
        "{}",
        form.body
    );
    let token = form.csrf_token();
    let post = client
        .post(
            &ferro.url("/admin/chatapp/room/1/change/"),
            &[("csrfmiddlewaretoken", token.as_str()), ("name", "x")],
        )
        .await;
    assert_eq!(post.status, 403);
    ferro.stop().await;
}
