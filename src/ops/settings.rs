//! The operators' variables (`FERROCHAT_METRICS_ADDR`, `FERROCHAT_LOG_FORMAT`, the proxy and
//! TLS settings, the connection and message limits), parsed once; `config::Settings` holds the
//! result.

use std::net::SocketAddr;

use super::logging::{LOG_FORMAT_VAR, LogFormat};
use super::proxies::{TRUSTED_PROXIES_VAR, TrustedProxies};
use super::rate::{Rate, WS_RATE_VAR};
use super::tls_proxy::{SECURE_PROXY_SSL_HEADER_VAR, SecureProxySslHeader, TlsProxySettings};

/// A bad operator variable, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct OpsConfigError {
    pub var: &'static str,
    pub message: String,
}

impl OpsConfigError {
    pub fn new(var: &'static str, message: String) -> OpsConfigError {
        OpsConfigError { var, message }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsSettings {
    /// `FERROCHAT_METRICS_ADDR`: where `/metrics` listens; unset, nowhere.
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub trusted_proxies: TrustedProxies,
    pub tls_proxy: TlsProxySettings,
    /// `FERROCHAT_MAX_CONNECTIONS`: open WebSockets of this process.
    pub max_connections: Option<usize>,
    /// `FERROCHAT_MAX_CONNECTIONS_PER_USER`: open WebSockets of one user on this process.
    pub max_connections_per_user: Option<usize>,
    /// `FERROCHAT_WS_RATE`: messages per second (and burst) one socket may send.
    pub ws_rate: Option<Rate>,
}

/// Django's boolean settings written as environment values (`settings.py`'s `env_bool` rule).
fn flag(get: &impl Fn(&str) -> Option<String>, var: &str) -> bool {
    get(var).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn count(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<usize>, OpsConfigError> {
    match get(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(OpsConfigError::new(
                var,
                format!("expected a number of connections of 1 or more, got {v:?}"),
            )),
        },
    }
}

impl OpsSettings {
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<OpsSettings, OpsConfigError> {
        let non_empty = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        let metrics_addr = match non_empty("FERROCHAT_METRICS_ADDR") {
            None => None,
            Some(v) => Some(v.trim().parse::<SocketAddr>().map_err(|_| {
                OpsConfigError::new(
                    "FERROCHAT_METRICS_ADDR",
                    format!("expected an address and port such as 127.0.0.1:9100, got {v:?}"),
                )
            })?),
        };
        Ok(OpsSettings {
            metrics_addr,
            log_format: LogFormat::parse(get(LOG_FORMAT_VAR).as_deref())?,
            trusted_proxies: TrustedProxies::parse(&get(TRUSTED_PROXIES_VAR).unwrap_or_default())?,
            tls_proxy: TlsProxySettings {
                secure_proxy_ssl_header: non_empty(SECURE_PROXY_SSL_HEADER_VAR)
                    .map(|v| SecureProxySslHeader::parse(&v))
                    .transpose()?,
                use_x_forwarded_host: flag(&get, "FERROCHAT_USE_X_FORWARDED_HOST"),
                session_cookie_secure: flag(&get, "FERROCHAT_SESSION_COOKIE_SECURE"),
                csrf_cookie_secure: flag(&get, "FERROCHAT_CSRF_COOKIE_SECURE"),
            },
            max_connections: count(&get, "FERROCHAT_MAX_CONNECTIONS")?,
            max_connections_per_user: count(&get, "FERROCHAT_MAX_CONNECTIONS_PER_USER")?,
            ws_rate: non_empty(WS_RATE_VAR)
                .map(|v| Rate::parse(&v))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<OpsSettings, OpsConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OpsSettings::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn unset_means_off() {
        assert_eq!(parse(&[]).expect("defaults"), OpsSettings::default());
    }

    #[test]
    fn values_parse_and_bad_ones_name_their_variable() {
        let s = parse(&[
            ("FERROCHAT_METRICS_ADDR", "127.0.0.1:9100"),
            ("FERROCHAT_MAX_CONNECTIONS", "100"),
            ("FERROCHAT_MAX_CONNECTIONS_PER_USER", "3"),
            ("FERROCHAT_WS_RATE", "5,10"),
            ("FERROCHAT_SESSION_COOKIE_SECURE", "True"),
            ("FERROCHAT_USE_X_FORWARDED_HOST", "1"),
        ])
        .expect("parse");
        assert_eq!(
            s.metrics_addr,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
        assert_eq!(s.max_connections, Some(100));
        assert_eq!(s.max_connections_per_user, Some(3));
        assert_eq!(s.ws_rate.map(|r| r.burst), Some(10));
        assert!(s.tls_proxy.session_cookie_secure && s.tls_proxy.use_x_forwarded_host);
        assert!(!s.tls_proxy.csrf_cookie_secure);
        for (var, bad) in [
            ("FERROCHAT_METRICS_ADDR", "9100"),
            ("FERROCHAT_MAX_CONNECTIONS", "0"),
            ("FERROCHAT_MAX_CONNECTIONS_PER_USER", "x"),
            ("FERROCHAT_LOG_FORMAT", "yaml"),
        ] {
            let err = parse(&[(var, bad)]).expect_err(var);
            assert_eq!(err.var, var);
        }
    }
}
