//! Redis Sentinel: a shard whose master is whichever server its sentinels name now, as
//! channels_redis builds it from a `{"sentinels": [...], "master_name": ...}` host (redis-py's
//! `SentinelConnectionPool`). Keys and hashing are those of any other shard.
//!
//! A shard entry (in `FERROCHAT_REDIS_HOSTS`, or built from `REDIS_URL` and
//! `FERROCHAT_REDIS_SENTINELS`/`FERROCHAT_REDIS_SENTINEL_MASTER`) reads
//!
//! ```text
//! redis+sentinel://[:password@]host:port|host:port|.../<master_name>[/<db>][?<rediss options>]
//! ```
//!
//! (`rediss+sentinel://` for TLS to the master). The password, database and TLS options are the
//! master's; the sentinels themselves are asked over plain TCP, with
//! `FERROCHAT_REDIS_SENTINEL_PASSWORD` if they require one.

use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError};

use super::url::{RedisUrl, RedisUrlError};
use crate::secret::redact_url;

pub const SCHEME: &str = "redis+sentinel";
pub const TLS_SCHEME: &str = "rediss+sentinel";

const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One sentinel group: where to ask, which master, and how to talk to the master.
#[derive(Debug, Clone)]
pub struct SentinelShard {
    pub master_name: String,
    pub sentinels: Vec<(String, u16)>,
    password: Option<String>,
    /// The master's URL with a placeholder address ([`RedisUrl::at`] fills it in).
    master: RedisUrl,
}

/// True for a `redis+sentinel://` or `rediss+sentinel://` shard entry.
pub fn is_sentinel_entry(entry: &str) -> bool {
    let scheme = entry.trim().split("://").next().unwrap_or_default();
    scheme.eq_ignore_ascii_case(SCHEME) || scheme.eq_ignore_ascii_case(TLS_SCHEME)
}

/// The shard entry for `REDIS_URL` (its password, database and TLS options) behind the
/// sentinels `host:port,host:port` watching `master_name`.
pub fn entry_for(redis_url: &str, sentinels: &[String], master_name: &str) -> String {
    let redis_url = redis_url.trim();
    let (scheme, rest) = redis_url.split_once("://").unwrap_or(("redis", redis_url));
    let sentinel_scheme = if scheme.eq_ignore_ascii_case("rediss") {
        TLS_SCHEME
    } else {
        SCHEME
    };
    // rest = [userinfo@]host[:port][/db][?query]
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let userinfo = authority
        .rfind('@')
        .map(|at| &authority[..=at])
        .unwrap_or_default();
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (tail, String::new()),
    };
    let db = path.trim_matches('/');
    let db = if db.is_empty() {
        String::new()
    } else {
        format!("/{db}")
    };
    format!(
        "{sentinel_scheme}://{userinfo}{}/{master_name}{db}{query}",
        sentinels.join("|")
    )
}

impl SentinelShard {
    pub fn parse(entry: &str, password: Option<&str>) -> Result<SentinelShard, RedisUrlError> {
        let entry = entry.trim();
        let invalid = |reason: &str| RedisUrlError::Invalid {
            url: redact_url(entry),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| invalid("not a URL"))?;
        let master_scheme = if scheme.eq_ignore_ascii_case(TLS_SCHEME) {
            "rediss"
        } else if scheme.eq_ignore_ascii_case(SCHEME) {
            "redis"
        } else {
            return Err(invalid("expected redis+sentinel:// or rediss+sentinel://"));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, format!("?{q}")),
            None => (rest, String::new()),
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("no master name (…/<master_name>[/<db>])"))?;
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let sentinels = parse_sentinels(hosts).map_err(|reason| invalid(&reason))?;
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let master_name = segments
            .next()
            .ok_or_else(|| invalid("no master name (…/<master_name>[/<db>])"))?
            .to_owned();
        let db = segments.next().unwrap_or("0");
        if segments.next().is_some() {
            return Err(invalid("expected …/<master_name>[/<db>]"));
        }
        let master = RedisUrl::parse(&format!(
            "{master_scheme}://{userinfo}sentinel-master.invalid:6379/{db}{query}"
        ))?;
        Ok(SentinelShard {
            master_name,
            sentinels,
            password: password.filter(|p| !p.is_empty()).map(str::to_owned),
            master,
        })
    }

    /// Asks each sentinel in turn for the current master (`SENTINEL get-master-addr-by-name`);
    /// the first answer wins. Returns the master's URL (database, password, TLS as configured).
    pub async fn master(&self) -> Result<RedisUrl, RedisError> {
        let mut last: Option<RedisError> = None;
        for (host, port) in &self.sentinels {
            match self.ask(host, *port).await {
                Ok((master_host, master_port)) => {
                    return Ok(self.master.at(&master_host, master_port));
                }
                Err(e) => {
                    tracing::debug!("sentinel {host}:{port}: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            RedisError::from((redis::ErrorKind::InvalidClientConfig, "no sentinels"))
        }))
    }

    async fn ask(&self, host: &str, port: u16) -> Result<(String, u16), RedisError> {
        let mut info = redis::ConnectionAddr::Tcp(host.to_owned(), port).into_connection_info()?;
        if let Some(password) = &self.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ASK_TIMEOUT))
            .set_response_timeout(Some(ASK_TIMEOUT));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master_name)
            .query_async(&mut conn)
            .await?;
        reply.ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "the sentinel does not know this master",
                self.master_name.clone(),
            ))
        })
    }
}

/// `host:port|host:port|…` (a port is required: sentinels usually listen on 26379).
fn parse_sentinels(hosts: &str) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for part in hosts
        .split(['|', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (host, port) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("sentinel {part:?}: expected host:port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("sentinel {part:?}: bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("sentinel {part:?}: no host"));
        }
        out.push((host.to_owned(), port));
    }
    if out.is_empty() {
        return Err("no sentinels".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_from_redis_url_and_sentinels() {
        let s = vec!["10.0.0.1:26379".to_owned(), "10.0.0.2:26379".to_owned()];
        assert_eq!(
            entry_for("redis://:pw@ignored:6379/3", &s, "mymaster"),
            "redis+sentinel://:pw@10.0.0.1:26379|10.0.0.2:26379/mymaster/3"
        );
        assert_eq!(
            entry_for("rediss://h/0?ssl_cert_reqs=none", &s, "m"),
            "rediss+sentinel://10.0.0.1:26379|10.0.0.2:26379/m/0?ssl_cert_reqs=none"
        );
        assert_eq!(
            entry_for("redis://h", &s[..1], "m"),
            "redis+sentinel://10.0.0.1:26379/m"
        );
    }

    #[test]
    fn parse_an_entry() {
        let shard = SentinelShard::parse("redis+sentinel://:pw@a:1|b:2/mymaster/4", Some("spw"))
            .expect("parses");
        assert_eq!(shard.master_name, "mymaster");
        assert_eq!(shard.sentinels, [("a".into(), 1), ("b".into(), 2)]);
        assert_eq!(shard.password.as_deref(), Some("spw"));
        let master = shard.master.at("10.1.1.1", 6380);
        assert_eq!(master.db(), 4);
        assert_eq!(master.redacted(), "redis://:***@10.1.1.1:6380/4");
        let tls = SentinelShard::parse("rediss+sentinel://a:1/m?ssl_cert_reqs=none", None)
            .expect("parses");
        assert!(tls.master.tls().is_some());
        for bad in [
            "redis+sentinel://a:1",
            "redis+sentinel://a/m",
            "redis+sentinel:///m",
            "redis+sentinel://a:1/m/0/x",
            "redis+sentinel://a:1/m/x",
        ] {
            assert!(SentinelShard::parse(bad, None).is_err(), "{bad}");
        }
        assert!(is_sentinel_entry(" Redis+Sentinel://a:1/m"));
        assert!(!is_sentinel_entry("redis://a:1/0"));
    }
}
