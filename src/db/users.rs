//! `auth_user` rows, read and written as `django.contrib.auth` does.
//!
//! Django supplies every column on INSERT (the table has no defaults; `UserManager._create_user`
//! in `django/contrib/auth/models.py`), looks users up by exact `username = %s`
//! (`BaseUserManager.get_by_natural_key`) and checks sign-up duplicates with `username__iexact`
//! (`UserCreationForm.clean_username`). Username normalisation (NFKC) and validation happen in
//! `crate::django::validators::Username`, the only type a new user's name can be stored from.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Db, DbError, datetime, is_unique_violation};
use crate::django::dates::truncate_to_micros;
use crate::django::validators::Username;

/// A row of `auth_user`.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// Django's encoded hash (`pbkdf2_sha256$…`), or `!…` for an unusable password.
    pub password: String,
    pub last_login: Option<DateTime<Utc>>,
    pub is_superuser: bool,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: DateTime<Utc>,
}

/// Hashes never reach logs: Debug shows only the algorithm.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithm = self.password.split('$').next().unwrap_or_default();
        f.debug_struct("User")
            .field("id", &self.id)
            .field("password", &format_args!("{algorithm}$…"))
            .field("last_login", &self.last_login)
            .field("is_superuser", &self.is_superuser)
            .field("username", &self.username)
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("email", &self.email)
            .field("is_staff", &self.is_staff)
            .field("is_active", &self.is_active)
            .field("date_joined", &self.date_joined)
            .finish()
    }
}

/// What `create_user` needs; the other columns get Django's values (`first_name = ''`,
/// `last_name = ''`, `is_active = true`, `date_joined = now`, `last_login = NULL`).
#[derive(Clone)]
pub struct NewUser {
    /// NFKC-normalised and validated: only a [`Username`] can be stored.
    pub username: Username,
    pub email: String,
    /// Already encoded (`make_password`), or an unusable `!…` value.
    pub password_hash: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

impl NewUser {
    /// What `UserCreationForm.save()` creates (signup): no email, neither staff nor superuser.
    pub fn signup(username: Username, password_hash: String) -> NewUser {
        NewUser {
            username,
            email: String::new(),
            password_hash,
            is_staff: false,
            is_superuser: false,
        }
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("is_staff", &self.is_staff)
            .field("is_superuser", &self.is_superuser)
            .finish_non_exhaustive()
    }
}

/// The column list, in the model's field order (the order Django's INSERT uses).
macro_rules! columns {
    (dq) => {
        r#""id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined""#
    };
    (bt) => {
        "`id`, `password`, `last_login`, `is_superuser`, `username`, `first_name`, `last_name`, `email`, `is_staff`, `is_active`, `date_joined`"
    };
}

/// SQLite stores datetimes as text; parsed after decoding.
#[derive(sqlx::FromRow)]
struct SqliteRow {
    id: i64,
    password: String,
    last_login: Option<String>,
    is_superuser: bool,
    username: String,
    first_name: String,
    last_name: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    date_joined: String,
}

impl TryFrom<SqliteRow> for User {
    type Error = DbError;
    fn try_from(r: SqliteRow) -> Result<User, DbError> {
        let parse = |column: &'static str, text: &str| {
            datetime::from_sqlite(text).map_err(|e| DbError::InvalidData {
                column,
                detail: e.to_string(),
            })
        };
        Ok(User {
            id: r.id,
            password: r.password,
            last_login: match r.last_login {
                Some(text) => Some(parse("auth_user.last_login", &text)?),
                None => None,
            },
            is_superuser: r.is_superuser,
            username: r.username,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            is_staff: r.is_staff,
            is_active: r.is_active,
            date_joined: parse("auth_user.date_joined", &r.date_joined)?,
        })
    }
}

/// PostgreSQL: `id` is `integer` and sqlx-postgres will not widen it to i64 by itself.
#[derive(sqlx::FromRow)]
struct PgRow {
    id: i32,
    password: String,
    last_login: Option<DateTime<Utc>>,
    is_superuser: bool,
    username: String,
    first_name: String,
    last_name: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    date_joined: DateTime<Utc>,
}

impl From<PgRow> for User {
    fn from(r: PgRow) -> User {
        User {
            id: i64::from(r.id),
            password: r.password,
            last_login: r.last_login,
            is_superuser: r.is_superuser,
            username: r.username,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            is_staff: r.is_staff,
            is_active: r.is_active,
            date_joined: r.date_joined,
        }
    }
}

/// MySQL: `datetime(6)` holds naive UTC.
#[derive(sqlx::FromRow)]
struct MySqlRow {
    id: i64,
    password: String,
    last_login: Option<NaiveDateTime>,
    is_superuser: bool,
    username: String,
    first_name: String,
    last_name: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    date_joined: NaiveDateTime,
}

impl From<MySqlRow> for User {
    fn from(r: MySqlRow) -> User {
        User {
            id: r.id,
            password: r.password,
            last_login: r.last_login.map(datetime::from_mysql),
            is_superuser: r.is_superuser,
            username: r.username,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            is_staff: r.is_staff,
            is_active: r.is_active,
            date_joined: datetime::from_mysql(r.date_joined),
        }
    }
}

/// `django/db/backends/base/operations.py: prep_for_like_query`, which SQLite and MySQL also
/// apply to `iexact` values (PostgreSQL overrides it with the identity).
pub fn prep_for_like_query(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Db {
    /// `User.objects.get_by_natural_key(username)`: `WHERE username = %s`. Case-sensitive on
    /// SQLite and PostgreSQL, case-insensitive on MySQL/MariaDB (the `_ci` collation), exactly as
    /// Django behaves on each.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, DbError> {
        match self {
            Db::Sqlite(pool) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(dq),
                    r#" FROM "auth_user" WHERE "username" = ?"#
                );
                let row: Option<SqliteRow> = sqlx::query_as(SQL)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?;
                row.map(User::try_from).transpose()
            }
            Db::Postgres(pool) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(dq),
                    r#" FROM "auth_user" WHERE "username" = $1"#
                );
                let row: Option<PgRow> = sqlx::query_as(SQL)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?;
                Ok(row.map(User::from))
            }
            Db::MySql(pool) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(bt),
                    " FROM `auth_user` WHERE `username` = ?"
                );
                let row: Option<MySqlRow> = sqlx::query_as(SQL)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?;
                Ok(row.map(User::from))
            }
        }
    }

    /// The user a session's `_auth_user_id` names (`ModelBackend.get_user`).
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, DbError> {
        match self {
            Db::Sqlite(pool) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(dq),
                    r#" FROM "auth_user" WHERE "id" = ?"#
                );
                let row: Option<SqliteRow> =
                    sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
                row.map(User::try_from).transpose()
            }
            Db::Postgres(pool) => {
                // `integer` column: an id outside i32 cannot exist.
                let Ok(id) = i32::try_from(id) else {
                    return Ok(None);
                };
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(dq),
                    r#" FROM "auth_user" WHERE "id" = $1"#
                );
                let row: Option<PgRow> = sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
                Ok(row.map(User::from))
            }
            Db::MySql(pool) => {
                const SQL: &str =
                    concat!("SELECT ", columns!(bt), " FROM `auth_user` WHERE `id` = ?");
                let row: Option<MySqlRow> =
                    sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?;
                Ok(row.map(User::from))
            }
        }
    }

    /// `User.objects.filter(username__iexact=username).exists()`, with each backend's own
    /// `iexact` operator (`operators` in `django/db/backends/*/base.py`): SQLite
    /// `LIKE %s ESCAPE '\'` (ASCII-only case folding), PostgreSQL `UPPER(x::text) = UPPER(%s)`,
    /// MySQL `LIKE %s` (the column collation folds case).
    pub async fn username_exists_case_insensitive(&self, username: &str) -> Result<bool, DbError> {
        let found = match self {
            Db::Sqlite(pool) => {
                const SQL: &str =
                    r#"SELECT 1 FROM "auth_user" WHERE "username" LIKE ? ESCAPE '\' LIMIT 1"#;
                sqlx::query(SQL)
                    .bind(prep_for_like_query(username))
                    .fetch_optional(pool)
                    .await?
                    .is_some()
            }
            Db::Postgres(pool) => {
                const SQL: &str = r#"SELECT 1 FROM "auth_user" WHERE UPPER("username"::text) = UPPER($1) LIMIT 1"#;
                sqlx::query(SQL)
                    .bind(username)
                    .fetch_optional(pool)
                    .await?
                    .is_some()
            }
            Db::MySql(pool) => {
                const SQL: &str = "SELECT 1 FROM `auth_user` WHERE `username` LIKE ? LIMIT 1";
                sqlx::query(SQL)
                    .bind(prep_for_like_query(username))
                    .fetch_optional(pool)
                    .await?
                    .is_some()
            }
        };
        Ok(found)
    }

    /// `UserManager.create_user` / `create_superuser` after validation: one INSERT with every
    /// column. A duplicate username (per the backend's collation) is `DbError::UsernameTaken`.
    pub async fn create_user(&self, new: NewUser) -> Result<User, DbError> {
        let date_joined = datetime::now();
        let (first_name, last_name, is_active) = ("", "", true);
        let taken = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                DbError::UsernameTaken
            } else {
                DbError::Query(e)
            }
        };
        let id: i64 = match self {
            Db::Sqlite(pool) => {
                const SQL: &str = r#"INSERT INTO "auth_user" ("password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined") VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING "id""#;
                sqlx::query_scalar(SQL)
                    .bind(&new.password_hash)
                    .bind(new.is_superuser)
                    .bind(new.username.as_str())
                    .bind(first_name)
                    .bind(last_name)
                    .bind(&new.email)
                    .bind(new.is_staff)
                    .bind(is_active)
                    .bind(datetime::to_sqlite(&date_joined))
                    .fetch_one(pool)
                    .await
                    .map_err(taken)?
            }
            Db::Postgres(pool) => {
                const SQL: &str = r#"INSERT INTO "auth_user" ("password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined") VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING "id""#;
                let id: i32 = sqlx::query_scalar(SQL)
                    .bind(&new.password_hash)
                    .bind(new.is_superuser)
                    .bind(new.username.as_str())
                    .bind(first_name)
                    .bind(last_name)
                    .bind(&new.email)
                    .bind(new.is_staff)
                    .bind(is_active)
                    .bind(date_joined)
                    .fetch_one(pool)
                    .await
                    .map_err(taken)?;
                i64::from(id)
            }
            Db::MySql(pool) => {
                // MySQL has no RETURNING; LAST_INSERT_ID() belongs to this statement's connection.
                const SQL: &str = "INSERT INTO `auth_user` (`password`, `last_login`, `is_superuser`, `username`, `first_name`, `last_name`, `email`, `is_staff`, `is_active`, `date_joined`) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)";
                let done = sqlx::query(SQL)
                    .bind(&new.password_hash)
                    .bind(new.is_superuser)
                    .bind(new.username.as_str())
                    .bind(first_name)
                    .bind(last_name)
                    .bind(&new.email)
                    .bind(new.is_staff)
                    .bind(is_active)
                    .bind(datetime::to_mysql(&date_joined))
                    .execute(pool)
                    .await
                    .map_err(taken)?;
                i64::try_from(done.last_insert_id()).map_err(|_| DbError::InvalidData {
                    column: "auth_user.id",
                    detail: format!("LAST_INSERT_ID() {} exceeds i64", done.last_insert_id()),
                })?
            }
        };
        Ok(User {
            id,
            password: new.password_hash,
            last_login: None,
            is_superuser: new.is_superuser,
            username: new.username.into_inner(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            email: new.email,
            is_staff: new.is_staff,
            is_active,
            date_joined,
        })
    }

    /// `user.set_password(raw); user.save(update_fields=["password"])` with the encoded hash
    /// (also the hash upgrade `check_password`'s setter performs on login).
    pub async fn set_password(&self, id: i64, encoded: &str) -> Result<(), DbError> {
        let affected = match self {
            Db::Sqlite(pool) => {
                const SQL: &str = r#"UPDATE "auth_user" SET "password" = ? WHERE "id" = ?"#;
                sqlx::query(SQL)
                    .bind(encoded)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(pool) => {
                let pg_id = i32::try_from(id).map_err(|_| DbError::UserNotFound { id })?;
                const SQL: &str = r#"UPDATE "auth_user" SET "password" = $1 WHERE "id" = $2"#;
                sqlx::query(SQL)
                    .bind(encoded)
                    .bind(pg_id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::MySql(pool) => {
                const SQL: &str = "UPDATE `auth_user` SET `password` = ? WHERE `id` = ?";
                sqlx::query(SQL)
                    .bind(encoded)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        // Django's save(update_fields=…) raises when no row matched; so do we.
        if affected == 0 {
            return Err(DbError::UserNotFound { id });
        }
        Ok(())
    }

    /// `update_last_login` (the `user_logged_in` receiver in `django/contrib/auth/models.py`).
    pub async fn update_last_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError> {
        let affected = match self {
            Db::Sqlite(pool) => {
                const SQL: &str = r#"UPDATE "auth_user" SET "last_login" = ? WHERE "id" = ?"#;
                sqlx::query(SQL)
                    .bind(datetime::to_sqlite(&at))
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(pool) => {
                let pg_id = i32::try_from(id).map_err(|_| DbError::UserNotFound { id })?;
                const SQL: &str = r#"UPDATE "auth_user" SET "last_login" = $1 WHERE "id" = $2"#;
                sqlx::query(SQL)
                    .bind(truncate_to_micros(at))
                    .bind(pg_id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::MySql(pool) => {
                const SQL: &str = "UPDATE `auth_user` SET `last_login` = ? WHERE `id` = ?";
                sqlx::query(SQL)
                    .bind(datetime::to_mysql(&at))
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        if affected == 0 {
            return Err(DbError::UserNotFound { id });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping_matches_django() {
        assert_eq!(prep_for_like_query(r"a_b%c\d"), r"a\_b\%c\\d");
        assert_eq!(prep_for_like_query("plain"), "plain");
    }

    #[test]
    fn debug_hides_the_hash() {
        let user = User {
            id: 1,
            password: "pbkdf2_sha256$720000$salt$hash".into(),
            last_login: None,
            is_superuser: false,
            username: "alice".into(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            is_staff: false,
            is_active: true,
            date_joined: datetime::now(),
        };
        let shown = format!("{user:?}");
        assert!(shown.contains("pbkdf2_sha256$…"), "{shown}");
        assert!(!shown.contains("salt"), "{shown}");
    }
}
