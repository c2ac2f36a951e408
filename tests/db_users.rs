//! `auth_user` through ferrochat on every backend: users round-trip, datetimes are stored in
//! Django's format (SQLite's raw text is read back), duplicates are `UsernameTaken` per the
//! backend's collation, the case-insensitive check mirrors Django's `iexact`, and Django itself
//! reads what ferrochat wrote (and the other way round).

mod support;

use chrono::{DateTime, TimeZone, Utc};
use ferrochat::db::schema::migrate;
use ferrochat::db::{Db, DbError, NewUser, datetime};
use ferrochat::django::validators::Username;
use support::{Backend, Legacy, TestDb, db::strings};

#[tokio::test]
async fn sqlite_users() {
    users(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_users() {
    users(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_users() {
    users(Backend::MySql).await;
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: Username::parse(username).expect("valid username"),
        email: format!("{username}@example.com"),
        password_hash: "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$aGFzaA==".to_owned(),
        is_staff: false,
        is_superuser: false,
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid time")
        + chrono::TimeDelta::microseconds(micros)
}

/// The stored text of a datetime column, normalized to `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC on
/// PostgreSQL/MySQL and raw on SQLite.
async fn stored(db: &Db, column: &str, id: i64) -> String {
    let sql = match db {
        Db::Sqlite(_) => format!("SELECT {column} FROM auth_user WHERE id = {id}"),
        Db::Postgres(_) => format!(
            "SELECT to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM auth_user WHERE id = {id}"
        ),
        Db::MySql(_) => format!("SELECT CAST({column} AS CHAR) FROM auth_user WHERE id = {id}"),
    };
    let mut values = strings(db, &sql).await;
    assert_eq!(values.len(), 1, "{sql}");
    values.remove(0)
}

async fn users(backend: Backend) {
    let tdb = TestDb::new(backend);
    let db = tdb.connect().await;
    migrate(&db).await.expect("migrate");

    // Create, then read back by name and id.
    let before = datetime::now();
    let alice = db
        .create_user(NewUser {
            is_staff: true,
            ..new_user("alice")
        })
        .await
        .expect("create alice");
    assert!(alice.id > 0);
    assert_eq!(alice.username, "alice");
    assert_eq!(
        (alice.first_name.as_str(), alice.last_name.as_str()),
        ("", "")
    );
    assert!(alice.is_active && alice.is_staff && !alice.is_superuser);
    assert_eq!(alice.last_login, None);
    assert!(alice.date_joined >= before && alice.date_joined <= datetime::now());
    assert_eq!(
        db.user_by_username("alice").await.expect("by name"),
        Some(alice.clone())
    );
    assert_eq!(
        db.user_by_id(alice.id).await.expect("by id"),
        Some(alice.clone())
    );
    assert_eq!(db.user_by_username("nobody").await.expect("by name"), None);
    assert_eq!(db.user_by_id(alice.id + 1000).await.expect("by id"), None);
    assert_eq!(db.user_by_id(i64::MAX).await.expect("by id"), None);

    // Datetimes: Django's storage format, microseconds kept, a zero fraction dropped on SQLite.
    let joined = stored(&db, "date_joined", alice.id).await;
    assert_eq!(joined, expected_text(backend, &alice.date_joined));
    for login in [
        at(2024, 1, 1, 12, 0, 0, 123_456),
        at(2024, 1, 1, 10, 0, 0, 0),
    ] {
        db.update_last_login(alice.id, login)
            .await
            .expect("last_login");
        assert_eq!(
            stored(&db, "last_login", alice.id).await,
            expected_text(backend, &login)
        );
        let read = db
            .user_by_id(alice.id)
            .await
            .expect("by id")
            .expect("alice");
        assert_eq!(read.last_login, Some(login));
    }
    if backend == Backend::Sqlite {
        assert_eq!(
            stored(&db, "last_login", alice.id).await,
            "2024-01-01 10:00:00"
        );
    }

    // Passwords.
    db.set_password(alice.id, "pbkdf2_sha256$720000$newsalt$bmV3")
        .await
        .expect("set_password");
    let read = db
        .user_by_id(alice.id)
        .await
        .expect("by id")
        .expect("alice");
    assert_eq!(read.password, "pbkdf2_sha256$720000$newsalt$bmV3");
    assert!(matches!(
        db.set_password(alice.id + 1000, "x").await,
        Err(DbError::UserNotFound { .. })
    ));
    assert!(matches!(
        db.update_last_login(alice.id + 1000, datetime::now()).await,
        Err(DbError::UserNotFound { .. })
    ));

    // Duplicates: exact always; different case only where the collation folds case (MySQL).
    assert!(matches!(
        db.create_user(new_user("alice")).await,
        Err(DbError::UsernameTaken)
    ));
    let upper = db.create_user(new_user("ALICE")).await;
    let by_upper = db.user_by_username("ALICE").await.expect("by name");
    if backend == Backend::MySql {
        assert!(matches!(upper, Err(DbError::UsernameTaken)), "{upper:?}");
        assert_eq!(
            by_upper.map(|u| u.id),
            Some(alice.id),
            "MySQL looks up case-insensitively"
        );
    } else {
        let upper = upper.expect("ALICE is another user on SQLite and PostgreSQL");
        assert_ne!(upper.id, alice.id);
        assert_eq!(by_upper.map(|u| u.id), Some(upper.id));
    }

    // username__iexact, with LIKE wildcards escaped as Django escapes them.
    assert!(
        db.username_exists_case_insensitive("alice")
            .await
            .expect("iexact")
    );
    assert!(
        db.username_exists_case_insensitive("AlIcE")
            .await
            .expect("iexact")
    );
    assert!(
        !db.username_exists_case_insensitive("al_ce")
            .await
            .expect("iexact")
    );
    assert!(
        !db.username_exists_case_insensitive("a%")
            .await
            .expect("iexact")
    );
    assert!(
        !db.username_exists_case_insensitive("alic")
            .await
            .expect("iexact")
    );
    db.create_user(new_user("under_score"))
        .await
        .expect("create");
    assert!(
        db.username_exists_case_insensitive("UNDER_SCORE")
            .await
            .expect("iexact")
    );
    assert!(
        !db.username_exists_case_insensitive("underXscore")
            .await
            .expect("iexact")
    );

    // Django reads ferrochat's user, and ferrochat reads Django's.
    let legacy = Legacy::new(tdb.url());
    let out = legacy
        .python_ok(
            "from django.contrib.auth.models import User\n\
             u = User.objects.get(username='alice')\n\
             print(u.id, u.date_joined.isoformat(), u.last_login.isoformat(), u.is_staff, u.is_active)\n\
             b = User.objects.create_user('bob', 'bob@example.com', 'correct horse battery')\n\
             print(b.id, b.date_joined.isoformat())",
        )
        .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            format!(
                "{} {} 2024-01-01T10:00:00+00:00 True True",
                alice.id,
                python_isoformat(&alice.date_joined)
            )
            .as_str()
        ),
        "{out}"
    );
    let bob = db
        .user_by_username("bob")
        .await
        .expect("by name")
        .expect("bob");
    assert_eq!(
        lines.get(1).copied(),
        Some(format!("{} {}", bob.id, python_isoformat(&bob.date_joined)).as_str()),
        "{out}"
    );
    assert!(bob.password.starts_with("pbkdf2_sha256$720000$"), "{bob:?}");
    assert!(bob.is_active && !bob.is_staff && bob.last_login.is_none());

    db.close().await;
}

/// What each backend holds for `dt`, in the normalized text `stored` returns.
fn expected_text(backend: Backend, dt: &DateTime<Utc>) -> String {
    match backend {
        Backend::Sqlite => datetime::to_sqlite(dt),
        // to_char/CAST always print six digits.
        Backend::Postgres | Backend::MySql => dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    }
}

/// Python's `datetime.isoformat()` of an aware UTC datetime (fraction omitted when zero).
fn python_isoformat(dt: &DateTime<Utc>) -> String {
    if dt.timestamp_subsec_micros() == 0 {
        dt.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        dt.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}
