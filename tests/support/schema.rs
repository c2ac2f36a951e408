//! Normalized snapshots of a database, to compare one Django built with one ferrochat built.
//!
//! A snapshot is a sorted list of self-contained text "facts", one per table, column, index,
//! constraint, foreign key, sequence…, read from the catalog with SQL:
//! - SQLite: `sqlite_master` (including each object's exact SQL text) and the
//!   `pragma_table_info` / `pragma_index_list` / `pragma_index_info` / `pragma_foreign_key_list`
//!   table-valued functions;
//! - PostgreSQL: `information_schema.tables/columns`, `pg_indexes`, `pg_constraint` (with
//!   `pg_get_constraintdef` and deferrability) and `pg_sequences`;
//! - MariaDB/MySQL: `information_schema` TABLES, COLUMNS, STATISTICS, TABLE_CONSTRAINTS,
//!   KEY_COLUMN_USAGE, REFERENTIAL_CONSTRAINTS, CHECK_CONSTRAINTS, plus `SHOW CREATE TABLE`
//!   without its `AUTO_INCREMENT=` counter.
//!
//! Facts never mention the database's own name, so two databases with the same schema give equal
//! snapshots; [`assert_same`] prints only the differing facts.

use ferrochat::db::Db;

use super::db::strings;

/// `SELECT '<label>' | e1 | e2 … FROM <from>` as one text column, NULLs spelled `NULL`.
fn facts_sql(db: &Db, exprs: &[&str], from: &str) -> String {
    let text = match db {
        Db::MySql(_) => "CHAR",
        _ => "TEXT",
    };
    let parts: Vec<String> = exprs
        .iter()
        .map(|e| format!("COALESCE(CAST({e} AS {text}), 'NULL')"))
        .collect();
    let joined = match db {
        Db::MySql(_) => format!("CONCAT_WS(' | ', {})", parts.join(", ")),
        _ => parts.join(" || ' | ' || "),
    };
    format!("SELECT {joined} FROM {from}")
}

async fn collect(db: &Db, queries: &[(&[&str], &str)]) -> Vec<String> {
    let mut facts = Vec::new();
    for (exprs, from) in queries {
        facts.extend(strings(db, &facts_sql(db, exprs, from)).await);
    }
    facts
}

/// Tables, columns (position, type, nullability, default), indexes (uniqueness, columns),
/// constraints (primary, unique, foreign with their rules and deferrability, check), sequences.
pub async fn schema_facts(db: &Db) -> Vec<String> {
    let mut facts =
        match db {
            Db::Sqlite(_) => collect(
                db,
                &[
                    (
                        &["'object'", "type", "name", "tbl_name", "sql"],
                        "sqlite_master",
                    ),
                    (
                        &[
                            "'column'",
                            "m.name",
                            "p.cid",
                            "p.name",
                            "p.type",
                            "'notnull=' || p.\"notnull\"",
                            "'default=' || COALESCE(p.dflt_value, 'NULL')",
                            "'pk=' || p.pk",
                        ],
                        "sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
                    ),
                    (
                        &[
                            "'index'",
                            "m.name",
                            "il.name",
                            "'unique=' || il.\"unique\"",
                            "'origin=' || il.origin",
                            "'partial=' || il.partial",
                            "(SELECT group_concat(ii.name, ',') FROM \
                             (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno) ii)",
                        ],
                        "sqlite_master m JOIN pragma_index_list(m.name) il WHERE m.type = 'table'",
                    ),
                    (
                        &[
                            "'foreign_key'",
                            "m.name",
                            "f.id",
                            "f.seq",
                            "f.\"from\"",
                            "f.\"table\"",
                            "f.\"to\"",
                            "'on_update=' || f.on_update",
                            "'on_delete=' || f.on_delete",
                            "'match=' || f.\"match\"",
                        ],
                        "sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
                         WHERE m.type = 'table'",
                    ),
                ],
            )
            .await,
            Db::Postgres(_) => {
                collect(
                    db,
                    &[
                        (
                            &["'table'", "table_name", "table_type"],
                            "information_schema.tables WHERE table_schema = current_schema()",
                        ),
                        (
                            &[
                                "'column'",
                                "table_name",
                                // attnum keeps the gap of a dropped column (contenttypes 0002
                                // drops `name`); only the live columns' order is visible to SQL.
                                "rank() OVER (PARTITION BY table_name ORDER BY ordinal_position)",
                                "column_name",
                                "data_type",
                                "character_maximum_length",
                                "numeric_precision",
                                "'nullable=' || is_nullable",
                                "'default=' || COALESCE(column_default, 'NULL')",
                                "'identity=' || is_identity",
                                "identity_generation",
                            ],
                            "information_schema.columns WHERE table_schema = current_schema()",
                        ),
                        (
                            &["'index'", "tablename", "indexname", "indexdef"],
                            "pg_indexes WHERE schemaname = current_schema()",
                        ),
                        (
                            &[
                                "'constraint'",
                                "rel.relname",
                                "con.conname",
                                "con.contype",
                                "pg_get_constraintdef(con.oid)",
                                "'deferrable=' || con.condeferrable",
                                "'deferred=' || con.condeferred",
                            ],
                            "pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid \
                         JOIN pg_namespace n ON n.oid = rel.relnamespace \
                         WHERE n.nspname = current_schema()",
                        ),
                        (
                            &[
                                "'sequence'",
                                "sequencename",
                                "data_type",
                                "start_value",
                                "increment_by",
                                "max_value",
                                "cycle",
                            ],
                            "pg_sequences WHERE schemaname = current_schema()",
                        ),
                    ],
                )
                .await
            }
            Db::MySql(_) => {
                let mut facts = collect(
                db,
                &[
                    (
                        &[
                            "'table'",
                            "TABLE_NAME",
                            "TABLE_TYPE",
                            "ENGINE",
                            "TABLE_COLLATION",
                            "CREATE_OPTIONS",
                        ],
                        "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
                    ),
                    (
                        &[
                            "'column'",
                            "TABLE_NAME",
                            "ORDINAL_POSITION",
                            "COLUMN_NAME",
                            "COLUMN_TYPE",
                            "CONCAT('nullable=', IS_NULLABLE)",
                            "CONCAT('default=', COALESCE(COLUMN_DEFAULT, 'NULL'))",
                            "CONCAT('extra=', EXTRA)",
                            "CHARACTER_SET_NAME",
                            "COLLATION_NAME",
                            "CONCAT('key=', COLUMN_KEY)",
                        ],
                        "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
                    ),
                    (
                        &[
                            "'index'",
                            "TABLE_NAME",
                            "INDEX_NAME",
                            "CONCAT('non_unique=', NON_UNIQUE)",
                            "SEQ_IN_INDEX",
                            "COLUMN_NAME",
                            "INDEX_TYPE",
                        ],
                        "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()",
                    ),
                    (
                        &["'constraint'", "TABLE_NAME", "CONSTRAINT_NAME", "CONSTRAINT_TYPE"],
                        "information_schema.TABLE_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = DATABASE()",
                    ),
                    (
                        &[
                            "'key_column'",
                            "TABLE_NAME",
                            "CONSTRAINT_NAME",
                            "COLUMN_NAME",
                            "ORDINAL_POSITION",
                            "REFERENCED_TABLE_NAME",
                            "REFERENCED_COLUMN_NAME",
                        ],
                        "information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_SCHEMA = DATABASE()",
                    ),
                    (
                        &[
                            "'foreign_key'",
                            "TABLE_NAME",
                            "CONSTRAINT_NAME",
                            "REFERENCED_TABLE_NAME",
                            "CONCAT('on_update=', UPDATE_RULE)",
                            "CONCAT('on_delete=', DELETE_RULE)",
                            "MATCH_OPTION",
                        ],
                        "information_schema.REFERENTIAL_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = DATABASE()",
                    ),
                    (
                        &["'check'", "tc.TABLE_NAME", "cc.CONSTRAINT_NAME", "cc.CHECK_CLAUSE"],
                        "information_schema.CHECK_CONSTRAINTS cc \
                         JOIN information_schema.TABLE_CONSTRAINTS tc \
                         ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA \
                         AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME \
                         AND tc.CONSTRAINT_TYPE = 'CHECK' \
                         WHERE cc.CONSTRAINT_SCHEMA = DATABASE()",
                    ),
                ],
            )
            .await;
                let tables = strings(
                    db,
                    "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE()",
                )
                .await;
                for table in tables {
                    let create = show_create_table(db, &table).await;
                    facts.push(format!("show_create | {table} | {create}"));
                }
                facts
            }
        };
    facts.sort();
    facts
}

/// `SHOW CREATE TABLE` without the `AUTO_INCREMENT=n` counter (data, not schema).
async fn show_create_table(db: &Db, table: &str) -> String {
    let Db::MySql(pool) = db else {
        return String::new();
    };
    let sql = sqlx::AssertSqlSafe(format!("SHOW CREATE TABLE `{table}`"));
    let row: (String, String) = sqlx::query_as(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("SHOW CREATE TABLE {table} failed: {e}"));
    let text = row.1;
    match text.find(" AUTO_INCREMENT=") {
        Some(start) => {
            let digits_start = start + " AUTO_INCREMENT=".len();
            let end = text[digits_start..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(text.len(), |i| digits_start + i);
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text,
    }
}

/// The rows Django's `migrate` writes: `django_migrations` (app, name by id, not the time),
/// content types and permissions with their ids, and the id counters (`sqlite_sequence`,
/// `pg_sequences.last_value`, MySQL `AUTO_INCREMENT`) so later inserts get the same ids too.
pub async fn django_rows(db: &Db) -> Vec<String> {
    let counters: (&[&str], &str) = match db {
        // Django's table rebuilds leave `seq = 0` rows for tables that were empty; a missing row
        // means the same to SQLite (the next id is 1), so only non-zero counters are compared.
        Db::Sqlite(_) => (
            &["'sequence'", "name", "seq"],
            "sqlite_sequence WHERE seq <> 0",
        ),
        Db::Postgres(_) => (
            &["'sequence'", "sequencename", "last_value"],
            "pg_sequences WHERE schemaname = current_schema()",
        ),
        Db::MySql(_) => (
            &["'auto_increment'", "TABLE_NAME", "AUTO_INCREMENT"],
            "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        ),
    };
    let mut rows = collect(
        db,
        &[
            (&["'migration'", "id", "app", "name"], "django_migrations"),
            (
                &["'content_type'", "id", "app_label", "model"],
                "django_content_type",
            ),
            (
                &["'permission'", "id", "name", "content_type_id", "codename"],
                "auth_permission",
            ),
            counters,
        ],
    )
    .await;
    rows.sort();
    rows
}

/// Fails with the facts only one side has (`-` left only, `+` right only).
pub fn assert_same(
    what: &str,
    left_name: &str,
    left: &[String],
    right_name: &str,
    right: &[String],
) {
    if let Some(diff) = diff(left, right) {
        panic!("{what} differ (- only in {left_name}, + only in {right_name}):\n{diff}");
    }
}

/// The differing facts of two sorted snapshots, or None when equal.
pub fn diff(left: &[String], right: &[String]) -> Option<String> {
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        match (left.get(i), right.get(j)) {
            (Some(l), Some(r)) if l == r => {
                i += 1;
                j += 1;
            }
            (Some(l), Some(r)) if l < r => {
                out.push_str(&format!("- {l}\n"));
                i += 1;
            }
            (Some(_), Some(r)) => {
                out.push_str(&format!("+ {r}\n"));
                j += 1;
            }
            (Some(l), None) => {
                out.push_str(&format!("- {l}\n"));
                i += 1;
            }
            (None, Some(r)) => {
                out.push_str(&format!("+ {r}\n"));
                j += 1;
            }
            (None, None) => break,
        }
    }
    (!out.is_empty()).then_some(out)
}
