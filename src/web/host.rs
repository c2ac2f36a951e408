//! `HttpRequest.get_host()`: the Host header checked against `ALLOWED_HOSTS` (CommonMiddleware
//! asks for it on every request, so a foreign Host is a 400 before anything else runs).

use salvo::http::header::HOST;
use salvo::prelude::*;

use crate::django::http::is_same_domain;

use super::errors::bad_request;
use super::{BeforeXFrameOptions, app_state};

/// Django's `host_validation_re`, applied to the lower-cased Host; returns (domain, port) with a
/// trailing dot removed, or `None` for a host that is not a valid name or bracketed IPv6 address.
pub fn split_domain_port(host: &str) -> Option<(String, String)> {
    let host = host.to_ascii_lowercase();
    let (domain, rest) = if let Some(bracketed) = host.strip_prefix('[') {
        let end = bracketed.find(']')?;
        let inner = &bracketed[..end];
        let ipv6_chars = inner
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !inner.contains(':') || !ipv6_chars {
            return None;
        }
        (format!("[{inner}]"), &bracketed[end + 1..])
    } else {
        let end = host.find(':').unwrap_or(host.len());
        let name = &host[..end];
        let name_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if name.is_empty() || !name_chars {
            return None;
        }
        (name.to_owned(), &host[end..])
    };
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => String::new(),
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.to_owned(),
        _ => return None,
    };
    let domain = domain
        .strip_suffix('.')
        .map(str::to_owned)
        .unwrap_or(domain);
    Some((domain, port))
}

/// `validate_host`: `*` matches anything, `.example.com` a domain and its subdomains.
pub fn host_allowed(domain: &str, allowed_hosts: &[String], debug: bool) -> bool {
    let defaults = [
        ".localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
    ];
    let allowed = if debug && allowed_hosts.is_empty() {
        &defaults[..]
    } else {
        allowed_hosts
    };
    allowed
        .iter()
        .any(|pattern| pattern == "*" || is_same_domain(domain, pattern))
}

/// The request's Host if it is allowed (`get_host()`), else `None`.
pub fn allowed_host(req: &Request, allowed_hosts: &[String], debug: bool) -> Option<String> {
    let raw = req.headers().get(HOST).and_then(|v| v.to_str().ok())?;
    let (domain, _) = split_domain_port(raw)?;
    host_allowed(&domain, allowed_hosts, debug).then(|| raw.to_owned())
}

/// Rejects a request whose Host is not allowed with 400, as Django's `DisallowedHost` does.
#[handler]
pub async fn host_hoop(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let Ok(state) = app_state(depot) else {
        return;
    };
    if allowed_host(req, &state.settings.allowed_hosts, state.settings.debug).is_none() {
        let raw = req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::warn!(target: "django.security.DisallowedHost", host = raw, "Invalid HTTP_HOST header");
        bad_request(res);
        depot.insert_typed(BeforeXFrameOptions);
        ctrl.skip_rest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_django() {
        assert_eq!(
            split_domain_port("Example.COM:8000"),
            Some(("example.com".into(), "8000".into()))
        );
        assert_eq!(
            split_domain_port("example.com."),
            Some(("example.com".into(), "".into()))
        );
        assert_eq!(
            split_domain_port("[::1]:80"),
            Some(("[::1]".into(), "80".into()))
        );
        assert_eq!(split_domain_port("exa mple.com"), None);
        assert_eq!(split_domain_port("example.com:abc"), None);
        assert_eq!(split_domain_port(""), None);
    }

    #[test]
    fn allowed_hosts_patterns() {
        let allowed = vec!["localhost".to_owned(), ".example.com".to_owned()];
        assert!(host_allowed("localhost", &allowed, false));
        assert!(host_allowed("example.com", &allowed, false));
        assert!(host_allowed("chat.example.com", &allowed, false));
        assert!(!host_allowed("evil.com", &allowed, false));
        assert!(host_allowed("anything", &["*".to_owned()], false));
        assert!(host_allowed("x.localhost", &[], true));
        assert!(!host_allowed("x.localhost", &[], false));
    }
}
