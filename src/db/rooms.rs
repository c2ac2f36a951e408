//! `chatapp_room`: rooms are created on first visit (`Room.objects.get_or_create(name=…)`).

use chrono::{DateTime, Utc};

use super::datetime::{from_mysql, from_sqlite, now, to_mysql, to_sqlite};
use super::{Db, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Db {
    /// The room with this name (name lookups follow the database's collation, as under Django:
    /// case-insensitive on MySQL/MariaDB).
    pub async fn room_by_name(&self, name: &str) -> Result<Option<Room>, DbError> {
        Ok(match self {
            Db::Sqlite(p) => {
                let row: Option<(i64, String, String)> =
                    sqlx::query_as("SELECT id, name, created_at FROM chatapp_room WHERE name = ?")
                        .bind(name)
                        .fetch_optional(p)
                        .await?;
                match row {
                    Some((id, name, created)) => Some(Room {
                        id,
                        name,
                        created_at: from_sqlite(&created).map_err(|e| DbError::InvalidData {
                            column: "chatapp_room.created_at",
                            detail: e.to_string(),
                        })?,
                    }),
                    None => None,
                }
            }
            Db::Postgres(p) => sqlx::query_as::<_, (i64, String, DateTime<Utc>)>(
                "SELECT id, name, created_at FROM chatapp_room WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(p)
            .await?
            .map(|(id, name, created_at)| Room {
                id,
                name,
                created_at,
            }),
            Db::MySql(p) => sqlx::query_as::<_, (i64, String, chrono::NaiveDateTime)>(
                "SELECT id, name, created_at FROM chatapp_room WHERE name = ?",
            )
            .bind(name)
            .fetch_optional(p)
            .await?
            .map(|(id, name, created)| Room {
                id,
                name,
                created_at: from_mysql(created),
            }),
        })
    }

    /// `get_or_create`: a concurrent creator (another ferrochat or Django) winning the race is
    /// fine, the row it made is returned.
    pub async fn room_get_or_create(&self, name: &str) -> Result<Room, DbError> {
        if let Some(room) = self.room_by_name(name).await? {
            return Ok(room);
        }
        let created_at = now();
        let inserted = match self {
            Db::Sqlite(p) => {
                sqlx::query("INSERT INTO chatapp_room (name, created_at) VALUES (?, ?)")
                    .bind(name)
                    .bind(to_sqlite(&created_at))
                    .execute(p)
                    .await
                    .map(|_| ())
            }
            Db::Postgres(p) => {
                sqlx::query("INSERT INTO chatapp_room (name, created_at) VALUES ($1, $2)")
                    .bind(name)
                    .bind(created_at)
                    .execute(p)
                    .await
                    .map(|_| ())
            }
            Db::MySql(p) => {
                sqlx::query("INSERT INTO chatapp_room (name, created_at) VALUES (?, ?)")
                    .bind(name)
                    .bind(to_mysql(&created_at))
                    .execute(p)
                    .await
                    .map(|_| ())
            }
        };
        match inserted {
            Ok(()) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        self.room_by_name(name)
            .await?
            .ok_or_else(|| DbError::InvalidData {
                column: "chatapp_room.name",
                detail: format!("room {name:?} vanished right after its creation"),
            })
    }

    /// All room names, `Room.objects.order_by("name")`.
    pub async fn room_names(&self) -> Result<Vec<String>, DbError> {
        Ok(match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT name FROM chatapp_room ORDER BY name ASC")
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT name FROM chatapp_room ORDER BY name ASC")
                    .fetch_all(p)
                    .await?
            }
            Db::MySql(p) => {
                sqlx::query_scalar("SELECT name FROM chatapp_room ORDER BY name ASC")
                    .fetch_all(p)
                    .await?
            }
        })
    }
}
