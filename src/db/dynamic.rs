//! Statements built at run time (the admin's filtered, sorted changelists and its generic
//! forms), written once for all three backends: `?` placeholders and `"double-quoted"`
//! identifiers, rewritten here to `$n` for PostgreSQL and backticks for MySQL. Values are bound,
//! never spliced; each result column is read as the [`Kind`] the caller names, with each
//! backend's own decoding (Django's datetimes as [`super::datetime`] stores them).

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

use super::{Db, DbError, datetime, is_unique_violation};
use crate::django::dates::truncate_to_micros;

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Null,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Arg {
        Arg::Time(v)
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Arg {
        v.map_or(Arg::Null, Into::into)
    }
}

/// What a result column holds (every column may be NULL; NULL reads as [`Cell::Null`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    Time,
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl Cell {
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(v) => v,
            _ => "",
        }
    }
    pub fn bool(&self) -> bool {
        matches!(self, Cell::Bool(true))
    }
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Cell::Time(v) => Some(*v),
            _ => None,
        }
    }
}

/// A statement and its values.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (no values in it: bind them with [`Sql::bind`]).
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Binds the next `?`.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Sql {
        self.args.push(arg.into());
        self
    }

    /// Appends text and binds its values in order.
    pub fn push_bind(&mut self, text: &str, args: impl IntoIterator<Item = Arg>) -> &mut Sql {
        self.text.push_str(text);
        self.args.extend(args);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The statement in `vendor`'s dialect.
    fn dialect(&self, vendor: &str) -> String {
        match vendor {
            "postgresql" => {
                let mut out = String::with_capacity(self.text.len() + 8);
                let mut n = 0;
                for c in self.text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            "mysql" => self.text.replace('"', "`"),
            _ => self.text.clone(),
        }
    }
}

/// A unique constraint refused the write (e.g. a room name taken meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("a unique constraint refused the write")]
    Unique,
    #[error(transparent)]
    Db(#[from] DbError),
}

fn write_error(e: sqlx::Error) -> WriteError {
    if is_unique_violation(&e) {
        WriteError::Unique
    } else {
        WriteError::Db(DbError::Query(e))
    }
}

macro_rules! bind_all {
    ($query:expr, $args:expr, $time:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Bool(v) => q.bind(*v),
                Arg::Time(v) => q.bind($time(v)),
                Arg::Null => q.bind(Option::<String>::None),
            };
        }
        q
    }};
}

fn pg_time(v: &DateTime<Utc>) -> DateTime<Utc> {
    truncate_to_micros(*v)
}

fn bad(column: usize, e: impl std::fmt::Display) -> DbError {
    DbError::InvalidData {
        column: "admin query",
        detail: format!("column {column}: {e}"),
    }
}

fn sqlite_cell(row: &sqlx::sqlite::SqliteRow, i: usize, kind: Kind) -> Result<Cell, DbError> {
    Ok(match kind {
        Kind::Int => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bool => row
            .try_get::<Option<bool>, _>(i)?
            .map_or(Cell::Null, Cell::Bool),
        Kind::Time => match row.try_get::<Option<String>, _>(i)? {
            None => Cell::Null,
            Some(t) => Cell::Time(datetime::from_sqlite(&t).map_err(|e| bad(i, e))?),
        },
    })
}

fn pg_cell(row: &sqlx::postgres::PgRow, i: usize, kind: Kind) -> Result<Cell, DbError> {
    Ok(match kind {
        // Django's ids are `integer`, `bigint` or `smallint`: sqlx-postgres widens none itself.
        Kind::Int => {
            let v = match row.try_get::<Option<i64>, _>(i) {
                Ok(v) => v,
                Err(_) => match row.try_get::<Option<i32>, _>(i) {
                    Ok(v) => v.map(i64::from),
                    Err(_) => row.try_get::<Option<i16>, _>(i)?.map(i64::from),
                },
            };
            v.map_or(Cell::Null, Cell::Int)
        }
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bool => row
            .try_get::<Option<bool>, _>(i)?
            .map_or(Cell::Null, Cell::Bool),
        Kind::Time => row
            .try_get::<Option<DateTime<Utc>>, _>(i)?
            .map_or(Cell::Null, Cell::Time),
    })
}

fn mysql_cell(row: &sqlx::mysql::MySqlRow, i: usize, kind: Kind) -> Result<Cell, DbError> {
    Ok(match kind {
        Kind::Int => {
            let v = match row.try_get::<Option<i64>, _>(i) {
                Ok(v) => v,
                // `PositiveSmallIntegerField` is `smallint UNSIGNED`.
                Err(_) => row
                    .try_get::<Option<u64>, _>(i)?
                    .map(|v| i64::try_from(v).map_err(|e| bad(i, e)))
                    .transpose()?,
            };
            v.map_or(Cell::Null, Cell::Int)
        }
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bool => row
            .try_get::<Option<bool>, _>(i)?
            .map_or(Cell::Null, Cell::Bool),
        Kind::Time => row
            .try_get::<Option<NaiveDateTime>, _>(i)?
            .map_or(Cell::Null, |t| Cell::Time(datetime::from_mysql(t))),
    })
}

impl Db {
    /// Runs a `SELECT`, reading column `i` as `kinds[i]`.
    pub async fn fetch_rows(&self, sql: &Sql, kinds: &[Kind]) -> Result<Vec<Vec<Cell>>, DbError> {
        let text = sql.dialect(self.vendor());
        let mut out = Vec::new();
        match self {
            Db::Sqlite(pool) => {
                let q = bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(text)),
                    &sql.args,
                    datetime::to_sqlite
                );
                for row in q.fetch_all(pool).await? {
                    out.push(
                        (0..kinds.len())
                            .map(|i| sqlite_cell(&row, i, kinds[i]))
                            .collect::<Result<_, _>>()?,
                    );
                }
            }
            Db::Postgres(pool) => {
                let q = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.args, pg_time);
                for row in q.fetch_all(pool).await? {
                    out.push(
                        (0..kinds.len())
                            .map(|i| pg_cell(&row, i, kinds[i]))
                            .collect::<Result<_, _>>()?,
                    );
                }
            }
            Db::MySql(pool) => {
                let q = bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(text)),
                    &sql.args,
                    datetime::to_mysql
                );
                for row in q.fetch_all(pool).await? {
                    out.push(
                        (0..kinds.len())
                            .map(|i| mysql_cell(&row, i, kinds[i]))
                            .collect::<Result<_, _>>()?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// The first column of the first row as an integer (a `COUNT(*)`), 0 when there is none.
    pub async fn fetch_int(&self, sql: &Sql) -> Result<i64, DbError> {
        let rows = self.fetch_rows(sql, &[Kind::Int]).await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(Cell::int)
            .unwrap_or(0))
    }

    /// Runs an `INSERT`/`UPDATE`/`DELETE`; the number of rows it touched.
    pub async fn execute_sql(&self, sql: &Sql) -> Result<u64, WriteError> {
        let text = sql.dialect(self.vendor());
        let done = match self {
            Db::Sqlite(pool) => bind_all!(
                sqlx::query(sqlx::AssertSqlSafe(text)),
                &sql.args,
                datetime::to_sqlite
            )
            .execute(pool)
            .await
            .map_err(write_error)?
            .rows_affected(),
            Db::Postgres(pool) => {
                bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.args, pg_time)
                    .execute(pool)
                    .await
                    .map_err(write_error)?
                    .rows_affected()
            }
            Db::MySql(pool) => bind_all!(
                sqlx::query(sqlx::AssertSqlSafe(text)),
                &sql.args,
                datetime::to_mysql
            )
            .execute(pool)
            .await
            .map_err(write_error)?
            .rows_affected(),
        };
        Ok(done)
    }

    /// Runs an `INSERT` into a table whose key is `"id"` and returns the new id.
    pub async fn insert_returning_id(&self, sql: &Sql) -> Result<i64, WriteError> {
        match self {
            Db::Sqlite(_) | Db::Postgres(_) => {
                let mut with = sql.clone();
                with.push(r#" RETURNING "id""#);
                let rows = self
                    .fetch_rows(&with, &[Kind::Int])
                    .await
                    .map_err(|e| match e {
                        DbError::Query(q) => write_error(q),
                        other => WriteError::Db(other),
                    })?;
                rows.first()
                    .and_then(|r| r.first())
                    .and_then(Cell::int)
                    .ok_or_else(|| WriteError::Db(bad(0, "INSERT returned no id")))
            }
            Db::MySql(pool) => {
                // LAST_INSERT_ID() belongs to the statement's own connection.
                let text = sql.dialect("mysql");
                let done = bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(text)),
                    &sql.args,
                    datetime::to_mysql
                )
                .execute(pool)
                .await
                .map_err(write_error)?;
                i64::try_from(done.last_insert_id()).map_err(|e| WriteError::Db(bad(0, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects() {
        let mut sql = Sql::new(r#"SELECT "a" FROM "t" WHERE "b" = ? AND "c" = ?"#);
        sql.bind(1i64).bind("x");
        assert_eq!(
            sql.dialect("postgresql"),
            r#"SELECT "a" FROM "t" WHERE "b" = $1 AND "c" = $2"#
        );
        assert_eq!(
            sql.dialect("mysql"),
            "SELECT `a` FROM `t` WHERE `b` = ? AND `c` = ?"
        );
        assert_eq!(sql.dialect("sqlite"), sql.text());
    }
}
