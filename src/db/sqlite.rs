//! The SQLite side of [`Db`](super::Db): sqlx's pool, with finished connections kept here.
//!
//! sqlx runs every SQLite connection on a worker thread of its own, so each statement is a
//! round trip to that thread (two thread switches). sqlx's pool adds another round trip each
//! time a connection goes back: a `ping` that tests it before it is reused, useful for a socket
//! to a server that may have gone away, pointless for a file opened in this process. On a page
//! that runs three short queries those pings were half of the database work.
//!
//! [`SqliteDb`] hands out connections itself: one it finished a statement on goes to its own
//! idle list and is handed out again as is. Anything that may have left a connection in a state
//! sqlx should look at (a transaction, an explicit [`SqliteDb::acquire`], an error, a cancelled
//! query) goes back to sqlx's pool the usual way, ping included.
//! A semaphore with one permit per connection guards both, so every connection is either idle
//! here, idle in sqlx's pool, or in use by a permit holder, and nobody waits on sqlx's pool for
//! a connection that sits idle here.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::sqlite::{
    Sqlite, SqliteConnection, SqlitePool, SqliteQueryResult, SqliteRow, SqliteStatement,
    SqliteTypeInfo,
};
use sqlx::{Either, Execute, Executor, SqlSafeStr, SqlStr, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A SQLite database: sqlx's pool plus the connections this type keeps idle itself.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    /// Connections that finished a statement normally, most recently used last.
    idle: Mutex<Vec<PoolConnection<Sqlite>>>,
    /// One permit per connection the pool may open.
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("pool", &self.inner.pool)
            .field("kept_idle", &self.idle().len())
            .finish()
    }
}

impl SqliteDb {
    /// Wraps a pool that opens at most `max_connections` connections (the pool's own limit).
    pub(super) fn new(pool: SqlitePool, max_connections: u32, acquire_timeout: Duration) -> Self {
        let permits = usize::try_from(max_connections.max(1)).unwrap_or(1);
        SqliteDb {
            inner: Arc::new(Inner {
                pool,
                idle: Mutex::new(Vec::with_capacity(permits)),
                permits: Arc::new(Semaphore::new(permits)),
                acquire_timeout,
                closed: AtomicBool::new(false),
            }),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PoolConnection<Sqlite>>> {
        // The list stays consistent whatever panicked while holding the lock (push/pop only).
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A permit, within the pool's acquire timeout.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, sqlx::Error> {
        tokio::time::timeout(
            self.inner.acquire_timeout,
            self.inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)
    }

    /// A permit, then a connection: one kept idle here, else one from sqlx's pool.
    async fn checkout(&self) -> Result<SqliteConn, sqlx::Error> {
        let permit = self.permit().await?;
        let kept = self.idle().pop();
        let conn = match kept {
            Some(conn) => conn,
            // With a permit held and nothing idle here, every open connection is either idle
            // in sqlx's pool, on its way back there, or used by another permit holder (at most
            // one each, one permit per connection): the pool has or gets one for us.
            None => self.inner.pool.acquire().await?,
        };
        Ok(SqliteConn {
            conn: Some(conn),
            keep: false,
            home: self.inner.clone(),
            _permit: permit,
        })
    }

    /// Connections open now, and how many of them are checked out.
    pub fn connections(&self) -> (usize, usize) {
        let open = self.inner.pool.size() as usize;
        let max = self.options().get_max_connections() as usize;
        let in_use = max.saturating_sub(self.inner.permits.available_permits());
        (open.max(in_use), in_use)
    }

    /// The options of sqlx's pool underneath (its limits: `get_max_connections()`).
    pub fn options(&self) -> &PoolOptions<Sqlite> {
        self.inner.pool.options()
    }

    /// A connection for several statements; it goes back through sqlx's pool afterwards.
    pub async fn acquire(&self) -> Result<SqliteConn, sqlx::Error> {
        self.checkout().await
    }

    /// `BEGIN` on a connection of this database (see [`SqliteTx`]).
    pub async fn begin(&self) -> Result<SqliteTx, sqlx::Error> {
        let permit = self.permit_for_pool().await?;
        Ok(SqliteTx {
            tx: self.inner.pool.begin().await?,
            _permit: permit,
        })
    }

    /// A transaction opened with `statement` (e.g. `BEGIN IMMEDIATE`).
    pub async fn begin_with(&self, statement: impl SqlSafeStr) -> Result<SqliteTx, sqlx::Error> {
        let permit = self.permit_for_pool().await?;
        Ok(SqliteTx {
            tx: self.inner.pool.begin_with(statement).await?,
            _permit: permit,
        })
    }

    /// A permit for taking a connection from sqlx's pool directly (a transaction owns its
    /// connection and returns it there). One connection kept idle here, if any, goes back to
    /// the pool first, so the pool never waits for a connection idle on this side.
    async fn permit_for_pool(&self) -> Result<OwnedSemaphorePermit, sqlx::Error> {
        let permit = self.permit().await?;
        let kept = self.idle().pop();
        drop(kept);
        Ok(permit)
    }

    /// Stops handing out connections and closes them all (waits for those in use).
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.permits.close();
        // Back to sqlx's pool, which closes them along with the rest.
        let kept: Vec<_> = self.idle().drain(..).collect();
        drop(kept);
        self.inner.pool.close().await;
    }
}

/// A connection checked out of [`SqliteDb`]; usable as `&mut *conn` wherever sqlx takes an
/// executor.
pub struct SqliteConn {
    conn: Option<PoolConnection<Sqlite>>,
    /// Goes back to the idle list (a statement finished normally), else to sqlx's pool.
    keep: bool,
    home: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for SqliteConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("the connection is present until drop")
    }
}

impl DerefMut for SqliteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("the connection is present until drop")
    }
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.keep && !self.home.closed.load(Ordering::SeqCst) {
            self.home
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(conn);
        }
        // Otherwise `conn` drops here: back to sqlx's pool, which tests it (or closes it).
    }
}

/// Whether a connection goes straight back to the idle list after this outcome: only after a
/// success. After any error it goes back through sqlx's pool, which looks at it first.
fn reusable<T>(result: &Result<T, sqlx::Error>) -> bool {
    result.is_ok()
}

/// A transaction on a [`SqliteDb`] connection: `&mut *tx` is the connection, as with sqlx's
/// `Transaction`. Ends with [`commit`](Self::commit) or [`rollback`](Self::rollback); dropped
/// unfinished, it rolls back (sqlx's `Transaction`).
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _permit: OwnedSemaphorePermit,
}

impl SqliteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Statements run on a connection checked out for just that statement. Rows are collected
/// before they are handed on, so the connection is free again when the stream yields.
///
/// (With sqlx-core's `offline` feature, which sqlx's `macros`/`offline` features turn on, the
/// trait also has a `describe` method; ferrochat uses neither, so it is not implemented.)
impl<'p> Executor<'p> for &SqliteDb {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let db = self.clone();
        stream::once(async move {
            let mut conn = db.checkout().await?;
            let mut items = Vec::new();
            let mut failure = None;
            {
                let mut results = conn.fetch_many(query);
                while let Some(item) = results.next().await {
                    match item {
                        Ok(item) => items.push(Ok(item)),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            let outcome = match failure {
                None => Ok(()),
                Some(e) => Err(e),
            };
            conn.keep = reusable(&outcome);
            if let Err(e) = outcome {
                items.push(Err(e));
            }
            Ok::<_, sqlx::Error>(stream::iter(items))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.checkout().await?;
            let result = conn.fetch_optional(query).await;
            conn.keep = reusable(&result);
            result
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<SqliteStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.checkout().await?;
            let result = conn.prepare_with(sql, parameters).await;
            conn.keep = reusable(&result);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{DatabaseUrl, Db, DbOptions};
    use super::*;

    /// Well under the pool's acquire timeout: a wait for a connection idle on our side shows.
    const QUICK: Duration = Duration::from_secs(3);

    async fn file_db(dir: &tempfile::TempDir, connections: u32) -> (Db, SqliteDb) {
        let url = DatabaseUrl::Sqlite {
            path: dir.path().join("db.sqlite3"),
        };
        let options = DbOptions {
            sqlite_max_connections: connections,
            ..DbOptions::default()
        };
        let db = Db::connect_with(&url, &options).await.expect("connect");
        let Db::Sqlite(sqlite) = &db else {
            unreachable!("a SQLite URL")
        };
        let sqlite = sqlite.clone();
        (db, sqlite)
    }

    async fn one(db: &SqliteDb) -> i64 {
        sqlx::query_scalar("SELECT 1")
            .fetch_one(db)
            .await
            .expect("query")
    }

    #[tokio::test]
    async fn connections_are_kept_after_a_statement_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, sqlite) = file_db(&dir, 2).await;
        assert_eq!(one(&sqlite).await, 1);
        assert_eq!(sqlite.idle().len(), 1);
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT 1 UNION ALL SELECT 2")
            .fetch_all(&sqlite)
            .await
            .expect("rows");
        assert_eq!(rows, vec![(1,), (2,)]);
        assert_eq!(sqlite.idle().len(), 1, "the same connection came back");
        // A failed statement hands its connection back to sqlx's pool instead.
        sqlx::query("SELECT * FROM no_such_table")
            .execute(&sqlite)
            .await
            .expect_err("no such table");
        assert_eq!(sqlite.idle().len(), 0);
    }

    #[tokio::test]
    async fn a_transaction_never_waits_for_a_connection_kept_idle_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        // One connection, kept idle on our side after the first statement.
        let (_db, sqlite) = file_db(&dir, 1).await;
        one(&sqlite).await;
        assert_eq!(sqlite.idle().len(), 1);
        let mut tx = tokio::time::timeout(QUICK, sqlite.begin())
            .await
            .expect("no wait")
            .expect("begin");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *tx)
            .await
            .expect("create");
        tx.commit().await.expect("commit");
        // And back: a statement after the transaction, then an explicit acquire.
        tokio::time::timeout(QUICK, one(&sqlite))
            .await
            .expect("no wait");
        let mut conn = tokio::time::timeout(QUICK, sqlite.acquire())
            .await
            .expect("no wait")
            .expect("acquire");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn many_concurrent_statements_and_transactions_share_few_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, sqlite) = file_db(&dir, 2).await;
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&sqlite)
            .await
            .expect("create");
        let mut tasks = Vec::new();
        for i in 0..40i64 {
            let sqlite = sqlite.clone();
            tasks.push(tokio::spawn(async move {
                if i % 5 == 0 {
                    let mut tx = sqlite.begin().await.expect("begin");
                    sqlx::query("INSERT INTO t (x) VALUES (?)")
                        .bind(i)
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                    tx.commit().await.expect("commit");
                } else {
                    one(&sqlite).await;
                }
            }));
        }
        for task in tasks {
            tokio::time::timeout(QUICK, task)
                .await
                .expect("no task waits for a connection")
                .expect("task");
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&sqlite)
            .await
            .expect("count");
        assert_eq!(n, 8);
        assert!(sqlite.idle().len() <= 2);
    }

    #[tokio::test]
    async fn close_returns_with_connections_kept_idle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, sqlite) = file_db(&dir, 2).await;
        one(&sqlite).await;
        tokio::time::timeout(QUICK, db.close())
            .await
            .expect("close does not wait for the idle list");
        assert!(
            sqlx::query("SELECT 1").execute(&sqlite).await.is_err(),
            "closed"
        );
    }
}
