//! What the legacy app registers with `admin.site`: Django's `UserAdmin` and `GroupAdmin`
//! (`django/contrib/auth/admin.py`) and the legacy `RoomAdmin` and `MessageAdmin`
//! (`chatapp/admin.py`), as data: tables, columns, search fields, filters and ordering.

use crate::db::dynamic::Cell;

/// How a changelist column is read and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Text,
    Bool,
    Time,
    /// `str()` of the object (`list_display = ("__str__",)`): not sortable.
    Str,
}

/// One `list_display` column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header (the field's `verbose_name`, capitalised as Django's `label_for_field`).
    pub label: &'static str,
    /// SQL expression over the changelist's FROM clause; `None` for `__str__`.
    pub expr: Option<&'static str>,
    pub display: Display,
}

/// One `list_filter` entry: a query parameter and the SQL it filters with.
#[derive(Debug, Clone, Copy)]
pub enum Filter {
    /// A `BooleanField`: `?<param>=1|0` (`is_staff__exact`).
    Bool {
        title: &'static str,
        param: &'static str,
        column: &'static str,
    },
    /// A relation: `?<param>=<id>` with the choices from `table` (`room__id__exact`).
    Related {
        title: &'static str,
        param: &'static str,
        /// `"x"."y" = ?` or an `EXISTS` subquery with one `?`.
        condition: &'static str,
        choices: &'static str,
    },
}

/// A registered model.
#[derive(Debug)]
pub struct ModelAdmin {
    pub app_label: &'static str,
    /// `model._meta.model_name`.
    pub model_name: &'static str,
    pub verbose_name: &'static str,
    pub verbose_name_plural: &'static str,
    pub table: &'static str,
    /// FROM clause of the changelist (the table aliased `t`, plus the joins columns need).
    pub from: &'static str,
    /// The columns `str(obj)` is made of, over `from` (see [`ModelAdmin::object_repr`]).
    pub str_columns: &'static [&'static str],
    pub columns: &'static [Column],
    /// `search_fields` as SQL expressions over `from`.
    pub search: &'static [&'static str],
    pub filters: &'static [Filter],
    /// `ordering` (or the model's `Meta.ordering`, else `-pk`), then `-pk` for a total order.
    pub ordering: &'static str,
}

impl ModelAdmin {
    /// `/admin/<app>/<model>/`.
    pub fn changelist_url(&self) -> String {
        format!("/admin/{}/{}/", self.app_label, self.model_name)
    }

    /// `str(obj)` from the values of [`ModelAdmin::str_columns`].
    pub fn object_repr(&self, cells: &[Cell]) -> String {
        match cells {
            [user, room, content] => message_str(user.text(), room.text(), content.text()),
            [one, ..] => one.text().to_owned(),
            [] => String::new(),
        }
    }

    pub fn change_url(&self, id: i64) -> String {
        format!("/admin/{}/{}/{id}/change/", self.app_label, self.model_name)
    }
}

/// An application on the index page.
#[derive(Debug)]
pub struct App {
    pub label: &'static str,
    pub name: &'static str,
    pub models: &'static [&'static ModelAdmin],
}

pub const GROUP: ModelAdmin = ModelAdmin {
    app_label: "auth",
    model_name: "group",
    verbose_name: "group",
    verbose_name_plural: "groups",
    table: "auth_group",
    from: r#""auth_group" "t""#,
    str_columns: &[r#""t"."name""#],
    columns: &[Column {
        label: "Group",
        expr: None,
        display: Display::Str,
    }],
    search: &[r#""t"."name""#],
    filters: &[],
    ordering: r#""t"."name" ASC, "t"."id" DESC"#,
};

pub const USER: ModelAdmin = ModelAdmin {
    app_label: "auth",
    model_name: "user",
    verbose_name: "user",
    verbose_name_plural: "users",
    table: "auth_user",
    from: r#""auth_user" "t""#,
    str_columns: &[r#""t"."username""#],
    columns: &[
        Column {
            label: "Username",
            expr: Some(r#""t"."username""#),
            display: Display::Text,
        },
        Column {
            label: "Email address",
            expr: Some(r#""t"."email""#),
            display: Display::Text,
        },
        Column {
            label: "First name",
            expr: Some(r#""t"."first_name""#),
            display: Display::Text,
        },
        Column {
            label: "Last name",
            expr: Some(r#""t"."last_name""#),
            display: Display::Text,
        },
        Column {
            label: "Staff status",
            expr: Some(r#""t"."is_staff""#),
            display: Display::Bool,
        },
    ],
    search: &[
        r#""t"."username""#,
        r#""t"."first_name""#,
        r#""t"."last_name""#,
        r#""t"."email""#,
    ],
    filters: &[
        Filter::Bool {
            title: "staff status",
            param: "is_staff__exact",
            column: r#""t"."is_staff""#,
        },
        Filter::Bool {
            title: "superuser status",
            param: "is_superuser__exact",
            column: r#""t"."is_superuser""#,
        },
        Filter::Bool {
            title: "active",
            param: "is_active__exact",
            column: r#""t"."is_active""#,
        },
        Filter::Related {
            title: "groups",
            param: "groups__id__exact",
            condition: r#"EXISTS (SELECT 1 FROM "auth_user_groups" "ug" WHERE "ug"."user_id" = "t"."id" AND "ug"."group_id" = ?)"#,
            choices: r#"SELECT "id", "name" FROM "auth_group" ORDER BY "name""#,
        },
    ],
    ordering: r#""t"."username" ASC, "t"."id" DESC"#,
};

pub const ROOM: ModelAdmin = ModelAdmin {
    app_label: "chatapp",
    model_name: "room",
    verbose_name: "room",
    verbose_name_plural: "rooms",
    table: "chatapp_room",
    from: r#""chatapp_room" "t""#,
    str_columns: &[r#""t"."name""#],
    columns: &[
        Column {
            label: "Name",
            expr: Some(r#""t"."name""#),
            display: Display::Text,
        },
        Column {
            label: "Created at",
            expr: Some(r#""t"."created_at""#),
            display: Display::Time,
        },
    ],
    search: &[r#""t"."name""#],
    filters: &[],
    ordering: r#""t"."id" DESC"#,
};

pub const MESSAGE: ModelAdmin = ModelAdmin {
    app_label: "chatapp",
    model_name: "message",
    verbose_name: "message",
    verbose_name_plural: "messages",
    table: "chatapp_message",
    from: r#""chatapp_message" "t" INNER JOIN "chatapp_room" "r" ON "r"."id" = "t"."room_id" INNER JOIN "auth_user" "u" ON "u"."id" = "t"."user_id""#,
    // `f"{self.user} in {self.room}: {self.content[:50]}"`: the 50 characters are cut in Rust.
    str_columns: &[r#""u"."username""#, r#""r"."name""#, r#""t"."content""#],
    columns: &[
        Column {
            label: "Room",
            expr: Some(r#""r"."name""#),
            display: Display::Text,
        },
        Column {
            label: "User",
            expr: Some(r#""u"."username""#),
            display: Display::Text,
        },
        Column {
            label: "Content",
            expr: Some(r#""t"."content""#),
            display: Display::Text,
        },
        Column {
            label: "Timestamp",
            expr: Some(r#""t"."timestamp""#),
            display: Display::Time,
        },
    ],
    search: &[r#""t"."content""#, r#""u"."username""#],
    filters: &[Filter::Related {
        title: "room",
        param: "room__id__exact",
        condition: r#""t"."room_id" = ?"#,
        choices: r#"SELECT "id", "name" FROM "chatapp_room" ORDER BY "id""#,
    }],
    ordering: r#""t"."timestamp" ASC, "t"."id" DESC"#,
};

/// `admin.site`'s apps in the index's order (by name), each model by verbose name.
pub const APPS: [App; 2] = [
    App {
        label: "auth",
        name: "Authentication and Authorization",
        models: &[&GROUP, &USER],
    },
    App {
        label: "chatapp",
        name: "Chatapp",
        models: &[&MESSAGE, &ROOM],
    },
];

/// The registered model at `/admin/<app>/<model>/`.
pub fn lookup(app_label: &str, model_name: &str) -> Option<&'static ModelAdmin> {
    APPS.iter()
        .filter(|a| a.label == app_label)
        .flat_map(|a| a.models.iter().copied())
        .find(|m| m.model_name == model_name)
}

/// `Message.__str__`: `f"{self.user} in {self.room}: {self.content[:50]}"`.
pub fn message_str(username: &str, room: &str, content: &str) -> String {
    let head: String = content.chars().take(50).collect();
    format!("{username} in {room}: {head}")
}
