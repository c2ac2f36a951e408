//! `CHANNEL_LAYERS["default"]["CONFIG"]` of `channels_redis.core.RedisChannelLayer`, from the
//! environment. Every node sharing one Redis (Django or ferrochat) needs the same values.

use std::collections::HashMap;
use std::fmt;

use super::sentinel;
use super::url::RedisUrl;
use crate::django::settings::env_list;
use crate::secret::redact_url;

/// The legacy `settings.py` default for `REDIS_URL` (COMPAT §1); the one copy.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ChannelsRedisConfigError {
    pub var: &'static str,
    pub message: String,
}

/// The channels_redis options ferrochat supports, with channels_redis 4.2 defaults
/// (`RedisChannelLayer.__init__`). Not supported: `channel_capacity` globs. Sentinel hosts are
/// `redis+sentinel://` entries (`sentinel`).
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelsRedisConfig {
    /// Shards, in channels_redis `hosts` order: a name's shard is its index here.
    pub hosts: Vec<String>,
    /// Prefixed to every key, with no separator before queue names (`asgispecific.x!`).
    pub prefix: String,
    /// Most members one queue key may hold; beyond it `group_send` drops, `send` fails.
    pub capacity: usize,
    /// Seconds: queue key TTL, and the age at which senders trim queued messages.
    pub expiry: u64,
    /// Seconds: group key TTL, and the age at which a membership counts as gone.
    pub group_expiry: u64,
    /// Secrets (not Fernet keys): each becomes `base64url(sha256(secret))`; the first encrypts.
    pub symmetric_encryption_keys: Vec<String>,
    /// `FERROCHAT_REDIS_SENTINEL_PASSWORD`: the sentinels' own password (channels_redis
    /// `sentinel_kwargs={"password": …}`), for every sentinel group.
    pub sentinel_password: Option<String>,
}

impl Default for ChannelsRedisConfig {
    fn default() -> Self {
        ChannelsRedisConfig {
            hosts: vec![DEFAULT_REDIS_URL.to_owned()],
            prefix: "asgi".to_owned(),
            capacity: 100,
            expiry: 60,
            group_expiry: 86400,
            symmetric_encryption_keys: Vec::new(),
            sentinel_password: None,
        }
    }
}

impl fmt::Debug for ChannelsRedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.hosts.iter().map(|h| redact_url(h)).collect();
        f.debug_struct("ChannelsRedisConfig")
            .field("hosts", &hosts)
            .field("prefix", &self.prefix)
            .field("capacity", &self.capacity)
            .field("expiry", &self.expiry)
            .field("group_expiry", &self.group_expiry)
            .field(
                "symmetric_encryption_keys",
                &self.symmetric_encryption_keys.len(),
            )
            .field("sentinel_password", &self.sentinel_password.is_some())
            .finish()
    }
}

impl ChannelsRedisConfig {
    /// Defaults with one host.
    pub fn with_host(url: &str) -> Self {
        ChannelsRedisConfig {
            hosts: vec![url.to_owned()],
            ..Self::default()
        }
    }

    /// `FERROCHAT_REDIS_HOSTS` (comma list, channels_redis order) or else `REDIS_URL`, then
    /// `FERROCHAT_REDIS_{PREFIX,CAPACITY,EXPIRY,GROUP_EXPIRY,ENCRYPTION_KEYS}`. Errors name the
    /// variable.
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ChannelsRedisConfigError> {
        let get = |name: &str| vars.get(name).map(String::as_str);
        let defaults = Self::default();

        // A bad `REDIS_URL` is an error even when the hosts list replaces it.
        let redis_url = get("REDIS_URL")
            .unwrap_or(DEFAULT_REDIS_URL)
            .trim()
            .to_owned();
        check_url("REDIS_URL", &redis_url, None)?;
        let sentinel_password = get("FERROCHAT_REDIS_SENTINEL_PASSWORD")
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let sentinels = get("FERROCHAT_REDIS_SENTINELS")
            .map(env_list)
            .unwrap_or_default();
        let master = get("FERROCHAT_REDIS_SENTINEL_MASTER")
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let hosts_list = get("FERROCHAT_REDIS_HOSTS")
            .map(env_list)
            .filter(|l| !l.is_empty());
        let hosts = match (sentinels.is_empty(), master, hosts_list) {
            (true, None, Some(list)) => {
                for url in &list {
                    check_url("FERROCHAT_REDIS_HOSTS", url, sentinel_password.as_deref())?;
                }
                list
            }
            (true, None, None) => vec![redis_url],
            (false, Some(master), None) => {
                let entry = sentinel::entry_for(&redis_url, &sentinels, master);
                check_url(
                    "FERROCHAT_REDIS_SENTINELS",
                    &entry,
                    sentinel_password.as_deref(),
                )?;
                vec![entry]
            }
            (false, None, _) => {
                return Err(invalid(
                    "FERROCHAT_REDIS_SENTINEL_MASTER",
                    "must be set with FERROCHAT_REDIS_SENTINELS (the sentinels' master name)",
                ));
            }
            (true, Some(_), _) => {
                return Err(invalid(
                    "FERROCHAT_REDIS_SENTINELS",
                    "must be set with FERROCHAT_REDIS_SENTINEL_MASTER (host:port,host:port,…)",
                ));
            }
            (false, Some(_), Some(_)) => {
                return Err(invalid(
                    "FERROCHAT_REDIS_SENTINELS",
                    "cannot be combined with FERROCHAT_REDIS_HOSTS: give each shard its \
                     sentinel group there as redis+sentinel://host:port|host:port/<master>/<db>",
                ));
            }
        };

        let prefix = match get("FERROCHAT_REDIS_PREFIX") {
            None => defaults.prefix,
            Some("") => {
                return Err(invalid(
                    "FERROCHAT_REDIS_PREFIX",
                    "must not be empty (unset it for channels_redis' default \"asgi\")",
                ));
            }
            Some(p) => p.to_owned(),
        };

        Ok(ChannelsRedisConfig {
            hosts,
            prefix,
            capacity: positive(get, "FERROCHAT_REDIS_CAPACITY", defaults.capacity as u64)? as usize,
            expiry: positive(get, "FERROCHAT_REDIS_EXPIRY", defaults.expiry)?,
            group_expiry: positive(get, "FERROCHAT_REDIS_GROUP_EXPIRY", defaults.group_expiry)?,
            symmetric_encryption_keys: get("FERROCHAT_REDIS_ENCRYPTION_KEYS")
                .map(env_list)
                .unwrap_or_default(),
            sentinel_password,
        })
    }

    /// The hosts with passwords masked, for logs and errors.
    pub fn redacted_host(&self, index: usize) -> String {
        self.hosts
            .get(index)
            .map(|h| redact_url(h))
            .unwrap_or_default()
    }
}

fn invalid(var: &'static str, message: impl Into<String>) -> ChannelsRedisConfigError {
    ChannelsRedisConfigError {
        var,
        message: message.into(),
    }
}

fn check_url(
    var: &'static str,
    url: &str,
    sentinel_password: Option<&str>,
) -> Result<(), ChannelsRedisConfigError> {
    let parsed = if sentinel::is_sentinel_entry(url) {
        sentinel::SentinelShard::parse(url, sentinel_password).map(drop)
    } else {
        RedisUrl::parse(url).map(drop)
    };
    parsed.map_err(|e| invalid(var, e.to_string()))
}

fn positive<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: u64,
) -> Result<u64, ChannelsRedisConfigError> {
    match get(var).map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(
                var,
                format!("expected a positive whole number, got {v:?}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<ChannelsRedisConfig, ChannelsRedisConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ChannelsRedisConfig::from_env(&vars)
    }

    #[test]
    fn defaults_are_channels_redis_defaults() {
        let c = env(&[]).expect("defaults");
        assert_eq!(c, ChannelsRedisConfig::default());
        assert_eq!(c.hosts, ["redis://127.0.0.1:6379/0"]);
        assert_eq!(
            (c.prefix.as_str(), c.capacity, c.expiry, c.group_expiry),
            ("asgi", 100, 60, 86400)
        );
        assert!(c.symmetric_encryption_keys.is_empty());
    }

    #[test]
    fn hosts_list_wins_over_redis_url_in_order() {
        let c = env(&[
            ("REDIS_URL", "redis://one:6379/0"),
            (
                "FERROCHAT_REDIS_HOSTS",
                " redis://a:6379/1 , redis://b:6380/2,",
            ),
        ])
        .expect("valid");
        assert_eq!(c.hosts, ["redis://a:6379/1", "redis://b:6380/2"]);
        let c = env(&[
            ("REDIS_URL", "redis://one:6379/3"),
            ("FERROCHAT_REDIS_HOSTS", ""),
        ])
        .expect("valid");
        assert_eq!(c.hosts, ["redis://one:6379/3"]);
    }

    #[test]
    fn tuning_and_keys() {
        let c = env(&[
            ("FERROCHAT_REDIS_PREFIX", "chat"),
            ("FERROCHAT_REDIS_CAPACITY", "1000"),
            ("FERROCHAT_REDIS_EXPIRY", "30"),
            ("FERROCHAT_REDIS_GROUP_EXPIRY", "3600"),
            ("FERROCHAT_REDIS_ENCRYPTION_KEYS", "new-secret,old-secret"),
        ])
        .expect("valid");
        assert_eq!(
            (c.prefix.as_str(), c.capacity, c.expiry, c.group_expiry),
            ("chat", 1000, 30, 3600)
        );
        assert_eq!(c.symmetric_encryption_keys, ["new-secret", "old-secret"]);
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("FERROCHAT_REDIS_CAPACITY", "many"),
            ("FERROCHAT_REDIS_CAPACITY", "0"),
            ("FERROCHAT_REDIS_EXPIRY", "-1"),
            ("FERROCHAT_REDIS_GROUP_EXPIRY", "1.5"),
            ("FERROCHAT_REDIS_PREFIX", ""),
            ("FERROCHAT_REDIS_HOSTS", "redis://ok:6379,http://nope"),
            ("REDIS_URL", "not a url"),
            ("REDIS_URL", "http://x"),
        ] {
            let err = env(&[(var, value)]).expect_err(value);
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn a_bad_redis_url_fails_even_beside_a_hosts_list() {
        let err = env(&[
            ("FERROCHAT_REDIS_HOSTS", "redis://a:6379/1"),
            ("REDIS_URL", "http://x"),
        ])
        .expect_err("REDIS_URL is checked");
        assert_eq!(err.var, "REDIS_URL", "{err}");
    }

    #[test]
    fn sentinels() {
        let c = env(&[
            ("REDIS_URL", "redis://:pw@ignored:6379/2"),
            ("FERROCHAT_REDIS_SENTINELS", "s1:26379, s2:26379"),
            ("FERROCHAT_REDIS_SENTINEL_MASTER", "mymaster"),
            ("FERROCHAT_REDIS_SENTINEL_PASSWORD", "spw"),
        ])
        .expect("valid");
        assert_eq!(
            c.hosts,
            ["redis+sentinel://:pw@s1:26379|s2:26379/mymaster/2"]
        );
        assert_eq!(c.sentinel_password.as_deref(), Some("spw"));
        let c = env(&[(
            "FERROCHAT_REDIS_HOSTS",
            "redis+sentinel://a:1|b:2/m1/0,redis://c:6379/0",
        )])
        .expect("valid");
        assert_eq!(c.hosts.len(), 2);
        for (pairs, var) in [
            (
                vec![("FERROCHAT_REDIS_SENTINELS", "s:1")],
                "FERROCHAT_REDIS_SENTINEL_MASTER",
            ),
            (
                vec![("FERROCHAT_REDIS_SENTINEL_MASTER", "m")],
                "FERROCHAT_REDIS_SENTINELS",
            ),
            (
                vec![
                    ("FERROCHAT_REDIS_SENTINELS", "s:1"),
                    ("FERROCHAT_REDIS_SENTINEL_MASTER", "m"),
                    ("FERROCHAT_REDIS_HOSTS", "redis://h/0"),
                ],
                "FERROCHAT_REDIS_SENTINELS",
            ),
            (
                vec![
                    ("FERROCHAT_REDIS_SENTINELS", "s"),
                    ("FERROCHAT_REDIS_SENTINEL_MASTER", "m"),
                ],
                "FERROCHAT_REDIS_SENTINELS",
            ),
            (
                vec![("FERROCHAT_REDIS_HOSTS", "redis+sentinel://a:1")],
                "FERROCHAT_REDIS_HOSTS",
            ),
        ] {
            let err = env(&pairs).expect_err(var);
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = ChannelsRedisConfig {
            hosts: vec!["redis://:hunter2@h:6379/0".into()],
            symmetric_encryption_keys: vec!["topsecret".into()],
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
    }
}
