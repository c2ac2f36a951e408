//! `ModelAdmin.changeform_view` for the four models: the add and change forms with Django's
//! validation and messages, `construct_change_message` for the history, `history_view`, and
//! the `_save` / `_continue` / `_addanother` buttons.

use salvo::http::Method;
use salvo::prelude::*;
use serde::Serialize;

use crate::db::dynamic::{Arg, Kind, Sql, WriteError};
use crate::db::users::NewUser;
use crate::db::{Db, DbError, datetime};
use crate::django::email::clean_email_field;
use crate::django::validators::Username;
use crate::web::forms::{DjangoValidators, UserCreationForm};

use super::changelist::{app_name, missing, model_of};
use super::log::{self, ADDITION, CHANGE, capfirst};
use super::models::{self, ModelAdmin};
use super::request::{
    AdminError, AdminResult, Chrome, SUCCESS, Staff, add_message, finish, forbidden, form_list,
    form_value, redirect, render, staff,
};

pub const REQUIRED: &str = "This field is required.";
const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One form row as `admin/change_form.html` draws it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `textarea`, `checkbox`, `select`, `multiselect`, `password`, `readonly`.
    pub kind: &'static str,
    pub value: String,
    pub checked: bool,
    pub options: Vec<Opt>,
    pub errors: Vec<String>,
    /// Help text (HTML, built here from escaped parts).
    pub help: String,
    /// A read-only value's HTML (built here from escaped parts).
    pub html: String,
    pub max_length: usize,
}

impl Field {
    fn text(name: &'static str, label: &'static str, value: &str, max_length: usize) -> Field {
        Field {
            name,
            label,
            kind: "text",
            value: value.to_owned(),
            max_length,
            ..Field::default()
        }
    }

    fn checkbox(name: &'static str, label: &'static str, checked: bool, help: &str) -> Field {
        Field {
            name,
            label,
            kind: "checkbox",
            checked,
            help: help.to_owned(),
            ..Field::default()
        }
    }

    fn choices(
        name: &'static str,
        label: &'static str,
        kind: &'static str,
        options: &[(i64, String)],
        selected: &[i64],
    ) -> Field {
        Field {
            name,
            label,
            kind,
            options: options
                .iter()
                .map(|(id, l)| Opt {
                    value: id.to_string(),
                    label: l.clone(),
                    selected: selected.contains(id),
                })
                .collect(),
            ..Field::default()
        }
    }
}

#[derive(Serialize)]
struct FormPage {
    chrome: Chrome,
    model_name: &'static str,
    object_repr: String,
    fields: Vec<Field>,
    non_field_errors: Vec<String>,
    errors: usize,
    readonly: bool,
    can_add_another: bool,
    history_url: Option<String>,
    delete_url: Option<String>,
    close_url: String,
}

/// `CharField(max_length)` cleaning: stripped, required, at most `max` characters.
fn clean_char(value: &str, max: usize, required: bool) -> Result<String, String> {
    let v = value.trim().to_owned();
    if v.is_empty() && required {
        return Err(REQUIRED.to_owned());
    }
    let n = v.chars().count();
    if n > max {
        return Err(format!(
            "Ensure this value has at most {max} characters (it has {n})."
        ));
    }
    Ok(v)
}

async fn id_label_rows(db: &Db, sql: &str) -> Result<Vec<(i64, String)>, DbError> {
    Ok(db
        .fetch_rows(&Sql::new(sql), &[Kind::Int, Kind::Text])
        .await?
        .into_iter()
        .map(|r| (r[0].int().unwrap_or(0), r[1].text().to_owned()))
        .collect())
}

/// `Permission.__str__`: `"<app verbose name> | <model verbose name> | <name>"`, in
/// `Permission.Meta.ordering`.
async fn permission_choices(db: &Db) -> Result<Vec<(i64, String)>, DbError> {
    let rows = db
        .fetch_rows(
            &Sql::new(r#"SELECT "p"."id", "ct"."app_label", "ct"."model", "p"."name" FROM "auth_permission" "p" INNER JOIN "django_content_type" "ct" ON "ct"."id" = "p"."content_type_id" ORDER BY "ct"."app_label" ASC, "ct"."model" ASC, "p"."codename" ASC"#),
            &[Kind::Int, Kind::Text, Kind::Text, Kind::Text],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let app = match r[1].text() {
                "admin" => "Administration",
                "auth" => "Authentication and Authorization",
                "contenttypes" => "Content Types",
                "sessions" => "Sessions",
                "chatapp" => "Chatapp",
                other => other,
            }
            .to_owned();
            let model = match r[2].text() {
                "logentry" => "log entry",
                "contenttype" => "content type",
                other => other,
            };
            (
                r[0].int().unwrap_or(0),
                format!("{app} | {model} | {}", r[3].text()),
            )
        })
        .collect())
}

async fn linked_ids(
    db: &Db,
    table: &str,
    key: &str,
    value: &str,
    id: i64,
) -> Result<Vec<i64>, DbError> {
    let mut sql = Sql::new(&format!(
        r#"SELECT "{value}" FROM "{table}" WHERE "{key}" = ? ORDER BY "{value}""#
    ));
    sql.bind(id);
    Ok(db
        .fetch_rows(&sql, &[Kind::Int])
        .await?
        .iter()
        .filter_map(|r| r[0].int())
        .collect())
}

/// Replaces the rows of a many-to-many table for one object (`set()`).
async fn set_links(
    db: &Db,
    table: &str,
    key: &str,
    value: &str,
    id: i64,
    ids: &[i64],
) -> Result<(), WriteError> {
    let mut sql = Sql::new(&format!(r#"DELETE FROM "{table}" WHERE "{key}" = ?"#));
    sql.bind(id);
    db.execute_sql(&sql).await?;
    for v in ids {
        let mut sql = Sql::new(&format!(
            r#"INSERT INTO "{table}" ("{key}", "{value}") VALUES (?, ?)"#
        ));
        sql.bind(id).bind(*v);
        db.execute_sql(&sql).await?;
    }
    Ok(())
}

/// The submitted ids of a multiple choice field, each one of `allowed`.
fn clean_multi(values: &[String], allowed: &[(i64, String)]) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for v in values {
        match v.parse::<i64>() {
            Ok(id) if allowed.iter().any(|(a, _)| *a == id) => out.push(id),
            _ => {
                return Err(format!(
                    "Select a valid choice. {v} is not one of the available choices."
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn clean_choice(value: &str, allowed: &[(i64, String)]) -> Result<i64, String> {
    if value.is_empty() {
        return Err(REQUIRED.to_owned());
    }
    match value.parse::<i64>() {
        Ok(id) if allowed.iter().any(|(a, _)| *a == id) => Ok(id),
        _ => Err(INVALID_CHOICE.to_owned()),
    }
}

/// A model's current values, the form built from them, and the save.
struct Outcome {
    fields: Vec<Field>,
    /// Labels of the changed fields (`changed_data` order), when the form was valid and saved.
    saved: Option<(i64, String, Vec<&'static str>)>,
}

async fn exists_other(
    db: &Db,
    table: &str,
    column: &str,
    value: &str,
    id: Option<i64>,
) -> Result<bool, DbError> {
    let mut sql = Sql::new(&format!(
        r#"SELECT COUNT(*) FROM "{table}" WHERE "{column}" = ?"#
    ));
    sql.bind(value);
    if let Some(id) = id {
        sql.push(r#" AND "id" <> ?"#).bind(id);
    }
    Ok(db.fetch_int(&sql).await? > 0)
}

/// Room and group: one unique `name` (groups also have permissions).
async fn named_form(
    req: &mut Request,
    db: &Db,
    m: &ModelAdmin,
    id: Option<i64>,
    post: bool,
) -> Result<Outcome, AdminError> {
    let group = m.model_name == "group";
    let max = if group { 150 } else { 255 };
    let (old_name, old_perms) = match id {
        Some(id) => {
            let mut sql = Sql::new(&format!(
                r#"SELECT "name" FROM "{}" WHERE "id" = ?"#,
                m.table
            ));
            sql.bind(id);
            let name = db
                .fetch_rows(&sql, &[Kind::Text])
                .await?
                .first()
                .map(|r| r[0].text().to_owned())
                .unwrap_or_default();
            let perms = if group {
                linked_ids(
                    db,
                    "auth_group_permissions",
                    "group_id",
                    "permission_id",
                    id,
                )
                .await?
            } else {
                Vec::new()
            };
            (name, perms)
        }
        None => (String::new(), Vec::new()),
    };
    let perm_choices = if group {
        permission_choices(db).await?
    } else {
        Vec::new()
    };
    let mut name_field = Field::text("name", "Name", &old_name, max);
    let mut perms_field = Field::choices(
        "permissions",
        "Permissions",
        "multiselect",
        &perm_choices,
        &old_perms,
    );
    perms_field.help =
        "Hold down “Control”, or “Command” on a Mac, to select more than one.".to_owned();
    if !post {
        let mut fields = vec![name_field];
        if group {
            fields.push(perms_field);
        }
        return Ok(Outcome {
            fields,
            saved: None,
        });
    }
    let raw = form_value(req, "name").await.unwrap_or_default();
    name_field.value = raw.clone();
    let raw_perms = form_list(req, "permissions").await;
    let name = clean_char(&raw, max, true);
    let perms = clean_multi(&raw_perms, &perm_choices);
    for o in &mut perms_field.options {
        o.selected = raw_perms.contains(&o.value);
    }
    let name = match name {
        Ok(n) if exists_other(db, m.table, "name", &n, id).await? => Err(format!(
            "{} with this Name already exists.",
            capfirst(m.verbose_name)
        )),
        other => other,
    };
    if let Err(e) = &name {
        name_field.errors.push(e.clone());
    }
    if let Err(e) = &perms {
        perms_field.errors.push(e.clone());
    }
    let (Ok(name), Ok(perms)) = (name, perms) else {
        let mut fields = vec![name_field];
        if group {
            fields.push(perms_field);
        }
        return Ok(Outcome {
            fields,
            saved: None,
        });
    };
    let mut changed = Vec::new();
    if id.is_none() || name != old_name {
        changed.push("Name");
    }
    if group && perms != old_perms {
        changed.push("Permissions");
    }
    let saved_id = match id {
        None => {
            let mut sql = if group {
                Sql::new(r#"INSERT INTO "auth_group" ("name") VALUES (?)"#)
            } else {
                Sql::new(r#"INSERT INTO "chatapp_room" ("name", "created_at") VALUES (?, ?)"#)
            };
            sql.bind(name.clone());
            if !group {
                sql.bind(datetime::now());
            }
            match db.insert_returning_id(&sql).await {
                Ok(id) => id,
                Err(WriteError::Unique) => {
                    name_field.errors.push(format!(
                        "{} with this Name already exists.",
                        capfirst(m.verbose_name)
                    ));
                    let mut fields = vec![name_field];
                    if group {
                        fields.push(perms_field);
                    }
                    return Ok(Outcome {
                        fields,
                        saved: None,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Some(id) => {
            if name != old_name {
                let mut sql = Sql::new(&format!(
                    r#"UPDATE "{}" SET "name" = ? WHERE "id" = ?"#,
                    m.table
                ));
                sql.bind(name.clone()).bind(id);
                db.execute_sql(&sql).await?;
            }
            id
        }
    };
    if group && (id.is_none() || perms != old_perms) {
        set_links(
            db,
            "auth_group_permissions",
            "group_id",
            "permission_id",
            saved_id,
            &perms,
        )
        .await?;
    }
    Ok(Outcome {
        fields: Vec::new(),
        saved: Some((saved_id, name, changed)),
    })
}

/// A message: room, user, content.
async fn message_form(
    req: &mut Request,
    db: &Db,
    id: Option<i64>,
    post: bool,
) -> Result<Outcome, AdminError> {
    let (old_room, old_user, old_content) = match id {
        Some(id) => {
            let mut sql = Sql::new(
                r#"SELECT "room_id", "user_id", "content" FROM "chatapp_message" WHERE "id" = ?"#,
            );
            sql.bind(id);
            let rows = db
                .fetch_rows(&sql, &[Kind::Int, Kind::Int, Kind::Text])
                .await?;
            let r = rows.first();
            (
                r.and_then(|r| r[0].int()),
                r.and_then(|r| r[1].int()),
                r.map(|r| r[2].text().to_owned()).unwrap_or_default(),
            )
        }
        None => (None, None, String::new()),
    };
    let rooms = id_label_rows(
        db,
        r#"SELECT "id", "name" FROM "chatapp_room" ORDER BY "id""#,
    )
    .await?;
    let users = id_label_rows(
        db,
        r#"SELECT "id", "username" FROM "auth_user" ORDER BY "id""#,
    )
    .await?;
    let mut room_f = Field::choices(
        "room",
        "Room",
        "select",
        &rooms,
        &old_room.into_iter().collect::<Vec<_>>(),
    );
    let mut user_f = Field::choices(
        "user",
        "User",
        "select",
        &users,
        &old_user.into_iter().collect::<Vec<_>>(),
    );
    let mut content_f = Field {
        name: "content",
        label: "Content",
        kind: "textarea",
        value: old_content.clone(),
        ..Field::default()
    };
    if !post {
        return Ok(Outcome {
            fields: vec![room_f, user_f, content_f],
            saved: None,
        });
    }
    let raw_room = form_value(req, "room").await.unwrap_or_default();
    let raw_user = form_value(req, "user").await.unwrap_or_default();
    let raw_content = form_value(req, "content").await.unwrap_or_default();
    for o in &mut room_f.options {
        o.selected = o.value == raw_room;
    }
    for o in &mut user_f.options {
        o.selected = o.value == raw_user;
    }
    content_f.value = raw_content.clone();
    let room = clean_choice(&raw_room, &rooms);
    let user = clean_choice(&raw_user, &users);
    // `TextField` form fields strip too.
    let content = clean_char(&raw_content, usize::MAX, true);
    if let Err(e) = &room {
        room_f.errors.push(e.clone());
    }
    if let Err(e) = &user {
        user_f.errors.push(e.clone());
    }
    if let Err(e) = &content {
        content_f.errors.push(e.clone());
    }
    let (Ok(room), Ok(user), Ok(content)) = (room, user, content) else {
        return Ok(Outcome {
            fields: vec![room_f, user_f, content_f],
            saved: None,
        });
    };
    let mut changed = Vec::new();
    if id.is_none() || Some(room) != old_room {
        changed.push("Room");
    }
    if id.is_none() || Some(user) != old_user {
        changed.push("User");
    }
    if id.is_none() || content != old_content {
        changed.push("Content");
    }
    let saved_id = match id {
        None => {
            let mut sql = Sql::new(
                r#"INSERT INTO "chatapp_message" ("content", "timestamp", "room_id", "user_id") VALUES (?, ?, ?, ?)"#,
            );
            sql.bind(content.clone())
                .bind(datetime::now())
                .bind(room)
                .bind(user);
            db.insert_returning_id(&sql).await?
        }
        Some(id) => {
            let mut sql = Sql::new(
                r#"UPDATE "chatapp_message" SET "content" = ?, "room_id" = ?, "user_id" = ? WHERE "id" = ?"#,
            );
            sql.bind(content.clone()).bind(room).bind(user).bind(id);
            db.execute_sql(&sql).await?;
            id
        }
    };
    let found = super::delete::objects(db, &models::MESSAGE, &[saved_id]).await?;
    let repr = found.first().map(|(_, r)| r.clone()).unwrap_or_default();
    Ok(Outcome {
        fields: Vec::new(),
        saved: Some((saved_id, repr, changed)),
    })
}

/// `UserChangeForm` under `UserAdmin.fieldsets`.
async fn user_change_form(
    req: &mut Request,
    db: &Db,
    id: i64,
    post: bool,
) -> Result<Outcome, AdminError> {
    let Some(user) = db.user_by_id(id).await? else {
        return Ok(Outcome {
            fields: Vec::new(),
            saved: None,
        });
    };
    let groups = id_label_rows(
        db,
        r#"SELECT "id", "name" FROM "auth_group" ORDER BY "name""#,
    )
    .await?;
    let perm_choices = permission_choices(db).await?;
    let old_groups = linked_ids(db, "auth_user_groups", "user_id", "group_id", id).await?;
    let old_perms = linked_ids(
        db,
        "auth_user_user_permissions",
        "user_id",
        "permission_id",
        id,
    )
    .await?;
    let mut f_username = Field::text("username", "Username", &user.username, 150);
    f_username.help =
        "Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.".to_owned();
    let password_html = format!(
        "{}<br><a href=\"../password/\">Reset password</a>",
        crate::django::html::escape(&password_summary(&user.password))
    );
    let f_password = Field {
        name: "password",
        label: "Password",
        kind: "readonly",
        html: password_html,
        help: "Raw passwords are not stored, so there is no way to see this user’s password, but you can change the password using <a href=\"../password/\">this form</a>.".to_owned(),
        ..Field::default()
    };
    let mut f_first = Field::text("first_name", "First name", &user.first_name, 150);
    let mut f_last = Field::text("last_name", "Last name", &user.last_name, 150);
    let mut f_email = Field::text("email", "Email address", &user.email, 254);
    let mut f_active = Field::checkbox(
        "is_active",
        "Active",
        user.is_active,
        "Designates whether this user should be treated as active. Unselect this instead of deleting accounts.",
    );
    let mut f_staff = Field::checkbox(
        "is_staff",
        "Staff status",
        user.is_staff,
        "Designates whether the user can log into this admin site.",
    );
    let mut f_super = Field::checkbox(
        "is_superuser",
        "Superuser status",
        user.is_superuser,
        "Designates that this user has all permissions without explicitly assigning them.",
    );
    let mut f_groups = Field::choices("groups", "Groups", "multiselect", &groups, &old_groups);
    f_groups.help = "The groups this user belongs to. A user will get all permissions granted to each of their groups.".to_owned();
    let mut f_perms = Field::choices(
        "user_permissions",
        "User permissions",
        "multiselect",
        &perm_choices,
        &old_perms,
    );
    f_perms.help = "Specific permissions for this user.".to_owned();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| log::format_datetime(&t))
            .unwrap_or_else(|| "-".to_owned())
    };
    let f_last_login = Field {
        name: "last_login",
        label: "Last login",
        kind: "readonly",
        value: when(user.last_login),
        ..Field::default()
    };
    let f_joined = Field {
        name: "date_joined",
        label: "Date joined",
        kind: "readonly",
        value: when(Some(user.date_joined)),
        ..Field::default()
    };
    if !post {
        return Ok(Outcome {
            fields: vec![
                f_username,
                f_password,
                f_first,
                f_last,
                f_email,
                f_active,
                f_staff,
                f_super,
                f_groups,
                f_perms,
                f_last_login,
                f_joined,
            ],
            saved: None,
        });
    }
    let raw_username = form_value(req, "username").await.unwrap_or_default();
    let raw_first = form_value(req, "first_name").await.unwrap_or_default();
    let raw_last = form_value(req, "last_name").await.unwrap_or_default();
    let raw_email = form_value(req, "email").await.unwrap_or_default();
    // An HTML checkbox is sent only when checked (`CheckboxInput.value_from_datadict`).
    let active = form_value(req, "is_active")
        .await
        .is_some_and(|v| !matches!(v.as_str(), "false" | "False" | "0"));
    let staff_flag = form_value(req, "is_staff")
        .await
        .is_some_and(|v| !matches!(v.as_str(), "false" | "False" | "0"));
    let superuser = form_value(req, "is_superuser")
        .await
        .is_some_and(|v| !matches!(v.as_str(), "false" | "False" | "0"));
    let raw_groups = form_list(req, "groups").await;
    let raw_perms = form_list(req, "user_permissions").await;
    f_username.value = raw_username.clone();
    f_first.value = raw_first.clone();
    f_last.value = raw_last.clone();
    f_email.value = raw_email.clone();
    f_active.checked = active;
    f_staff.checked = staff_flag;
    f_super.checked = superuser;
    for o in &mut f_groups.options {
        o.selected = raw_groups.contains(&o.value);
    }
    for o in &mut f_perms.options {
        o.selected = raw_perms.contains(&o.value);
    }
    let username = match Username::parse(&raw_username) {
        Ok(u)
            if u.as_str() != user.username
                && exists_other(db, "auth_user", "username", u.as_str(), Some(id)).await? =>
        {
            Err(vec!["A user with that username already exists.".to_owned()])
        }
        Ok(u) => Ok(u),
        Err(e) => Err(e.messages()),
    };
    let first = clean_char(&raw_first, 150, false);
    let last = clean_char(&raw_last, 150, false);
    let email = clean_email_field(raw_email.trim());
    let new_groups = clean_multi(&raw_groups, &groups);
    let new_perms = clean_multi(&raw_perms, &perm_choices);
    if let Err(e) = &username {
        f_username.errors.extend(e.iter().cloned());
    }
    if let Err(e) = &first {
        f_first.errors.push(e.clone());
    }
    if let Err(e) = &last {
        f_last.errors.push(e.clone());
    }
    if let Err(e) = &email {
        f_email.errors.extend(e.iter().cloned());
    }
    if let Err(e) = &new_groups {
        f_groups.errors.push(e.clone());
    }
    if let Err(e) = &new_perms {
        f_perms.errors.push(e.clone());
    }
    let (Ok(username), Ok(first), Ok(last), Ok(email), Ok(new_groups), Ok(new_perms)) =
        (username, first, last, email, new_groups, new_perms)
    else {
        return Ok(Outcome {
            fields: vec![
                f_username,
                f_password,
                f_first,
                f_last,
                f_email,
                f_active,
                f_staff,
                f_super,
                f_groups,
                f_perms,
                f_last_login,
                f_joined,
            ],
            saved: None,
        });
    };
    let mut changed = Vec::new();
    let pairs: [(bool, &'static str); 9] = [
        (username.as_str() != user.username, "Username"),
        (first != user.first_name, "First name"),
        (last != user.last_name, "Last name"),
        (email != user.email, "Email address"),
        (active != user.is_active, "Active"),
        (staff_flag != user.is_staff, "Staff status"),
        (superuser != user.is_superuser, "Superuser status"),
        (new_groups != old_groups, "Groups"),
        (new_perms != old_perms, "User permissions"),
    ];
    for (differs, label) in pairs {
        if differs {
            changed.push(label);
        }
    }
    let mut sql = Sql::new(
        r#"UPDATE "auth_user" SET "username" = ?, "first_name" = ?, "last_name" = ?, "email" = ?, "is_active" = ?, "is_staff" = ?, "is_superuser" = ? WHERE "id" = ?"#,
    );
    sql.push_bind(
        "",
        [
            Arg::Text(username.as_str().to_owned()),
            Arg::Text(first),
            Arg::Text(last),
            Arg::Text(email),
            Arg::Bool(active),
            Arg::Bool(staff_flag),
            Arg::Bool(superuser),
            Arg::Int(id),
        ],
    );
    db.execute_sql(&sql).await?;
    if new_groups != old_groups {
        set_links(
            db,
            "auth_user_groups",
            "user_id",
            "group_id",
            id,
            &new_groups,
        )
        .await?;
    }
    if new_perms != old_perms {
        set_links(
            db,
            "auth_user_user_permissions",
            "user_id",
            "permission_id",
            id,
            &new_perms,
        )
        .await?;
    }
    Ok(Outcome {
        fields: Vec::new(),
        saved: Some((id, username.into_inner(), changed)),
    })
}

/// `ReadOnlyPasswordHashWidget`: the algorithm and a masked hash, never the hash itself.
fn password_summary(encoded: &str) -> String {
    if encoded.is_empty() || encoded.starts_with('!') {
        return "No password set.".to_owned();
    }
    match crate::django::hashers::identify_hasher(encoded) {
        Ok(alg) => {
            let parts: Vec<&str> = encoded.split('$').collect();
            match parts.as_slice() {
                [_, iterations, salt, hash] => format!(
                    "algorithm: {} iterations: {iterations} salt: {}****** hash: {}**********",
                    alg.name(),
                    salt.chars().take(6).collect::<String>(),
                    hash.chars().take(6).collect::<String>()
                ),
                _ => format!("algorithm: {}", alg.name()),
            }
        }
        Err(_) => "Invalid password format or unknown hashing algorithm.".to_owned(),
    }
}

/// The object's `str()`, or `None` when it does not exist.
async fn repr_of(db: &Db, m: &ModelAdmin, id: i64) -> Result<Option<String>, AdminError> {
    Ok(super::delete::objects(db, m, &[id])
        .await?
        .into_iter()
        .next()
        .map(|(_, r)| r))
}

/// `add_view`.
#[handler]
pub async fn add_view(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(m) = model_of(req, res) else {
            return Ok(());
        };
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        if !s.perms.model(m).add {
            forbidden(res);
            return Ok(());
        }
        if m.model_name == "user" {
            return user_add(req, depot, res, &s).await;
        }
        let post = req.method() == Method::POST;
        let outcome = match m.model_name {
            "message" => message_form(req, &s.state.db, None, post).await?,
            _ => named_form(req, &s.state.db, m, None, post).await?,
        };
        if let Some((id, repr, _)) = outcome.saved {
            log::log_action(
                &s.state.db,
                s.user.id,
                m,
                id,
                &repr,
                ADDITION,
                &log::added(),
            )
            .await?;
            return after_save(req, depot, res, &s, m, id, &repr, true).await;
        }
        let title = format!("Add {}", m.verbose_name);
        show_form(
            depot,
            res,
            &s,
            m,
            None,
            String::new(),
            title,
            outcome.fields,
            false,
        )
        .await
    }
    .await;
    finish(res, result);
}

/// `response_add` / `response_change`.
#[allow(clippy::too_many_arguments)]
async fn after_save(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    s: &Staff,
    m: &ModelAdmin,
    id: i64,
    repr: &str,
    added: bool,
) -> AdminResult {
    let verb = if added { "added" } else { "changed" };
    let head = format!("The {} “{repr}” was {verb} successfully.", m.verbose_name);
    if form_value(req, "_continue").await.is_some() {
        add_message(
            depot,
            SUCCESS,
            &format!("{head} You may edit it again below."),
        )?;
        redirect(res, &m.change_url(id));
    } else if form_value(req, "_addanother").await.is_some() {
        add_message(
            depot,
            SUCCESS,
            &format!("{head} You may add another {} below.", m.verbose_name),
        )?;
        redirect(res, &format!("{}add/", m.changelist_url()));
    } else {
        add_message(depot, SUCCESS, &head)?;
        let to = if s.perms.model(m).view {
            m.changelist_url()
        } else {
            "/admin/".to_owned()
        };
        redirect(res, &to);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn show_form(
    depot: &mut Depot,
    res: &mut Response,
    s: &Staff,
    m: &ModelAdmin,
    id: Option<i64>,
    object_repr: String,
    title: String,
    fields: Vec<Field>,
    readonly: bool,
) -> AdminResult {
    let errors = fields.iter().map(|f| f.errors.len()).sum();
    let perms = s.perms.model(m);
    let mut chrome = Chrome::new(depot, &s.user.username, title)?
        .crumb(app_name(m), format!("/admin/{}/", m.app_label));
    chrome = if perms.view {
        chrome.crumb(capfirst(m.verbose_name_plural), m.changelist_url())
    } else {
        chrome.crumb(capfirst(m.verbose_name_plural), "")
    };
    chrome = match id {
        Some(_) => chrome.crumb(object_repr.clone(), ""),
        None => chrome.crumb(format!("Add {}", m.verbose_name), ""),
    };
    let page = FormPage {
        chrome,
        model_name: m.model_name,
        object_repr,
        fields,
        non_field_errors: Vec::new(),
        errors,
        readonly,
        can_add_another: perms.add,
        history_url: id.map(|id| format!("{}{id}/history/", m.changelist_url())),
        delete_url: id
            .filter(|_| perms.delete)
            .map(|id| format!("{}{id}/delete/", m.changelist_url())),
        close_url: m.changelist_url(),
    };
    render(&s.templates, res, "admin/change_form.html", &page)
}

/// `change_view` (read-only with only the view permission).
#[handler]
pub async fn change_view(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(m) = model_of(req, res) else {
            return Ok(());
        };
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let raw_id = req.param::<String>("id").unwrap_or_default();
        let perms = s.perms.model(m);
        if !perms.view {
            forbidden(res);
            return Ok(());
        }
        let Ok(id) = raw_id.parse::<i64>() else {
            return missing(depot, res, m, &raw_id);
        };
        let Some(repr) = repr_of(&s.state.db, m, id).await? else {
            return missing(depot, res, m, &raw_id);
        };
        let post = req.method() == Method::POST;
        if post && !perms.change {
            forbidden(res);
            return Ok(());
        }
        let before = if m.model_name == "user" {
            s.state.db.user_by_id(id).await?
        } else {
            None
        };
        let outcome = match m.model_name {
            "message" => message_form(req, &s.state.db, Some(id), post).await?,
            "user" => user_change_form(req, &s.state.db, id, post).await?,
            _ => named_form(req, &s.state.db, m, Some(id), post).await?,
        };
        if let Some((id, new_repr, changed)) = outcome.saved {
            log::log_action(
                &s.state.db,
                s.user.id,
                m,
                id,
                &new_repr,
                CHANGE,
                &log::changed(&changed),
            )
            .await?;
            if let Some(before) = before
                && before.is_active
                && changed.contains(&"Active")
            {
                super::effects::user_deactivated(&s.state, id).await;
            }
            return after_save(req, depot, res, &s, m, id, &new_repr, false).await;
        }
        let verb = if perms.change { "Change" } else { "View" };
        let title = format!("{verb} {}", m.verbose_name);
        show_form(
            depot,
            res,
            &s,
            m,
            Some(id),
            repr,
            title,
            outcome.fields,
            !perms.change,
        )
        .await
    }
    .await;
    finish(res, result);
}

/// `UserAdmin.add_view`: `AdminUserCreationForm`'s username and two passwords; then the change
/// page, as `response_add` forces `_continue`.
async fn user_add(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    s: &Staff,
) -> AdminResult {
    let m = &models::USER;
    let db = &s.state.db;
    let mut username_f = Field::text("username", "Username", "", 150);
    username_f.help =
        "Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.".to_owned();
    let mut p1 = Field {
        name: "password1",
        label: "Password",
        kind: "password",
        ..Field::default()
    };
    p1.help = crate::web::forms::password_help_text_html(
        &crate::django::validators::password_validators_help_texts(),
    );
    let mut p2 = Field {
        name: "password2",
        label: "Password confirmation",
        kind: "password",
        ..Field::default()
    };
    p2.help = "Enter the same password as before, for verification.".to_owned();
    if req.method() == Method::POST {
        let username = form_value(req, "username").await;
        let password1 = form_value(req, "password1").await;
        let password2 = form_value(req, "password2").await;
        let mut form = UserCreationForm::bind(
            username.as_deref(),
            password1.as_deref(),
            password2.as_deref(),
        );
        let taken = match form.username_for_lookup() {
            Some(name) => db.username_exists_case_insensitive(name).await?,
            None => false,
        };
        form.validate(taken, &DjangoValidators);
        if let Some(valid) = form.cleaned() {
            let hash = s.state.hasher.make(valid.password.into_plain()).await?;
            match db.create_user(NewUser::signup(valid.username, hash)).await {
                Ok(user) => {
                    log::log_action(
                        db,
                        s.user.id,
                        m,
                        user.id,
                        &user.username,
                        ADDITION,
                        &log::added(),
                    )
                    .await?;
                    add_message(
                        depot,
                        SUCCESS,
                        &format!(
                            "The user “{}” was added successfully. You may edit it again below.",
                            user.username
                        ),
                    )?;
                    redirect(res, &m.change_url(user.id));
                    return Ok(());
                }
                Err(DbError::UsernameTaken) => {
                    username_f
                        .errors
                        .push("A user with that username already exists.".to_owned());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let ctx = form.context();
        for bound in ctx.fields {
            let target = match bound.name.as_str() {
                "username" => &mut username_f,
                "password1" => &mut p1,
                _ => &mut p2,
            };
            target.errors.extend(bound.errors);
        }
        username_f.value = username.unwrap_or_default();
    }
    let title = "Add user".to_owned();
    let mut page_fields = vec![username_f, p1, p2];
    for f in &mut page_fields {
        f.errors.dedup();
    }
    show_form(
        depot,
        res,
        s,
        m,
        None,
        String::new(),
        title,
        page_fields,
        false,
    )
    .await
}

#[derive(Serialize)]
struct HistoryPage {
    chrome: Chrome,
    object_repr: String,
    entries: Vec<log::Entry>,
}

/// `history_view`.
#[handler]
pub async fn history_view(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(m) = model_of(req, res) else {
            return Ok(());
        };
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        if !s.perms.model(m).view {
            forbidden(res);
            return Ok(());
        }
        let raw_id = req.param::<String>("id").unwrap_or_default();
        let Ok(id) = raw_id.parse::<i64>() else {
            return missing(depot, res, m, &raw_id);
        };
        let Some(repr) = repr_of(&s.state.db, m, id).await? else {
            return missing(depot, res, m, &raw_id);
        };
        let entries = log::history(&s.state.db, m, id).await?;
        let chrome = Chrome::new(depot, &s.user.username, format!("Change history: {repr}"))?
            .crumb(app_name(m), format!("/admin/{}/", m.app_label))
            .crumb(capfirst(m.verbose_name_plural), m.changelist_url())
            .crumb(repr.clone(), m.change_url(id))
            .crumb("History", "");
        let page = HistoryPage {
            chrome,
            object_repr: repr,
            entries,
        };
        render(&s.templates, res, "admin/object_history.html", &page)
    }
    .await;
    finish(res, result);
}
