//! `chatapp_message`: saved before every broadcast; the room page shows the latest 50.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::datetime::{from_mysql, from_sqlite, to_mysql, to_sqlite};
use super::{Db, DbError};

/// A message with its author's username, as the room page and the socket frame need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: i64,
    pub content: String,
    pub timestamp: DateTime<Utc>,
    pub username: String,
}

/// A row as the PostgreSQL queries read it: id, content, timestamp, username.
impl From<(i64, String, DateTime<Utc>, String)> for StoredMessage {
    fn from((id, content, timestamp, username): (i64, String, DateTime<Utc>, String)) -> Self {
        StoredMessage {
            id,
            content,
            timestamp,
            username,
        }
    }
}

/// One message to save.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: i64,
    pub user_id: i64,
    pub content: String,
    pub timestamp: DateTime<Utc>,
}

/// Rows per SQLite `INSERT`: 4 parameters each, well under SQLite's 32 766 limit.
const SQLITE_MAX_ROWS: usize = 256;

/// Splits `batch` into chunks whose sizes are powers of two (at most `max`), so only a handful
/// of distinct statements exist for the driver to prepare and cache.
fn power_of_two_chunks<T>(mut batch: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if batch.is_empty() {
            return None;
        }
        let size = batch.len().min(max);
        // The largest power of two that fits.
        let size = 1usize << (usize::BITS - 1 - size.leading_zeros());
        let (chunk, rest) = batch.split_at(size);
        batch = rest;
        Some(chunk)
    })
}

/// `INSERT … VALUES (?, ?, ?, ?), … RETURNING id` for `rows` rows.
fn sqlite_multi_insert(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?)"
        });
    }
    sql.push_str(" RETURNING id");
    sql
}

/// The ids of one multi-row insert, in the order of its rows. The rows of one statement are
/// inserted in order, each taking the next id of the table's sequence, so ascending ids are
/// row order (the order `RETURNING` lists them in is not promised).
fn in_insert_order(mut ids: Vec<i64>, rows: usize) -> Result<Vec<i64>, DbError> {
    if ids.len() != rows {
        return Err(DbError::InvalidData {
            column: "chatapp_message.id",
            detail: format!("{rows} rows inserted but {} ids returned", ids.len()),
        });
    }
    ids.sort_unstable();
    Ok(ids)
}

impl Db {
    /// Inserts one message (`Message.objects.create`) and returns its id.
    pub async fn message_insert(&self, m: &NewMessage) -> Result<i64, DbError> {
        let ids = self.message_insert_batch(std::slice::from_ref(m)).await?;
        ids.first().copied().ok_or_else(|| DbError::InvalidData {
            column: "chatapp_message.id",
            detail: "the insert returned no id".into(),
        })
    }

    /// Inserts several messages in **one transaction** (one commit, one fsync: group commit),
    /// returning their ids in order. Either all are saved or none.
    pub async fn message_insert_batch(&self, batch: &[NewMessage]) -> Result<Vec<i64>, DbError> {
        const SQL_QMARK: &str = "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES (?, ?, ?, ?)";
        let ids = match self {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let mut ids = Vec::with_capacity(batch.len());
                for chunk in power_of_two_chunks(batch, SQLITE_MAX_ROWS) {
                    let sql = sqlite_multi_insert(chunk.len());
                    // Built only from the fixed text above: no input reaches the SQL.
                    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
                    for m in chunk {
                        query = query
                            .bind(m.content.as_str())
                            .bind(to_sqlite(&m.timestamp))
                            .bind(m.user_id)
                            .bind(m.room_id);
                    }
                    ids.extend(in_insert_order(
                        query.fetch_all(&mut *tx).await?,
                        chunk.len(),
                    )?);
                }
                tx.commit().await?;
                ids
            }
            Db::Postgres(p) => {
                let mut contents = Vec::with_capacity(batch.len());
                let mut timestamps = Vec::with_capacity(batch.len());
                let mut users = Vec::with_capacity(batch.len());
                let mut rooms = Vec::with_capacity(batch.len());
                for m in batch {
                    contents.push(m.content.as_str());
                    timestamps.push(m.timestamp);
                    users.push(i32::try_from(m.user_id).map_err(|_| DbError::InvalidData {
                        column: "chatapp_message.user_id",
                        detail: format!("user id {} out of range", m.user_id),
                    })?);
                    rooms.push(m.room_id);
                }
                // One statement for the whole batch (a single implicit transaction).
                let inserted: Vec<i64> = sqlx::query_scalar(
                    "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) \
                     SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int[], $4::bigint[]) \
                     RETURNING id",
                )
                .bind(&contents)
                .bind(&timestamps)
                .bind(&users)
                .bind(&rooms)
                .fetch_all(p)
                .await?;
                in_insert_order(inserted, batch.len())?
            }
            Db::MySql(p) => {
                let mut tx = p.begin().await?;
                let mut ids = Vec::with_capacity(batch.len());
                for m in batch {
                    let done = sqlx::query(SQL_QMARK)
                        .bind(m.content.as_str())
                        .bind(to_mysql(&m.timestamp))
                        .bind(m.user_id)
                        .bind(m.room_id)
                        .execute(&mut *tx)
                        .await?;
                    ids.push(i64::try_from(done.last_insert_id()).map_err(|_| {
                        DbError::InvalidData {
                            column: "chatapp_message.id",
                            detail: "out of range".into(),
                        }
                    })?);
                }
                tx.commit().await?;
                ids
            }
        };
        Ok(ids)
    }

    /// The latest `limit` messages of a room, oldest first (the legacy `room` view:
    /// `order_by("-timestamp", "-id")[:50]`, reversed).
    pub async fn messages_latest(
        &self,
        room_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, DbError> {
        let mut newest_first: Vec<StoredMessage> = match self {
            Db::Sqlite(p) => {
                let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
                    "SELECT m.id, m.content, m.timestamp, u.username FROM chatapp_message m \
                     JOIN auth_user u ON u.id = m.user_id WHERE m.room_id = ? \
                     ORDER BY m.timestamp DESC, m.id DESC LIMIT ?",
                )
                .bind(room_id)
                .bind(limit)
                .fetch_all(p)
                .await?;
                rows.into_iter()
                    .map(|(id, content, ts, username)| {
                        Ok(StoredMessage {
                            id,
                            content,
                            timestamp: from_sqlite(&ts).map_err(|e| DbError::InvalidData {
                                column: "chatapp_message.timestamp",
                                detail: e.to_string(),
                            })?,
                            username,
                        })
                    })
                    .collect::<Result<_, DbError>>()?
            }
            Db::Postgres(p) => sqlx::query_as::<_, (i64, String, DateTime<Utc>, String)>(
                "SELECT m.id, m.content, m.timestamp, u.username FROM chatapp_message m \
                 JOIN auth_user u ON u.id = m.user_id WHERE m.room_id = $1 \
                 ORDER BY m.timestamp DESC, m.id DESC LIMIT $2",
            )
            .bind(room_id)
            .bind(limit)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(StoredMessage::from)
            .collect(),
            Db::MySql(p) => sqlx::query_as::<_, (i64, String, chrono::NaiveDateTime, String)>(
                "SELECT m.id, m.content, m.timestamp, u.username FROM chatapp_message m \
                 JOIN auth_user u ON u.id = m.user_id WHERE m.room_id = ? \
                 ORDER BY m.timestamp DESC, m.id DESC LIMIT ?",
            )
            .bind(room_id)
            .bind(limit)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|(id, content, ts, username)| StoredMessage {
                id,
                content,
                timestamp: from_mysql(ts),
                username,
            })
            .collect(),
        };
        newest_first.reverse();
        Ok(newest_first)
    }

    /// The room page's two reads in one statement: `Room.objects.get(name=…)` and, when the
    /// room exists, its latest `limit` messages oldest first (as [`Db::messages_latest`]).
    /// `None` means no room was found: the caller falls back to `room_get_or_create`.
    ///
    /// The room is LEFT JOINed to its messages, so a room without history still gives one row
    /// (with NULL message columns). `select_related("user")` is an INNER JOIN in Django; a
    /// message whose author row is missing is filtered out here likewise, before the LIMIT.
    pub async fn room_history(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<Option<Vec<StoredMessage>>, DbError> {
        macro_rules! sql {
            ($name:literal, $limit:literal) => {
                concat!(
                    "SELECT m.id, m.content, m.timestamp, u.username \
                     FROM chatapp_room r \
                     LEFT JOIN chatapp_message m ON m.room_id = r.id \
                     LEFT JOIN auth_user u ON u.id = m.user_id \
                     WHERE r.name = ",
                    $name,
                    " AND (m.id IS NULL OR u.id IS NOT NULL) \
                     ORDER BY m.timestamp DESC, m.id DESC LIMIT ",
                    $limit
                )
            };
        }
        const SQL_QMARK: &str = sql!("?", "?");
        const SQL_DOLLAR: &str = sql!("$1", "$2");
        type Row<T> = (Option<i64>, Option<String>, Option<T>, Option<String>);
        /// Rows to messages, newest first; `None` without any row (no such room).
        fn collect<T>(
            rows: Vec<Row<T>>,
            timestamp: impl Fn(T) -> Result<DateTime<Utc>, DbError>,
        ) -> Result<Option<Vec<StoredMessage>>, DbError> {
            if rows.is_empty() {
                return Ok(None);
            }
            let mut messages = Vec::with_capacity(rows.len());
            for row in rows {
                // The one row of a room without messages.
                let (Some(id), Some(content), Some(ts), Some(username)) = row else {
                    continue;
                };
                messages.push(StoredMessage {
                    id,
                    content,
                    timestamp: timestamp(ts)?,
                    username,
                });
            }
            Ok(Some(messages))
        }
        let newest_first = match self {
            // SQLite re-prepares a statement whose `LIMIT ?` is rebound (it plans for the
            // value), on every execution: the number goes into the SQL text instead, one cached
            // statement per limit.
            Db::Sqlite(p) => collect(
                sqlx::query_as::<_, Row<String>>(sqlx::AssertSqlSafe(format!(
                    "{}{limit}",
                    sql!("?", "")
                )))
                .bind(name)
                .fetch_all(p)
                .await?,
                |ts| {
                    from_sqlite(&ts).map_err(|e| DbError::InvalidData {
                        column: "chatapp_message.timestamp",
                        detail: e.to_string(),
                    })
                },
            )?,
            Db::Postgres(p) => collect(
                sqlx::query_as::<_, Row<DateTime<Utc>>>(SQL_DOLLAR)
                    .bind(name)
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
                Ok,
            )?,
            Db::MySql(p) => collect(
                sqlx::query_as::<_, Row<chrono::NaiveDateTime>>(SQL_QMARK)
                    .bind(name)
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
                |ts| Ok(from_mysql(ts)),
            )?,
        };
        Ok(newest_first.map(|mut messages| {
            messages.reverse();
            messages
        }))
    }
}

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<i64, DbError>>,
}

/// How long, and how many messages, the writer holds while the database does not answer
/// (`FERROCHAT_DB_OUTAGE_HOLD_SECS`, `FERROCHAT_DB_OUTAGE_HOLD_MESSAGES`). Within the bound a
/// restart of the database loses nothing: the messages are saved, in order, when it answers,
/// then broadcast. Beyond it every held message fails (its socket closes with 1011 and the
/// consumer logs it with its room and user): never dropped silently, never broadcast unsaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageHold {
    pub duration: Duration,
    pub messages: usize,
}

impl Default for OutageHold {
    fn default() -> Self {
        OutageHold {
            duration: Duration::from_secs(15),
            messages: 10_000,
        }
    }
}

/// Group commit for chat messages: every socket hands its message to one writer task, which
/// saves whatever has queued up meanwhile in a single transaction. Under load one commit (one
/// fsync on SQLite) carries many messages; alone, a message costs what it did before. Messages
/// are saved in the order they were queued and each sender learns its own id, so "saved, then
/// broadcast" and per-sender order hold.
///
/// The queue itself is unbounded: what bounds it is each socket's limit on messages awaiting
/// their save (a socket stops reading its client at that limit), and the [`OutageHold`].
#[derive(Clone)]
pub struct MessageWriter {
    jobs: mpsc::UnboundedSender<Job>,
    held: Arc<AtomicUsize>,
}

/// One queued message's save, resolving to its id once committed.
#[derive(Debug)]
pub struct PendingSave {
    answer: oneshot::Receiver<Result<i64, DbError>>,
}

impl std::future::Future for PendingSave {
    type Output = Result<i64, DbError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(DbError::WriterStopped)))
    }
}

impl MessageWriter {
    /// Starts the writer task on `db` with the default [`OutageHold`]; batches hold at most
    /// `max_batch` messages.
    pub fn spawn(db: Db, max_batch: usize) -> MessageWriter {
        MessageWriter::spawn_with(db, max_batch, OutageHold::default())
    }

    pub fn spawn_with(db: Db, max_batch: usize, hold: OutageHold) -> MessageWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            db,
            rx,
            max_batch: max_batch.max(1),
            hold,
            held: held.clone(),
        };
        tokio::spawn(writer.run());
        MessageWriter { jobs, held }
    }

    /// Queues one message now (so messages queued one after another are saved in that order)
    /// and returns its pending save.
    pub fn enqueue(&self, message: NewMessage) -> PendingSave {
        let (reply, answer) = oneshot::channel();
        // A stopped writer drops the job, and with it `reply`: the save then answers
        // `WriterStopped`.
        let _ = self.jobs.send(Job { message, reply });
        PendingSave { answer }
    }

    /// Saves one message and returns its id once it is committed.
    pub async fn save(&self, message: NewMessage) -> Result<i64, DbError> {
        self.enqueue(message).await
    }

    /// Messages held because the database does not answer (0 when it does): `/healthz`.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

struct Writer {
    db: Db,
    rx: mpsc::UnboundedReceiver<Job>,
    max_batch: usize,
    hold: OutageHold,
    held: Arc<AtomicUsize>,
}

const MIN_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

impl Writer {
    async fn run(mut self) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        while self.rx.recv_many(&mut jobs, self.max_batch).await > 0 {
            // Moved out of the jobs, not copied: the batch and its replies, in the same order.
            let (batch, replies): (Vec<NewMessage>, Vec<_>) =
                jobs.drain(..).map(|job| (job.message, job.reply)).unzip();
            self.save(batch, replies).await;
        }
    }

    /// Saves one batch, holding it (and, behind it in the queue, every later message) while the
    /// database does not answer, within the [`OutageHold`].
    async fn save(
        &mut self,
        batch: Vec<NewMessage>,
        replies: Vec<oneshot::Sender<Result<i64, DbError>>>,
    ) {
        let mut outage: Option<Instant> = None;
        let mut retry = MIN_RETRY;
        loop {
            let error = match self.db.message_insert_batch(&batch).await {
                Ok(ids) => {
                    if let Some(since) = outage {
                        tracing::info!(
                            held = batch.len() + self.rx.len(),
                            after_ms = since.elapsed().as_millis() as u64,
                            "the database answers again: saving the held messages"
                        );
                        self.held.store(0, Ordering::Relaxed);
                    }
                    for (reply, id) in replies.into_iter().zip(ids) {
                        let _ = reply.send(Ok(id));
                    }
                    return;
                }
                Err(e) => e,
            };
            if !is_outage(&error) {
                return self.refused(batch, replies, error).await;
            }
            let since = *outage.get_or_insert_with(|| {
                tracing::warn!(error = %error, "the database does not answer: holding chat messages until it does");
                Instant::now()
            });
            let held = batch.len() + self.rx.len();
            self.held.store(held, Ordering::Relaxed);
            if since.elapsed() >= self.hold.duration || held > self.hold.messages {
                return self.give_up(batch, replies, since, &error);
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        }
    }

    /// The database answered with an error that waiting will not fix. One bad message (say,
    /// its author was deleted meanwhile) must not fail the others: they are saved one by one so
    /// only the bad one gets the error.
    async fn refused(
        &self,
        batch: Vec<NewMessage>,
        replies: Vec<oneshot::Sender<Result<i64, DbError>>>,
        error: DbError,
    ) {
        if batch.len() > 1 {
            tracing::warn!(error = %error, size = batch.len(), "a message batch failed; saving one by one");
            for (message, reply) in batch.iter().zip(replies) {
                let _ = reply.send(self.db.message_insert(message).await);
            }
        } else {
            for reply in replies {
                let _ = reply.send(Err(DbError::WriterFailed(error.to_string())));
            }
        }
    }

    /// Beyond the hold: every held message (this batch and all queued behind it) fails; each
    /// socket closes with 1011 and logs its message with room and user.
    fn give_up(
        &mut self,
        batch: Vec<NewMessage>,
        replies: Vec<oneshot::Sender<Result<i64, DbError>>>,
        since: Instant,
        error: &DbError,
    ) {
        let mut failed: Vec<(NewMessage, oneshot::Sender<Result<i64, DbError>>)> =
            batch.into_iter().zip(replies).collect();
        while let Ok(job) = self.rx.try_recv() {
            failed.push((job.message, job.reply));
        }
        tracing::error!(
            messages = failed.len(),
            held_ms = since.elapsed().as_millis() as u64,
            error = %error,
            "the database stayed away beyond the outage hold: these messages are NOT saved"
        );
        for (message, reply) in failed {
            tracing::error!(
                room_id = message.room_id,
                user_id = message.user_id,
                "chat message not saved (database outage)"
            );
            let _ = reply.send(Err(DbError::WriterFailed(format!(
                "not saved: the database did not answer for {} s ({error})",
                since.elapsed().as_secs()
            ))));
        }
        self.held.store(0, Ordering::Relaxed);
    }
}

/// True when the database is away or restarting rather than refusing this statement: a lost or
/// refused connection, a pool that got none in time, a server shutting down, a locked SQLite.
fn is_outage(error: &DbError) -> bool {
    let DbError::Query(e) = error else {
        return false;
    };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // Server shutdown, gone away, lost connection, too many connections, lock wait.
                return matches!(my.number(), 1040 | 1053 | 1205 | 1213 | 2006 | 2013 | 1927);
            }
            let code = db.code().unwrap_or_default();
            match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLITE_BUSY / SQLITE_LOCKED and their extended codes.
                Some(_) => code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
                // PostgreSQL: connection exceptions (08…), operator intervention (57P0x: admin
                // or crash shutdown, cannot connect now), too many connections (53300).
                None => code.starts_with("08") || code.starts_with("57P0") || code == "53300",
            }
        }
        _ => false,
    }
}
