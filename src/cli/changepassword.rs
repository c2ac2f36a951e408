//! `ferrochat changepassword [USERNAME]`, flow and texts of
//! `django/contrib/auth/management/commands/changepassword.py` (Django 5.0.1).
//!
//! Storing the new hash is all it takes to log the user out elsewhere: every session carries
//! `_auth_user_hash`, an HMAC of the password hash, which no longer matches.

use clap::Args;

use super::console::Console;
use super::prompt::Prompter;
use super::{CommandError, hash_password};
use crate::db::Db;
use crate::django::validators::{UserAttributes, validate_password};
use crate::secret::Password;

/// `MAX_TRIES`.
const MAX_TRIES: u32 = 3;

#[derive(Debug, Clone, Args)]
pub struct ChangepasswordArgs {
    /// Username to change password for; by default, it's the current username.
    pub username: Option<String>,
    /// Specifies the database to use. Default is "default".
    #[arg(long, default_value = "default")]
    pub database: String,
}

/// `Command.handle`. `system_user` is `getpass.getuser()`.
pub(crate) async fn run<P: Prompter>(
    args: &ChangepasswordArgs,
    db: &Db,
    console: &mut Console,
    prompter: &mut P,
    system_user: Option<&str>,
) -> Result<(), CommandError> {
    let username = match args.username.as_deref().filter(|u| !u.is_empty()) {
        Some(username) => username.to_owned(),
        None => system_user.map(str::to_owned).ok_or_else(|| {
            CommandError::new(
                "cannot tell who the current system user is; give the USERNAME to change",
            )
        })?,
    };
    let user = db
        .user_by_username(&username)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?
        .ok_or_else(|| CommandError::new(format!("user '{username}' does not exist")))?;

    console.out(&format!("Changing password for user '{}'", user.username));
    let attributes = UserAttributes {
        username: &user.username,
        first_name: &user.first_name,
        last_name: &user.last_name,
        email: &user.email,
    };
    let mut count = 0;
    let mut accepted = None;
    while accepted.is_none() && count < MAX_TRIES {
        let p1 = get_pass(prompter, "Password: ").await?;
        let p2 = get_pass(prompter, "Password (again): ").await?;
        if p1 != p2 {
            console.out("Passwords do not match. Please try again.");
            count += 1;
            // Don't validate passwords that don't match.
            continue;
        }
        let errors = validate_password(&p2, &attributes);
        if errors.is_empty() {
            accepted = Some(p1);
        } else {
            console.err(&errors.join("\n"));
            count += 1;
        }
    }
    let Some(password) = accepted else {
        return Err(CommandError::new(format!(
            "Aborting password change for user '{}' after {count} attempts",
            user.username
        )));
    };

    let encoded = hash_password(Password::new(password)).await?;
    if prompter.interrupted() {
        return Err(CommandError::Cancelled {
            at_line_start: false,
        });
    }
    db.set_password(user.id, &encoded)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?;
    console.out(&format!(
        "Password changed successfully for user '{}'",
        user.username
    ));
    Ok(())
}

/// `_get_pass`: an empty answer aborts.
async fn get_pass<P: Prompter>(prompter: &mut P, prompt: &str) -> Result<String, CommandError> {
    let password = prompter.getpass(prompt).await?;
    if password.is_empty() {
        return Err(CommandError::new("aborted"));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::prompt::scripted::Scripted;
    use crate::db::{DatabaseUrl, NewUser};
    use crate::django::hashers::{check_password, make_password};

    async fn db_with_admin() -> Db {
        let db = Db::connect(&DatabaseUrl::SqliteMemory)
            .await
            .expect("in-memory SQLite");
        crate::db::schema::migrate(&db).await.expect("migrate");
        db.create_user(NewUser {
            username: crate::django::validators::Username::parse("admin").expect("valid"),
            email: "admin@example.com".into(),
            password_hash: make_password("old-password-1"),
            is_staff: true,
            is_superuser: true,
        })
        .await
        .expect("admin");
        db
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

    async fn changepassword(
        db: &Db,
        username: Option<&str>,
        system_user: Option<&str>,
        mut prompter: Scripted,
    ) -> (Result<(), CommandError>, String, String, Vec<String>) {
        let (mut console, out, err) = Console::captured();
        let args = ChangepasswordArgs {
            username: username.map(str::to_owned),
            database: "default".into(),
        };
        let result = run(&args, db, &mut console, &mut prompter, system_user).await;
        prompter.assert_done();
        (result, out.text(), err.text(), prompter.prompts)
    }

    #[tokio::test]
    async fn session_matches_the_vector() {
        let v = vectors();
        let session = &v["changepassword_session"];
        let db = db_with_admin().await;
        let answers = Scripted::default()
            .getpass("a")
            .getpass("b")
            .getpass("short")
            .getpass("short")
            .getpass("a-Strong-pass-43")
            .getpass("a-Strong-pass-43");
        let (result, out, err, prompts) = changepassword(&db, None, Some("admin"), answers).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(out, session["stdout"]);
        assert_eq!(err, session["stderr"]);
        let expected: Vec<String> =
            serde_json::from_value(session["prompts_in_order"].clone()).expect("prompts");
        assert_eq!(prompts, expected);
        let admin = db
            .user_by_username("admin")
            .await
            .expect("query")
            .expect("admin");
        assert!(check_password("a-Strong-pass-43", &admin.password));
        db.close().await;
    }

    #[tokio::test]
    async fn three_mismatches_unknown_user_and_empty_password() {
        let v = vectors();
        let db = db_with_admin().await;
        let mut answers = Scripted::default();
        for _ in 0..3 {
            answers = answers.getpass("a").getpass("b");
        }
        let (result, out, _, _) = changepassword(&db, Some("admin"), None, answers).await;
        let abort = &v["changepassword_three_mismatches"];
        assert_eq!(out, abort["stdout"]);
        assert!(
            matches!(&result, Err(CommandError::Command(m)) if *m == abort["CommandError"]),
            "{result:?}"
        );

        let (result, _, _, _) =
            changepassword(&db, Some("nosuchuser"), None, Scripted::default()).await;
        assert!(
            matches!(&result, Err(CommandError::Command(m)) if *m == v["changepassword_unknown_user"]["CommandError"]),
            "{result:?}"
        );

        let (result, _, _, _) =
            changepassword(&db, Some("admin"), None, Scripted::default().getpass("")).await;
        assert!(matches!(&result, Err(CommandError::Command(m)) if m == "aborted"));

        // Nothing changed.
        let admin = db
            .user_by_username("admin")
            .await
            .expect("query")
            .expect("admin");
        assert!(check_password("old-password-1", &admin.password));
        db.close().await;
    }
}
