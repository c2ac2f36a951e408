//! `chatapp_message`: saved before every broadcast; the room page shows the latest 50.

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

/// One message to save.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: i64,
    pub user_id: i64,
    pub content: String,
    pub timestamp: DateTime<Utc>,
}

/// Inserts `batch` inside an open transaction, returning the ids in order.
macro_rules! insert_each {
    ($tx:expr, $batch:expr, $sql:expr, $bind_ts:expr, $bind_user:expr, $fetch_id:expr) => {{
        let mut ids = Vec::with_capacity($batch.len());
        for m in $batch {
            let query = sqlx::query($sql)
                .bind(m.content.as_str())
                .bind($bind_ts(m))
                .bind($bind_user(m)?)
                .bind(m.room_id);
            ids.push($fetch_id(query.execute(&mut *$tx).await?)?);
        }
        ids
    }};
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
                let ids = insert_each!(
                    tx,
                    batch,
                    SQL_QMARK,
                    |m: &NewMessage| to_sqlite(&m.timestamp),
                    |m: &NewMessage| Ok::<_, DbError>(m.user_id),
                    |done: sqlx::sqlite::SqliteQueryResult| Ok::<_, DbError>(
                        done.last_insert_rowid()
                    )
                );
                tx.commit().await?;
                ids
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                let mut ids = Vec::with_capacity(batch.len());
                for m in batch {
                    let user_id = i32::try_from(m.user_id).map_err(|_| DbError::InvalidData {
                        column: "chatapp_message.user_id",
                        detail: format!("user id {} out of range", m.user_id),
                    })?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(m.content.as_str())
                    .bind(m.timestamp)
                    .bind(user_id)
                    .bind(m.room_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    ids.push(id);
                }
                tx.commit().await?;
                ids
            }
            Db::MySql(p) => {
                let mut tx = p.begin().await?;
                let ids = insert_each!(
                    tx,
                    batch,
                    SQL_QMARK,
                    |m: &NewMessage| to_mysql(&m.timestamp),
                    |m: &NewMessage| Ok::<_, DbError>(m.user_id),
                    |done: sqlx::mysql::MySqlQueryResult| i64::try_from(done.last_insert_id())
                        .map_err(|_| DbError::InvalidData {
                            column: "chatapp_message.id",
                            detail: "out of range".into()
                        })
                );
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
            .map(|(id, content, timestamp, username)| StoredMessage {
                id,
                content,
                timestamp,
                username,
            })
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
}

/// Messages waiting for the writer before senders wait for room in its queue.
const WRITER_QUEUE: usize = 4096;

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<i64, DbError>>,
}

/// Group commit for chat messages: every socket hands its message to one writer task, which
/// saves whatever has queued up meanwhile in a single transaction. Under load one commit (one
/// fsync on SQLite) carries many messages; alone, a message costs what it did before. Each
/// sender still waits for its own id, so "saved, then broadcast" and per-sender order hold.
#[derive(Clone)]
pub struct MessageWriter {
    jobs: mpsc::Sender<Job>,
}

impl MessageWriter {
    /// Starts the writer task on `db`; batches hold at most `max_batch` messages.
    pub fn spawn(db: Db, max_batch: usize) -> MessageWriter {
        let (jobs, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(run_writer(db, rx, max_batch.max(1)));
        MessageWriter { jobs }
    }

    /// Saves one message and returns its id once it is committed.
    pub async fn save(&self, message: NewMessage) -> Result<i64, DbError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { message, reply })
            .await
            .map_err(|_| DbError::WriterStopped)?;
        answer.await.map_err(|_| DbError::WriterStopped)?
    }
}

async fn run_writer(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let batch: Vec<NewMessage> = jobs.iter().map(|j| j.message.clone()).collect();
        match db.message_insert_batch(&batch).await {
            Ok(ids) => {
                for (job, id) in jobs.drain(..).zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            // One bad message (say, its author was deleted meanwhile) must not fail the others:
            // save them one by one so only the bad one gets the error.
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(error = %e, size = jobs.len(), "a message batch failed; saving one by one");
                for job in jobs.drain(..) {
                    let result = db.message_insert(&job.message).await;
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(DbError::WriterFailed(e.to_string())));
                }
            }
        }
    }
}
