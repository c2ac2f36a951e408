//! `DATABASE_URL` parsed with the dj-database-url rules the legacy `settings.py` implements.

use std::path::{Path, PathBuf};

use super::options::{MySqlQuery, PgQuery, QueryError};
use crate::django::http::unquote;
use crate::secret::redact_url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatabaseUrlError {
    #[error("{0:?} is not a URL (expected sqlite:///path, postgres://… or mysql://…)")]
    NotAUrl(String),
    #[error("unsupported scheme {0:?} (expected sqlite, postgres, postgresql, pgsql or mysql)")]
    UnsupportedScheme(String),
    #[error("{0:?} names no database")]
    NoDatabaseName(String),
    /// A query option the legacy driver would read differently, or a TLS option not supported.
    #[error("{0}")]
    Query(#[from] QueryError),
}

/// Where the data lives. Network URLs keep their credentials and query (e.g. `?sslmode=`) for sqlx.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf },
    SqliteMemory,
    Postgres { url: String },
    MySql { url: String },
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl DatabaseUrl {
    /// `sqlite:///db.sqlite3` is relative to `base_dir`, `sqlite:////abs/path` absolute,
    /// `sqlite://:memory:` (or an empty path) in memory.
    pub fn parse(raw: &str, base_dir: &Path) -> Result<DatabaseUrl, DatabaseUrlError> {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(DatabaseUrlError::NotAUrl(raw.to_owned()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                // rest = "<netloc>/<path>"; the slash after the netloc separates it from the path.
                let (netloc, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                if netloc == ":memory:" || path.is_empty() || path == "/" || path == "/:memory:" {
                    return Ok(DatabaseUrl::SqliteMemory);
                }
                let path = path.split(['?', '#']).next().unwrap_or_default();
                let decoded = unquote(&path[1..]);
                let path = PathBuf::from(decoded);
                let path = if path.is_absolute() {
                    path
                } else {
                    base_dir.join(path)
                };
                Ok(DatabaseUrl::Sqlite { path })
            }
            "postgres" | "postgresql" | "pgsql" => {
                let url = url::Url::parse(&format!("postgres://{rest}"))
                    .map_err(|_| DatabaseUrlError::NotAUrl(raw.to_owned()))?;
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(DatabaseUrlError::NoDatabaseName(raw.to_owned()));
                }
                PgQuery::parse(&url)?;
                Ok(DatabaseUrl::Postgres {
                    url: url.to_string(),
                })
            }
            "mysql" => {
                let url = url::Url::parse(&format!("mysql://{rest}"))
                    .map_err(|_| DatabaseUrlError::NotAUrl(raw.to_owned()))?;
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(DatabaseUrlError::NoDatabaseName(raw.to_owned()));
                }
                MySqlQuery::parse(&url)?;
                Ok(DatabaseUrl::MySql {
                    url: url.to_string(),
                })
            }
            other => Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// The URL with any password replaced by `***`, for logs and `check`.
    pub fn redacted(&self) -> String {
        match self {
            // `sqlite:///` + the path: an absolute path then reads `sqlite:////abs`, as it must.
            DatabaseUrl::Sqlite { path } => format!("sqlite:///{}", path.display()),
            DatabaseUrl::SqliteMemory => "sqlite://:memory:".to_owned(),
            DatabaseUrl::Postgres { url } | DatabaseUrl::MySql { url } => redact_url(url),
        }
    }

    /// Short backend name as Django's `vendor`: sqlite, postgresql, mysql.
    pub fn vendor(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite { .. } | DatabaseUrl::SqliteMemory => "sqlite",
            DatabaseUrl::Postgres { .. } => "postgresql",
            DatabaseUrl::MySql { .. } => "mysql",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        DatabaseUrl::parse(raw, Path::new("/srv/app"))
    }

    #[test]
    fn sqlite_relative_absolute_and_memory() {
        assert_eq!(
            parse("sqlite:///db.sqlite3"),
            Ok(DatabaseUrl::Sqlite {
                path: "/srv/app/db.sqlite3".into()
            })
        );
        assert_eq!(
            parse("sqlite:///data/my%20db.sqlite3"),
            Ok(DatabaseUrl::Sqlite {
                path: "/srv/app/data/my db.sqlite3".into()
            })
        );
        assert_eq!(
            parse("sqlite:////tmp/x.sqlite3"),
            Ok(DatabaseUrl::Sqlite {
                path: "/tmp/x.sqlite3".into()
            })
        );
        assert_eq!(
            parse("sqlite:////tmp/x.sqlite3").expect("ok").redacted(),
            "sqlite:////tmp/x.sqlite3",
            "an absolute path must read back as absolute"
        );
        assert_eq!(parse("sqlite://:memory:"), Ok(DatabaseUrl::SqliteMemory));
        assert_eq!(parse("sqlite://"), Ok(DatabaseUrl::SqliteMemory));
    }

    #[test]
    fn network_databases() {
        assert!(matches!(
            parse("postgres://postgres@127.0.0.1:5432/test"),
            Ok(DatabaseUrl::Postgres { .. })
        ));
        assert!(matches!(
            parse("pgsql://u:p@h/db"),
            Ok(DatabaseUrl::Postgres { .. })
        ));
        assert!(matches!(
            parse("mysql://root@127.0.0.1:3306/test"),
            Ok(DatabaseUrl::MySql { .. })
        ));
        assert_eq!(
            parse("postgres://u:secret@h/db").expect("ok").redacted(),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse("db.sqlite3"),
            Err(DatabaseUrlError::NotAUrl(_))
        ));
        assert!(matches!(
            parse("oracle://h/db"),
            Err(DatabaseUrlError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse("postgres://h"),
            Err(DatabaseUrlError::NoDatabaseName(_))
        ));
        let err = parse("postgres://h/db?sslmode=require&sslcrl=/x").expect_err("unsupported");
        assert!(err.to_string().contains("sslcrl"), "{err}");
        let err = parse("mysql://h/db?ssl_mode=REQUIRED").expect_err("unsupported");
        assert!(err.to_string().contains("ssl_mode"), "{err}");
    }
}
