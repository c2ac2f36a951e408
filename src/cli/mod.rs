//! manage.py-style subcommands: `runserver`, `migrate`, `createsuperuser`, `changepassword`,
//! `check`, `clearsessions`, `showmigrations`, with Django's flags, prompts, messages and exit codes ("manage.py" in Django's
//! messages reads "ferrochat" here). One file per command.
//!
//! Prompting is synchronous in spirit but runs inside a current-thread tokio runtime, so the
//! database calls between questions and the Ctrl-C handling share one event loop.

mod changepassword;
mod check;
mod clearsessions;
pub mod console;
mod createsuperuser;
mod error;
mod migrate;
mod prompt;
mod runserver;
mod showmigrations;
pub mod system_user;

use std::io::IsTerminal;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};

pub use changepassword::ChangepasswordArgs;
pub use check::CheckArgs;
pub use clearsessions::ClearsessionsArgs;
pub use console::ColorChoice;
pub use createsuperuser::{CreatesuperuserArgs, SuperuserEnv};
pub use error::CommandError;
pub use migrate::MigrateArgs;
pub use runserver::{Listen, RunserverArgs, parse_addrport};
pub use showmigrations::ShowmigrationsArgs;

use crate::config::Settings;
use crate::db::Db;
use crate::db::schema::{self, SchemaState};
use crate::secret::Password;
use console::{Console, Role};
use prompt::Terminal;

/// ferrochat: the legacy Django chat app's server and its admin commands.
#[derive(Debug, Parser)]
#[command(name = "ferrochat", version, about, propagate_version = true)]
pub struct Cli {
    /// Verbosity level; 0=minimal output, 1=normal output, 2=verbose output, 3=very verbose
    /// output.
    #[arg(
        short = 'v',
        long,
        global = true,
        default_value = "1",
        value_parser = PossibleValuesParser::new(["0", "1", "2", "3"])
            .map(|v| v.parse::<u8>().unwrap_or(1)),
    )]
    pub verbosity: u8,
    /// Don't colorize the command output.
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Force colorization of the command output.
    #[arg(long, global = true)]
    pub force_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// `--no-color` / `--force-color`.
    pub fn color(&self) -> ColorChoice {
        match (self.no_color, self.force_color) {
            (true, _) => ColorChoice::Never,
            (false, true) => ColorChoice::Always,
            (false, false) => ColorChoice::Auto,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Starts the web and WebSocket server (default 127.0.0.1:8000).
    Runserver(RunserverArgs),
    /// Creates Django's schema in an empty database; does nothing on a migrated one.
    Migrate(MigrateArgs),
    /// Used to create a superuser.
    Createsuperuser(CreatesuperuserArgs),
    /// Change a user's password for django.contrib.auth.
    Changepassword(ChangepasswordArgs),
    /// Checks the configuration, the database and Redis for potential problems.
    Check(CheckArgs),
    /// Can be run as a cronjob or directly to clean out expired sessions.
    Clearsessions(ClearsessionsArgs),
    /// Shows all available migrations for the current project.
    Showmigrations(ShowmigrationsArgs),
}

/// Runs a parsed command line. The caller prints a returned error with [`print_error`] and
/// exits with its [`CommandError::exit_code`].
pub fn run(cli: Cli) -> Result<(), CommandError> {
    if cli.no_color && cli.force_color {
        return Err(CommandError::new(
            "The --no-color and --force-color options can't be used together.",
        ));
    }
    let color = cli.color();
    let verbosity = cli.verbosity;
    // Every command reads the same settings; a bad value stops each of them the same way.
    let settings = Settings::from_env()?;
    let console = Console::terminal(color);
    match cli.command {
        Command::Runserver(args) => runserver::run(settings, args),
        Command::Migrate(args) => managed(console, async |c| {
            migrate::run(&settings, &args, verbosity, c).await
        }),
        Command::Check(args) => managed(console, async |c| {
            check::run(&settings, &args, verbosity, c).await
        }),
        Command::Createsuperuser(args) => managed(console, async |c| {
            run_createsuperuser(&settings, &args, verbosity, c).await
        }),
        Command::Changepassword(args) => managed(console, async |c| {
            run_changepassword(&settings, &args, c).await
        }),
        Command::Clearsessions(_) => managed(console, async |_| {
            clearsessions::run(&settings, verbosity).await
        }),
        Command::Showmigrations(args) => managed(console, async |c| {
            showmigrations::run(&settings, &args, c).await
        }),
    }
}

/// Runs a management command on a current-thread runtime (database calls and prompts share
/// one event loop; nothing here needs more).
fn managed(
    mut console: Console,
    command: impl AsyncFnOnce(&mut Console) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::new(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(command(&mut console));
    // A prompt's reader thread may still wait on stdin after Ctrl-C; don't wait for it.
    runtime.shutdown_background();
    result
}

/// Writes a failed command's message to stderr as `manage.py` does.
pub fn print_error(error: &CommandError, color: ColorChoice) {
    Console::terminal(color).report(error);
}

async fn run_createsuperuser(
    settings: &Settings,
    args: &CreatesuperuserArgs,
    verbosity: u8,
    console: &mut Console,
) -> Result<(), CommandError> {
    check_database_alias(&args.database)?;
    let env = if args.noinput {
        SuperuserEnv::from_env()?
    } else {
        SuperuserEnv::default()
    };
    let system_user = system_user::system_username();
    let stdin_is_tty = std::io::stdin().is_terminal();
    let db = connect(settings).await?;
    let result = async {
        check_migrations(&db, console).await?;
        let system_user = system_user.as_deref();
        if args.noinput || !stdin_is_tty {
            // No questions: Ctrl-C keeps its default meaning.
            let cx = createsuperuser::Context {
                db: &db,
                console,
                prompter: &mut prompt::NoPrompts,
                env: &env,
                system_user,
                stdin_is_tty,
                verbosity,
            };
            createsuperuser::run(args, cx).await
        } else {
            let mut terminal = Terminal::new()?;
            let cx = createsuperuser::Context {
                db: &db,
                console,
                prompter: &mut terminal,
                env: &env,
                system_user,
                stdin_is_tty,
                verbosity,
            };
            createsuperuser::run(args, cx).await
        }
    }
    .await;
    db.close().await;
    result
}

async fn run_changepassword(
    settings: &Settings,
    args: &ChangepasswordArgs,
    console: &mut Console,
) -> Result<(), CommandError> {
    check_database_alias(&args.database)?;
    let system_user = system_user::system_username();
    let db = connect(settings).await?;
    let result = async {
        check_migrations(&db, console).await?;
        let mut terminal = Terminal::new()?;
        changepassword::run(args, &db, console, &mut terminal, system_user.as_deref()).await
    }
    .await;
    db.close().await;
    result
}

/// `--database`: Django's `ConnectionDoesNotExist` for any alias but "default".
fn check_database_alias(alias: &str) -> Result<(), CommandError> {
    if alias == "default" {
        Ok(())
    } else {
        Err(CommandError::new(format!(
            "The connection '{alias}' doesn't exist."
        )))
    }
}

/// Opens the database (`Db::connect` gives up within seconds on an unreachable server).
async fn connect(settings: &Settings) -> Result<Db, CommandError> {
    Db::connect_with(&settings.database_url, &settings.database)
        .await
        .map_err(|e| CommandError::new(e.to_string()))
}

/// `BaseCommand.check_migrations` (commands with `requires_migrations_checks`): a notice when
/// migrations are unapplied. An empty database has no `auth_user` at all, so it stops here
/// (Django would go on and fail with "no such table").
async fn check_migrations(db: &Db, console: &mut Console) -> Result<(), CommandError> {
    let state = schema::schema_state(db)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?;
    let unapplied: Vec<String> = match &state {
        SchemaState::UpToDate | SchemaState::Unknown(_) => return Ok(()),
        SchemaState::Missing(missing) => missing.clone(),
        SchemaState::Empty | SchemaState::NoMigrationTable => {
            schema::MIGRATIONS.iter().map(ToString::to_string).collect()
        }
    };
    let mut apps: Vec<&str> = unapplied
        .iter()
        .filter_map(|m| m.split_once('.').map(|(app, _)| app))
        .collect();
    apps.sort_unstable();
    apps.dedup();
    let style = console.out_style;
    console.out(&style.paint(
        Role::Notice,
        &format!(
            "\nYou have {} unapplied migration(s). Your project may not work properly until \
             you apply the migrations for app(s): {}.",
            unapplied.len(),
            apps.join(", ")
        ),
    ));
    console.out(&style.paint(Role::Notice, "Run 'ferrochat migrate' to apply them."));
    if state == SchemaState::Empty {
        return Err(CommandError::new(state.describe()));
    }
    Ok(())
}

/// `make_password` off the event loop (720 000 PBKDF2 iterations).
async fn hash_password(password: Password) -> Result<String, CommandError> {
    tokio::task::spawn_blocking(move || crate::django::hashers::make_password(password.expose()))
        .await
        .map_err(|e| CommandError::new(format!("password hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn django_flags_parse() {
        let cli = Cli::try_parse_from([
            "ferrochat",
            "createsuperuser",
            "--no-input",
            "--username",
            "admin",
            "--email=",
            "-v",
            "0",
        ])
        .expect("parse");
        assert_eq!(cli.verbosity, 0);
        let Command::Createsuperuser(args) = cli.command else {
            panic!("createsuperuser expected");
        };
        assert!(args.noinput);
        assert_eq!(args.username.as_deref(), Some("admin"));
        assert_eq!(args.email.as_deref(), Some(""));
        assert_eq!(args.database, "default");

        let cli = Cli::try_parse_from([
            "ferrochat",
            "-v",
            "2",
            "runserver",
            "0.0.0.0:8000",
            "--noreload",
        ])
        .expect("parse");
        assert_eq!(cli.verbosity, 2);
        assert!(Cli::try_parse_from(["ferrochat", "migrate", "-v", "4"]).is_err());
        assert!(Cli::try_parse_from(["ferrochat", "migrate", "--noinput"]).is_ok());
        assert!(Cli::try_parse_from(["ferrochat", "check", "--fail-level", "WARNING"]).is_ok());
        assert!(Cli::try_parse_from(["ferrochat", "changepassword", "admin"]).is_ok());
    }
}
