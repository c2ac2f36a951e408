//! Storage: one enum over the three sqlx pools, with SQL per backend next to the method using it.
//!
//! `sqlx::Any` cannot decode Django's `bool`/`datetime` columns and does not rewrite placeholders
//! (reference/crates.md §3), so every query is written once per backend (`?` vs `$1`) and each arm
//! uses its native driver. The database is the one a Django deployment of the legacy app uses:
//! same schema (`schema`), same datetime storage (`datetime`), same lookups (`users`).

pub mod catchup;
pub mod datetime;
pub mod dynamic;
pub mod messages;
pub mod options;
pub mod rooms;
pub mod schema;
pub mod sessions;
pub mod sqlite;
pub mod url;
pub mod users;

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::tls;

pub use schema::{MigrateReport, Migration, SchemaMismatch, SchemaState};
pub use sqlite::SqliteDb;
pub use url::DatabaseUrl;
pub use users::{NewUser, User};

/// How long a connection may take before it is given up (`FERROCHAT_DB_CONNECT_TIMEOUT`, else
/// the URL's `connect_timeout`, else this: PyMySQL's default): an unreachable database fails
/// startup within seconds with the real cause, instead of hanging.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a query waits for a pooled connection (sqlx keeps retrying a refused connection
/// within this window, so a database restart is ridden out).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The first connection failed: wrong host/port, credentials, missing database, timeout.
    #[error("cannot connect to the database {url}: {cause}")]
    Unreachable {
        /// The URL with its password redacted.
        url: String,
        #[source]
        cause: sqlx::Error,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// `auth_user.username` is unique; on MySQL/MariaDB the collation makes it case-insensitive.
    #[error("a user with that username already exists")]
    UsernameTaken,
    #[error("no user with id {id}")]
    UserNotFound { id: i64 },
    /// `migrate` refused to touch the database; nothing was changed.
    #[error("refusing to migrate (nothing was changed): {0}")]
    SchemaMismatch(#[from] SchemaMismatch),
    /// A statement of `migrate` failed; `outcome` says what state the database was left in.
    #[error("migrate failed while running {statement}: {cause}. {outcome}")]
    MigrateFailed {
        statement: String,
        #[source]
        cause: sqlx::Error,
        outcome: String,
    },
    /// Another `migrate` holds the database's migration lock.
    #[error("migrate is busy: {detail}")]
    Locked { detail: String },
    /// A stored value Django could not have written (e.g. unparsable SQLite datetime text).
    #[error("unexpected value in {column}: {detail}")]
    InvalidData {
        column: &'static str,
        detail: String,
    },
    /// The message writer's batch failed (the cause was logged with the batch).
    #[error("could not save the message: {0}")]
    WriterFailed(String),
    /// The message writer task is gone (the server is shutting down).
    #[error("the message writer has stopped")]
    WriterStopped,
}

/// Pool sizing and timeouts; `Db::connect` uses the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// Upper bound of pooled connections (PostgreSQL/MySQL; `FERROCHAT_DB_POOL_SIZE`). Django
    /// opens one per worker thread.
    pub max_connections: u32,
    /// `FERROCHAT_DB_CONNECT_TIMEOUT`; `None` uses the URL's `connect_timeout`, else
    /// [`CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// `FERROCHAT_DB_OUTAGE_HOLD_{SECS,MESSAGES}`: what the message writer holds while the
    /// database does not answer.
    pub outage_hold: messages::OutageHold,
    /// SQLite has one writer at a time; the connections serve concurrent readers. Each is a
    /// thread of sqlx's and a page cache (up to 2 MiB); 8 keep both cores busy under the room
    /// page's load (4 left a tenth of the CPU idle between hand-offs: 7 % fewer pages/s).
    pub sqlite_max_connections: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 10,
            connect_timeout: None,
            outage_hold: messages::OutageHold::default(),
            sqlite_max_connections: 8,
        }
    }
}

/// How many pooled connections are idle and in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    pub idle: usize,
    pub in_use: usize,
}

/// A pool on the database the legacy Django app uses.
#[derive(Debug, Clone)]
pub enum Db {
    /// sqlx's SQLite pool, handing out its connections without a ping per use (see `sqlite`).
    Sqlite(SqliteDb),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl Db {
    /// Opens a pool with default sizes; see [`Db::connect_with`].
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, DbError> {
        Db::connect_with(url, &DbOptions::default()).await
    }

    /// Opens a pool and proves the database answers (one real connection, within
    /// [`CONNECT_TIMEOUT`]), so a wrong URL fails here with the driver's own reason.
    ///
    /// - SQLite: the file is created if missing (an empty database `migrate` can fill), foreign
    ///   keys ON and a 5 s busy timeout (sqlx defaults, as Django's connection), and the
    ///   `journal_mode` is left as it is: switching a shared Django database to WAL behind Django's
    ///   back would be a permanent change to its file.
    /// - MySQL/MariaDB: sqlx's defaults `SET NAMES utf8mb4` and `time_zone='+00:00'`, so
    ///   `datetime(6)` values are naive UTC as Django writes them.
    pub async fn connect_with(url: &DatabaseUrl, options: &DbOptions) -> Result<Db, DbError> {
        let unreachable = |cause| DbError::Unreachable {
            url: url.redacted(),
            cause,
        };
        // `DatabaseUrl::parse` checked the query already; a failure here is a changed URL.
        let parsed = |raw: &str| {
            ::url::Url::parse(raw).map_err(|e| unreachable(sqlx::Error::Configuration(e.into())))
        };
        let query_error =
            |e: options::QueryError| unreachable(sqlx::Error::Configuration(e.into()));
        tls::install_crypto_provider();
        match url {
            DatabaseUrl::Sqlite { path } => {
                sqlite_process_config();
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                probe(&opts, CONNECT_TIMEOUT).await.map_err(unreachable)?;
                let max = options.sqlite_max_connections.max(1);
                let pool = SqlitePoolOptions::new()
                    // An in-process file cannot drop the connection like a server can.
                    .test_before_acquire(false)
                    .max_connections(max)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(opts);
                Ok(Db::Sqlite(SqliteDb::new(pool, max, ACQUIRE_TIMEOUT)))
            }
            DatabaseUrl::SqliteMemory => {
                sqlite_process_config();
                // Every SQLite connection to ":memory:" is its own database: keep exactly one,
                // forever, so the data outlives the query that wrote it.
                let opts = SqliteConnectOptions::new().in_memory(true);
                let pool = SqlitePoolOptions::new()
                    .min_connections(1)
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(opts)
                    .await
                    .map_err(unreachable)?;
                Ok(Db::Sqlite(SqliteDb::new(pool, 1, ACQUIRE_TIMEOUT)))
            }
            DatabaseUrl::Postgres { url: raw } => {
                let url = parsed(raw)?;
                let query = options::PgQuery::parse(&url).map_err(query_error)?;
                log_ignored(&query.ignored);
                let opts: PgConnectOptions = query.connect_options(&url).map_err(unreachable)?;
                let timeout = options.connect_timeout.or(query.connect_timeout);
                let timeout = timeout.unwrap_or(CONNECT_TIMEOUT);
                probe(&opts, timeout).await.map_err(unreachable)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(ACQUIRE_TIMEOUT.max(timeout))
                    .connect_lazy_with(opts);
                Ok(Db::Postgres(pool))
            }
            DatabaseUrl::MySql { url: raw } => {
                let url = parsed(raw)?;
                let query = options::MySqlQuery::parse(&url).map_err(query_error)?;
                log_ignored(&query.ignored);
                let opts: MySqlConnectOptions = query.connect_options(&url).map_err(unreachable)?;
                let timeout = options.connect_timeout.or(query.connect_timeout);
                let timeout = timeout.unwrap_or(CONNECT_TIMEOUT);
                probe(&opts, timeout).await.map_err(unreachable)?;
                let mut pool = MySqlPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(ACQUIRE_TIMEOUT.max(timeout));
                if let Some(command) = query.init_command {
                    // PyMySQL's `init_command`: run on every new connection.
                    let command: std::sync::Arc<str> = command.into();
                    pool = pool.after_connect(move |conn, _meta| {
                        let command = command.clone();
                        Box::pin(async move {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(command.to_string()))
                                .execute(conn)
                                .await
                                .map(drop)
                        })
                    });
                }
                Ok(Db::MySql(pool.connect_lazy_with(opts)))
            }
        }
    }

    /// `SELECT 1` through the pool: the health check and `ferrochat check` use it.
    pub async fn ping(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::raw_sql("SELECT 1").execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::raw_sql("SELECT 1").execute(pool).await?;
            }
            Db::MySql(pool) => {
                sqlx::raw_sql("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// The pool's connections now, for `ferrochat_db_pool_connections`.
    pub fn pool_connections(&self) -> PoolConnections {
        let (open, idle) = match self {
            Db::Sqlite(db) => {
                let (open, in_use) = db.connections();
                (open, open - in_use)
            }
            Db::Postgres(pool) => (pool.size() as usize, pool.num_idle()),
            Db::MySql(pool) => (pool.size() as usize, pool.num_idle()),
        };
        PoolConnections {
            idle,
            in_use: open.saturating_sub(idle),
        }
    }

    /// Django's `connection.vendor`: `sqlite`, `postgresql` or `mysql`.
    pub fn vendor(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgresql",
            Db::MySql(_) => "mysql",
        }
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
            Db::MySql(pool) => pool.close().await,
        }
    }
}

/// Process-wide SQLite settings, applied once before this process opens its first SQLite
/// database (every SQLite connection of ferrochat is opened by [`Db::connect_with`]).
///
/// `SQLITE_CONFIG_MEMSTATUS` off: by default SQLite counts its allocations for
/// `sqlite3_memory_used()` (which nothing here reads) under one process-wide mutex taken by every
/// `sqlite3_malloc`/`sqlite3_free`. sqlx copies each column of each row with
/// `sqlite3_value_dup` on the connection's worker thread and frees it on the async side, so
/// under load the workers and the request threads queue on that mutex (futex waits and wake-ups
/// on every page with history). SQLite recommends turning it off (`SQLITE_DEFAULT_MEMSTATUS=0`,
/// <https://sqlite.org/compile.html#default_memstatus>); it changes no query result.
fn sqlite_process_config() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` may only run before SQLite initialises and while no other
        // thread uses SQLite. The `Once` runs it before ferrochat's first SQLite connection and
        // makes every other opener wait for it; if SQLite was already initialised it changes
        // nothing and returns SQLITE_MISUSE. The argument is the documented `int`.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0u8),
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was already initialised; memory statistics stay on"
            );
        }
    });
}

/// Names, once per connect (so once in the startup log), the URL options sqlx cannot honour.
fn log_ignored(ignored: &[String]) {
    if !ignored.is_empty() {
        tracing::info!(
            "DATABASE_URL: ignoring the option(s) {} (not supported by ferrochat's driver)",
            ignored.join(", ")
        );
    }
}

/// One real connection within `timeout`, closed again: surfaces the driver's error (refused,
/// bad password, unknown database, TLS refused) that a pool would only report as a timeout.
async fn probe<O>(options: &O, timeout: Duration) -> Result<(), sqlx::Error>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => {
            // Closing politely can only fail on a broken socket; the probe already succeeded.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {} s (is the server running and reachable?)",
                timeout.as_secs_f64()
            ),
        ))),
    }
}

/// True for a unique-constraint violation on any backend.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use super::*;

    fn url(raw: &str) -> DatabaseUrl {
        DatabaseUrl::parse(raw, Path::new("/")).expect("valid URL")
    }

    #[tokio::test]
    async fn refused_connections_fail_fast_with_a_redacted_url() {
        for raw in [
            "postgres://u:secret@127.0.0.1:1/db",
            "mysql://u:secret@127.0.0.1:1/db",
        ] {
            let started = Instant::now();
            let err = Db::connect(&url(raw))
                .await
                .expect_err("nothing listens on port 1");
            assert!(
                started.elapsed() < CONNECT_TIMEOUT * 2,
                "{raw}: took {:?}",
                started.elapsed()
            );
            assert!(matches!(err, DbError::Unreachable { .. }), "{err:?}");
            let shown = err.to_string();
            assert!(shown.contains("127.0.0.1:1"), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[tokio::test]
    async fn sqlite_file_is_created_and_answers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new.sqlite3");
        let db = Db::connect(&DatabaseUrl::Sqlite { path: path.clone() })
            .await
            .expect("connect");
        db.ping().await.expect("ping");
        assert_eq!(db.vendor(), "sqlite");
        assert!(path.exists());
        db.close().await;

        let missing_dir = dir.path().join("no/such/dir/db.sqlite3");
        let err = Db::connect(&DatabaseUrl::Sqlite { path: missing_dir })
            .await
            .expect_err("a missing directory is not created");
        assert!(matches!(err, DbError::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn sqlite_memory_keeps_its_data() {
        let db = Db::connect(&DatabaseUrl::SqliteMemory)
            .await
            .expect("connect");
        schema::migrate(&db).await.expect("migrate");
        assert_eq!(
            schema::schema_state(&db).await.expect("state"),
            SchemaState::UpToDate
        );
        db.close().await;
    }
}
