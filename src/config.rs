//! Settings read once from the environment, with the legacy `settings.py` names and defaults
//! (COMPAT §1). A bad value is a startup error that names the variable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::db::DbOptions;
use crate::db::url::{DatabaseUrl, DatabaseUrlError};
use crate::django::settings::{env_bool, env_list};
use crate::layer::ChannelLayerChoice;
use crate::layer::channels_redis::{ChannelsRedisConfig, NodeId};
use crate::layer::live::LiveSettings;
use crate::ops::OpsSettings;

/// The legacy app's literal development key: keeping it as our default means cookies issued by a
/// default-configured Django keep working.
pub const DEFAULT_SECRET_KEY: &str =
    "django-insecure-dev-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz";
pub const DEFAULT_DATABASE_URL: &str = "sqlite:///db.sqlite3";
pub const DEFAULT_ALLOWED_HOSTS: &str = "localhost,127.0.0.1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {source}")]
    DatabaseUrl {
        var: &'static str,
        #[source]
        source: DatabaseUrlError,
    },
    #[error("{var}: expected one of {expected}, got {got:?}")]
    Choice {
        var: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub secret_key: String,
    /// True when `DJANGO_SECRET_KEY` was not set and the insecure legacy literal is in use.
    pub secret_key_is_default: bool,
    pub secret_key_fallbacks: Vec<String>,
    pub debug: bool,
    pub allowed_hosts: Vec<String>,
    pub csrf_trusted_origins: Vec<String>,
    pub database_url: DatabaseUrl,
    /// `FERROCHAT_DB_POOL_SIZE` and `FERROCHAT_DB_CONNECT_TIMEOUT`.
    pub database: DbOptions,
    pub channel_layer: ChannelLayerChoice,
    /// The channels_redis layer: `FERROCHAT_REDIS_HOSTS` (else `REDIS_URL`, whose default is
    /// `channels_redis::config::DEFAULT_REDIS_URL`) and
    /// `FERROCHAT_REDIS_{PREFIX,CAPACITY,EXPIRY,GROUP_EXPIRY,ENCRYPTION_KEYS}`.
    pub channels_redis: ChannelsRedisConfig,
    /// `FERROCHAT_NODE_ID`: this process's name in the channel layer. Unset, `runserver` derives
    /// one from the host name and its listening address (`layer::redis::default_node_id`).
    pub node_id: Option<NodeId>,
    /// `FERROCHAT_TEMPLATES_DIR`: a team's own ported templates, loaded instead of the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// `FERROCHAT_STATIC_DIR`: served at `/static/` instead of the built-in legacy files.
    pub static_dir: Option<PathBuf>,
    /// `FERROCHAT_FRONTEND`: which room page (and so which script) `/chat/<room>/` serves.
    pub frontend: Frontend,
    /// Timers and queue sizes of the HTTP server and the WebSocket consumer (`FERROCHAT_*`).
    pub limits: Limits,
    /// Metrics, logs, proxies, TLS-proxy settings and connection limits (`ops::settings`).
    pub ops: OpsSettings,
    /// `ferrochat.v1`: `FERROCHAT_CATCHUP_WINDOW`, `FERROCHAT_CATCHUP_MAX`,
    /// `FERROCHAT_PRESENCE_TTL`.
    pub live: LiveSettings,
}

/// The room page's frontend (`FERROCHAT_FRONTEND`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Frontend {
    /// The legacy `room.html` and `static/chatapp/room.js`, byte-identical (the default).
    #[default]
    Legacy,
    /// `live/room.html` and `static/ferrochat/live/live.js`: the `ferrochat.v1` protocol
    /// (reconnect with catch-up, presence, typing), falling back to the legacy protocol.
    Live,
}

impl Frontend {
    fn from_var(value: Option<&str>) -> Result<Frontend, ConfigError> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Frontend::Legacy),
            Some(v) if v.is_empty() || v == "legacy" => Ok(Frontend::Legacy),
            Some(v) if v == "live" => Ok(Frontend::Live),
            Some(v) => Err(ConfigError::Choice {
                var: "FERROCHAT_FRONTEND",
                expected: "legacy, live",
                got: v,
            }),
        }
    }
}

/// ferrochat's own timers and queue sizes; each has an `FERROCHAT_*` variable (README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `FERROCHAT_HEADER_TIMEOUT` (seconds): how long a client may take to send its request
    /// headers before the connection is dropped (slowloris).
    pub header_timeout: Duration,
    /// `FERROCHAT_WS_PING_INTERVAL` (seconds): a server ping after this much time (Daphne: 20).
    pub ws_ping_interval: Duration,
    /// `FERROCHAT_WS_PING_TIMEOUT` (seconds): a peer that has not answered a ping within this is
    /// dead and its socket dropped (Daphne: 30).
    pub ws_ping_timeout: Duration,
    /// `FERROCHAT_WS_QUEUE` (frames): how far a socket may fall behind its room before it is
    /// closed (1008), so a reader that stalls never slows the room or grows memory.
    pub ws_queue: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(20),
            ws_ping_timeout: Duration::from_secs(30),
            ws_queue: crate::layer::hub::DEFAULT_SOCKET_QUEUE,
        }
    }
}

impl Limits {
    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        Ok(Limits {
            header_timeout: env_seconds(
                "FERROCHAT_HEADER_TIMEOUT",
                get("FERROCHAT_HEADER_TIMEOUT"),
                d.header_timeout,
            )?,
            ws_ping_interval: env_seconds(
                "FERROCHAT_WS_PING_INTERVAL",
                get("FERROCHAT_WS_PING_INTERVAL"),
                d.ws_ping_interval,
            )?,
            ws_ping_timeout: env_seconds(
                "FERROCHAT_WS_PING_TIMEOUT",
                get("FERROCHAT_WS_PING_TIMEOUT"),
                d.ws_ping_timeout,
            )?,
            ws_queue: match get("FERROCHAT_WS_QUEUE").map(|v| v.trim().to_owned()) {
                None => d.ws_queue,
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if (1..=65_536).contains(&n) => n,
                    _ => {
                        return Err(ConfigError::Invalid {
                            var: "FERROCHAT_WS_QUEUE",
                            message: format!(
                                "expected a number of frames from 1 to 65536, got {v:?}"
                            ),
                        });
                    }
                },
            },
        })
    }
}

/// A positive number of seconds (fractions allowed, e.g. `0.5`), at most a day.
fn env_seconds(
    var: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = value else {
        return Ok(default);
    };
    match raw.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(ConfigError::Invalid {
            var,
            message: format!("expected a number of seconds above 0 (at most 86400), got {raw:?}"),
        }),
    }
}

/// The variables that may instead name a file holding their value, as `<NAME>_FILE` (the
/// Docker/Kubernetes secrets convention).
pub const FILE_SECRETS: [(&str, &str); 7] = [
    ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FILE"),
    (
        "DJANGO_SECRET_KEY_FALLBACKS",
        "DJANGO_SECRET_KEY_FALLBACKS_FILE",
    ),
    ("DATABASE_URL", "DATABASE_URL_FILE"),
    ("REDIS_URL", "REDIS_URL_FILE"),
    ("FERROCHAT_REDIS_HOSTS", "FERROCHAT_REDIS_HOSTS_FILE"),
    (
        "FERROCHAT_REDIS_SENTINEL_PASSWORD",
        "FERROCHAT_REDIS_SENTINEL_PASSWORD_FILE",
    ),
    (
        "FERROCHAT_REDIS_ENCRYPTION_KEYS",
        "FERROCHAT_REDIS_ENCRYPTION_KEYS_FILE",
    ),
];

/// `vars` with each `<NAME>_FILE` of [`FILE_SECRETS`] replaced by `<NAME>` = the file's content,
/// trailing newlines stripped. Both forms of one variable set is an error (which one wins would
/// be a guess).
fn with_file_secrets(
    vars: &HashMap<String, String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut resolved = vars.clone();
    for (name, file_var) in FILE_SECRETS {
        let Some(path) = vars.get(file_var) else {
            continue;
        };
        if vars.contains_key(name) {
            return Err(ConfigError::Invalid {
                var: file_var,
                message: format!("{name} is set too: set only one of {name} and {file_var}"),
            });
        }
        let content = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
            var: file_var,
            message: format!("cannot read {path:?}: {e}"),
        })?;
        resolved.remove(file_var);
        resolved.insert(
            name.to_owned(),
            content.trim_end_matches(['\n', '\r']).to_owned(),
        );
    }
    Ok(resolved)
}

/// The `ferrochat.v1` settings (docs/protocol.md).
fn live_settings(get: impl Fn(&str) -> Option<String>) -> Result<LiveSettings, ConfigError> {
    let d = LiveSettings::default();
    Ok(LiveSettings {
        catchup_window: env_seconds(
            "FERROCHAT_CATCHUP_WINDOW",
            get("FERROCHAT_CATCHUP_WINDOW"),
            d.catchup_window,
        )?,
        catchup_max: match get("FERROCHAT_CATCHUP_MAX").map(|v| v.trim().to_owned()) {
            None => d.catchup_max,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "FERROCHAT_CATCHUP_MAX",
                        message: format!(
                            "expected a number of messages from 1 to 100000, got {v:?}"
                        ),
                    });
                }
            },
        },
        presence_ttl: env_seconds(
            "FERROCHAT_PRESENCE_TTL",
            get("FERROCHAT_PRESENCE_TTL"),
            d.presence_ttl,
        )?,
    })
}

/// `FERROCHAT_DB_POOL_SIZE` (connections, 1 to 1000), `FERROCHAT_DB_CONNECT_TIMEOUT` (seconds)
/// and the outage hold, `FERROCHAT_DB_OUTAGE_HOLD_SECS` / `FERROCHAT_DB_OUTAGE_HOLD_MESSAGES`.
fn database_options(get: impl Fn(&str) -> Option<String>) -> Result<DbOptions, ConfigError> {
    let mut options = DbOptions::default();
    if let Some(raw) = get("FERROCHAT_DB_POOL_SIZE") {
        options.max_connections = match raw.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ConfigError::Invalid {
                    var: "FERROCHAT_DB_POOL_SIZE",
                    message: format!(
                        "expected a number of connections from 1 to 1000, got {raw:?}"
                    ),
                });
            }
        };
    }
    if let Some(raw) = get("FERROCHAT_DB_OUTAGE_HOLD_SECS") {
        options.outage_hold.duration = env_seconds(
            "FERROCHAT_DB_OUTAGE_HOLD_SECS",
            Some(raw),
            options.outage_hold.duration,
        )?;
    }
    if let Some(raw) = get("FERROCHAT_DB_OUTAGE_HOLD_MESSAGES") {
        options.outage_hold.messages = match raw.trim().parse::<usize>() {
            Ok(n) if (1..=1_000_000).contains(&n) => n,
            _ => {
                return Err(ConfigError::Invalid {
                    var: "FERROCHAT_DB_OUTAGE_HOLD_MESSAGES",
                    message: format!(
                        "expected a number of messages from 1 to 1000000, got {raw:?}"
                    ),
                });
            }
        };
    }
    if let Some(raw) = get("FERROCHAT_DB_CONNECT_TIMEOUT") {
        options.connect_timeout = Some(env_seconds(
            "FERROCHAT_DB_CONNECT_TIMEOUT",
            Some(raw),
            crate::db::CONNECT_TIMEOUT,
        )?);
    }
    Ok(options)
}

impl Settings {
    /// Reads the process environment; relative SQLite paths resolve against the working directory.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let cwd = std::env::current_dir().map_err(|e| ConfigError::Invalid {
            var: "DATABASE_URL",
            message: format!("cannot read the working directory: {e}"),
        })?;
        Settings::from_vars(&vars, &cwd)
    }

    /// Parses settings from an explicit variable map (tests use this; `from_env` wraps it).
    pub fn from_vars(
        vars: &HashMap<String, String>,
        base_dir: &Path,
    ) -> Result<Settings, ConfigError> {
        let vars = &with_file_secrets(vars)?;
        let get = |name: &str| vars.get(name).map(String::as_str);

        let (secret_key, secret_key_is_default) = match get("DJANGO_SECRET_KEY") {
            Some(key) if !key.is_empty() => (key.to_owned(), false),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "DJANGO_SECRET_KEY",
                    message: "must not be empty".into(),
                });
            }
            None => (DEFAULT_SECRET_KEY.to_owned(), true),
        };

        let database_url_raw = get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL);
        let database_url = DatabaseUrl::parse(database_url_raw, base_dir).map_err(|source| {
            ConfigError::DatabaseUrl {
                var: "DATABASE_URL",
                source,
            }
        })?;

        let channel_layer = match get("CHANNEL_LAYER").map(|v| v.trim().to_ascii_lowercase()) {
            None => ChannelLayerChoice::Auto,
            Some(v) if v.is_empty() || v == "auto" => ChannelLayerChoice::Auto,
            Some(v) if v == "memory" => ChannelLayerChoice::Memory,
            Some(v) if v == "redis" => ChannelLayerChoice::Redis,
            Some(v) => {
                return Err(ConfigError::Choice {
                    var: "CHANNEL_LAYER",
                    expected: "memory, redis (or unset for auto)",
                    got: v,
                });
            }
        };

        let channels_redis =
            ChannelsRedisConfig::from_env(vars).map_err(|e| ConfigError::Invalid {
                var: e.var,
                message: e.message,
            })?;
        let node_id = match get("FERROCHAT_NODE_ID").map(str::trim) {
            None | Some("") => None,
            Some(id) => Some(NodeId::parse(id).map_err(|e| ConfigError::Invalid {
                var: "FERROCHAT_NODE_ID",
                message: e.to_string(),
            })?),
        };

        let database = database_options(|name| get(name).map(str::to_owned))?;
        let frontend = Frontend::from_var(get("FERROCHAT_FRONTEND"))?;

        Ok(Settings {
            secret_key,
            secret_key_is_default,
            secret_key_fallbacks: env_list(get("DJANGO_SECRET_KEY_FALLBACKS").unwrap_or("")),
            debug: env_bool(get("DJANGO_DEBUG").unwrap_or("1")),
            allowed_hosts: env_list(get("DJANGO_ALLOWED_HOSTS").unwrap_or(DEFAULT_ALLOWED_HOSTS)),
            csrf_trusted_origins: env_list(get("DJANGO_CSRF_TRUSTED_ORIGINS").unwrap_or("")),
            database_url,
            database,
            channel_layer,
            channels_redis,
            node_id,
            templates_dir: get("FERROCHAT_TEMPLATES_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            static_dir: get("FERROCHAT_STATIC_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            frontend,
            limits: Limits::from_vars(|name| get(name).map(str::to_owned))?,
            ops: OpsSettings::from_vars(|name| get(name).map(str::to_owned)).map_err(|e| {
                ConfigError::Invalid {
                    var: e.var,
                    message: e.message,
                }
            })?,
            live: live_settings(|name| get(name).map(str::to_owned))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::channels_redis::config::DEFAULT_REDIS_URL;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(&vars, Path::new("/srv/app"))
    }

    #[test]
    fn defaults_match_the_legacy_settings() {
        let s = settings(&[]).expect("defaults parse");
        assert_eq!(s.secret_key, DEFAULT_SECRET_KEY);
        assert!(s.secret_key_is_default);
        assert!(s.debug);
        assert_eq!(s.allowed_hosts, vec!["localhost", "127.0.0.1"]);
        assert!(s.csrf_trusted_origins.is_empty());
        assert_eq!(s.channels_redis.hosts, [DEFAULT_REDIS_URL]);
        assert_eq!(s.channel_layer, ChannelLayerChoice::Auto);
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite {
                path: PathBuf::from("/srv/app/db.sqlite3")
            }
        );
    }

    #[test]
    fn booleans_and_lists_follow_settings_py() {
        let s = settings(&[
            ("DJANGO_DEBUG", " Off "),
            ("DJANGO_ALLOWED_HOSTS", " a.example , ,b.example,"),
        ])
        .expect("parse");
        assert!(!s.debug);
        assert_eq!(s.allowed_hosts, vec!["a.example", "b.example"]);
        assert!(settings(&[("DJANGO_DEBUG", "YES")]).expect("parse").debug);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = settings(&[("CHANNEL_LAYER", "kafka")]).expect_err("must fail");
        assert!(err.to_string().starts_with("CHANNEL_LAYER:"), "{err}");
        let err = settings(&[("DATABASE_URL", "oracle://x/y")]).expect_err("must fail");
        assert!(err.to_string().starts_with("DATABASE_URL:"), "{err}");
        let err = settings(&[("REDIS_URL", "http://x")]).expect_err("must fail");
        assert!(err.to_string().starts_with("REDIS_URL:"), "{err}");
    }

    #[test]
    fn limits_default_and_parse() {
        assert_eq!(settings(&[]).expect("defaults").limits, Limits::default());
        let s = settings(&[
            ("FERROCHAT_HEADER_TIMEOUT", "0.5"),
            ("FERROCHAT_WS_PING_INTERVAL", "2"),
            ("FERROCHAT_WS_QUEUE", " 8 "),
        ])
        .expect("parse");
        assert_eq!(s.limits.header_timeout, Duration::from_millis(500));
        assert_eq!(s.limits.ws_ping_interval, Duration::from_secs(2));
        assert_eq!(s.limits.ws_queue, 8);
        for (var, bad) in [
            ("FERROCHAT_HEADER_TIMEOUT", "0"),
            ("FERROCHAT_WS_PING_TIMEOUT", "soon"),
            ("FERROCHAT_WS_PING_INTERVAL", "-1"),
            ("FERROCHAT_WS_QUEUE", "0"),
        ] {
            let err = settings(&[(var, bad)]).expect_err("must fail");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn channel_layer_tuning_and_node_id() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.node_id, None);
        assert_eq!(s.channels_redis.hosts, [DEFAULT_REDIS_URL]);
        let s = settings(&[
            ("REDIS_URL", "redis://r:6379/3"),
            ("FERROCHAT_NODE_ID", " web-1 "),
            ("FERROCHAT_REDIS_PREFIX", "chat"),
        ])
        .expect("parse");
        assert_eq!(s.node_id.as_ref().map(|n| n.as_str()), Some("web-1"));
        assert_eq!(s.channels_redis.hosts, ["redis://r:6379/3"]);
        assert_eq!(s.channels_redis.prefix, "chat");
        for (var, bad) in [
            ("FERROCHAT_NODE_ID", "a!b"),
            ("FERROCHAT_NODE_ID", "n234567890123456789012345x"),
            ("FERROCHAT_REDIS_CAPACITY", "0"),
            ("FERROCHAT_REDIS_HOSTS", "http://x"),
        ] {
            let err = settings(&[(var, bad)]).expect_err("must fail");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret-from-file\n").expect("write");
        let db = dir.path().join("db");
        std::fs::write(&db, "postgres://u:pw@h/db\r\n").expect("write");
        let key_var = key.to_string_lossy();
        let db_var = db.to_string_lossy();
        let s = settings(&[
            ("DJANGO_SECRET_KEY_FILE", &key_var),
            ("DATABASE_URL_FILE", &db_var),
        ])
        .expect("parse");
        assert_eq!(s.secret_key, "s3cret-from-file");
        assert!(!s.secret_key_is_default);
        assert_eq!(s.database_url.redacted(), "postgres://u:***@h/db");

        let err = settings(&[
            ("DJANGO_SECRET_KEY_FILE", &key_var),
            ("DJANGO_SECRET_KEY", "x"),
        ])
        .expect_err("both forms");
        assert!(
            err.to_string().starts_with("DJANGO_SECRET_KEY_FILE:"),
            "{err}"
        );
        let err = settings(&[("REDIS_URL_FILE", "/no/such/file")]).expect_err("missing file");
        assert!(err.to_string().starts_with("REDIS_URL_FILE:"), "{err}");
    }

    #[test]
    fn database_pool_and_timeout() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.database, DbOptions::default());
        let s = settings(&[
            ("FERROCHAT_DB_POOL_SIZE", "25"),
            ("FERROCHAT_DB_CONNECT_TIMEOUT", "2.5"),
            ("FERROCHAT_DB_OUTAGE_HOLD_SECS", "3"),
            ("FERROCHAT_DB_OUTAGE_HOLD_MESSAGES", "50"),
        ])
        .expect("parse");
        assert_eq!(s.database.outage_hold.duration, Duration::from_secs(3));
        assert_eq!(s.database.outage_hold.messages, 50);
        assert_eq!(s.database.max_connections, 25);
        assert_eq!(
            s.database.connect_timeout,
            Some(Duration::from_millis(2500))
        );
        for (var, bad) in [
            ("FERROCHAT_DB_POOL_SIZE", "0"),
            ("FERROCHAT_DB_POOL_SIZE", "lots"),
            ("FERROCHAT_DB_CONNECT_TIMEOUT", "0"),
            ("FERROCHAT_DB_OUTAGE_HOLD_SECS", "x"),
            ("FERROCHAT_DB_OUTAGE_HOLD_MESSAGES", "0"),
        ] {
            let err = settings(&[(var, bad)]).expect_err("must fail");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn frontend_is_legacy_unless_live_is_asked_for() {
        assert_eq!(settings(&[]).expect("defaults").frontend, Frontend::Legacy);
        for (value, frontend) in [
            ("live", Frontend::Live),
            (" Live ", Frontend::Live),
            ("legacy", Frontend::Legacy),
            ("", Frontend::Legacy),
        ] {
            let s = settings(&[("FERROCHAT_FRONTEND", value)]).expect("parse");
            assert_eq!(s.frontend, frontend, "{value:?}");
        }
        let err = settings(&[("FERROCHAT_FRONTEND", "react")]).expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "FERROCHAT_FRONTEND: expected one of legacy, live, got \"react\""
        );
    }

    #[test]
    fn channel_layer_choices() {
        assert_eq!(
            settings(&[("CHANNEL_LAYER", "Memory")])
                .expect("ok")
                .channel_layer,
            ChannelLayerChoice::Memory
        );
        assert_eq!(
            settings(&[("CHANNEL_LAYER", "redis")])
                .expect("ok")
                .channel_layer,
            ChannelLayerChoice::Redis
        );
    }
}
