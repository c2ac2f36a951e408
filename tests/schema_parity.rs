//! ferrochat's `migrate` builds exactly the database Django's `migrate` builds, on SQLite,
//! PostgreSQL and MariaDB, and each side accepts the other's database:
//!
//! - the legacy app's real `manage.py migrate` on one fresh database, ferrochat's on another:
//!   the normalized schemas (tables, columns, types, nullability, defaults, indexes, constraints,
//!   foreign keys, checks, sequences) and the rows Django writes (migrations, content types,
//!   permissions, id counters) are equal, and ferrochat reports what Django printed;
//! - `manage.py migrate` on ferrochat's database prints "No migrations to apply." and changes
//!   nothing; ferrochat's `migrate` on Django's database changes nothing;
//! - a database recording a migration ferrochat does not know is refused, named, and unchanged;
//!   so are a partly migrated one and one with tables but no `django_migrations`.
//!
//! One test per backend, so the three run in parallel.

mod support;

use ferrochat::db::schema::{MIGRATIONS, MigrateReport, migrate, schema_state};
use ferrochat::db::{Db, DbError, SchemaMismatch, SchemaState};
use support::schema::{assert_same, django_rows, schema_facts};
use support::{Backend, Legacy, TestDb, db::exec, db::strings};

#[tokio::test]
async fn sqlite_schema_matches_django() {
    parity(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_schema_matches_django() {
    parity(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_schema_matches_django() {
    parity(Backend::MySql).await;
}

#[tokio::test]
async fn sqlite_refuses_foreign_databases() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_refuses_foreign_databases() {
    refusals(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_refuses_foreign_databases() {
    refusals(Backend::MySql).await;
}

/// Everything a migrate could change: the schema and Django's rows.
async fn state_of(db: &Db) -> (Vec<String>, Vec<String>) {
    (schema_facts(db).await, django_rows(db).await)
}

fn assert_unchanged(
    what: &str,
    before: &(Vec<String>, Vec<String>),
    after: &(Vec<String>, Vec<String>),
) {
    assert_same(
        &format!("schemas {what}"),
        "before",
        &before.0,
        "after",
        &after.0,
    );
    assert_same(
        &format!("rows {what}"),
        "before",
        &before.1,
        "after",
        &after.1,
    );
}

async fn parity(backend: Backend) {
    let django_tdb = TestDb::new(backend);
    let ours_tdb = TestDb::new(backend);

    // Django migrates one database (a subprocess) while ferrochat migrates the other.
    let legacy = Legacy::new(django_tdb.url());
    let ours = ours_tdb.connect().await;
    let (django_out, our_report) = tokio::join!(legacy.manage_ok(&["migrate"]), async {
        assert_eq!(
            schema_state(&ours).await.expect("state of a new database"),
            SchemaState::Empty
        );
        migrate(&ours)
            .await
            .expect("ferrochat migrate on an empty database")
    });
    assert_eq!(our_report.applied, MIGRATIONS.to_vec());
    assert_eq!(
        our_report.django_output(),
        django_out.stdout,
        "ferrochat's report should print what Django printed"
    );
    assert_eq!(
        schema_state(&ours).await.expect("state"),
        SchemaState::UpToDate
    );

    let django = django_tdb.connect().await;
    let theirs_state = state_of(&django).await;
    let ours_state = state_of(&ours).await;
    assert_same(
        "schemas",
        "Django's migrate",
        &theirs_state.0,
        "ferrochat's migrate",
        &ours_state.0,
    );
    assert_same(
        "Django rows",
        "Django's migrate",
        &theirs_state.1,
        "ferrochat's migrate",
        &ours_state.1,
    );
    assert_applied_times_in_django_format(&ours).await;

    // The legacy app on ferrochat's database: nothing to do, and post_migrate adds nothing.
    let out = Legacy::new(ours_tdb.url()).manage_ok(&["migrate"]).await;
    assert_eq!(out.stdout, MigrateReport::default().django_output());
    assert!(out.stdout.contains("No migrations to apply."));
    assert_unchanged(
        "after Django's migrate on ferrochat's database",
        &ours_state,
        &state_of(&ours).await,
    );

    // ferrochat on Django's database: up to date, nothing changes.
    assert_eq!(
        schema_state(&django).await.expect("state"),
        SchemaState::UpToDate
    );
    let report = migrate(&django)
        .await
        .expect("migrate on Django's database");
    assert!(report.nothing_applied(), "{report:?}");
    assert!(report.django_output().contains("No migrations to apply."));
    assert_unchanged(
        "after ferrochat's migrate on Django's database",
        &theirs_state,
        &state_of(&django).await,
    );

    // A migration from the future: refused by name, nothing changed.
    record_migration(&django, "chatapp", "0002_room_topic").await;
    let before = state_of(&django).await;
    let err = migrate(&django)
        .await
        .expect_err("an unknown migration is refused");
    assert!(
        matches!(
            &err,
            DbError::SchemaMismatch(SchemaMismatch::UnknownMigrations(names))
                if names == &["chatapp.0002_room_topic".to_owned()]
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("chatapp.0002_room_topic"), "{err}");
    assert_eq!(
        schema_state(&django).await.expect("state"),
        SchemaState::Unknown(vec!["chatapp.0002_room_topic".to_owned()])
    );
    assert_unchanged("after a refused migrate", &before, &state_of(&django).await);

    django.close().await;
    ours.close().await;
}

async fn refusals(backend: Backend) {
    // Partly migrated: the last two migrations are not recorded.
    let partial_tdb = TestDb::new(backend);
    let partial = partial_tdb.connect().await;
    migrate(&partial).await.expect("migrate");
    exec(
        &partial,
        "DELETE FROM django_migrations WHERE app IN ('chatapp', 'sessions')",
    )
    .await;
    let before = state_of(&partial).await;
    let err = migrate(&partial)
        .await
        .expect_err("a partial database is refused");
    let missing = vec![
        "chatapp.0001_initial".to_owned(),
        "sessions.0001_initial".to_owned(),
    ];
    assert!(
        matches!(&err, DbError::SchemaMismatch(SchemaMismatch::MissingMigrations(m)) if m == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("manage.py migrate"), "{err}");
    assert_eq!(
        schema_state(&partial).await.expect("state"),
        SchemaState::Missing(missing)
    );
    assert_unchanged(
        "after refusing a partial database",
        &before,
        &state_of(&partial).await,
    );
    partial.close().await;

    // Tables but no django_migrations: not a Django database.
    let foreign_tdb = TestDb::new(backend);
    let foreign = foreign_tdb.connect().await;
    exec(&foreign, "CREATE TABLE notes (id integer PRIMARY KEY)").await;
    let err = migrate(&foreign)
        .await
        .expect_err("a foreign database is refused");
    assert!(
        matches!(&err, DbError::SchemaMismatch(SchemaMismatch::NoMigrationTable { tables }) if tables == &["notes".to_owned()]),
        "{err:?}"
    );
    assert!(err.to_string().contains("notes"), "{err}");
    assert_eq!(
        schema_state(&foreign).await.expect("state"),
        SchemaState::NoMigrationTable
    );
    assert_eq!(
        table_names(&foreign).await,
        vec!["notes".to_owned()],
        "nothing was created"
    );
    foreign.close().await;

    // Only an empty django_migrations (Django failed right after creating it): still empty, and
    // migrate builds the same schema as on a blank database.
    let blank_tdb = TestDb::new(backend);
    let blank = blank_tdb.connect().await;
    migrate(&blank).await.expect("migrate");
    let recorder_tdb = TestDb::new(backend);
    let recorder = recorder_tdb.connect().await;
    exec(&recorder, recorder_ddl(backend)).await;
    assert_eq!(
        schema_state(&recorder).await.expect("state"),
        SchemaState::Empty
    );
    let report = migrate(&recorder)
        .await
        .expect("migrate after an empty recorder table");
    assert_eq!(report.applied.len(), MIGRATIONS.len());
    assert_unchanged(
        "(a blank database vs one with an empty django_migrations, both migrated)",
        &state_of(&blank).await,
        &state_of(&recorder).await,
    );
    blank.close().await;
    recorder.close().await;

    // Two migrates at once on one empty database: the lock lets exactly one build it.
    let raced_tdb = TestDb::new(backend);
    let first = raced_tdb.connect().await;
    let second = raced_tdb.connect().await;
    let (a, b) = tokio::join!(migrate(&first), migrate(&second));
    let (a, b) = (a.expect("first migrate"), b.expect("second migrate"));
    assert_eq!(
        a.applied.len() + b.applied.len(),
        MIGRATIONS.len(),
        "one run applies everything, the other nothing: {a:?} {b:?}"
    );
    assert_eq!(
        schema_state(&first).await.expect("state"),
        SchemaState::UpToDate
    );
    first.close().await;
    second.close().await;
}

/// `django_migrations` exactly as Django's `MigrationRecorder.ensure_schema` creates it.
fn recorder_ddl(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            r#"CREATE TABLE "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL)"#
        }
        Backend::Postgres => {
            r#"CREATE TABLE "django_migrations" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" timestamp with time zone NOT NULL)"#
        }
        Backend::MySql => {
            "CREATE TABLE `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)"
        }
    }
}

async fn record_migration(db: &Db, app: &str, name: &str) {
    let now = match db {
        Db::Sqlite(_) => "'2026-01-01 00:00:00.000001'",
        Db::Postgres(_) => "now()",
        Db::MySql(_) => "UTC_TIMESTAMP(6)",
    };
    exec(
        db,
        &format!(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('{app}', '{name}', {now})"
        ),
    )
    .await;
}

async fn table_names(db: &Db) -> Vec<String> {
    let sql = match db {
        Db::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name"
        }
        Db::Postgres(_) => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        }
        Db::MySql(_) => {
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1"
        }
    };
    strings(db, sql).await
}

/// `applied` holds Django's storage format: naive UTC text on SQLite (read raw), a timestamptz on
/// PostgreSQL, a `datetime(6)` on MySQL — all recent.
async fn assert_applied_times_in_django_format(db: &Db) {
    let sql = match db {
        Db::Sqlite(_) => "SELECT applied FROM django_migrations WHERE typeof(applied) = 'text'",
        Db::Postgres(_) => {
            "SELECT to_char(applied AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM django_migrations \
             WHERE pg_typeof(applied) = 'timestamp with time zone'::regtype"
        }
        Db::MySql(_) => "SELECT CAST(applied AS CHAR) FROM django_migrations",
    };
    let values = strings(db, sql).await;
    assert_eq!(values.len(), MIGRATIONS.len(), "{values:?}");
    let now = chrono::Utc::now().naive_utc();
    for value in values {
        let shape_ok = value.len() == 19 || (value.len() == 26 && value.as_bytes()[19] == b'.');
        assert!(
            shape_ok,
            "applied {value:?} is not YYYY-MM-DD HH:MM:SS[.ffffff]"
        );
        let parsed = chrono::NaiveDateTime::parse_from_str(&value, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("applied {value:?}: {e}"));
        let age = now - parsed;
        assert!(
            age.num_seconds().abs() < 300,
            "applied {value:?} is not the current UTC time ({now})"
        );
    }
}

/// MySQL cannot roll DDL back: a migrate that fails half-way drops the tables it created, says
/// so, and a later migrate (with enough privileges) builds the schema from scratch.
#[tokio::test]
async fn mysql_failed_migrate_leaves_nothing_behind() {
    struct DropUser(String);
    impl Drop for DropUser {
        fn drop(&mut self) {
            if let Err(e) =
                support::db::admin(Backend::MySql, &format!("DROP USER IF EXISTS {}", self.0))
            {
                eprintln!("warning: could not drop test user {}: {e}", self.0);
            }
        }
    }

    let tdb = TestDb::mysql();
    let user = format!("fc_{}", std::process::id());
    let account = format!("'{user}'@'%'");
    support::db::admin(
        Backend::MySql,
        &format!("CREATE USER {account} IDENTIFIED BY 'pw'"),
    )
    .expect("create a test user");
    let _cleanup = DropUser(account.clone());
    // Everything but ALTER: the tables get created, the first ALTER TABLE (a constraint) fails.
    support::db::admin(
        Backend::MySql,
        &format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, REFERENCES ON `{}`.* TO {account}",
            tdb.database_name()
        ),
    )
    .expect("grant");
    let restricted_url = support::db::url_as(Backend::MySql, &user, "pw", tdb.database_name());
    let restricted = Db::connect(
        &ferrochat::db::DatabaseUrl::parse(&restricted_url, std::path::Path::new("/"))
            .expect("url"),
    )
    .await
    .expect("connect as the restricted user");

    let err = migrate(&restricted)
        .await
        .expect_err("ALTER is not granted");
    let DbError::MigrateFailed {
        statement, outcome, ..
    } = &err
    else {
        panic!("expected MigrateFailed, got {err:?}");
    };
    assert!(statement.starts_with("ALTER TABLE"), "{err}");
    assert!(outcome.contains("dropped again"), "{err}");
    restricted.close().await;

    let db = tdb.connect().await;
    assert_eq!(table_names(&db).await, Vec::<String>::new(), "{err}");
    assert_eq!(schema_state(&db).await.expect("state"), SchemaState::Empty);
    let report = migrate(&db).await.expect("migrate with full privileges");
    assert_eq!(report.applied.len(), MIGRATIONS.len());
    db.close().await;
}
