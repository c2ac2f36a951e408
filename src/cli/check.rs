//! `ferrochat check`: what the deployment depends on, reported as Django's system-check
//! framework reports (`django/core/management/base.py BaseCommand.check`): issues grouped by
//! level, `"?: (id) message"` with an optional `HINT`, and the closing count. Errors (or
//! anything at `--fail-level` and above) make it a `SystemCheckError`, exit 1.
//!
//! Django's `check` looks only at code and settings; ours also reaches the services, because
//! that is what an operator needs to know before `runserver`: the database (and its schema)
//! and, depending on `CHANNEL_LAYER`, Redis.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CommandError;
use super::console::{Console, Role};
use crate::config::Settings;
use crate::db::Db;
use crate::db::schema::{self, SchemaState};
use crate::db::url::DatabaseUrl;
use crate::django::deploy_checks::{DeploySettings, deploy_warnings};
use crate::layer::ChannelLayerChoice;

/// Upper bound for each service probe (connection plus the first query), so an unreachable
/// host fails the check in seconds instead of hanging.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// `django.core.checks` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Level {
    Debug = 10,
    Info = 20,
    Warning = 30,
    Error = 40,
    Critical = 50,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Message level that will cause the command to exit with a non-zero status. Default is
    /// ERROR.
    #[arg(long, value_enum, default_value = "ERROR", ignore_case = true)]
    pub fail_level: Level,
    /// Check deployment settings too: Django's security warnings (DEBUG, SECRET_KEY, secure
    /// cookies).
    #[arg(long)]
    pub deploy: bool,
    /// Run database related checks against these aliases (only "default" exists).
    #[arg(long = "database")]
    pub databases: Vec<String>,
}

/// One `CheckMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub level: Level,
    pub id: &'static str,
    pub msg: String,
    pub hint: Option<String>,
}

impl Issue {
    fn new(level: Level, id: &'static str, msg: impl Into<String>, hint: Option<&str>) -> Issue {
        Issue {
            level,
            id,
            msg: msg.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

/// `CheckMessage.__str__` for a message without an object.
impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "?: ({}) {}", self.id, self.msg)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n\tHINT: {hint}")?;
        }
        Ok(())
    }
}

pub(crate) async fn run(
    settings: &Settings,
    args: &CheckArgs,
    verbosity: u8,
    console: &mut Console,
) -> Result<(), CommandError> {
    for alias in &args.databases {
        super::check_database_alias(alias)?;
    }
    let mut report = |line: String| {
        if verbosity >= 1 {
            console.out(&line);
        }
    };
    let mut issues = Vec::new();
    config_checks(settings, args.deploy, &mut issues, &mut report);
    database_checks(settings, &mut issues, &mut report).await;
    redis_checks(settings, &mut issues, &mut report).await;
    finish(&issues, args.fail_level, console)
}

/// What the settings say, and the insecure defaults.
fn config_checks(
    settings: &Settings,
    deploy: bool,
    issues: &mut Vec<Issue>,
    report: &mut impl FnMut(String),
) {
    report(match &settings.database_url {
        // Spelled out: a SQLite URL's slashes (relative or absolute) are easy to misread.
        DatabaseUrl::Sqlite { path } => format!("DATABASE_URL: SQLite file {}", path.display()),
        DatabaseUrl::SqliteMemory => "DATABASE_URL: SQLite in memory".to_owned(),
        url => format!("DATABASE_URL: {} ({})", url.redacted(), url.vendor()),
    });
    if settings.secret_key_is_default {
        // The warning itself is `check --deploy`'s security.W009, as in Django.
        report(
            "DJANGO_SECRET_KEY: NOT SET: the legacy app's insecure development key is in use"
                .to_owned(),
        );
    } else {
        report(format!(
            "DJANGO_SECRET_KEY: set ({} fallback key(s))",
            settings.secret_key_fallbacks.len()
        ));
    }
    report(format!(
        "DJANGO_DEBUG: {}",
        if settings.debug { "on" } else { "off" }
    ));
    report(format!(
        "DJANGO_ALLOWED_HOSTS: {}",
        settings.allowed_hosts.join(", ")
    ));
    if !settings.debug && settings.allowed_hosts.is_empty() {
        issues.push(Issue::new(
            Level::Error,
            "ferrochat.E004",
            "DJANGO_ALLOWED_HOSTS is empty while DJANGO_DEBUG is off: every request would be \
             refused.",
            Some("Set DJANGO_ALLOWED_HOSTS to the host names the site is served under."),
        ));
    }
    if deploy {
        let tls = &settings.ops.tls_proxy;
        let checked = DeploySettings {
            debug: settings.debug,
            secret_key: &settings.secret_key,
            secret_key_fallbacks: &settings.secret_key_fallbacks,
            session_cookie_secure: tls.session_cookie_secure,
            csrf_cookie_secure: tls.csrf_cookie_secure,
        };
        issues.extend(
            deploy_warnings(&checked)
                .into_iter()
                .map(|w| Issue::new(Level::Warning, w.id, w.msg, None)),
        );
    }
    let layer = match settings.channel_layer {
        ChannelLayerChoice::Auto => "auto (Redis if it answers, else in-process)",
        ChannelLayerChoice::Memory => "memory (in-process, single node)",
        ChannelLayerChoice::Redis => "redis (required)",
    };
    report(format!("CHANNEL_LAYER: {layer}"));
}

/// Reachability and schema state. A SQLite file that does not exist yet is not created here.
async fn database_checks(
    settings: &Settings,
    issues: &mut Vec<Issue>,
    report: &mut impl FnMut(String),
) {
    let url = &settings.database_url;
    if let DatabaseUrl::Sqlite { path } = url
        && !path.exists()
    {
        report("Database: the SQLite file does not exist yet".to_owned());
        issues.push(Issue::new(
            Level::Warning,
            "ferrochat.W002",
            format!("The SQLite database {} does not exist yet.", path.display()),
            Some("`ferrochat migrate` (or `ferrochat runserver`) creates it."),
        ));
        return;
    }
    let probe = async {
        let db = Db::connect_with(url, &settings.database).await?;
        let state = schema::schema_state(&db).await;
        db.close().await;
        state
    };
    // Longer than the connection's own timeout, so the driver's reason is what gets reported.
    let connect_timeout = settings
        .database
        .connect_timeout
        .unwrap_or(crate::db::CONNECT_TIMEOUT);
    let probe_timeout = PROBE_TIMEOUT.max(connect_timeout + Duration::from_secs(3));
    let state = match tokio::time::timeout(probe_timeout, probe).await {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => {
            report("Database: UNREACHABLE".to_owned());
            issues.push(Issue::new(
                Level::Error,
                "ferrochat.E001",
                e.to_string(),
                Some("Check DATABASE_URL and that the database server is running."),
            ));
            return;
        }
        Err(_) => {
            report("Database: UNREACHABLE".to_owned());
            issues.push(Issue::new(
                Level::Error,
                "ferrochat.E001",
                format!(
                    "The database {} did not answer within {} s.",
                    url.redacted(),
                    probe_timeout.as_secs()
                ),
                Some("Check DATABASE_URL and that the database server is running."),
            ));
            return;
        }
    };
    report("Database: reachable".to_owned());
    report(format!("Schema: {}", state.describe()));
    let is_sqlite = matches!(url, DatabaseUrl::Sqlite { .. } | DatabaseUrl::SqliteMemory);
    match state {
        SchemaState::UpToDate => {}
        SchemaState::Empty if is_sqlite => issues.push(Issue::new(
            Level::Warning,
            "ferrochat.W003",
            "The database is empty.",
            Some(
                "`ferrochat runserver` creates the schema in an empty SQLite database; \
                 `ferrochat migrate` does it explicitly.",
            ),
        )),
        SchemaState::Empty => issues.push(Issue::new(
            Level::Error,
            "ferrochat.E002",
            "The database is empty.",
            Some("Run `ferrochat migrate` to create the schema."),
        )),
        other => issues.push(Issue::new(
            Level::Error,
            "ferrochat.E002",
            format!(
                "The schema is not the one ferrochat serves: {}",
                other.describe()
            ),
            None,
        )),
    }
}

/// Redis, as `CHANNEL_LAYER` needs it: every host of the channels_redis configuration
/// (`FERROCHAT_REDIS_HOSTS`, else `REDIS_URL`), and the layer settings the Django side must match.
async fn redis_checks(
    settings: &Settings,
    issues: &mut Vec<Issue>,
    report: &mut impl FnMut(String),
) {
    if settings.channel_layer == ChannelLayerChoice::Memory {
        report("Redis: not checked (CHANNEL_LAYER=memory)".to_owned());
        return;
    }
    let config = &settings.channels_redis;
    report(format!(
        "Channel layer: channels_redis, prefix {:?}, capacity {}, expiry {} s, group expiry {} s, \
         encryption {}",
        config.prefix,
        config.capacity,
        config.expiry,
        config.group_expiry,
        match config.symmetric_encryption_keys.len() {
            0 => "off".to_owned(),
            n => format!("on ({n} key(s))"),
        }
    ));
    report(match &settings.node_id {
        Some(node) => format!("FERROCHAT_NODE_ID: {node}"),
        None => "FERROCHAT_NODE_ID: not set (runserver derives it from the host name and its \
                 address)"
            .to_owned(),
    });
    let mut failures = Vec::new();
    for (index, url) in config.hosts.iter().enumerate() {
        let shown = config.redacted_host(index);
        let ping = crate::layer::ping_host(url, config.sentinel_password.as_deref());
        let pinged = tokio::time::timeout(PROBE_TIMEOUT, ping).await;
        let failure = match pinged {
            Ok(Ok(None)) => {
                report(format!("Redis host #{index}: reachable at {shown}"));
                continue;
            }
            Ok(Ok(Some(master))) => {
                report(format!(
                    "Redis host #{index}: reachable at master {master} (named by the sentinels \
                     of {shown})"
                ));
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "Redis at {shown} did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
        };
        report(format!("Redis host #{index}: UNREACHABLE at {shown}"));
        failures.push(failure);
    }
    if failures.is_empty() {
        return;
    }
    let failure = failures.join("; ");
    if settings.channel_layer == ChannelLayerChoice::Redis {
        issues.push(Issue::new(
            Level::Error,
            "ferrochat.E003",
            format!("{failure}, and CHANNEL_LAYER=redis requires it."),
            Some(
                "Start Redis or fix REDIS_URL (or FERROCHAT_REDIS_HOSTS); until it answers, \
                 runserver keeps retrying and serves only its own sockets. CHANNEL_LAYER=memory \
                 serves a single node.",
            ),
        ));
    } else {
        issues.push(Issue::new(
            Level::Warning,
            "ferrochat.W005",
            format!(
                "{failure}: runserver would use the in-process channel layer, so this node \
                 would not exchange messages with other nodes (Daphne or ferrochat)."
            ),
            Some(
                "Start Redis or fix REDIS_URL (or FERROCHAT_REDIS_HOSTS); set CHANNEL_LAYER=memory \
                 to choose a single node explicitly.",
            ),
        ));
    }
}

/// `BaseCommand.check(display_num_errors=True, fail_level=…)`'s output and outcome.
fn finish(issues: &[Issue], fail_level: Level, console: &mut Console) -> Result<(), CommandError> {
    let text = format_issues(issues, fail_level, console.err_style);
    match text {
        Outcome::Clean(footer) => {
            console.out(&footer);
            Ok(())
        }
        Outcome::Issues(text) => {
            console.err_plain(&text);
            Ok(())
        }
        Outcome::Failed(text) => Err(CommandError::SystemCheck(text)),
    }
}

/// What `check` ends with.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// No issue: the footer, on stdout.
    Clean(String),
    /// Issues below the fail level: the report on stderr, exit 0.
    Issues(String),
    /// A `SystemCheckError`.
    Failed(String),
}

fn format_issues(issues: &[Issue], fail_level: Level, style: super::console::Style) -> Outcome {
    let groups = [
        (Level::Critical, "CRITICALS"),
        (Level::Error, "ERRORS"),
        (Level::Warning, "WARNINGS"),
        (Level::Info, "INFOS"),
        (Level::Debug, "DEBUGS"),
    ];
    let mut body = String::new();
    for (level, name) in groups {
        let mut lines: Vec<String> = issues
            .iter()
            .filter(|i| i.level == level)
            .map(|i| {
                // `e.is_serious()` (ERROR and above) in the ERROR style, the rest as WARNING.
                let role = if i.level >= Level::Error {
                    Role::Error
                } else {
                    Role::Warning
                };
                style.paint(role, &i.to_string())
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        body.push_str(&format!("\n{name}:\n{}\n", lines.join("\n")));
    }
    let count = match issues.len() {
        0 => "no issues".to_owned(),
        1 => "1 issue".to_owned(),
        n => format!("{n} issues"),
    };
    let footer = format!("System check identified {count} (0 silenced).");
    if issues.is_empty() {
        return Outcome::Clean(footer);
    }
    let header = "System check identified some issues:\n";
    if issues.iter().any(|i| i.level >= fail_level) {
        let head = style.paint(Role::Error, &format!("SystemCheckError: {header}"));
        Outcome::Failed(format!("{head}{body}\n{footer}"))
    } else {
        Outcome::Issues(format!("{header}{body}\n{footer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::console::Style;

    #[test]
    fn formats_like_django() {
        let plain = Style::default();
        assert_eq!(
            format_issues(&[], Level::Error, plain),
            Outcome::Clean("System check identified no issues (0 silenced).".into())
        );
        let warning = Issue::new(Level::Warning, "ferrochat.W001", "Key.", Some("Set it."));
        let error = Issue::new(Level::Error, "ferrochat.E001", "Down.", None);
        assert_eq!(
            format_issues(std::slice::from_ref(&warning), Level::Error, plain),
            Outcome::Issues(
                "System check identified some issues:\n\nWARNINGS:\n?: (ferrochat.W001) Key.\n\
                 \tHINT: Set it.\n\nSystem check identified 1 issue (0 silenced)."
                    .into()
            )
        );
        assert_eq!(
            format_issues(&[warning.clone(), error], Level::Error, plain),
            Outcome::Failed(
                "SystemCheckError: System check identified some issues:\n\nERRORS:\n\
                 ?: (ferrochat.E001) Down.\n\nWARNINGS:\n?: (ferrochat.W001) Key.\n\
                 \tHINT: Set it.\n\nSystem check identified 2 issues (0 silenced)."
                    .into()
            )
        );
        assert!(matches!(
            format_issues(&[warning], Level::Warning, plain),
            Outcome::Failed(_)
        ));
    }
}
