//! `ferrochat migrate`: Django's schema on an empty database, nothing on a migrated one, a
//! refusal (nothing changed) on anything else. Output as `django/core/management/commands/
//! migrate.py` prints it at verbosity 1.

use clap::Args;

use super::console::{Console, Role};
use super::{CommandError, check_database_alias, connect};
use crate::config::Settings;
use crate::db::DbError;
use crate::db::schema::{self, MIGRATED_APPS, MigrateReport, SchemaState};

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Tells ferrochat to NOT prompt the user for input of any kind (it never does).
    #[arg(long = "noinput", visible_alias = "no-input")]
    pub noinput: bool,
    /// Nominates a database to synchronize. Only "default" exists.
    #[arg(long, default_value = "default")]
    pub database: String,
    /// Exits with a non-zero status if unapplied migrations exist and does not actually apply
    /// migrations.
    #[arg(long = "check")]
    pub check_unapplied: bool,
    /// Accepted for compatibility with manage.py; the system checks are `ferrochat check`.
    #[arg(long)]
    pub skip_checks: bool,
    /// Shows a list of the migration actions that will be performed.
    #[arg(long)]
    pub plan: bool,
}

/// What `manage.py migrate --plan` prints on an empty database (Django 5.0.1, captured from
/// the legacy app): the only plan ferrochat ever carries out.
const FULL_PLAN: &str = include_str!("migrate_plan.txt");

pub(crate) async fn run(
    settings: &Settings,
    args: &MigrateArgs,
    verbosity: u8,
    console: &mut Console,
) -> Result<(), CommandError> {
    check_database_alias(&args.database)?;
    let db = connect(settings).await?;
    let result = if args.plan {
        show_plan(&db, args.check_unapplied, console).await
    } else if args.check_unapplied {
        check_unapplied(&db).await
    } else {
        match schema::migrate(&db).await {
            Ok(report) => {
                if verbosity >= 1 {
                    print_report(&report, console);
                }
                Ok(())
            }
            Err(e) => Err(migrate_error(e)),
        }
    };
    db.close().await;
    result
}

/// `migrate --check`: silent, exit 1 when migrations are unapplied (`sys.exit(1)`).
async fn check_unapplied(db: &crate::db::Db) -> Result<(), CommandError> {
    match schema::schema_state(db).await {
        Ok(SchemaState::UpToDate) => Ok(()),
        Ok(state @ (SchemaState::Unknown(_) | SchemaState::NoMigrationTable)) => {
            Err(CommandError::new(state.describe()))
        }
        Ok(state) => Err(CommandError::Error(format!(
            "unapplied migrations: {}",
            state.describe()
        ))),
        Err(e) => Err(CommandError::new(e.to_string())),
    }
}

/// `migrate --plan`: the whole plan on an empty database, none on an up-to-date one, and the
/// reason `migrate` would refuse on anything else. With `--check`, a plan exits 1.
async fn show_plan(
    db: &crate::db::Db,
    check_unapplied: bool,
    console: &mut Console,
) -> Result<(), CommandError> {
    let state = schema::schema_state(db)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?;
    let style = console.out_style;
    match state {
        SchemaState::UpToDate => {
            console.out(&style.paint(Role::MigrateLabel, "Planned operations:"));
            console.out("  No planned migration operations.");
            Ok(())
        }
        SchemaState::Empty => {
            for line in FULL_PLAN.lines() {
                if line == "Planned operations:" {
                    console.out(&style.paint(Role::MigrateLabel, line));
                } else if line.starts_with(' ') {
                    console.out(line);
                } else {
                    console.out(&style.paint(Role::MigrateHeading, line));
                }
            }
            if check_unapplied {
                Err(CommandError::Error("unapplied migrations".to_owned()))
            } else {
                Ok(())
            }
        }
        other => Err(CommandError::new(other.describe())),
    }
}

fn migrate_error(e: DbError) -> CommandError {
    match e {
        // The refusal already says that nothing was changed and what to do.
        DbError::SchemaMismatch(mismatch) => CommandError::new(mismatch.to_string()),
        other => CommandError::new(other.to_string()),
    }
}

/// The same text as [`MigrateReport::django_output`], with Django's colours on a terminal.
fn print_report(report: &MigrateReport, console: &mut Console) {
    let style = console.out_style;
    console.out(&style.paint(Role::MigrateHeading, "Operations to perform:"));
    console.out(&format!(
        "{}{}",
        style.paint(Role::MigrateLabel, "  Apply all migrations: "),
        MIGRATED_APPS.join(", ")
    ));
    console.out(&style.paint(Role::MigrateHeading, "Running migrations:"));
    if report.applied.is_empty() {
        console.out("  No migrations to apply.");
    }
    for migration in &report.applied {
        console.out_raw(&format!("  Applying {migration}..."));
        console.out(&style.paint(Role::Success, " OK"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_is_djangos() {
        for report in [
            MigrateReport::default(),
            MigrateReport {
                applied: schema::MIGRATIONS.to_vec(),
            },
        ] {
            let (mut console, out, _) = Console::captured();
            print_report(&report, &mut console);
            assert_eq!(out.text(), report.django_output());
        }
    }
}
