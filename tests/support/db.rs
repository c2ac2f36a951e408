//! Throwaway databases, one per test, on every backend ferrochat supports.
//!
//! PostgreSQL and MariaDB are the servers on this machine (override with
//! `FERROCHAT_TEST_POSTGRES_URL` / `FERROCHAT_TEST_MYSQL_URL`, an admin URL whose user may create
//! and drop databases). Each `TestDb` creates `ferrochat_test_<pid>_<n>_<nanos>` and drops it on
//! Drop; the drop is synchronous and runs on a thread of its own, so it works at the end of a
//! `#[tokio::test]` as well as outside any runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrochat::db::{DatabaseUrl, Db};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection, Row};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// Admin statements (CREATE/DROP DATABASE) that take longer than this fail the test.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];
}

/// A fresh, empty database that is dropped (or deleted) when this value drops.
pub struct TestDb {
    backend: Backend,
    url: String,
    /// Database name (server backends) or file path (SQLite).
    name: String,
    admin_url: Option<String>,
    /// Keeps the SQLite file's directory alive until the test ends.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres(),
            Backend::MySql => TestDb::mysql(),
        }
    }

    /// A database file in a new temporary directory; the file itself does not exist yet
    /// (ferrochat and Django both create it on first connection).
    pub fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("ferrochat-test-db-")
            .tempdir()
            .expect("create a temporary directory for the SQLite test database");
        let path = dir.path().join("db.sqlite3");
        let path_str = path
            .to_str()
            .expect("the temporary directory path is UTF-8")
            .to_owned();
        TestDb {
            backend: Backend::Sqlite,
            // Absolute path: four slashes, read the same way by both parsers.
            url: format!("sqlite:///{path_str}"),
            name: path_str,
            admin_url: None,
            _dir: Some(dir),
        }
    }

    /// A new database on the PostgreSQL server.
    pub fn postgres() -> TestDb {
        let admin = admin_url("FERROCHAT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL);
        let name = unique_name();
        admin_execute(
            Backend::Postgres,
            &admin,
            format!(r#"CREATE DATABASE "{name}""#),
        )
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a PostgreSQL test database through {admin}: {e}\n\
                     PostgreSQL must be running for this test (set FERROCHAT_TEST_POSTGRES_URL \
                     to an admin URL if it is not at {DEFAULT_POSTGRES_URL})."
            )
        });
        TestDb {
            backend: Backend::Postgres,
            url: with_database(&admin, &name),
            name,
            admin_url: Some(admin),
            _dir: None,
        }
    }

    /// A new `utf8mb4` database on the MariaDB/MySQL server.
    pub fn mysql() -> TestDb {
        let admin = admin_url("FERROCHAT_TEST_MYSQL_URL", DEFAULT_MYSQL_URL);
        let name = unique_name();
        admin_execute(
            Backend::MySql,
            &admin,
            format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        )
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a MariaDB/MySQL test database through {admin}: {e}\n\
                 MariaDB/MySQL must be running for this test (set FERROCHAT_TEST_MYSQL_URL to an \
                 admin URL if it is not at {DEFAULT_MYSQL_URL})."
            )
        });
        TestDb {
            backend: Backend::MySql,
            url: with_database(&admin, &name),
            name,
            admin_url: Some(admin),
            _dir: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `DATABASE_URL` for ferrochat and for the legacy Django app.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as ferrochat parses it.
    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url, Path::new("/"))
            .unwrap_or_else(|e| panic!("test database URL {} does not parse: {e}", self.url))
    }

    /// The database's name on its server (the file path on SQLite).
    pub fn database_name(&self) -> &str {
        &self.name
    }

    /// The SQLite file (None on server backends).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| PathBuf::from(&self.name))
    }

    /// A ferrochat pool on this database. Close it (`db.close().await`) before the end of the
    /// test so the drop does not have to cut live connections.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.database_url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin) = &self.admin_url else {
            return; // SQLite: the TempDir removes the file.
        };
        let sql = match self.backend {
            // FORCE ends sessions a test forgot to close.
            Backend::Postgres => format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name),
            Backend::MySql => format!("DROP DATABASE IF EXISTS `{}`", self.name),
            Backend::Sqlite => return,
        };
        if let Err(e) = admin_execute(self.backend, admin, sql) {
            // Panicking in Drop during an unwind would abort and hide the test's own failure.
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

fn admin_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "ferrochat_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// `admin` with its path replaced by `/<name>`.
fn with_database(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin)
        .unwrap_or_else(|e| panic!("admin database URL {admin:?} does not parse: {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs one server-wide statement (`CREATE USER`, `GRANT`, …) as the test admin of `backend`'s
/// server; synchronous, so a guard's Drop can clean up with it.
pub fn admin(backend: Backend, sql: &str) -> Result<(), String> {
    let url = match backend {
        Backend::Postgres => admin_url("FERROCHAT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        Backend::MySql => admin_url("FERROCHAT_TEST_MYSQL_URL", DEFAULT_MYSQL_URL),
        Backend::Sqlite => return Err("SQLite has no server".to_owned()),
    };
    admin_execute(backend, &url, sql.to_owned())
}

/// The admin URL of `backend`'s server with another user and database, for tests that connect
/// as a restricted user.
pub fn url_as(backend: Backend, user: &str, password: &str, database: &str) -> String {
    let admin = match backend {
        Backend::Postgres => admin_url("FERROCHAT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        Backend::MySql => admin_url("FERROCHAT_TEST_MYSQL_URL", DEFAULT_MYSQL_URL),
        Backend::Sqlite => panic!("SQLite has no users"),
    };
    let mut url = url::Url::parse(&with_database(&admin, database))
        .unwrap_or_else(|e| panic!("admin database URL {admin:?} does not parse: {e}"));
    let ok = url.set_username(user).is_ok() && url.set_password(Some(password)).is_ok();
    assert!(ok, "cannot put credentials into {admin}");
    url.to_string()
}

/// Runs one statement on a fresh admin connection, on a thread with its own runtime (callable
/// from sync code, from Drop and from inside a tokio test alike).
fn admin_execute(backend: Backend, admin: &str, sql: String) -> Result<(), String> {
    let admin = admin.to_owned();
    let worker = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        runtime.block_on(async move {
            let work = async {
                match backend {
                    Backend::Postgres => {
                        let mut conn = PgConnection::connect(&admin).await?;
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                        conn.close().await
                    }
                    Backend::MySql => {
                        let mut conn = MySqlConnection::connect(&admin).await?;
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                        conn.close().await
                    }
                    Backend::Sqlite => Ok(()),
                }
            };
            match tokio::time::timeout(ADMIN_TIMEOUT, work).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", ADMIN_TIMEOUT.as_secs())),
            }
        })
    });
    worker
        .join()
        .map_err(|_| "the admin thread panicked".to_owned())?
}

/// Runs test SQL (no parameters) on any backend; the caller writes it for `db.vendor()`.
pub async fn exec(db: &Db, sql: &str) {
    let stmt = AssertSqlSafe(sql.to_owned());
    let result = match db {
        Db::Sqlite(pool) => sqlx::raw_sql(stmt).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::raw_sql(stmt).execute(pool).await.map(drop),
        Db::MySql(pool) => sqlx::raw_sql(stmt).execute(pool).await.map(drop),
    };
    if let Err(e) = result {
        panic!("test SQL failed on {}: {e}\n{sql}", db.vendor());
    }
}

/// The first column of every row, as text (the SQL must select something text-like; wrap
/// numbers in a cast).
pub async fn strings(db: &Db, sql: &str) -> Vec<String> {
    let stmt = AssertSqlSafe(sql.to_owned());
    let rows: Result<Vec<Option<String>>, sqlx::Error> = match db {
        Db::Sqlite(pool) => sqlx::query(stmt)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect()),
        Db::Postgres(pool) => sqlx::query(stmt)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect()),
        Db::MySql(pool) => sqlx::query(stmt)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect()),
    };
    match rows {
        Ok(rows) => rows
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
            .collect(),
        Err(e) => panic!("test query failed on {}: {e}\n{sql}", db.vendor()),
    }
}
