//! `chatapp_message`: saved before every broadcast; the room page shows the latest 50.

use chrono::{DateTime, Utc};

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
pub struct NewMessage<'a> {
    pub room_id: i64,
    pub user_id: i64,
    pub content: &'a str,
    pub timestamp: DateTime<Utc>,
}

impl Db {
    /// Inserts one message (`Message.objects.create`) and returns its id.
    pub async fn message_insert(&self, m: &NewMessage<'_>) -> Result<i64, DbError> {
        Ok(match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar(
                    "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES (?, ?, ?, ?) RETURNING id",
                )
                .bind(m.content)
                .bind(to_sqlite(&m.timestamp))
                .bind(m.user_id)
                .bind(m.room_id)
                .fetch_one(p)
                .await?
            }
            Db::Postgres(p) => {
                let user_id = i32::try_from(m.user_id).map_err(|_| DbError::InvalidData { column: "chatapp_message.user_id", detail: format!("user id {} out of range", m.user_id) })?;
                sqlx::query_scalar(
                    "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(m.content)
                .bind(m.timestamp)
                .bind(user_id)
                .bind(m.room_id)
                .fetch_one(p)
                .await?
            }
            Db::MySql(p) => {
                let done = sqlx::query(
                    "INSERT INTO chatapp_message (content, timestamp, user_id, room_id) VALUES (?, ?, ?, ?)",
                )
                .bind(m.content)
                .bind(to_mysql(&m.timestamp))
                .bind(m.user_id)
                .bind(m.room_id)
                .execute(p)
                .await?;
                i64::try_from(done.last_insert_id()).map_err(|_| DbError::InvalidData { column: "chatapp_message.id", detail: "out of range".into() })?
            }
        })
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
