//! `django_session` rows (Django's database session backend, `contrib/sessions/backends/db.py`).
//! The row holds the signed payload; signing and decoding live in `django::sessions`.

use chrono::{DateTime, Utc};

use super::datetime::{from_mysql, from_sqlite, to_mysql, to_sqlite};
use super::{Db, DbError};

/// A row that has not expired: its still-signed `session_data` and its `expire_date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub session_data: String,
    pub expire_date: DateTime<Utc>,
}

impl Db {
    /// `Session.objects.get(session_key=key, expire_date__gt=now)`: an expired row is absent.
    pub async fn session_load(
        &self,
        key: &str,
        now: &DateTime<Utc>,
    ) -> Result<Option<SessionRow>, DbError> {
        Ok(match self {
            Db::Sqlite(p) => {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT session_data, expire_date FROM django_session WHERE session_key = ? AND expire_date > ?",
                )
                .bind(key)
                .bind(to_sqlite(now))
                .fetch_optional(p)
                .await?;
                match row {
                    Some((data, expire)) => Some(SessionRow {
                        session_data: data,
                        expire_date: from_sqlite(&expire).map_err(|e| DbError::InvalidData { column: "django_session.expire_date", detail: e.to_string() })?,
                    }),
                    None => None,
                }
            }
            Db::Postgres(p) => sqlx::query_as::<_, (String, DateTime<Utc>)>(
                "SELECT session_data, expire_date FROM django_session WHERE session_key = $1 AND expire_date > $2",
            )
            .bind(key)
            .bind(now)
            .fetch_optional(p)
            .await?
            .map(|(session_data, expire_date)| SessionRow { session_data, expire_date }),
            Db::MySql(p) => sqlx::query_as::<_, (String, chrono::NaiveDateTime)>(
                "SELECT session_data, expire_date FROM django_session WHERE session_key = ? AND expire_date > ?",
            )
            .bind(key)
            .bind(to_mysql(now))
            .fetch_optional(p)
            .await?
            .map(|(session_data, expire)| SessionRow { session_data, expire_date: from_mysql(expire) }),
        })
    }

    /// Inserts a new row (`save(must_create=True)`); `Ok(false)` when the key is already taken,
    /// so the caller can draw another key as Django does on `IntegrityError`.
    pub async fn session_insert(
        &self,
        key: &str,
        data: &str,
        expire: &DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let result = match self {
            Db::Sqlite(p) => sqlx::query(
                "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
            )
            .bind(key)
            .bind(data)
            .bind(to_sqlite(expire))
            .execute(p)
            .await
            .map(|_| ()),
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(data)
            .bind(expire)
            .execute(p)
            .await
            .map(|_| ()),
            Db::MySql(p) => sqlx::query(
                "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
            )
            .bind(key)
            .bind(data)
            .bind(to_mysql(expire))
            .execute(p)
            .await
            .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites an existing row (`save(force_update)`); returns whether the row still existed
    /// (a logout elsewhere may have deleted it: Django then raises `SessionInterrupted`).
    pub async fn session_update(
        &self,
        key: &str,
        data: &str,
        expire: &DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let affected = match self {
            Db::Sqlite(p) => {
                sqlx::query("UPDATE django_session SET session_data = ?, expire_date = ? WHERE session_key = ?")
                    .bind(data)
                    .bind(to_sqlite(expire))
                    .bind(key)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(p) => {
                sqlx::query("UPDATE django_session SET session_data = $1, expire_date = $2 WHERE session_key = $3")
                    .bind(data)
                    .bind(expire)
                    .bind(key)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            Db::MySql(p) => {
                // MySQL reports 0 affected rows for an update that changes nothing; count matches instead.
                let found: Option<(i64,)> =
                    sqlx::query_as("SELECT 1 FROM django_session WHERE session_key = ?").bind(key).fetch_optional(p).await?;
                if found.is_none() {
                    return Ok(false);
                }
                sqlx::query("UPDATE django_session SET session_data = ?, expire_date = ? WHERE session_key = ?")
                    .bind(data)
                    .bind(to_mysql(expire))
                    .bind(key)
                    .execute(p)
                    .await?;
                1
            }
        };
        Ok(affected > 0)
    }

    /// Deletes a row (logout, `flush()`, `cycle_key()`); deleting a missing row is fine.
    pub async fn session_delete(&self, key: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(p) => {
                sqlx::query("DELETE FROM django_session WHERE session_key = ?")
                    .bind(key)
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query("DELETE FROM django_session WHERE session_key = $1")
                    .bind(key)
                    .execute(p)
                    .await?;
            }
            Db::MySql(p) => {
                sqlx::query("DELETE FROM django_session WHERE session_key = ?")
                    .bind(key)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// `SessionStore.clear_expired()` (`manage.py clearsessions`):
    /// `Session.objects.filter(expire_date__lt=now).delete()`; how many rows went.
    pub async fn session_clear_expired(&self, now: &DateTime<Utc>) -> Result<u64, DbError> {
        let deleted = match self {
            Db::Sqlite(p) => sqlx::query("DELETE FROM django_session WHERE expire_date < ?")
                .bind(to_sqlite(now))
                .execute(p)
                .await?
                .rows_affected(),
            Db::Postgres(p) => sqlx::query("DELETE FROM django_session WHERE expire_date < $1")
                .bind(now)
                .execute(p)
                .await?
                .rows_affected(),
            Db::MySql(p) => sqlx::query("DELETE FROM django_session WHERE expire_date < ?")
                .bind(to_mysql(now))
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(deleted)
    }
}
