//! Django 5.0.1's schema for the legacy app, and `ferrochat migrate`.
//!
//! The DDL is the legacy app's final migration state exactly as Django emits it
//! (reference/django_schema/create_{sqlite,postgresql,mysql}.sql, kept verbatim under `sql/`), so
//! a database ferrochat creates is one on which the legacy app's `manage.py migrate` prints "No
//! migrations to apply.", and Django's admin finds its content types and permissions
//! (`sql/seed_contenttypes_permissions.sql`, what `post_migrate` would insert).
//!
//! Django decides what is applied from `django_migrations` alone
//! (`django/db/migrations/recorder.py: MigrationRecorder.applied_migrations`), so that is what
//! [`schema_state`] reads. [`migrate`] only ever acts on an empty database: everything else is
//! either already Django's schema (nothing to do) or something it must not touch (refused, with
//! the reason, and nothing changed).

use std::fmt;

use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection, SqliteConnection};

use super::{Db, DbError, datetime};

const CREATE_SQLITE: &str = include_str!("sql/create_sqlite.sql");
const CREATE_POSTGRESQL: &str = include_str!("sql/create_postgresql.sql");
const CREATE_MYSQL: &str = include_str!("sql/create_mysql.sql");
/// Portable as written: unquoted identifiers, ids left to the database (an explicit id would not
/// advance a PostgreSQL identity), so inserting in file order yields Django's ids on every backend.
const SEED: &str = include_str!("sql/seed_contenttypes_permissions.sql");

/// One migration of the legacy app's plan, as recorded in `django_migrations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Migration {
    pub app: &'static str,
    pub name: &'static str,
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.app, self.name)
    }
}

const fn m(app: &'static str, name: &'static str) -> Migration {
    Migration { app, name }
}

/// Every migration of the legacy app (Django 5.0.1 contrib apps + `chatapp`), in the order
/// `manage.py migrate` applies them on an empty database (its plan order; ids 1–19).
pub const MIGRATIONS: [Migration; 19] = [
    m("contenttypes", "0001_initial"),
    m("auth", "0001_initial"),
    m("admin", "0001_initial"),
    m("admin", "0002_logentry_remove_auto_add"),
    m("admin", "0003_logentry_add_action_flag_choices"),
    m("contenttypes", "0002_remove_content_type_name"),
    m("auth", "0002_alter_permission_name_max_length"),
    m("auth", "0003_alter_user_email_max_length"),
    m("auth", "0004_alter_user_username_opts"),
    m("auth", "0005_alter_user_last_login_null"),
    m("auth", "0006_require_contenttypes_0002"),
    m("auth", "0007_alter_validators_add_error_messages"),
    m("auth", "0008_alter_user_username_max_length"),
    m("auth", "0009_alter_user_last_name_max_length"),
    m("auth", "0010_alter_group_name_max_length"),
    m("auth", "0011_update_proxy_permissions"),
    m("auth", "0012_alter_user_first_name_max_length"),
    m("chatapp", "0001_initial"),
    m("sessions", "0001_initial"),
];

/// The apps with migrations, sorted, as Django lists them in "Apply all migrations: …".
pub const MIGRATED_APPS: [&str; 5] = ["admin", "auth", "chatapp", "contenttypes", "sessions"];

/// What `django_migrations` says about a database (for `ferrochat check` and `migrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// No tables (or only an empty `django_migrations`): `migrate` will create the schema.
    Empty,
    /// All 19 migrations recorded and nothing else: Django's schema, nothing to do.
    UpToDate,
    /// Some of the 19 are recorded but these (`app.name`, plan order) are not: a partly migrated
    /// database. The legacy app's own `manage.py migrate` finishes it.
    Missing(Vec<String>),
    /// Rows naming migrations ferrochat does not know (`app.name`, as recorded): the database
    /// belongs to a newer or different version of the app.
    Unknown(Vec<String>),
    /// Tables exist but there is no `django_migrations`: not a Django database.
    NoMigrationTable,
}

impl SchemaState {
    /// One line for an operator (`ferrochat check`).
    pub fn describe(&self) -> String {
        match self {
            SchemaState::Empty => {
                "the database is empty: run `ferrochat migrate` to create the schema".to_owned()
            }
            SchemaState::UpToDate => "the schema is up to date".to_owned(),
            SchemaState::Missing(missing) => {
                SchemaMismatch::MissingMigrations(missing.clone()).to_string()
            }
            SchemaState::Unknown(unknown) => {
                SchemaMismatch::UnknownMigrations(unknown.clone()).to_string()
            }
            SchemaState::NoMigrationTable => {
                "the database has tables but no django_migrations table: it was not created by \
                 Django's migrate or ferrochat's"
                    .to_owned()
            }
        }
    }
}

/// Why `migrate` refused a database (it changed nothing), or what `check` reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaMismatch {
    #[error(
        "django_migrations records migrations ferrochat does not know: {}. The database was \
         migrated by a newer or different version of the app; use the ferrochat release that \
         matches it.",
        list(.0)
    )]
    UnknownMigrations(Vec<String>),
    #[error(
        "the database is only partly migrated; django_migrations lacks {}. Run the legacy app's \
         `manage.py migrate` to finish it.",
        list(.0)
    )]
    MissingMigrations(Vec<String>),
    #[error(
        "the database has tables ({}) but no django_migrations table, so it was not created by \
         Django's migrate or ferrochat's. Point DATABASE_URL at the legacy app's database or at \
         an empty one.",
        list(.tables)
    )]
    NoMigrationTable { tables: Vec<String> },
}

/// `a, b, c`, cut after ten names so a foreign database does not flood the terminal.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// What `migrate` did, for Django-style output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// The migrations this run recorded, in plan order; empty when there was nothing to do.
    pub applied: Vec<Migration>,
}

impl MigrateReport {
    /// True when the database was already up to date.
    pub fn nothing_applied(&self) -> bool {
        self.applied.is_empty()
    }

    /// Exactly what `manage.py migrate` prints (verbosity 1), e.g.
    ///
    /// ```text
    /// Operations to perform:
    ///   Apply all migrations: admin, auth, chatapp, contenttypes, sessions
    /// Running migrations:
    ///   No migrations to apply.
    /// ```
    pub fn django_output(&self) -> String {
        let mut out = format!(
            "Operations to perform:\n  Apply all migrations: {}\nRunning migrations:\n",
            MIGRATED_APPS.join(", ")
        );
        if self.applied.is_empty() {
            out.push_str("  No migrations to apply.\n");
        }
        for m in &self.applied {
            out.push_str(&format!("  Applying {m}... OK\n"));
        }
        out
    }

    fn all() -> MigrateReport {
        MigrateReport {
            applied: MIGRATIONS.to_vec(),
        }
    }
}

/// Reads `django_migrations` (and the table list) without changing anything.
pub async fn schema_state(db: &Db) -> Result<SchemaState, DbError> {
    let inspection = match db {
        Db::Sqlite(pool) => inspect_sqlite(&mut *pool.acquire().await?).await?,
        Db::Postgres(pool) => inspect_pg(&mut *pool.acquire().await?).await?,
        Db::MySql(pool) => inspect_mysql(&mut *pool.acquire().await?).await?,
    };
    Ok(inspection.state())
}

/// The `(app, name)` rows of `django_migrations` in id order, `None` when there is no such
/// table (`MigrationRecorder.applied_migrations`, for `showmigrations`).
pub async fn recorded_migrations(db: &Db) -> Result<Option<Vec<(String, String)>>, DbError> {
    let inspection = match db {
        Db::Sqlite(pool) => inspect_sqlite(&mut *pool.acquire().await?).await?,
        Db::Postgres(pool) => inspect_pg(&mut *pool.acquire().await?).await?,
        Db::MySql(pool) => inspect_mysql(&mut *pool.acquire().await?).await?,
    };
    Ok(inspection.recorded)
}

/// `ferrochat migrate`: on an empty database, create Django's schema, record the 19 migrations and
/// insert the content types and permissions; on an up-to-date one, do nothing; refuse anything
/// else without changing it. Concurrent runs are serialised by a database lock.
pub async fn migrate(db: &Db) -> Result<MigrateReport, DbError> {
    match db {
        Db::Sqlite(pool) => migrate_sqlite(pool).await,
        Db::Postgres(pool) => migrate_pg(pool).await,
        Db::MySql(pool) => migrate_mysql(pool).await,
    }
}

// ---------------------------------------------------------------------------------------------
// State

/// The tables of the database and, if `django_migrations` exists, its `(app, name)` rows by id.
struct Inspection {
    tables: Vec<String>,
    recorded: Option<Vec<(String, String)>>,
}

impl Inspection {
    fn state(&self) -> SchemaState {
        let Some(recorded) = &self.recorded else {
            return if self.tables.is_empty() {
                SchemaState::Empty
            } else {
                SchemaState::NoMigrationTable
            };
        };
        let mut unknown: Vec<String> = Vec::new();
        for (app, name) in recorded {
            let known = MIGRATIONS.iter().any(|m| m.app == app && m.name == name);
            let label = format!("{app}.{name}");
            if !known && !unknown.contains(&label) {
                unknown.push(label);
            }
        }
        if !unknown.is_empty() {
            return SchemaState::Unknown(unknown);
        }
        // Django creates django_migrations before its first migration; if that one failed, an
        // empty recorder table is all there is, and the database is still empty.
        if recorded.is_empty() && self.tables.iter().all(|t| t == "django_migrations") {
            return SchemaState::Empty;
        }
        let missing: Vec<String> = MIGRATIONS
            .iter()
            .filter(|m| !recorded.iter().any(|(a, n)| a == m.app && n == m.name))
            .map(Migration::to_string)
            .collect();
        if missing.is_empty() {
            SchemaState::UpToDate
        } else {
            SchemaState::Missing(missing)
        }
    }

    /// What `migrate` does here, or why it must not.
    fn plan(&self) -> Result<Plan, SchemaMismatch> {
        match self.state() {
            SchemaState::Empty => Ok(Plan::Create {
                migrations_table_exists: self.recorded.is_some(),
            }),
            SchemaState::UpToDate => Ok(Plan::Nothing),
            SchemaState::Missing(missing) => Err(SchemaMismatch::MissingMigrations(missing)),
            SchemaState::Unknown(unknown) => Err(SchemaMismatch::UnknownMigrations(unknown)),
            SchemaState::NoMigrationTable => Err(SchemaMismatch::NoMigrationTable {
                tables: self.tables.clone(),
            }),
        }
    }
}

enum Plan {
    Nothing,
    Create { migrations_table_exists: bool },
}

/// Django's table list for SQLite (`sqlite3/introspection.py: get_table_list`), minus SQLite's
/// own `sqlite_*` tables.
async fn inspect_sqlite(conn: &mut SqliteConnection) -> Result<Inspection, sqlx::Error> {
    const TABLES: &str = r"SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name";
    const RECORDED: &str = r#"SELECT "app", "name" FROM "django_migrations" ORDER BY "id""#;
    let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(&mut *conn).await?;
    let recorded = if tables.iter().any(|t| t == "django_migrations") {
        Some(sqlx::query_as(RECORDED).fetch_all(&mut *conn).await?)
    } else {
        None
    };
    Ok(Inspection { tables, recorded })
}

/// Django's table list for PostgreSQL (`postgresql/introspection.py: get_table_list`): every
/// table or view visible on the search path.
async fn inspect_pg(conn: &mut PgConnection) -> Result<Inspection, sqlx::Error> {
    const TABLES: &str = "SELECT c.relname::text FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') \
         AND n.nspname NOT IN ('pg_catalog', 'pg_toast') \
         AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1";
    const RECORDED: &str = r#"SELECT "app", "name" FROM "django_migrations" ORDER BY "id""#;
    let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(&mut *conn).await?;
    let recorded = if tables.iter().any(|t| t == "django_migrations") {
        Some(sqlx::query_as(RECORDED).fetch_all(&mut *conn).await?)
    } else {
        None
    };
    Ok(Inspection { tables, recorded })
}

/// Django's table list for MySQL (`SHOW FULL TABLES` in the connection's database).
async fn inspect_mysql(conn: &mut MySqlConnection) -> Result<Inspection, sqlx::Error> {
    const TABLES: &str = "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() ORDER BY 1";
    const RECORDED: &str = "SELECT `app`, `name` FROM `django_migrations` ORDER BY `id`";
    let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(&mut *conn).await?;
    let recorded = if tables.iter().any(|t| t == "django_migrations") {
        Some(sqlx::query_as(RECORDED).fetch_all(&mut *conn).await?)
    } else {
        None
    };
    Ok(Inspection { tables, recorded })
}

// ---------------------------------------------------------------------------------------------
// Migrate

const ROLLED_BACK: &str = "Nothing was changed: the transaction was rolled back.";

fn failed(statement: &str, cause: sqlx::Error, outcome: &str) -> DbError {
    DbError::MigrateFailed {
        statement: abbreviate(statement),
        cause,
        outcome: outcome.to_owned(),
    }
}

/// SQLite DDL is transactional: one `BEGIN IMMEDIATE` transaction, which also takes the write
/// lock before looking, so two concurrent runs cannot both see an empty database.
async fn migrate_sqlite(pool: &super::SqliteDb) -> Result<MigrateReport, DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let migrations_table_exists = match inspect_sqlite(&mut tx).await?.plan()? {
        Plan::Nothing => {
            tx.rollback().await?;
            return Ok(MigrateReport::default());
        }
        Plan::Create {
            migrations_table_exists,
        } => migrations_table_exists,
    };
    for stmt in ddl(CREATE_SQLITE) {
        if migrations_table_exists && is_migrations_table_ddl(stmt) {
            continue;
        }
        sqlx::raw_sql(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(stmt, e, ROLLED_BACK))?;
    }
    for stmt in statements(SEED) {
        sqlx::raw_sql(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(stmt, e, ROLLED_BACK))?;
    }
    const RECORD: &str =
        r#"INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (?, ?, ?)"#;
    for m in MIGRATIONS {
        sqlx::query(RECORD)
            .bind(m.app)
            .bind(m.name)
            .bind(datetime::to_sqlite(&datetime::now()))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(RECORD, e, ROLLED_BACK))?;
    }
    tx.commit()
        .await
        .map_err(|e| failed("COMMIT", e, ROLLED_BACK))?;
    Ok(MigrateReport::all())
}

/// Arbitrary constant: PostgreSQL advisory locks are per database, so this serialises
/// concurrent `ferrochat migrate` runs on one database only.
const PG_MIGRATE_LOCK: i64 = 0x6665_7272_6f63_6874; // "ferrocht"

/// PostgreSQL DDL is transactional: one transaction, under an advisory lock.
async fn migrate_pg(pool: &PgPool) -> Result<MigrateReport, DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATE_LOCK)
        .execute(&mut *tx)
        .await?;
    let migrations_table_exists = match inspect_pg(&mut tx).await?.plan()? {
        Plan::Nothing => {
            tx.rollback().await?;
            return Ok(MigrateReport::default());
        }
        Plan::Create {
            migrations_table_exists,
        } => migrations_table_exists,
    };
    for stmt in ddl(CREATE_POSTGRESQL) {
        if migrations_table_exists && is_migrations_table_ddl(stmt) {
            continue;
        }
        sqlx::raw_sql(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(stmt, e, ROLLED_BACK))?;
    }
    for stmt in statements(SEED) {
        sqlx::raw_sql(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(stmt, e, ROLLED_BACK))?;
    }
    const RECORD: &str =
        r#"INSERT INTO "django_migrations" ("app", "name", "applied") VALUES ($1, $2, $3)"#;
    for m in MIGRATIONS {
        sqlx::query(RECORD)
            .bind(m.app)
            .bind(m.name)
            .bind(datetime::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(RECORD, e, ROLLED_BACK))?;
    }
    tx.commit()
        .await
        .map_err(|e| failed("COMMIT", e, ROLLED_BACK))?;
    Ok(MigrateReport::all())
}

/// Named lock, per database (lock names are server-wide; MD5 keeps it under 64 characters).
const MYSQL_LOCK: &str = "CONCAT('ferrochat_migrate_', MD5(DATABASE()))";
const MYSQL_LOCK_WAIT_SECS: u32 = 60;

/// MySQL/MariaDB commit implicitly at every DDL statement, so there is no transaction to hide a
/// half-built schema. Instead, `django_migrations` is created last and its 19 rows are the
/// commit point: until then the database is "tables without django_migrations", which every
/// later run refuses by name. On failure the tables this run created are dropped again.
async fn migrate_mysql(pool: &MySqlPool) -> Result<MigrateReport, DbError> {
    let mut conn = pool.acquire().await?;
    let got: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT GET_LOCK({MYSQL_LOCK}, {MYSQL_LOCK_WAIT_SECS})"
    )))
    .fetch_one(&mut *conn)
    .await?;
    if got != Some(1) {
        return Err(DbError::Locked {
            detail: format!(
                "another `migrate` held this database's migration lock for {MYSQL_LOCK_WAIT_SECS} s"
            ),
        });
    }
    let result = migrate_mysql_locked(&mut conn).await;
    // The lock also ends with the session; releasing it keeps the pooled connection clean.
    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DO RELEASE_LOCK({MYSQL_LOCK})")))
        .execute(&mut *conn)
        .await;
    result
}

async fn migrate_mysql_locked(conn: &mut MySqlConnection) -> Result<MigrateReport, DbError> {
    let migrations_table_exists = match inspect_mysql(conn).await?.plan()? {
        Plan::Nothing => return Ok(MigrateReport::default()),
        Plan::Create {
            migrations_table_exists,
        } => migrations_table_exists,
    };
    let mut created: Vec<String> = Vec::new();
    match build_mysql(conn, migrations_table_exists, &mut created).await {
        Ok(()) => Ok(MigrateReport::all()),
        Err((statement, cause)) => {
            let outcome = match drop_mysql_tables(conn, &created).await {
                Ok(()) if created.is_empty() => "Nothing was changed.".to_owned(),
                Ok(()) => format!(
                    "The {} tables it had created were dropped again; the database is as it was.",
                    created.len()
                ),
                Err(e) => format!(
                    "Could not drop the tables it had created ({}): {e}. Drop them by hand before \
                     running migrate again.",
                    created.join(", ")
                ),
            };
            Err(DbError::MigrateFailed {
                statement: abbreviate(statement),
                cause,
                outcome,
            })
        }
    }
}

/// Runs the MySQL script; on error returns the failing statement. `created` collects the tables
/// made so far, for the cleanup.
async fn build_mysql(
    conn: &mut MySqlConnection,
    migrations_table_exists: bool,
    created: &mut Vec<String>,
) -> Result<(), (&'static str, sqlx::Error)> {
    let mut migrations_table_ddl = None;
    for stmt in ddl(CREATE_MYSQL) {
        if is_migrations_table_ddl(stmt) {
            migrations_table_ddl = Some(stmt);
            continue;
        }
        run_mysql_ddl(conn, stmt, created).await?;
    }

    let mut tx = Connection::begin(&mut *conn)
        .await
        .map_err(|e| ("BEGIN", e))?;
    for stmt in statements(SEED) {
        sqlx::raw_sql(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| (stmt, e))?;
    }
    tx.commit().await.map_err(|e| ("COMMIT", e))?;

    if !migrations_table_exists {
        let stmt = migrations_table_ddl.ok_or((
            "CREATE TABLE `django_migrations`",
            sqlx::Error::Protocol("the MySQL script lacks django_migrations".into()),
        ))?;
        run_mysql_ddl(conn, stmt, created).await?;
    }
    const RECORD: &str =
        "INSERT INTO `django_migrations` (`app`, `name`, `applied`) VALUES (?, ?, ?)";
    let mut tx = Connection::begin(&mut *conn)
        .await
        .map_err(|e| ("BEGIN", e))?;
    for m in MIGRATIONS {
        sqlx::query(RECORD)
            .bind(m.app)
            .bind(m.name)
            .bind(datetime::to_mysql(&datetime::now()))
            .execute(&mut *tx)
            .await
            .map_err(|e| (RECORD, e))?;
    }
    tx.commit().await.map_err(|e| ("COMMIT", e))?;
    Ok(())
}

async fn run_mysql_ddl(
    conn: &mut MySqlConnection,
    stmt: &'static str,
    created: &mut Vec<String>,
) -> Result<(), (&'static str, sqlx::Error)> {
    sqlx::raw_sql(stmt)
        .execute(&mut *conn)
        .await
        .map_err(|e| (stmt, e))?;
    if let Some(table) = created_table(stmt) {
        created.push(table.to_owned());
    }
    Ok(())
}

async fn drop_mysql_tables(
    conn: &mut MySqlConnection,
    tables: &[String],
) -> Result<(), sqlx::Error> {
    if tables.is_empty() {
        return Ok(());
    }
    // The foreign keys between them would otherwise dictate the order.
    sqlx::raw_sql("SET FOREIGN_KEY_CHECKS = 0")
        .execute(&mut *conn)
        .await?;
    let mut result = Ok(());
    for table in tables.iter().rev() {
        // Names come from our own script, never from input.
        let drop = AssertSqlSafe(format!("DROP TABLE IF EXISTS `{table}`"));
        if let Err(e) = sqlx::raw_sql(drop).execute(&mut *conn).await {
            result = Err(e);
            break;
        }
    }
    sqlx::raw_sql("SET FOREIGN_KEY_CHECKS = 1")
        .execute(&mut *conn)
        .await?;
    result
}

// ---------------------------------------------------------------------------------------------
// Scripts

/// The statements of a script, in order: split at `;` outside quotes, each starting at its first
/// non-comment line. Comments (`-- …`) may contain quotes ("Django's"), so they are skipped.
fn statements(script: &'static str) -> Vec<&'static str> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' | b'`' => {
                quote = Some(b);
                start.get_or_insert(i);
            }
            b';' => {
                if let Some(s) = start.take() {
                    out.push(script[s..i].trim_end());
                }
            }
            b if b.is_ascii_whitespace() => {}
            _ => {
                start.get_or_insert(i);
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push(script[s..].trim_end());
    }
    out
}

/// The schema statements of a `create_*.sql` script: without its `BEGIN`/`COMMIT` (the caller
/// owns the transaction) and without its `django_migrations` INSERT (rows are recorded with a
/// bound, Django-formatted `applied` time instead of the script's SQL `now()`).
fn ddl(script: &'static str) -> impl Iterator<Item = &'static str> {
    statements(script)
        .into_iter()
        .filter(|s| !is_transaction_control(s) && !is_migrations_insert(s))
}

fn is_transaction_control(stmt: &str) -> bool {
    stmt.eq_ignore_ascii_case("BEGIN") || stmt.eq_ignore_ascii_case("COMMIT")
}

fn starts_with_ignore_case(stmt: &str, prefix: &str) -> bool {
    stmt.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn is_migrations_insert(stmt: &str) -> bool {
    starts_with_ignore_case(stmt, r#"INSERT INTO "django_migrations""#)
        || starts_with_ignore_case(stmt, "INSERT INTO `django_migrations`")
}

fn is_migrations_table_ddl(stmt: &str) -> bool {
    created_table(stmt) == Some("django_migrations")
}

/// `CREATE TABLE "name"` / `` CREATE TABLE `name` `` → `name`.
fn created_table(stmt: &str) -> Option<&str> {
    const PREFIX: &str = "CREATE TABLE ";
    if !starts_with_ignore_case(stmt, PREFIX) {
        return None;
    }
    let rest = &stmt[PREFIX.len()..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let rest = &rest[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// A statement shortened for an error message.
fn abbreviate(stmt: &str) -> String {
    const MAX: usize = 100;
    let one_line = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `('app', 'name', …)` tuples of a script's `django_migrations` INSERT.
    fn recorded_in(script: &'static str) -> Vec<(String, String)> {
        let insert = statements(script)
            .into_iter()
            .find(|s| is_migrations_insert(s))
            .expect("the script records its migrations");
        insert
            .split("\n(")
            .skip(1)
            .map(|row| {
                let fields: Vec<&str> = row.split('\'').collect();
                (fields[1].to_owned(), fields[3].to_owned())
            })
            .collect()
    }

    #[test]
    fn migration_list_matches_every_script() {
        let ours: Vec<(String, String)> = MIGRATIONS
            .iter()
            .map(|m| (m.app.to_owned(), m.name.to_owned()))
            .collect();
        for script in [CREATE_SQLITE, CREATE_POSTGRESQL, CREATE_MYSQL] {
            assert_eq!(recorded_in(script), ours);
        }
        let mut apps: Vec<&str> = MIGRATIONS.iter().map(|m| m.app).collect();
        apps.sort_unstable();
        apps.dedup();
        assert_eq!(apps, MIGRATED_APPS);
    }

    #[test]
    fn scripts_split_into_their_statements() {
        // 12 tables (one of them django_migrations) plus indexes and constraints, per script.
        let counts = |script| {
            let stmts: Vec<&str> = ddl(script).collect();
            let tables = stmts.iter().filter(|s| created_table(s).is_some()).count();
            let migration_tables = stmts.iter().filter(|s| is_migrations_table_ddl(s)).count();
            (stmts.len(), tables, migration_tables)
        };
        assert_eq!(counts(CREATE_SQLITE), (29, 12, 1));
        assert_eq!(counts(CREATE_POSTGRESQL), (44, 12, 1));
        assert_eq!(counts(CREATE_MYSQL), (29, 12, 1));
        for stmt in ddl(CREATE_SQLITE)
            .chain(ddl(CREATE_POSTGRESQL))
            .chain(ddl(CREATE_MYSQL))
        {
            assert!(
                stmt.starts_with("CREATE ") || stmt.starts_with("ALTER TABLE "),
                "{stmt}"
            );
            assert!(!stmt.contains("--"), "{stmt}");
        }
        let seed = statements(SEED);
        assert_eq!(seed.len(), 8 + 32);
        assert!(seed.iter().all(|s| s.starts_with("INSERT INTO ")));
    }

    #[test]
    fn splitter_respects_quotes_and_comments() {
        let script: &'static str = "-- it's a comment; with quotes\nBEGIN;\nINSERT INTO t VALUES ('a;b', \"c;d\");  -- tail\n  SELECT 1";
        assert_eq!(
            statements(script),
            vec!["BEGIN", "INSERT INTO t VALUES ('a;b', \"c;d\")", "SELECT 1"]
        );
    }

    fn inspection(tables: &[&str], recorded: Option<&[(&str, &str)]>) -> Inspection {
        Inspection {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            recorded: recorded.map(|rows| {
                rows.iter()
                    .map(|(a, n)| (a.to_string(), n.to_string()))
                    .collect()
            }),
        }
    }

    fn all_rows() -> Vec<(&'static str, &'static str)> {
        MIGRATIONS.iter().map(|m| (m.app, m.name)).collect()
    }

    #[test]
    fn states() {
        assert_eq!(inspection(&[], None).state(), SchemaState::Empty);
        assert_eq!(
            inspection(&["django_migrations"], Some(&[])).state(),
            SchemaState::Empty
        );
        assert_eq!(
            inspection(&["auth_user"], None).state(),
            SchemaState::NoMigrationTable
        );
        assert_eq!(
            inspection(&["django_migrations", "auth_user"], Some(&all_rows())).state(),
            SchemaState::UpToDate
        );

        let mut partial = all_rows();
        partial.truncate(17);
        assert_eq!(
            inspection(&["django_migrations", "auth_user"], Some(&partial)).state(),
            SchemaState::Missing(vec![
                "chatapp.0001_initial".into(),
                "sessions.0001_initial".into()
            ])
        );
        assert_eq!(
            inspection(&["django_migrations", "auth_user"], Some(&[])).state(),
            SchemaState::Missing(MIGRATIONS.iter().map(Migration::to_string).collect())
        );

        let mut extra = all_rows();
        extra.push(("chatapp", "0002_future"));
        extra.push(("sites", "0001_initial"));
        extra.push(("chatapp", "0002_future"));
        assert_eq!(
            inspection(&["django_migrations"], Some(&extra)).state(),
            SchemaState::Unknown(vec![
                "chatapp.0002_future".into(),
                "sites.0001_initial".into()
            ])
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = inspection(&["django_migrations"], Some(&[("chatapp", "0002_x")]))
            .plan()
            .err()
            .expect("refused");
        assert!(err.to_string().contains("chatapp.0002_x"), "{err}");
        let err = inspection(&["notes"], None).plan().err().expect("refused");
        assert!(err.to_string().contains("(notes)"), "{err}");
    }

    #[test]
    fn long_lists_are_cut() {
        let names: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
        assert_eq!(
            list(&names),
            "t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 and 2 more"
        );
        assert_eq!(list(&names[..2]), "t0, t1");
    }

    #[test]
    fn django_output() {
        assert_eq!(
            MigrateReport::default().django_output(),
            "Operations to perform:\n  Apply all migrations: admin, auth, chatapp, contenttypes, \
             sessions\nRunning migrations:\n  No migrations to apply.\n"
        );
        let all = MigrateReport::all().django_output();
        assert!(all.contains("Running migrations:\n  Applying contenttypes.0001_initial... OK\n"));
        assert!(all.ends_with("  Applying sessions.0001_initial... OK\n"));
    }

    #[test]
    fn created_table_names() {
        assert_eq!(
            created_table(r#"CREATE TABLE "auth_user" ("id" integer)"#),
            Some("auth_user")
        );
        assert_eq!(
            created_table("CREATE TABLE `django_migrations` (`id` bigint)"),
            Some("django_migrations")
        );
        assert_eq!(created_table("CREATE INDEX x ON y (z)"), None);
    }
}
