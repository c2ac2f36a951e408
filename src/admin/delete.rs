//! Deleting as Django's `Collector` does for this schema (every relation is `CASCADE`): what a
//! deletion takes with it, for the confirmation page, and the deletion itself, children first.

use serde::Serialize;

use crate::db::Db;
use crate::db::dynamic::{Arg, Kind, Sql};

use super::log::capfirst;
use super::models::{self, ModelAdmin};
use super::perms::Perms;
use super::request::AdminError;

/// A table that goes with the deleted objects: `(verbose_name_plural, table, fk column)`, and
/// the registered model behind it (whose delete permission Django then requires).
struct Related {
    plural: &'static str,
    table: &'static str,
    column: &'static str,
    admin: Option<&'static ModelAdmin>,
}

fn related(m: &ModelAdmin) -> &'static [Related] {
    match m.model_name {
        "room" => &[Related {
            plural: "messages",
            table: "chatapp_message",
            column: "room_id",
            admin: Some(&models::MESSAGE),
        }],
        "user" => &[
            Related {
                plural: "messages",
                table: "chatapp_message",
                column: "user_id",
                admin: Some(&models::MESSAGE),
            },
            Related {
                plural: "User-group relationships",
                table: "auth_user_groups",
                column: "user_id",
                admin: None,
            },
            Related {
                plural: "User-permission relationships",
                table: "auth_user_user_permissions",
                column: "user_id",
                admin: None,
            },
            Related {
                plural: "log entries",
                table: "django_admin_log",
                column: "user_id",
                admin: None,
            },
        ],
        "group" => &[
            Related {
                plural: "Group-permission relationships",
                table: "auth_group_permissions",
                column: "group_id",
                admin: None,
            },
            Related {
                plural: "User-group relationships",
                table: "auth_user_groups",
                column: "group_id",
                admin: None,
            },
        ],
        _ => &[],
    }
}

/// `"?, ?, ?"` for `n` values.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn ids_args(ids: &[i64]) -> Vec<Arg> {
    ids.iter().map(|i| Arg::Int(*i)).collect()
}

/// The objects `ids` names that exist, with their `str()`, in id order.
pub async fn objects(
    db: &Db,
    m: &ModelAdmin,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, AdminError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(&format!(
        r#"SELECT "t"."id", {} FROM {} WHERE "t"."id" IN ({}) ORDER BY "t"."id""#,
        m.str_columns.join(", "),
        m.from,
        placeholders(ids.len())
    ));
    sql.push_bind("", ids_args(ids));
    let mut kinds = vec![Kind::Int];
    kinds.extend(m.str_columns.iter().map(|_| Kind::Text));
    let rows = db.fetch_rows(&sql, &kinds).await?;
    Ok(rows
        .iter()
        .map(|r| (r[0].int().unwrap_or(0), m.object_repr(&r[1..])))
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub label: String,
    pub count: i64,
}

/// What the confirmation page shows, and whether the user may go ahead.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub objects: Vec<String>,
    pub summary: Vec<Summary>,
    /// Registered models the user lacks the delete permission of (`perms_needed`).
    pub perms_needed: Vec<String>,
}

/// `get_deleted_objects`.
pub async fn plan(
    db: &Db,
    m: &ModelAdmin,
    perms: &Perms,
    found: &[(i64, String)],
) -> Result<Plan, AdminError> {
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let mut summary = vec![Summary {
        label: capfirst(m.verbose_name_plural),
        count: ids.len() as i64,
    }];
    let mut perms_needed = Vec::new();
    if !perms.model(m).delete {
        perms_needed.push(m.verbose_name.to_owned());
    }
    for rel in related(m) {
        let mut sql = Sql::new(&format!(
            r#"SELECT COUNT(*) FROM "{}" WHERE "{}" IN ({})"#,
            rel.table,
            rel.column,
            placeholders(ids.len())
        ));
        sql.push_bind("", ids_args(&ids));
        let count = if ids.is_empty() {
            0
        } else {
            db.fetch_int(&sql).await?
        };
        if count > 0 {
            summary.push(Summary {
                label: capfirst(rel.plural),
                count,
            });
            if let Some(admin) = rel.admin
                && !perms.model(admin).delete
            {
                perms_needed.push(admin.verbose_name.to_owned());
            }
        }
    }
    Ok(Plan {
        objects: found
            .iter()
            .map(|(_, repr)| format!("{}: {repr}", capfirst(m.verbose_name)))
            .collect(),
        summary,
        perms_needed,
    })
}

/// The chat messages deleting `ids` of `m` takes with it, with their rooms' names (open
/// `ferrochat.v1` screens are told to drop them).
async fn messages_going(
    db: &Db,
    m: &ModelAdmin,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, AdminError> {
    let column = match m.model_name {
        "message" => "id",
        "room" => "room_id",
        "user" => "user_id",
        _ => return Ok(Vec::new()),
    };
    let mut sql = Sql::new(&format!(
        r#"SELECT "m"."id", "r"."name" FROM "chatapp_message" "m" INNER JOIN "chatapp_room" "r" ON "r"."id" = "m"."room_id" WHERE "m"."{column}" IN ({})"#,
        placeholders(ids.len())
    ));
    sql.push_bind("", ids_args(ids));
    let rows = db.fetch_rows(&sql, &[Kind::Int, Kind::Text]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r[0].int()?, r[1].text().to_owned())))
        .collect())
}

/// Deletes the objects and everything that cascades from them, children first. Returns the
/// chat messages that went, with their rooms' names.
pub async fn delete(
    db: &Db,
    m: &ModelAdmin,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, AdminError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let messages = messages_going(db, m, ids).await?;
    for rel in related(m) {
        let mut sql = Sql::new(&format!(
            r#"DELETE FROM "{}" WHERE "{}" IN ({})"#,
            rel.table,
            rel.column,
            placeholders(ids.len())
        ));
        sql.push_bind("", ids_args(ids));
        db.execute_sql(&sql).await?;
    }
    let mut sql = Sql::new(&format!(
        r#"DELETE FROM "{}" WHERE "id" IN ({})"#,
        m.table,
        placeholders(ids.len())
    ));
    sql.push_bind("", ids_args(ids));
    db.execute_sql(&sql).await?;
    Ok(messages)
}
