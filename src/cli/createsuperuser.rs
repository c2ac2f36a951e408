//! `ferrochat createsuperuser`, flow and texts of
//! `django/contrib/auth/management/commands/createsuperuser.py` (Django 5.0.1) for the default
//! `auth.User` (`USERNAME_FIELD = "username"`, `REQUIRED_FIELDS = ["email"]`).

use clap::Args;

use super::console::Console;
use super::prompt::Prompter;
use super::system_user::default_username_candidate;
use super::{CommandError, hash_password};
use crate::db::{Db, DbError, NewUser};
use crate::django::email::{clean_email_field, normalize_email};
use crate::django::hashers::make_unusable_password;
use crate::django::pyunicode;
use crate::django::validators::{UserAttributes, Username, validate_password};
use crate::secret::Password;

/// `_validate_username`'s message for a taken name (`verbose_name` is "username").
const USERNAME_TAKEN: &str = "Error: That username is already taken.";

#[derive(Debug, Clone, Args)]
pub struct CreatesuperuserArgs {
    /// Specifies the login for the superuser.
    #[arg(long)]
    pub username: Option<String>,
    /// Specifies the email for the superuser.
    #[arg(long)]
    pub email: Option<String>,
    /// Tells ferrochat to NOT prompt the user for input of any kind. You must use --username
    /// with --noinput, along with an option for any other required field. Superusers created
    /// with --noinput will not be able to log in until they're given a valid password.
    #[arg(long = "noinput", visible_alias = "no-input")]
    pub noinput: bool,
    /// Specifies the database to use. Default is "default".
    #[arg(long, default_value = "default")]
    pub database: String,
}

/// `DJANGO_SUPERUSER_USERNAME`, `_EMAIL` and `_PASSWORD` (read with `--noinput` only).
#[derive(Debug, Clone, Default)]
pub struct SuperuserEnv {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<Password>,
}

impl SuperuserEnv {
    pub fn from_env() -> Result<SuperuserEnv, CommandError> {
        let var = |name: &str| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(CommandError::new(format!("{name} is not valid UTF-8")))
            }
        };
        Ok(SuperuserEnv {
            username: var("DJANGO_SUPERUSER_USERNAME")?,
            email: var("DJANGO_SUPERUSER_EMAIL")?,
            password: var("DJANGO_SUPERUSER_PASSWORD")?.map(Password::new),
        })
    }
}

/// Everything the command reads besides its arguments.
pub(crate) struct Context<'a, P> {
    pub db: &'a Db,
    pub console: &'a mut Console,
    pub prompter: &'a mut P,
    pub env: &'a SuperuserEnv,
    /// `getpass.getuser()`, if it has an answer.
    pub system_user: Option<&'a str>,
    /// `self.stdin.isatty()`.
    pub stdin_is_tty: bool,
    pub verbosity: u8,
}

/// What `create_superuser(**user_data)` receives; `password: None` makes it unusable.
struct UserData {
    username: String,
    email: String,
    password: Option<Password>,
}

/// `Command.handle`.
pub(crate) async fn run<P: Prompter>(
    args: &CreatesuperuserArgs,
    cx: Context<'_, P>,
) -> Result<(), CommandError> {
    let data = if args.noinput {
        non_interactive(args, &cx).await?
    } else {
        if !cx.stdin_is_tty {
            // NotRunningInTTYException.
            cx.console.out(
                "Superuser creation skipped due to not running in a TTY. You can run \
                 `ferrochat createsuperuser` in your project to create one manually.",
            );
            return Ok(());
        }
        interactive(args, cx.db, cx.console, cx.prompter, cx.system_user).await?
    };
    let username =
        Username::parse_model(&data.username).map_err(|e| CommandError::new(e.to_string()))?;
    let password_hash = match data.password {
        Some(password) => hash_password(password).await?,
        None => make_unusable_password(),
    };
    // A Ctrl-C while hashing is still a KeyboardInterrupt in Django: nothing is written.
    if cx.prompter.interrupted() {
        return Err(CommandError::Cancelled {
            at_line_start: false,
        });
    }
    let created = cx
        .db
        .create_user(NewUser {
            username,
            email: normalize_email(&data.email),
            password_hash,
            is_staff: true,
            is_superuser: true,
        })
        .await;
    match created {
        Ok(_) => {}
        // Taken between the check and the insert (or by its NFKC form): Django would show an
        // IntegrityError; the message of the check is clearer.
        Err(DbError::UsernameTaken) => return Err(CommandError::new(USERNAME_TAKEN)),
        Err(e) => return Err(CommandError::new(e.to_string())),
    }
    if cx.verbosity >= 1 {
        cx.console.out("Superuser created successfully.");
    }
    Ok(())
}

/// The `--noinput` branch: arguments, then `DJANGO_SUPERUSER_*`; validators are not run on the
/// password, and without `DJANGO_SUPERUSER_PASSWORD` the password is unusable.
async fn non_interactive<P>(
    args: &CreatesuperuserArgs,
    cx: &Context<'_, P>,
) -> Result<UserData, CommandError> {
    let password = cx.env.password.clone();
    let Some(username) = args.username.clone().or_else(|| cx.env.username.clone()) else {
        return Err(CommandError::new("You must use --username with --noinput."));
    };
    if let Some(message) = validate_username(cx.db, &username).await? {
        return Err(CommandError::new(message));
    }
    // `options["email"] or os.environ.get("DJANGO_SUPERUSER_EMAIL")`; a blank field given as ""
    // (either way) is allowed.
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let email = match non_empty(&args.email).or_else(|| non_empty(&cx.env.email)) {
        Some(value) => clean_email(&value)?,
        None if args.email.as_deref() == Some("") || cx.env.email.as_deref() == Some("") => {
            String::new()
        }
        None => return Err(CommandError::new("You must use --email with --noinput.")),
    };
    Ok(UserData {
        username,
        email,
        password,
    })
}

/// The interactive branch: username (with the system user as default), email, then the
/// password twice, validated, with the bypass question.
async fn interactive<P: Prompter>(
    args: &CreatesuperuserArgs,
    db: &Db,
    console: &mut Console,
    prompter: &mut P,
    system_user: Option<&str>,
) -> Result<UserData, CommandError> {
    let default_username = default_username(db, system_user).await?;
    let mut username = args.username.clone();
    match username.as_deref() {
        Some("") => return Err(CommandError::new("Username cannot be blank.")),
        Some(given) => {
            if let Some(message) = validate_username(db, given).await? {
                console.err(&message);
                username = None;
            }
        }
        None => {}
    }
    let message = if default_username.is_empty() {
        "Username: ".to_owned()
    } else {
        format!("Username (leave blank to use '{default_username}'): ")
    };
    let username = match username {
        Some(username) => username,
        None => loop {
            // get_input_data: the default for an empty answer, then `field.clean`.
            let mut raw = prompter.input(&message).await?;
            if !default_username.is_empty() && raw.is_empty() {
                raw.clone_from(&default_username);
            }
            if let Err(e) = Username::parse_model(&raw) {
                console.err(&format!("Error: {e}"));
                continue;
            }
            if let Some(message) = validate_username(db, &raw).await? {
                console.err(&message);
                continue;
            }
            break raw;
        },
    };

    let email = match &args.email {
        // A value from the command line is cleaned once; a bad one ends the command.
        Some(value) => clean_email(value)?,
        None => loop {
            let raw = prompter.input("Email address: ").await?;
            match clean_email_field(&raw) {
                Ok(email) => break email,
                Err(messages) => console.err(&format!("Error: {}", messages.join("; "))),
            }
        },
    };

    let password = loop {
        let password = prompter.getpass("Password: ").await?;
        let password2 = prompter.getpass("Password (again): ").await?;
        if password != password2 {
            console.err("Error: Your passwords didn't match.");
            continue;
        }
        if pyunicode::strip(&password).is_empty() {
            console.err("Error: Blank passwords aren't allowed.");
            continue;
        }
        // validate_password(password2, User(username=…, email=…)).
        let user = UserAttributes {
            username: &username,
            email: &email,
            ..UserAttributes::default()
        };
        let errors = validate_password(&password2, &user);
        if !errors.is_empty() {
            console.err(&errors.join("\n"));
            let response = prompter
                .input("Bypass password validation and create user anyway? [y/N]: ")
                .await?;
            if response.to_lowercase() != "y" {
                continue;
            }
        }
        break password;
    };
    Ok(UserData {
        username,
        email,
        password: Some(Password::new(password)),
    })
}

/// `_validate_username`: taken (exact lookup, as `get_by_natural_key`), blank, or the model
/// field's validators; `None` when the name can be used.
async fn validate_username(db: &Db, username: &str) -> Result<Option<String>, CommandError> {
    let existing = db
        .user_by_username(username)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?;
    if existing.is_some() {
        return Ok(Some(USERNAME_TAKEN.to_owned()));
    }
    if username.is_empty() {
        return Ok(Some("Username cannot be blank.".to_owned()));
    }
    Ok(Username::parse_model(username).err().map(|e| e.to_string()))
}

/// `get_default_username(database=…)`: the folded system user name, unless it is invalid or
/// already taken.
async fn default_username(db: &Db, system_user: Option<&str>) -> Result<String, CommandError> {
    let candidate = default_username_candidate(system_user.unwrap_or_default());
    if candidate.is_empty() {
        return Ok(candidate);
    }
    let taken = db
        .user_by_username(&candidate)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?
        .is_some();
    Ok(if taken { String::new() } else { candidate })
}

/// A value given on the command line or in the environment: `field.clean`, whose
/// `ValidationError` becomes `CommandError("; ".join(messages))`.
fn clean_email(value: &str) -> Result<String, CommandError> {
    clean_email_field(value).map_err(|messages| CommandError::new(messages.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::prompt::scripted::Scripted;
    use crate::db::DatabaseUrl;
    use crate::django::hashers::{check_password, is_password_usable};

    async fn migrated_db() -> Db {
        let db = Db::connect(&DatabaseUrl::SqliteMemory)
            .await
            .expect("in-memory SQLite");
        crate::db::schema::migrate(&db).await.expect("migrate");
        db
    }

    struct Outcome {
        result: Result<(), CommandError>,
        stdout: String,
        stderr: String,
        prompts: Vec<String>,
    }

    async fn createsuperuser(
        db: &Db,
        args: CreatesuperuserArgs,
        env: SuperuserEnv,
        system_user: Option<&str>,
        mut prompter: Scripted,
    ) -> Outcome {
        let (mut console, out, err) = Console::captured();
        let result = run(
            &args,
            Context {
                db,
                console: &mut console,
                prompter: &mut prompter,
                env: &env,
                system_user,
                stdin_is_tty: true,
                verbosity: 1,
            },
        )
        .await;
        prompter.assert_done();
        Outcome {
            result,
            stdout: out.text(),
            stderr: err.text(),
            prompts: prompter.prompts,
        }
    }

    fn noinput(username: Option<&str>, email: Option<&str>) -> CreatesuperuserArgs {
        CreatesuperuserArgs {
            username: username.map(str::to_owned),
            email: email.map(str::to_owned),
            noinput: true,
            database: "default".into(),
        }
    }

    fn interactive_args() -> CreatesuperuserArgs {
        CreatesuperuserArgs {
            username: None,
            email: None,
            noinput: false,
            database: "default".into(),
        }
    }

    fn vectors() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/django_vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("vectors file");
        let all: serde_json::Value = serde_json::from_str(&text).expect("vectors JSON");
        all["management_commands"].clone()
    }

    fn command_error(outcome: &Outcome) -> String {
        match &outcome.result {
            Err(CommandError::Command(message)) => message.clone(),
            other => panic!("expected a CommandError, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn noinput_errors_match_the_vectors() {
        let v = vectors();
        let db = migrated_db().await;
        let env = SuperuserEnv::default();
        let none = || Scripted::default();

        let o = createsuperuser(
            &db,
            noinput(None, Some("a@example.com")),
            env.clone(),
            None,
            none(),
        )
        .await;
        assert_eq!(
            command_error(&o),
            v["noinput_missing_username"]["CommandError"]
        );
        let o = createsuperuser(&db, noinput(Some("admin"), None), env.clone(), None, none()).await;
        assert_eq!(
            command_error(&o),
            v["noinput_missing_email"]["CommandError"]
        );
        let o = createsuperuser(
            &db,
            noinput(Some("a b"), Some("a@example.com")),
            env.clone(),
            None,
            none(),
        )
        .await;
        assert_eq!(
            command_error(&o),
            v["noinput_invalid_username"]["CommandError"]
        );
        let o = createsuperuser(
            &db,
            noinput(Some("x"), Some("a@b.c")),
            env.clone(),
            None,
            none(),
        )
        .await;
        assert_eq!(command_error(&o), "Enter a valid email address.");
        let o = createsuperuser(
            &db,
            noinput(Some(""), Some("a@example.com")),
            env.clone(),
            None,
            none(),
        )
        .await;
        assert_eq!(command_error(&o), "Username cannot be blank.");

        // Blank email given explicitly, no password: created, unusable password.
        let o = createsuperuser(
            &db,
            noinput(Some("admin"), Some("")),
            env.clone(),
            None,
            none(),
        )
        .await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert_eq!(o.stdout, v["noinput_blank_email_allowed"]["stdout"]);
        let admin = db
            .user_by_username("admin")
            .await
            .expect("query")
            .expect("admin");
        assert!(!is_password_usable(&admin.password));
        assert!(admin.is_superuser && admin.is_staff && admin.is_active);
        assert_eq!(admin.email, "");

        let o = createsuperuser(
            &db,
            noinput(Some("admin"), Some("a@example.com")),
            env,
            None,
            none(),
        )
        .await;
        assert_eq!(command_error(&o), v["noinput_duplicate"]["CommandError"]);
        db.close().await;
    }

    #[tokio::test]
    async fn noinput_reads_the_environment_and_skips_validators() {
        let db = migrated_db().await;
        let env = SuperuserEnv {
            username: Some("envadmin".into()),
            email: Some("Env@Example.COM".into()),
            password: Some(Password::new("123")),
        };
        let o = createsuperuser(&db, noinput(None, None), env, None, Scripted::default()).await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert_eq!(o.stdout, "Superuser created successfully.\n");
        assert_eq!(o.stderr, "");
        let user = db
            .user_by_username("envadmin")
            .await
            .expect("query")
            .expect("user");
        assert!(user.password.starts_with("pbkdf2_sha256$720000$"));
        assert!(check_password("123", &user.password));
        assert_eq!(user.email, "Env@example.com");
        db.close().await;
    }

    #[tokio::test]
    async fn interactive_session_matches_the_vector() {
        let v = vectors();
        let session = &v["interactive_session"];
        let db = migrated_db().await;
        db.create_user(NewUser {
            username: Username::parse("admin").expect("valid"),
            email: String::new(),
            password_hash: make_unusable_password(),
            is_staff: true,
            is_superuser: true,
        })
        .await
        .expect("admin");
        let answers = Scripted::default()
            .input("admin")
            .input("")
            .input("alice2@example.com")
            .getpass("x")
            .getpass("y")
            .getpass("   ")
            .getpass("   ")
            .getpass("alice")
            .getpass("alice")
            .input("n")
            .getpass("a-Strong-pass-42")
            .getpass("a-Strong-pass-42");
        let o = createsuperuser(
            &db,
            interactive_args(),
            SuperuserEnv::default(),
            Some("Carol"),
            answers,
        )
        .await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert_eq!(o.stdout, session["stdout"]);
        assert_eq!(o.stderr, session["stderr"]);
        let expected: Vec<String> =
            serde_json::from_value(session["prompts_in_order"].clone()).expect("prompts");
        assert_eq!(o.prompts, expected);
        let carol = db
            .user_by_username("carol")
            .await
            .expect("query")
            .expect("carol");
        assert!(check_password("a-Strong-pass-42", &carol.password));
        assert_eq!(carol.email, "alice2@example.com");
        db.close().await;
    }

    #[tokio::test]
    async fn interactive_bypass_bad_email_and_cancel() {
        let db = migrated_db().await;
        // Bad email is re-asked; the bypass answer "Y" keeps a weak password.
        let answers = Scripted::default()
            .input("bob")
            .input("bad")
            .input("")
            .getpass("bob")
            .getpass("bob")
            .input("Y");
        let o = createsuperuser(
            &db,
            interactive_args(),
            SuperuserEnv::default(),
            None,
            answers,
        )
        .await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert_eq!(o.prompts[0], "Username: ");
        assert_eq!(
            o.stderr,
            "Error: Enter a valid email address.\nThe password is too similar to the username.\n\
             This password is too short. It must contain at least 8 characters.\n\
             This password is too common.\n"
        );
        assert!(db.user_by_username("bob").await.expect("query").is_some());

        // The default is not offered when that user exists; Ctrl-C cancels without writing.
        let answers = Scripted::default().input("eve").input("").interrupt(true);
        let o = createsuperuser(
            &db,
            interactive_args(),
            SuperuserEnv::default(),
            Some("bob"),
            answers,
        )
        .await;
        assert!(matches!(
            o.result,
            Err(CommandError::Cancelled {
                at_line_start: true
            })
        ));
        assert_eq!(o.prompts[0], "Username: ");
        assert!(db.user_by_username("eve").await.expect("query").is_none());

        // A taken or invalid --username is reported, then asked for.
        let args = CreatesuperuserArgs {
            username: Some("bob".into()),
            email: Some("not-an-email".into()),
            ..interactive_args()
        };
        let answers = Scripted::default().input("b c").input("carl");
        let o = createsuperuser(&db, args, SuperuserEnv::default(), None, answers).await;
        assert_eq!(command_error(&o), "Enter a valid email address.");
        assert_eq!(
            o.stderr,
            "Error: That username is already taken.\nError: Enter a valid username. This value \
             may contain only letters, numbers, and @/./+/-/_ characters.\n"
        );
        db.close().await;
    }

    #[tokio::test]
    async fn not_a_tty_skips() {
        let v = vectors();
        let db = migrated_db().await;
        let (mut console, out, _) = Console::captured();
        let mut prompter = Scripted::default();
        let env = SuperuserEnv::default();
        let result = run(
            &interactive_args(),
            Context {
                db: &db,
                console: &mut console,
                prompter: &mut prompter,
                env: &env,
                system_user: None,
                stdin_is_tty: false,
                verbosity: 1,
            },
        )
        .await;
        assert!(result.is_ok());
        let expected = v["interactive_not_a_tty"]["stdout"]
            .as_str()
            .expect("stdout")
            .replace("manage.py", "ferrochat");
        assert_eq!(out.text(), expected);
        db.close().await;
    }
}
