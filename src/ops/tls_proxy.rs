//! Django's settings for running behind a TLS-terminating proxy, as `FERROCHAT_` variables
//! (the legacy `settings.py` does not read them from the environment):
//! `SECURE_PROXY_SSL_HEADER`, `USE_X_FORWARDED_HOST`, `SESSION_COOKIE_SECURE` and
//! `CSRF_COOKIE_SECURE`. `is_secure` is `HttpRequest.scheme` (django/http/request.py).

use super::settings::OpsConfigError;

pub const SECURE_PROXY_SSL_HEADER_VAR: &str = "FERROCHAT_SECURE_PROXY_SSL_HEADER";

/// `SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")`: the HTTP header it names
/// (lower case, as `http` stores names) and the value that means HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureProxySslHeader {
    pub header: String,
    pub value: String,
}

impl SecureProxySslHeader {
    /// `HTTP_X_FORWARDED_PROTO,https`: a `META` key of an HTTP header, a comma, the value.
    pub fn parse(raw: &str) -> Result<SecureProxySslHeader, OpsConfigError> {
        let bad = |why: &str| {
            OpsConfigError::new(
                SECURE_PROXY_SSL_HEADER_VAR,
                format!("{why} (expected e.g. HTTP_X_FORWARDED_PROTO,https), got {raw:?}"),
            )
        };
        let (key, value) = raw
            .split_once(',')
            .ok_or_else(|| bad("a META key and a value separated by a comma"))?;
        let (key, value) = (key.trim(), value.trim());
        let name = key
            .strip_prefix("HTTP_")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .ok_or_else(|| bad("the key must be HTTP_ and a header name in capitals"))?;
        if value.is_empty() || value.contains(',') {
            return Err(bad("the value must be one token"));
        }
        Ok(SecureProxySslHeader {
            header: name.replace('_', "-").to_ascii_lowercase(),
            value: value.to_owned(),
        })
    }
}

/// What the TLS-proxy settings say about one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsProxySettings {
    pub secure_proxy_ssl_header: Option<SecureProxySslHeader>,
    pub use_x_forwarded_host: bool,
    pub session_cookie_secure: bool,
    pub csrf_cookie_secure: bool,
}

impl TlsProxySettings {
    /// `HttpRequest.scheme == "https"`: the configured header, when the request has it, decides
    /// (its first comma-separated value against the secure value); otherwise the connection's
    /// own scheme (`fallback_secure`: what a trusted proxy's `X-Forwarded-Proto` said, as Daphne's
    /// `--proxy-headers` puts into the ASGI scope).
    pub fn is_secure(&self, header_value: Option<&str>, fallback_secure: bool) -> bool {
        match (&self.secure_proxy_ssl_header, header_value) {
            (Some(setting), Some(v)) => v.split(',').next().unwrap_or("").trim() == setting.value,
            _ => fallback_secure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses_as_django_reads_it() {
        let h = SecureProxySslHeader::parse("HTTP_X_FORWARDED_PROTO,https").expect("parse");
        assert_eq!(h.header, "x-forwarded-proto");
        assert_eq!(h.value, "https");
        for bad in [
            "X_FORWARDED_PROTO,https",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_,https",
            "HTTP_A,",
        ] {
            let err = SecureProxySslHeader::parse(bad).expect_err(bad);
            assert!(
                err.to_string().starts_with(SECURE_PROXY_SSL_HEADER_VAR),
                "{err}"
            );
        }
    }

    #[test]
    fn scheme_as_django() {
        let s = TlsProxySettings {
            secure_proxy_ssl_header: Some(SecureProxySslHeader {
                header: "x-forwarded-proto".into(),
                value: "https".into(),
            }),
            ..TlsProxySettings::default()
        };
        assert!(s.is_secure(Some("https"), false));
        assert!(s.is_secure(Some("https, http"), false));
        assert!(!s.is_secure(Some("http, https"), true));
        assert!(!s.is_secure(Some("HTTPS"), false));
        // Absent header: the connection's own scheme.
        assert!(!s.is_secure(None, false));
        assert!(s.is_secure(None, true));
        let unset = TlsProxySettings::default();
        assert!(!unset.is_secure(Some("https"), false));
    }
}
