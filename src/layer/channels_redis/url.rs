//! Redis URLs read as redis-py 5.0.1 reads them (channels_redis hands each host string to
//! `ConnectionPool.from_url`), so one URL behaves alike on Django and ferrochat: `rediss://` with
//! `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs=none|optional|required` and
//! `ssl_check_hostname`, with redis-py's defaults: the chain is verified, the host name only with
//! `ssl_check_hostname=true`. A `db` query argument wins over the path, as in `parse_url`.
//!
//! Use [`client`] (or [`RedisUrl::client`]) for every Redis connection ferrochat makes.

use std::fmt;

use redis::{Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::secret::redact_url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisUrlError {
    #[error("{url:?} is not a usable Redis URL: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "{url:?}: the TLS option {option:?} is not supported by ferrochat (supported: \
         ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname)"
    )]
    UnsupportedTls { url: String, option: String },
    #[error("{url:?}: {option}: {reason}")]
    BadOption {
        url: String,
        option: &'static str,
        reason: String,
    },
}

/// redis-py's `ssl_cert_reqs`; `optional` is `required` on a client socket (Python's ssl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertReqs {
    None,
    Optional,
    Required,
}

/// The TLS part of a `rediss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTls {
    pub cert_reqs: CertReqs,
    pub check_hostname: bool,
    pub ca_certs: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
}

/// A parsed Redis URL: where to connect and how, ready to build clients.
#[derive(Clone)]
pub struct RedisUrl {
    info: ConnectionInfo,
    redacted: String,
    tls: Option<RedisTls>,
    /// redis-py query arguments ferrochat does not use (`socket_timeout`, …).
    ignored: Vec<String>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("url", &self.redacted)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A client for `url`, with its TLS settings: the one way ferrochat opens Redis.
pub fn client(url: &str) -> Result<Client, RedisUrlError> {
    RedisUrl::parse(url)?.client()
}

/// redis-py `to_bool`: empty is unset, `0 F FALSE N NO` (any case) false, anything else true.
fn py_bool(value: &str) -> Option<bool> {
    if value.is_empty() {
        return None;
    }
    Some(!matches!(
        value.to_ascii_uppercase().as_str(),
        "0" | "F" | "FALSE" | "N" | "NO"
    ))
}

impl RedisUrl {
    /// Parses `raw` and reads any certificate files it names (so a missing file fails at startup).
    pub fn parse(raw: &str) -> Result<RedisUrl, RedisUrlError> {
        let raw = raw.trim();
        let redacted = redact_url(raw);
        let invalid = |reason: String| RedisUrlError::Invalid {
            url: redacted.clone(),
            reason,
        };
        let mut url = url::Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
        let scheme = url.scheme().to_owned();
        if !matches!(scheme.as_str(), "redis" | "rediss" | "unix" | "redis+unix") {
            return Err(invalid(format!(
                "unsupported scheme {scheme:?} (expected redis, rediss or unix)"
            )));
        }
        let mut tls = RedisTls {
            cert_reqs: CertReqs::Required,
            check_hostname: false,
            ca_certs: None,
            certfile: None,
            keyfile: None,
        };
        let mut db = None;
        let mut ignored = Vec::new();
        let mut ssl_options = Vec::new();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for (key, value) in pairs {
            // parse_qs drops empty values.
            if value.is_empty() {
                continue;
            }
            if key.starts_with("ssl_") {
                ssl_options.push(key.clone());
            }
            match key.as_str() {
                "ssl_ca_certs" => tls.ca_certs = Some(value),
                "ssl_certfile" => tls.certfile = Some(value),
                "ssl_keyfile" => tls.keyfile = Some(value),
                "ssl_cert_reqs" => {
                    tls.cert_reqs = match value.as_str() {
                        "none" => CertReqs::None,
                        "optional" => CertReqs::Optional,
                        "required" => CertReqs::Required,
                        _ => {
                            return Err(RedisUrlError::BadOption {
                                url: redacted,
                                option: "ssl_cert_reqs",
                                reason: format!(
                                    "expected none, optional or required, got {value:?}"
                                ),
                            });
                        }
                    }
                }
                "ssl_check_hostname" => tls.check_hostname = py_bool(&value).unwrap_or(false),
                "db" => {
                    db = Some(value.parse::<i64>().map_err(|_| RedisUrlError::BadOption {
                        url: redacted.clone(),
                        option: "db",
                        reason: format!("expected a database number, got {value:?}"),
                    })?)
                }
                k if k.starts_with("ssl") => {
                    return Err(RedisUrlError::UnsupportedTls {
                        url: redacted,
                        option: key,
                    });
                }
                _ => ignored.push(key),
            }
        }
        let is_tls = scheme == "rediss";
        if !is_tls && let Some(option) = ssl_options.first() {
            // redis-py's plain Connection takes no ssl_* argument (TypeError at connect).
            return Err(RedisUrlError::BadOption {
                url: redacted,
                option: "ssl_*",
                reason: format!("{option} needs a rediss:// URL"),
            });
        }
        if is_tls && tls.cert_reqs == CertReqs::None && tls.check_hostname {
            // Python's ssl refuses check_hostname without verification.
            return Err(RedisUrlError::BadOption {
                url: redacted,
                option: "ssl_check_hostname",
                reason: "cannot be true with ssl_cert_reqs=none".into(),
            });
        }
        url.set_query(None);
        url.set_fragment(None);
        if let Some(db) = db {
            url.set_path(&format!("/{db}"));
        }
        let mut info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(e.to_string()))?;
        if is_tls {
            info = with_tls(info, &tls).map_err(invalid)?;
        }
        Ok(RedisUrl {
            info,
            redacted,
            tls: is_tls.then_some(tls),
            ignored,
        })
    }

    /// A new client (cheap: no connection is made until one is asked for).
    pub fn client(&self) -> Result<Client, RedisUrlError> {
        Client::open(self.info.clone()).map_err(|e| RedisUrlError::Invalid {
            url: self.redacted.clone(),
            reason: e.to_string(),
        })
    }

    /// The same database, credentials and TLS settings at another address: the master a
    /// Sentinel names. The certificate's host name, when checked, is checked against `host`.
    pub fn at(&self, host: &str, port: u16) -> RedisUrl {
        let addr = match self.info.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        let mut redacted = url::Url::parse(&self.redacted).ok();
        if let Some(u) = redacted.as_mut() {
            let _ = u.set_host(Some(host));
            let _ = u.set_port(Some(port));
        }
        RedisUrl {
            info: self.info.clone().set_addr(addr),
            redacted: redacted.map_or_else(|| format!("{host}:{port}"), |u| u.to_string()),
            tls: self.tls.clone(),
            ignored: self.ignored.clone(),
        }
    }

    /// The URL with its password masked.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_ref()
    }

    /// The database number (path or `db` argument).
    pub fn db(&self) -> i64 {
        self.info.redis_settings().db()
    }

    /// redis-py query arguments that have no meaning here; named once at startup.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }
}

fn read(what: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {path:?}: {e}"))
}

/// Applies redis-py's TLS meaning to a `rediss://` connection.
fn with_tls(info: ConnectionInfo, tls: &RedisTls) -> Result<ConnectionInfo, String> {
    if tls.cert_reqs == CertReqs::None {
        // CERT_NONE: encrypted, nothing verified (redis-rs' "insecure" mode).
        let addr = match info.addr().clone() {
            ConnectionAddr::TcpTls { host, port, .. } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: true,
                tls_params: None,
            },
            other => other,
        };
        return Ok(info.set_addr(addr));
    }
    let root_cert = tls
        .ca_certs
        .as_deref()
        .map(|p| read("ssl_ca_certs", p))
        .transpose()?;
    // `load_cert_chain(certfile, keyfile=None)` reads the key from the certificate file.
    let client_tls = match (&tls.certfile, &tls.keyfile) {
        (Some(cert), key) => Some(ClientTlsConfig {
            client_cert: read("ssl_certfile", cert)?,
            client_key: read("ssl_keyfile", key.as_deref().unwrap_or(cert))?,
        }),
        (None, Some(_)) => return Err("ssl_keyfile needs ssl_certfile".into()),
        (None, None) => None,
    };
    let info = if root_cert.is_some() || client_tls.is_some() {
        let certs = redis::TlsCertificates {
            client_tls,
            root_cert,
        };
        Client::build_with_tls(info, certs)
            .map_err(|e| e.to_string())?
            .get_connection_info()
            .clone()
    } else {
        info
    };
    let mut addr = info.addr().clone();
    // redis-py's default: the chain is verified, the host name is not.
    addr.set_danger_accept_invalid_hostnames(!tls.check_hostname);
    Ok(info.set_addr(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_pass_through_with_db_from_the_query() {
        let u = RedisUrl::parse("redis://:pw@h:6380/2").expect("ok");
        assert_eq!(u.db(), 2);
        assert!(u.tls().is_none());
        assert_eq!(u.redacted(), "redis://:***@h:6380/2");
        let u = RedisUrl::parse("redis://h:6380/2?db=5&socket_timeout=3").expect("ok");
        assert_eq!(u.db(), 5);
        assert_eq!(u.ignored(), ["socket_timeout"]);
    }

    #[test]
    fn rediss_defaults_verify_the_chain_not_the_name() {
        let u = RedisUrl::parse("rediss://h:6380/0").expect("ok");
        let tls = u.tls().expect("tls");
        assert_eq!(tls.cert_reqs, CertReqs::Required);
        assert!(!tls.check_hostname);
        let u = RedisUrl::parse("rediss://h/0?ssl_cert_reqs=none").expect("ok");
        assert!(matches!(
            u.info.addr(),
            ConnectionAddr::TcpTls { insecure: true, .. }
        ));
        let u = RedisUrl::parse("rediss://h/0?ssl_check_hostname=True").expect("ok");
        assert!(u.tls().expect("tls").check_hostname);
        let u = RedisUrl::parse("rediss://h/0?ssl_check_hostname=no").expect("ok");
        assert!(!u.tls().expect("tls").check_hostname);
    }

    #[test]
    fn errors_name_the_option() {
        let err = RedisUrl::parse("rediss://h/0?ssl_ca_path=/etc/ssl").expect_err("unsupported");
        assert!(err.to_string().contains("\"ssl_ca_path\""), "{err}");
        let err = RedisUrl::parse("rediss://h/0?ssl_cert_reqs=sometimes").expect_err("bad");
        assert!(err.to_string().contains("ssl_cert_reqs"), "{err}");
        let err = RedisUrl::parse("redis://h/0?ssl_cert_reqs=none").expect_err("not TLS");
        assert!(err.to_string().contains("rediss://"), "{err}");
        let err = RedisUrl::parse("rediss://h/0?ssl_ca_certs=/no/such/ca.pem").expect_err("file");
        assert!(err.to_string().contains("/no/such/ca.pem"), "{err}");
        assert!(RedisUrl::parse("rediss://h/0?ssl_cert_reqs=none&ssl_check_hostname=1").is_err());
        assert!(RedisUrl::parse("http://h/0").is_err());
        assert!(RedisUrl::parse("redis://:pw@h/0?db=x").is_err());
    }

    #[test]
    fn another_address_keeps_db_password_and_tls() {
        let u =
            RedisUrl::parse("rediss://:pw@sentinel-named:6380/3?ssl_cert_reqs=none").expect("ok");
        let m = u.at("10.0.0.7", 6390);
        assert_eq!(m.db(), 3);
        assert_eq!(
            m.redacted(),
            "rediss://:***@10.0.0.7:6390/3?ssl_cert_reqs=none"
        );
        assert!(matches!(
            m.info.addr(),
            ConnectionAddr::TcpTls {
                insecure: true,
                port: 6390,
                ..
            }
        ));
        assert_eq!(
            m.info.redis_settings().password(),
            u.info.redis_settings().password()
        );
    }
}
