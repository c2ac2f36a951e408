//! `ModelBackend`'s permissions (`django/contrib/auth/backends.py`): an active superuser has
//! them all; anyone else has the `auth_permission` rows granted to them directly
//! (`auth_user_user_permissions`) or through a group (`auth_group_permissions`).

use std::collections::HashSet;

use crate::db::dynamic::{Kind, Sql};
use crate::db::{Db, DbError, User};

use super::models::ModelAdmin;

/// A staff user's permissions, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct Perms {
    superuser: bool,
    /// `"<app_label>.<codename>"`, as `user.get_all_permissions()` spells them.
    granted: HashSet<String>,
}

/// What a user may do with one model (`ModelAdmin.get_model_perms`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ModelPerms {
    pub add: bool,
    pub change: bool,
    pub delete: bool,
    /// `has_view_permission`: the view or the change permission.
    pub view: bool,
}

impl ModelPerms {
    /// `has_module_permission` for this model: any of the four.
    pub fn any(&self) -> bool {
        self.add || self.change || self.delete || self.view
    }
}

impl Perms {
    pub async fn load(db: &Db, user: &User) -> Result<Perms, DbError> {
        if user.is_active && user.is_superuser {
            return Ok(Perms {
                superuser: true,
                granted: HashSet::new(),
            });
        }
        if !user.is_active {
            return Ok(Perms::default());
        }
        let mut sql = Sql::new(
            r#"SELECT "ct"."app_label", "p"."codename" FROM "auth_permission" "p" INNER JOIN "django_content_type" "ct" ON "ct"."id" = "p"."content_type_id" WHERE "p"."id" IN (SELECT "up"."permission_id" FROM "auth_user_user_permissions" "up" WHERE "up"."user_id" = ?) OR "p"."id" IN (SELECT "gp"."permission_id" FROM "auth_group_permissions" "gp" INNER JOIN "auth_user_groups" "ug" ON "ug"."group_id" = "gp"."group_id" WHERE "ug"."user_id" = ?)"#,
        );
        sql.bind(user.id).bind(user.id);
        let rows = db.fetch_rows(&sql, &[Kind::Text, Kind::Text]).await?;
        Ok(Perms {
            superuser: false,
            granted: rows
                .iter()
                .map(|r| format!("{}.{}", r[0].text(), r[1].text()))
                .collect(),
        })
    }

    pub fn is_superuser(&self) -> bool {
        self.superuser
    }

    /// `user.has_perm("<app>.<codename>")`.
    pub fn has(&self, app_label: &str, codename: &str) -> bool {
        self.superuser || self.granted.contains(&format!("{app_label}.{codename}"))
    }

    pub fn model(&self, m: &ModelAdmin) -> ModelPerms {
        let has = |action: &str| self.has(m.app_label, &format!("{action}_{}", m.model_name));
        let change = has("change");
        ModelPerms {
            add: has("add"),
            change,
            delete: has("delete"),
            view: has("view") || change,
        }
    }
}
