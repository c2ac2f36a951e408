//! `ferrochat showmigrations [APP_LABEL ...] [--plan]`: what
//! `django/core/management/commands/showmigrations.py` prints for the legacy app, from
//! `django_migrations` (a migration is applied when its row is there).

use clap::Args;

use super::console::{Console, Role};
use super::{CommandError, check_database_alias, connect};
use crate::config::Settings;
use crate::db::schema::{self, MIGRATED_APPS, MIGRATIONS, Migration};

#[derive(Debug, Clone, Args)]
pub struct ShowmigrationsArgs {
    /// App labels of applications to limit the output to.
    #[arg(value_name = "APP_LABEL")]
    pub app_labels: Vec<String>,
    /// Nominates a database to show migrations for. Only "default" exists.
    #[arg(long, default_value = "default")]
    pub database: String,
    /// Shows a list of all migrations and which are applied (the default).
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    /// Shows all migrations in the order they will be applied.
    #[arg(short = 'p', long = "plan")]
    pub plan: bool,
}

pub(crate) async fn run(
    settings: &Settings,
    args: &ShowmigrationsArgs,
    console: &mut Console,
) -> Result<(), CommandError> {
    check_database_alias(&args.database)?;
    // `showmigrations.py _validate_app_names`.
    for label in &args.app_labels {
        if !MIGRATED_APPS.contains(&label.as_str()) && !is_installed_without_migrations(label) {
            return Err(CommandError::new(format!(
                "No installed app with label '{label}'."
            )));
        }
    }
    let db = connect(settings).await?;
    let recorded = schema::recorded_migrations(&db).await;
    db.close().await;
    let recorded = recorded
        .map_err(|e| CommandError::new(e.to_string()))?
        .unwrap_or_default();
    let applied = |m: &Migration| recorded.iter().any(|(a, n)| a == m.app && n == m.name);
    if args.plan {
        show_plan(console, &args.app_labels, applied);
    } else {
        show_list(console, &args.app_labels, applied);
    }
    Ok(())
}

/// The legacy `INSTALLED_APPS` without migrations of their own (`messages`, `staticfiles`,
/// `channels`, `daphne`): Django accepts their labels and shows "(no migrations)".
fn is_installed_without_migrations(label: &str) -> bool {
    ["messages", "staticfiles", "channels", "daphne"].contains(&label)
}

/// `show_list`: each app (sorted), then its migrations in plan order.
fn show_list(console: &mut Console, labels: &[String], applied: impl Fn(&Migration) -> bool) {
    let style = console.out_style;
    let apps: Vec<&str> = if labels.is_empty() {
        MIGRATED_APPS.to_vec()
    } else {
        labels.iter().map(String::as_str).collect()
    };
    for app in apps {
        console.out(&style.paint(Role::MigrateLabel, app));
        let mut shown = false;
        for m in MIGRATIONS.iter().filter(|m| m.app == app) {
            let mark = if applied(m) { "X" } else { " " };
            console.out(&format!(" [{mark}] {}", m.name));
            shown = true;
        }
        if !shown {
            console.out(&style.paint(Role::Error, " (no migrations)"));
        }
    }
}

/// `show_plan` at verbosity 1: `[X]  app.name` in plan order.
fn show_plan(console: &mut Console, labels: &[String], applied: impl Fn(&Migration) -> bool) {
    let mut any = false;
    for m in MIGRATIONS.iter() {
        // With labels: those apps' own migrations, in the plan's order (Django would add the
        // migrations they depend on).
        if !labels.is_empty() && !labels.iter().any(|l| l == m.app) {
            continue;
        }
        let mark = if applied(m) { "X" } else { " " };
        console.out(&format!("[{mark}]  {m}"));
        any = true;
    }
    if !any {
        console.out("(no migrations)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_groups_by_app_in_plan_order() {
        let (mut console, out, _) = Console::captured();
        show_list(&mut console, &[], |m| m.app != "sessions");
        let text = out.text();
        assert!(text.starts_with("admin\n [X] 0001_initial\n"), "{text}");
        assert!(text.ends_with("sessions\n [ ] 0001_initial\n"), "{text}");
        assert_eq!(text.lines().count(), 19 + 5);
    }
}
