//! The `DATABASE_URL` query, read with the meaning the legacy app's driver gives it: the legacy
//! `settings.py` hands every query pair to Django as `OPTIONS`, which Django passes on to
//! psycopg (libpq keywords) or to PyMySQL 1.1.0 (`Connection.__init__` keyword arguments).
//!
//! A TLS option (`ssl*`) ferrochat does not support is an error naming it: silently connecting
//! with weaker security than the Django deployment asked for is never acceptable. Any other
//! option sqlx cannot honour is named once in the startup log as ignored.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "the TLS option {0:?} is not supported by ferrochat (supported: {supported})",
        supported = .1
    )]
    UnsupportedTls(String, &'static str),
    #[error("{option}={value:?}: {message}")]
    BadValue {
        option: String,
        value: String,
        message: &'static str,
    },
}

const PG_TLS_OPTIONS: &str = "sslmode, sslrootcert, sslcert, sslkey";
const MYSQL_TLS_OPTIONS: &str =
    "ssl_ca, ssl_cert, ssl_key, ssl_verify_cert, ssl_verify_identity, ssl_disabled";

/// libpq's `sslmode` (all six; libpq's default is `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTlsMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgTlsMode {
    fn parse(value: &str) -> Option<PgTlsMode> {
        Some(match value {
            "disable" => PgTlsMode::Disable,
            "allow" => PgTlsMode::Allow,
            "prefer" => PgTlsMode::Prefer,
            "require" => PgTlsMode::Require,
            "verify-ca" => PgTlsMode::VerifyCa,
            "verify-full" => PgTlsMode::VerifyFull,
            _ => return None,
        })
    }

    fn to_sqlx(self) -> PgSslMode {
        match self {
            PgTlsMode::Disable => PgSslMode::Disable,
            PgTlsMode::Allow => PgSslMode::Allow,
            PgTlsMode::Prefer => PgSslMode::Prefer,
            PgTlsMode::Require => PgSslMode::Require,
            PgTlsMode::VerifyCa => PgSslMode::VerifyCa,
            PgTlsMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

/// What a PostgreSQL `DATABASE_URL` query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgQuery {
    /// `None`: not in the query, so `PGSSLMODE` or libpq's default `prefer` applies (sqlx reads
    /// the same environment variables as libpq).
    pub sslmode: Option<PgTlsMode>,
    /// `sslrootcert`; `system` means the system's trust store (libpq 16), as when unset here.
    pub root_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub application_name: Option<String>,
    /// libpq `options` (e.g. `-c search_path=x`), sent at connection start as libpq does.
    pub options: Option<String>,
    /// libpq `connect_timeout`: seconds, at least 2 (libpq rounds up); 0 means none.
    pub connect_timeout: Option<Duration>,
    /// Options sqlx cannot honour (logged once at startup).
    pub ignored: Vec<String>,
}

impl PgQuery {
    pub fn parse(url: &url::Url) -> Result<PgQuery, QueryError> {
        let mut q = PgQuery {
            sslmode: None,
            root_cert: None,
            client_cert: None,
            client_key: None,
            application_name: None,
            options: None,
            connect_timeout: None,
            ignored: Vec::new(),
        };
        for (key, value) in url.query_pairs() {
            let (key, value) = (key.into_owned(), value.into_owned());
            match key.as_str() {
                "sslmode" => {
                    q.sslmode = Some(PgTlsMode::parse(&value).ok_or(QueryError::BadValue {
                        option: key,
                        value,
                        message: "expected disable, allow, prefer, require, verify-ca or verify-full",
                    })?);
                }
                "sslrootcert" => {
                    q.root_cert = (value != "system").then(|| PathBuf::from(value));
                }
                "sslcert" => q.client_cert = Some(PathBuf::from(value)),
                "sslkey" => q.client_key = Some(PathBuf::from(value)),
                "application_name" => q.application_name = Some(value),
                "options" => q.options = Some(value),
                "connect_timeout" => q.connect_timeout = libpq_timeout(&key, &value)?,
                k if k.starts_with("ssl") => {
                    return Err(QueryError::UnsupportedTls(key, PG_TLS_OPTIONS));
                }
                _ => q.ignored.push(key),
            }
        }
        Ok(q)
    }

    /// The sqlx options for `url` (its query replaced by this reading of it).
    pub fn connect_options(&self, url: &url::Url) -> Result<PgConnectOptions, sqlx::Error> {
        let mut base = url.clone();
        base.set_query(None);
        let mut opts: PgConnectOptions = base.as_str().parse()?;
        // libpq: with `require`, a root certificate that is given makes it behave as
        // `verify-ca` ("sslmode=require ... if a root CA file exists").
        let mode = match (self.sslmode, &self.root_cert) {
            (Some(PgTlsMode::Require), Some(_)) => Some(PgTlsMode::VerifyCa),
            (mode, _) => mode,
        };
        if let Some(mode) = mode {
            opts = opts.ssl_mode(mode.to_sqlx());
        }
        if let Some(path) = &self.root_cert {
            opts = opts.ssl_root_cert(path);
        }
        if let Some(path) = &self.client_cert {
            opts = opts.ssl_client_cert(path);
        }
        if let Some(path) = &self.client_key {
            opts = opts.ssl_client_key(path);
        }
        if let Some(name) = &self.application_name {
            opts = opts.application_name(name);
        }
        if let Some(options) = &self.options {
            // libpq's `options` keyword: the `-c name=value` settings, sent at connection start.
            opts = opts.options(libpq_options(options));
        }
        Ok(opts)
    }
}

/// libpq `options` (`-c a=b -c c=d`, or `--a=b`) as key/value pairs for sqlx.
fn libpq_options(options: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next().unwrap_or_default(),
            w => w
                .strip_prefix("-c")
                .or_else(|| w.strip_prefix("--"))
                .unwrap_or(w),
        };
        if let Some((k, v)) = setting.split_once('=') {
            pairs.push((k.replace('-', "_"), v.to_owned()));
        }
    }
    pairs
}

/// libpq `connect_timeout`: whole seconds; 0 or negative waits forever; 1 counts as 2.
fn libpq_timeout(key: &str, value: &str) -> Result<Option<Duration>, QueryError> {
    match value.trim().parse::<i64>() {
        Ok(n) if n <= 0 => Ok(None),
        Ok(n) => Ok(Some(Duration::from_secs(n.max(2) as u64))),
        Err(_) => Err(QueryError::BadValue {
            option: key.to_owned(),
            value: value.to_owned(),
            message: "expected whole seconds",
        }),
    }
}

/// How PyMySQL 1.1.0 sets up TLS from its `ssl_*` arguments (`Connection.__init__` and
/// `_create_ssl_ctx`), reduced to what sqlx can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySqlTlsMode {
    /// No `ssl_*` option, or `ssl_disabled` given: PyMySQL does not use TLS at all.
    Disabled,
    /// TLS when the server offers it, certificate not checked (PyMySQL falls back to plain text
    /// when the server has no TLS, and `ssl_ca` alone does not verify anything).
    Unverified,
    /// The chain is checked (`ssl_verify_cert` true), not the host name.
    VerifyCa,
    /// Chain and host name (`ssl_verify_cert` and `ssl_verify_identity` with a CA).
    VerifyIdentity,
}

/// What a MySQL/MariaDB `DATABASE_URL` query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlQuery {
    pub tls: MySqlTlsMode,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub charset: Option<String>,
    /// PyMySQL `init_command`: run on every new connection.
    pub init_command: Option<String>,
    /// PyMySQL `connect_timeout` (seconds, default 10).
    pub connect_timeout: Option<Duration>,
    pub ignored: Vec<String>,
}

impl MySqlQuery {
    pub fn parse(url: &url::Url) -> Result<MySqlQuery, QueryError> {
        let mut ca = None;
        let mut cert = None;
        let mut key = None;
        let mut verify_cert: Option<String> = None;
        let mut verify_identity: Option<String> = None;
        let mut disabled: Option<String> = None;
        let mut q = MySqlQuery {
            tls: MySqlTlsMode::Disabled,
            ca: None,
            client_cert: None,
            client_key: None,
            charset: None,
            init_command: None,
            connect_timeout: None,
            ignored: Vec::new(),
        };
        for (k, value) in url.query_pairs() {
            let (k, value) = (k.into_owned(), value.into_owned());
            match k.as_str() {
                "ssl_ca" => ca = Some(value),
                "ssl_cert" => cert = Some(value),
                "ssl_key" => key = Some(value),
                "ssl_verify_cert" => verify_cert = Some(value),
                "ssl_verify_identity" => verify_identity = Some(value),
                "ssl_disabled" => disabled = Some(value),
                "charset" => q.charset = Some(value),
                "init_command" => q.init_command = Some(value),
                "connect_timeout" => {
                    q.connect_timeout = match value.trim().parse::<f64>() {
                        Ok(s) if s > 0.0 && s <= 31_536_000.0 => Some(Duration::from_secs_f64(s)),
                        _ => {
                            return Err(QueryError::BadValue {
                                option: k,
                                value,
                                message: "expected seconds above 0 (PyMySQL refuses others)",
                            });
                        }
                    }
                }
                s if s.starts_with("ssl") => {
                    return Err(QueryError::UnsupportedTls(k, MYSQL_TLS_OPTIONS));
                }
                _ => q.ignored.push(k),
            }
        }
        // Every value arrives as a string: Python's truth of a string is "not empty", so
        // `ssl_disabled=0` disables TLS in PyMySQL too.
        let truthy = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        let wants_tls = [&ca, &cert, &key, &verify_cert, &verify_identity]
            .into_iter()
            .any(truthy);
        q.tls = if truthy(&disabled) || !wants_tls {
            MySqlTlsMode::Disabled
        } else {
            let has_ca = ca.is_some();
            // `_create_ssl_ctx`: the string is lowercased and matched; anything else means
            // "verify if a CA was given". (`optional` is `required` on a client socket.)
            let verify = match verify_cert.as_deref().map(str::to_ascii_lowercase) {
                None => false,
                Some(v) => match v.as_str() {
                    "none" | "0" | "false" | "no" => false,
                    "optional" | "required" | "1" | "true" | "yes" => true,
                    _ => has_ca,
                },
            };
            let check_hostname = has_ca && truthy(&verify_identity);
            match (verify, check_hostname) {
                (false, false) => MySqlTlsMode::Unverified,
                (false, true) => {
                    // Python's ssl refuses CERT_NONE with check_hostname: PyMySQL fails here too.
                    return Err(QueryError::BadValue {
                        option: "ssl_verify_identity".into(),
                        value: verify_identity.unwrap_or_default(),
                        message: "needs ssl_verify_cert=true (PyMySQL refuses it without)",
                    });
                }
                (true, false) => MySqlTlsMode::VerifyCa,
                (true, true) => MySqlTlsMode::VerifyIdentity,
            }
        };
        if q.tls != MySqlTlsMode::Disabled {
            q.ca = ca.map(PathBuf::from);
            q.client_cert = cert.map(PathBuf::from);
            q.client_key = key.map(PathBuf::from);
        }
        Ok(q)
    }

    /// The sqlx options for `url` (its query replaced by this reading of it).
    pub fn connect_options(&self, url: &url::Url) -> Result<MySqlConnectOptions, sqlx::Error> {
        let mut base = url.clone();
        base.set_query(None);
        let mut opts: MySqlConnectOptions = base.as_str().parse()?;
        opts = opts.ssl_mode(match self.tls {
            MySqlTlsMode::Disabled => MySqlSslMode::Disabled,
            MySqlTlsMode::Unverified => MySqlSslMode::Preferred,
            MySqlTlsMode::VerifyCa => MySqlSslMode::VerifyCa,
            MySqlTlsMode::VerifyIdentity => MySqlSslMode::VerifyIdentity,
        });
        if let Some(path) = &self.ca {
            opts = opts.ssl_ca(path);
        }
        if let Some(path) = &self.client_cert {
            opts = opts.ssl_client_cert(path);
        }
        if let Some(path) = &self.client_key {
            opts = opts.ssl_client_key(path);
        }
        if let Some(charset) = &self.charset {
            opts = opts.charset(charset);
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(query: &str) -> Result<PgQuery, QueryError> {
        PgQuery::parse(&url::Url::parse(&format!("postgres://u@h/db?{query}")).expect("url"))
    }

    fn my(query: &str) -> Result<MySqlQuery, QueryError> {
        MySqlQuery::parse(&url::Url::parse(&format!("mysql://u@h/db?{query}")).expect("url"))
    }

    #[test]
    fn pg_tls_modes_and_files() {
        assert_eq!(pg("").expect("ok").sslmode, None);
        for (raw, mode) in [
            ("disable", PgTlsMode::Disable),
            ("allow", PgTlsMode::Allow),
            ("prefer", PgTlsMode::Prefer),
            ("require", PgTlsMode::Require),
            ("verify-ca", PgTlsMode::VerifyCa),
            ("verify-full", PgTlsMode::VerifyFull),
        ] {
            assert_eq!(
                pg(&format!("sslmode={raw}")).expect(raw).sslmode,
                Some(mode)
            );
        }
        let q =
            pg("sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem").expect("ok");
        assert_eq!(q.root_cert, Some("/ca.pem".into()));
        assert_eq!(q.client_cert, Some("/c.pem".into()));
        assert_eq!(q.client_key, Some("/k.pem".into()));
        assert_eq!(pg("sslrootcert=system").expect("ok").root_cert, None);
        assert!(matches!(pg("sslmode=on"), Err(QueryError::BadValue { .. })));
    }

    #[test]
    fn pg_unsupported_tls_option_is_named() {
        let err = pg("sslmode=require&sslcrl=/crl.pem").expect_err("unsupported");
        assert!(err.to_string().contains("\"sslcrl\""), "{err}");
        assert!(pg("sslpassword=x").is_err());
    }

    #[test]
    fn pg_other_options() {
        let q = pg("application_name=chat&connect_timeout=1&target_session_attrs=any&options=-c%20search_path%3Dx")
            .expect("ok");
        assert_eq!(q.application_name.as_deref(), Some("chat"));
        assert_eq!(q.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(q.ignored, ["target_session_attrs"]);
        assert_eq!(
            libpq_options(q.options.as_deref().unwrap_or("")),
            [("search_path".to_owned(), "x".to_owned())]
        );
        assert_eq!(pg("connect_timeout=0").expect("ok").connect_timeout, None);
        assert!(pg("connect_timeout=soon").is_err());
    }

    #[test]
    fn pg_require_with_a_root_cert_verifies_the_chain() {
        let url = url::Url::parse("postgres://u@h/db").expect("url");
        let q = pg("sslmode=require&sslrootcert=/ca.pem").expect("ok");
        let opts = q.connect_options(&url).expect("options");
        assert!(matches!(opts.get_ssl_mode(), PgSslMode::VerifyCa));
    }

    #[test]
    fn mysql_follows_pymysql() {
        assert_eq!(my("").expect("ok").tls, MySqlTlsMode::Disabled);
        // ssl_ca alone turns TLS on but verifies nothing (verify_mode defaults to False).
        assert_eq!(
            my("ssl_ca=/ca.pem").expect("ok").tls,
            MySqlTlsMode::Unverified
        );
        assert_eq!(
            my("ssl_ca=/ca.pem&ssl_verify_cert=true").expect("ok").tls,
            MySqlTlsMode::VerifyCa
        );
        assert_eq!(
            my("ssl_ca=/ca.pem&ssl_verify_cert=1&ssl_verify_identity=1")
                .expect("ok")
                .tls,
            MySqlTlsMode::VerifyIdentity
        );
        // Without a CA PyMySQL never checks the host name, but verifies against the system store.
        assert_eq!(
            my("ssl_verify_cert=yes&ssl_verify_identity=true")
                .expect("ok")
                .tls,
            MySqlTlsMode::VerifyCa
        );
        assert_eq!(
            my("ssl_ca=/ca.pem&ssl_verify_cert=maybe").expect("ok").tls,
            MySqlTlsMode::VerifyCa
        );
        assert_eq!(
            my("ssl_verify_cert=false&ssl_cert=/c").expect("ok").tls,
            MySqlTlsMode::Unverified
        );
        // Any non-empty string is true in Python.
        assert_eq!(
            my("ssl_ca=/ca.pem&ssl_verify_cert=true&ssl_disabled=0")
                .expect("ok")
                .tls,
            MySqlTlsMode::Disabled
        );
        assert!(my("ssl_ca=/ca.pem&ssl_verify_identity=1").is_err());
    }

    #[test]
    fn mysql_unsupported_and_other_options() {
        let err = my("ssl_capath=/etc/ssl").expect_err("unsupported");
        assert!(err.to_string().contains("\"ssl_capath\""), "{err}");
        assert!(my("ssl=1").is_err());
        let q = my("charset=utf8mb4&connect_timeout=3&init_command=SET%20x%3D1&autocommit=1")
            .expect("ok");
        assert_eq!(q.charset.as_deref(), Some("utf8mb4"));
        assert_eq!(q.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(q.init_command.as_deref(), Some("SET x=1"));
        assert_eq!(q.ignored, ["autocommit"]);
        assert!(my("connect_timeout=0").is_err());
    }
}
