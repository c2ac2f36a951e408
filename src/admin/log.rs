//! `django_admin_log` (`django/contrib/admin/models.py: LogEntry`): written exactly as
//! `LogEntryManager.log_action` writes it, read back for "Recent actions" and an object's history.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::dynamic::{Kind, Sql};
use crate::db::{Db, DbError, datetime};
use crate::django::py_json;

use super::models::ModelAdmin;

pub const ADDITION: i64 = 1;
pub const CHANGE: i64 = 2;
pub const DELETION: i64 = 3;

/// `django_content_type.id` of a registered model.
pub async fn content_type_id(db: &Db, m: &ModelAdmin) -> Result<i64, DbError> {
    let mut sql =
        Sql::new(r#"SELECT "id" FROM "django_content_type" WHERE "app_label" = ? AND "model" = ?"#);
    sql.bind(m.app_label).bind(m.model_name);
    let id = db.fetch_int(&sql).await?;
    if id == 0 {
        return Err(DbError::InvalidData {
            column: "django_content_type",
            detail: format!("no row for {}.{}", m.app_label, m.model_name),
        });
    }
    Ok(id)
}

/// `LogEntry.objects.log_action`: `object_repr` cut to 200 characters, a list message stored
/// as `json.dumps` writes it.
pub async fn log_action(
    db: &Db,
    user_id: i64,
    m: &ModelAdmin,
    object_id: i64,
    object_repr: &str,
    action_flag: i64,
    change_message: &Value,
) -> Result<(), DbError> {
    let ct = content_type_id(db, m).await?;
    let message = match change_message {
        Value::String(s) => s.clone(),
        other => py_json::dumps(other),
    };
    let repr: String = object_repr.chars().take(200).collect();
    let mut sql = Sql::new(
        r#"INSERT INTO "django_admin_log" ("action_time", "user_id", "content_type_id", "object_id", "object_repr", "action_flag", "change_message") VALUES (?, ?, ?, ?, ?, ?, ?)"#,
    );
    sql.bind(datetime::now())
        .bind(user_id)
        .bind(ct)
        .bind(object_id.to_string())
        .bind(repr)
        .bind(action_flag)
        .bind(message);
    db.execute_sql(&sql).await.map_err(|e| match e {
        crate::db::dynamic::WriteError::Db(d) => d,
        crate::db::dynamic::WriteError::Unique => DbError::InvalidData {
            column: "django_admin_log",
            detail: "unique violation".to_owned(),
        },
    })?;
    Ok(())
}

/// `construct_change_message` of an add.
pub fn added() -> Value {
    serde_json::json!([{"added": {}}])
}

/// `construct_change_message` of a change: the labels of the changed fields, or `[]`.
pub fn changed(labels: &[&str]) -> Value {
    if labels.is_empty() {
        serde_json::json!([])
    } else {
        serde_json::json!([{"changed": {"fields": labels}}])
    }
}

/// One row of "Recent actions" or a history page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub action_time: String,
    pub username: String,
    pub object_repr: String,
    pub action_flag: i64,
    pub message: String,
    /// The object's change page, unless it was deleted or is not registered.
    pub url: Option<String>,
    /// `content_type.name` capitalised, e.g. "Room".
    pub type_name: String,
}

const SELECT: &str = r#"SELECT "l"."action_time", "u"."username", "l"."object_id", "l"."object_repr", "l"."action_flag", "l"."change_message", "ct"."app_label", "ct"."model" FROM "django_admin_log" "l" INNER JOIN "auth_user" "u" ON "u"."id" = "l"."user_id" LEFT JOIN "django_content_type" "ct" ON "ct"."id" = "l"."content_type_id""#;
const KINDS: [Kind; 8] = [
    Kind::Time,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Text,
    Kind::Text,
    Kind::Text,
];

fn entries(rows: Vec<Vec<crate::db::dynamic::Cell>>) -> Vec<Entry> {
    rows.into_iter()
        .map(|r| {
            let flag = r[4].int().unwrap_or(0);
            let model = super::models::lookup(r[6].text(), r[7].text());
            let url = match (model, r[2].text().parse::<i64>()) {
                (Some(m), Ok(id)) if flag != DELETION => Some(m.change_url(id)),
                _ => None,
            };
            Entry {
                action_time: r[0].time().map(|t| format_datetime(&t)).unwrap_or_default(),
                username: r[1].text().to_owned(),
                object_repr: r[3].text().to_owned(),
                action_flag: flag,
                message: change_message_text(r[5].text()),
                url,
                type_name: model.map(|m| capfirst(m.verbose_name)).unwrap_or_default(),
            }
        })
        .collect()
}

/// The index's "My actions": the user's last ten entries.
pub async fn recent_for_user(db: &Db, user_id: i64) -> Result<Vec<Entry>, DbError> {
    let mut sql = Sql::new(SELECT);
    sql.push(r#" WHERE "l"."user_id" = ? ORDER BY "l"."action_time" DESC, "l"."id" DESC LIMIT 10"#)
        .bind(user_id);
    Ok(entries(db.fetch_rows(&sql, &KINDS).await?))
}

/// `history_view`: the object's entries, oldest first.
pub async fn history(db: &Db, m: &ModelAdmin, object_id: i64) -> Result<Vec<Entry>, DbError> {
    let ct = content_type_id(db, m).await?;
    let mut sql = Sql::new(SELECT);
    sql.push(r#" WHERE "l"."object_id" = ? AND "l"."content_type_id" = ? ORDER BY "l"."action_time" ASC, "l"."id" ASC"#)
        .bind(object_id.to_string())
        .bind(ct);
    Ok(entries(db.fetch_rows(&sql, &KINDS).await?))
}

/// `DATETIME_FORMAT` of the en locale: "Dec. 5, 2026, 5:10 a.m.".
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    crate::django::dateformat::date_filter(t, Some("DATETIME_FORMAT"))
}

pub fn capfirst(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `django.utils.text.get_text_list(items, "and")`.
fn text_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `LogEntry.get_change_message()` (untranslated).
pub fn change_message_text(stored: &str) -> String {
    let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(stored) else {
        return stored.to_owned();
    };
    let mut out = Vec::new();
    for part in &parts {
        if let Some(added) = part.get("added") {
            match (added.get("name"), added.get("object")) {
                (Some(n), Some(o)) => out.push(format!(
                    "Added {} “{}”.",
                    n.as_str().unwrap_or_default(),
                    o.as_str().unwrap_or_default()
                )),
                _ => out.push("Added.".to_owned()),
            }
        } else if let Some(changed) = part.get("changed") {
            let fields: Vec<String> = changed
                .get("fields")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let fields = text_list(&fields);
            match (changed.get("name"), changed.get("object")) {
                (Some(n), Some(o)) => out.push(format!(
                    "Changed {fields} for {} “{}”.",
                    n.as_str().unwrap_or_default(),
                    o.as_str().unwrap_or_default()
                )),
                _ => out.push(format!("Changed {fields}.")),
            }
        } else if let Some(deleted) = part.get("deleted") {
            out.push(format!(
                "Deleted {} “{}”.",
                deleted
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                deleted
                    .get("object")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ));
        }
    }
    if out.is_empty() {
        return "No fields changed.".to_owned();
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_django_shows_them() {
        assert_eq!(
            py_json::dumps(&changed(&["Active", "Staff status"])),
            r#"[{"changed": {"fields": ["Active", "Staff status"]}}]"#
        );
        assert_eq!(py_json::dumps(&added()), r#"[{"added": {}}]"#);
        assert_eq!(
            change_message_text(
                r#"[{"changed": {"fields": ["Active", "Staff status", "Groups"]}}]"#
            ),
            "Changed Active, Staff status and Groups."
        );
        assert_eq!(change_message_text(""), "");
        assert_eq!(change_message_text("[]"), "No fields changed.");
    }
}
