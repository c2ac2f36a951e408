//! The Host and Origin checks against `ALLOWED_HOSTS`: `django/http/request.py`
//! (`split_domain_port`, `validate_host`) for HTTP requests, and Channels'
//! `AllowedHostsOriginValidator` (`channels/security/websocket.py`, with `urllib.parse`'s
//! `SplitResult.hostname`/`.port`) for the WebSocket handshake.

use super::http::{ParsedUrl, is_same_domain, urlparse};

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

/// `AllowedHostsOriginValidator`: `OriginValidator` over `ALLOWED_HOSTS` (or, with `DEBUG` and
/// an empty list, `localhost`, `127.0.0.1`, `[::1]`). A missing Origin passes only with `*`.
/// Where Python would raise (an unparsable Origin or pattern) the legacy app answers 500;
/// here the Origin is simply not allowed.
pub fn origin_allowed(origin: Option<&str>, allowed_hosts: &[String], debug: bool) -> bool {
    let debug_defaults = [
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
    ];
    let allowed = if debug && allowed_hosts.is_empty() {
        &debug_defaults[..]
    } else {
        allowed_hosts
    };
    let parsed = match origin {
        None => return allowed.iter().any(|p| p == "*"),
        Some(raw) => match urlparse(raw) {
            Ok(parsed) => parsed,
            Err(_) => return false,
        },
    };
    allowed
        .iter()
        .any(|pattern| pattern == "*" || match_allowed_origin(&parsed, pattern))
}

/// `OriginValidator.match_allowed_origin`.
fn match_allowed_origin(origin: &ParsedUrl, pattern: &str) -> bool {
    let Ok(parsed_pattern) = urlparse(&pattern.to_lowercase()) else {
        return false;
    };
    let Some(origin_host) = hostname(&origin.netloc) else {
        return false;
    };
    if parsed_pattern.scheme.is_empty() {
        let pattern_host = match urlparse(&format!("//{pattern}")) {
            Ok(p) => hostname(&p.netloc).unwrap_or_else(|| pattern.to_owned()),
            Err(_) => return false,
        };
        return is_same_domain(&origin_host, &pattern_host);
    }
    let (Ok(origin_port), Ok(pattern_port)) = (default_port(origin), default_port(&parsed_pattern))
    else {
        return false;
    };
    parsed_pattern.scheme == origin.scheme
        && origin_port == pattern_port
        && hostname(&parsed_pattern.netloc).is_some_and(|h| is_same_domain(&origin_host, &h))
}

/// `OriginValidator.get_origin_port`: the explicit port, else 80/443 for http(s)/ws(s).
fn default_port(url: &ParsedUrl) -> Result<Option<u16>, ()> {
    match port(&url.netloc)? {
        Some(p) => Ok(Some(p)),
        None => Ok(match url.scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        }),
    }
}

/// `SplitResult._hostinfo`: (hostname, port) of a netloc, brackets removed.
fn hostinfo(netloc: &str) -> (&str, &str) {
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    match hostinfo.split_once('[') {
        Some((_, bracketed)) => {
            let (host, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, rest.split_once(':').map_or("", |(_, p)| p))
        }
        None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
    }
}

/// `SplitResult.hostname`: lower-cased (not the `%zone`), `None` when empty.
fn hostname(netloc: &str) -> Option<String> {
    let (host, _) = hostinfo(netloc);
    if host.is_empty() {
        return None;
    }
    Some(match host.split_once('%') {
        Some((addr, zone)) => format!("{}%{zone}", addr.to_lowercase()),
        None => host.to_lowercase(),
    })
}

/// `SplitResult.port`: ASCII digits in 0..=65535, or Python's `ValueError`.
fn port(netloc: &str) -> Result<Option<u16>, ()> {
    let (_, port) = hostinfo(netloc);
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let digits = port.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(());
    }
    digits
        .parse::<u32>()
        .map_or(Ok(Some(0)), |p| u16::try_from(p).map(Some).map_err(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

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

    #[test]
    fn origin_host_part_only_as_channels() {
        let allowed = hosts(&["localhost", "127.0.0.1"]);
        for ok in [
            "http://localhost:8000",
            "https://localhost",
            "http://127.0.0.1:1234",
            "http://LOCALHOST:8000",
            "ws://user:pw@localhost:9",
            "ftp://localhost",
            "http://localhost:notaport",
        ] {
            assert!(origin_allowed(Some(ok), &allowed, false), "{ok}");
        }
        for bad in [
            "http://evil.com",
            "null",
            "localhost",
            "http://localhost.evil.com",
            "http://[::1]:80",
            "http://[::1",
            "",
        ] {
            assert!(!origin_allowed(Some(bad), &allowed, false), "{bad}");
        }
        assert!(
            !origin_allowed(None, &allowed, false),
            "a missing Origin needs *"
        );
    }

    #[test]
    fn wildcards_subdomains_ipv6_and_schemes() {
        assert!(origin_allowed(None, &hosts(&["*"]), false));
        assert!(origin_allowed(Some("http://x"), &hosts(&["a", "*"]), false));
        let sub = hosts(&[".example.com"]);
        assert!(origin_allowed(
            Some("https://chat.example.com"),
            &sub,
            false
        ));
        assert!(origin_allowed(Some("https://example.com"), &sub, false));
        assert!(!origin_allowed(Some("https://badexample.com"), &sub, false));
        assert!(origin_allowed(
            Some("http://[::1]:8000"),
            &hosts(&["[::1]"]),
            false
        ));
        // With DEBUG and no hosts, Channels' own defaults (not Django's ".localhost").
        assert!(origin_allowed(Some("http://[::1]:8000"), &[], true));
        assert!(!origin_allowed(Some("http://a.localhost"), &[], true));
        assert!(!origin_allowed(Some("http://localhost"), &[], false));
        // A pattern with a scheme compares scheme and port too.
        let with_scheme = hosts(&["https://chat.example.com"]);
        assert!(origin_allowed(
            Some("https://chat.example.com:443"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("http://chat.example.com"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("https://chat.example.com:8443"),
            &with_scheme,
            false
        ));
        assert!(!origin_allowed(
            Some("https://chat.example.com:99999"),
            &with_scheme,
            false
        ));
    }

    #[test]
    fn python_port_rules() {
        assert_eq!(port("h:0080"), Ok(Some(80)));
        assert_eq!(port("h:"), Ok(None));
        assert_eq!(port("h:65536"), Err(()));
        assert_eq!(port("h:8a"), Err(()));
        assert_eq!(port("[::1]:443"), Ok(Some(443)));
        assert_eq!(
            hostname("u@[FE80::1%Zone]:1").as_deref(),
            Some("fe80::1%Zone")
        );
        assert_eq!(hostname(":80"), None);
    }
}
