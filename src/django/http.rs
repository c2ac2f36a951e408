//! `django/utils/http.py` (`is_same_domain`, `url_has_allowed_host_and_scheme`) and the part
//! of Python 3.11's `urllib.parse` (`urlsplit`, `urlparse`, `geturl`, `quote`, `unquote`) they
//! and the rest of ferrochat rely on.

use std::net::{IpAddr, Ipv6Addr};

use unicode_normalization::UnicodeNormalization;

use super::pyunicode;

/// `urllib.parse.uses_netloc`.
const USES_NETLOC: &[&str] = &[
    "", "ftp", "http", "gopher", "nntp", "telnet", "imap", "wais", "file", "mms", "https", "shttp",
    "snews", "prospero", "rtsp", "rtsps", "rtspu", "rsync", "svn", "svn+ssh", "sftp", "nfs", "git",
    "git+ssh", "ws", "wss",
];

/// `urllib.parse.uses_params`.
const USES_PARAMS: &[&str] = &[
    "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtsps", "rtspu",
    "sip", "sips", "mms", "sftp", "tel",
];

/// `urllib.parse.quote(s, safe)`: UTF-8 bytes, `%XX` in upper case; letters, digits and `_.-~`
/// are always safe.
pub fn quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &byte in s.as_bytes() {
        if byte.is_ascii_alphanumeric()
            || b"_.-~".contains(&byte)
            || safe.as_bytes().contains(&byte)
        {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// `urllib.parse.unquote`: `%XX` sequences to bytes (others kept as they are), then UTF-8 with
/// replacement characters.
pub fn unquote(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits make one byte: hi * 16 + lo <= 255.
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `ValueError`s `urlsplit` raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Unbalanced `[` / `]` in the netloc, or a bracketed host that is not IPv6/IPvFuture.
    #[error("Invalid IPv6 URL")]
    InvalidIpv6,
    /// `_checknetloc`: NFKC turns a netloc character into `/?#@:`.
    #[error("netloc contains invalid characters under NFKC normalization")]
    NfkcNetloc,
}

/// `urlparse(url)`'s six fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedUrl {
    /// Lower-cased scheme, or empty.
    pub scheme: String,
    /// `host[:port]` with any userinfo, or empty.
    pub netloc: String,
    /// Path (without `;params` when the scheme uses them).
    pub path: String,
    /// `;params` of the last path segment.
    pub params: String,
    /// After `?`.
    pub query: String,
    /// After `#`.
    pub fragment: String,
}

impl ParsedUrl {
    /// `ParseResult.geturl()` = `urlunparse(self)`.
    pub fn geturl(&self) -> String {
        let mut url = self.path.clone();
        if !self.params.is_empty() {
            url = format!("{url};{}", self.params);
        }
        if !self.netloc.is_empty()
            || (!self.scheme.is_empty()
                && USES_NETLOC.contains(&self.scheme.as_str())
                && !url.starts_with("//"))
        {
            if !url.is_empty() && !url.starts_with('/') {
                url.insert(0, '/');
            }
            url = format!("//{}{url}", self.netloc);
        }
        if !self.scheme.is_empty() {
            url = format!("{}:{url}", self.scheme);
        }
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&self.query);
        }
        if !self.fragment.is_empty() {
            url.push('#');
            url.push_str(&self.fragment);
        }
        url
    }
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// `urllib.parse.urlparse(url)` (Python 3.11.7, including the WHATWG clean-up of leading C0
/// controls/spaces and of tab/CR/LF anywhere).
pub fn urlparse(url: &str) -> Result<ParsedUrl, UrlError> {
    let mut parsed = urlsplit(url)?;
    if USES_PARAMS.contains(&parsed.scheme.as_str()) && parsed.path.contains(';') {
        // _splitparams
        let i = match parsed.path.rfind('/') {
            Some(slash) => parsed.path[slash..].find(';').map(|i| i + slash),
            None => parsed.path.find(';'),
        };
        if let Some(i) = i {
            parsed.params = parsed.path[i + 1..].to_owned();
            parsed.path.truncate(i);
        }
    }
    Ok(parsed)
}

/// `urllib.parse.urlsplit(url)`; `params` stays empty.
pub fn urlsplit(url: &str) -> Result<ParsedUrl, UrlError> {
    let url: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut scheme = String::new();
    let mut rest = url.as_str();
    if let Some(i) = rest.find(':') {
        let candidate = &rest[..i];
        if i > 0
            && candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate.chars().all(is_scheme_char)
        {
            scheme = candidate.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        rest = &after[end..];
        let (open, close) = (netloc.contains('['), netloc.contains(']'));
        if open != close {
            return Err(UrlError::InvalidIpv6);
        }
        if open {
            let host = netloc
                .split_once('[')
                .map(|(_, h)| h.split_once(']').map_or(h, |(h, _)| h))
                .unwrap_or_default();
            check_bracketed_host(host)?;
        }
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    check_netloc(netloc)?;
    Ok(ParsedUrl {
        scheme,
        netloc: netloc.to_owned(),
        path: path.to_owned(),
        params: String::new(),
        query: query.to_owned(),
        fragment: fragment.to_owned(),
    })
}

/// `_check_bracketed_host`: IPvFuture (`v1.x`) or an IPv6 address (optionally `%scope`).
fn check_bracketed_host(host: &str) -> Result<(), UrlError> {
    if let Some(rest) = host.strip_prefix('v') {
        // re.match(r"\Av[a-fA-F0-9]+\..+\Z", hostname)
        let ok = rest.split_once('.').is_some_and(|(hex, tail)| {
            !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
                && !tail.is_empty()
                && !tail.contains('\n')
        });
        return if ok {
            Ok(())
        } else {
            Err(UrlError::InvalidIpv6)
        };
    }
    // ipaddress.ip_address(): IPv4 raises "cannot be in brackets", junk raises too.
    let (addr, scope) = match host.split_once('%') {
        Some((a, s)) => (a, Some(s)),
        None => (host, None),
    };
    if scope.is_some_and(|s| s.is_empty() || s.contains('%')) {
        return Err(UrlError::InvalidIpv6);
    }
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => Ok(()),
        _ if scope.is_none() => Err(UrlError::InvalidIpv6),
        _ => addr
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| UrlError::InvalidIpv6),
    }
}

/// `_checknetloc`.
fn check_netloc(netloc: &str) -> Result<(), UrlError> {
    if netloc.is_ascii() {
        return Ok(());
    }
    let n: String = netloc
        .chars()
        .filter(|c| !matches!(c, '@' | ':' | '#' | '?'))
        .collect();
    let normalized: String = n.nfkc().collect();
    if n == normalized {
        return Ok(());
    }
    if normalized.contains(['/', '?', '#', '@', ':']) {
        return Err(UrlError::NfkcNetloc);
    }
    Ok(())
}

/// `is_same_domain(host, pattern)`: a pattern starting with `.` matches the domain and all of
/// its subdomains; anything else must match exactly. Only the pattern is lower-cased.
pub fn is_same_domain(host: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let pattern = pattern.to_lowercase();
    (pattern.starts_with('.') && (host.ends_with(&pattern) || host == &pattern[1..]))
        || pattern == host
}

/// `url_has_allowed_host_and_scheme(url, allowed_hosts, require_https)` (Django 5.0.1: no
/// length limit yet). Used for `?next=` redirects.
pub fn url_has_allowed_host_and_scheme(
    url: &str,
    allowed_hosts: &[&str],
    require_https: bool,
) -> bool {
    let url = pyunicode::strip(url);
    if url.is_empty() {
        return false;
    }
    allowed(url, allowed_hosts, require_https)
        && allowed(&url.replace('\\', "/"), allowed_hosts, require_https)
}

fn allowed(url: &str, allowed_hosts: &[&str], require_https: bool) -> bool {
    if url.starts_with("///") {
        return false;
    }
    let Ok(info) = urlparse(url) else {
        return false;
    };
    if info.netloc.is_empty() && !info.scheme.is_empty() {
        return false;
    }
    if url.chars().next().is_some_and(pyunicode::is_other) {
        return false;
    }
    let scheme = if info.scheme.is_empty() && !info.netloc.is_empty() {
        "http"
    } else {
        info.scheme.as_str()
    };
    let scheme_ok = scheme.is_empty()
        || if require_https {
            scheme == "https"
        } else {
            scheme == "http" || scheme == "https"
        };
    (info.netloc.is_empty() || allowed_hosts.contains(&info.netloc.as_str())) && scheme_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_and_unquote_like_urllib() {
        assert_eq!(quote("/a b/é.js", "/"), "/a%20b/%C3%A9.js");
        assert_eq!(quote("a b&é?#", "!$&'()*+,;=/~:@"), "a%20b&%C3%A9%3F%23");
        assert_eq!(quote("_.-~", ""), "_.-~");
        assert_eq!(unquote("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(unquote("%C3%A9%FF"), "é\u{fffd}");
        assert_eq!(unquote("my%20db+x"), "my db+x");
    }

    #[test]
    fn same_domain() {
        assert!(is_same_domain("example.com", ".example.com"));
        assert!(is_same_domain("foo.example.com", ".Example.com"));
        assert!(!is_same_domain("fooexample.com", ".example.com"));
        assert!(is_same_domain("example.com:8000", "example.com:8000"));
        assert!(!is_same_domain("EXAMPLE.com", "example.com"));
        assert!(!is_same_domain("example.com", ""));
        assert!(is_same_domain("", ".")); // as Python: host == pattern[1:]
    }

    #[test]
    fn vector_cases() {
        let hosts = ["testserver"];
        let cases: &[(&str, bool)] = &[
            ("/chat/", true),
            ("chat/", true),
            ("https://evil.example/", false),
            ("//evil.example", false),
            ("///evil.example", false),
            ("http://testserver/x", true),
            ("https://testserver/x", true),
            ("ftp://testserver/x", false),
            ("/\\evil.example", false),
            ("\\\\evil.example", false),
            ("javascript:alert(1)", false),
            ("\u{8}/evil.example", false),
            ("", false),
            (" /chat/ ", true),
        ];
        for (url, want) in cases {
            assert_eq!(
                url_has_allowed_host_and_scheme(url, &hosts, false),
                *want,
                "{url:?}"
            );
        }
        assert!(!url_has_allowed_host_and_scheme(
            "http://testserver/x",
            &hosts,
            true
        ));
        assert!(url_has_allowed_host_and_scheme(
            "https://testserver/x",
            &hosts,
            true
        ));
    }

    #[test]
    fn urlparse_basics() {
        let p = urlparse("HTTPS://user@host:8000/a/b;p?q=1#frag").expect("parses");
        assert_eq!(p.scheme, "https");
        assert_eq!(p.netloc, "user@host:8000");
        assert_eq!(p.path, "/a/b");
        assert_eq!(p.params, "p");
        assert_eq!(p.query, "q=1");
        assert_eq!(p.fragment, "frag");
        assert_eq!(p.geturl(), "https://user@host:8000/a/b;p?q=1#frag");
        assert_eq!(
            urlparse("http://[::1]:80/").map(|p| p.netloc),
            Ok("[::1]:80".to_owned())
        );
        assert_eq!(urlparse("http://[::1/"), Err(UrlError::InvalidIpv6));
        assert_eq!(urlparse("http://[127.0.0.1]/"), Err(UrlError::InvalidIpv6));
        assert_eq!(
            urlparse("http://[v1.x]/").map(|p| p.netloc),
            Ok("[v1.x]".to_owned())
        );
        assert_eq!(urlparse("http://a\u{2100}b/"), Err(UrlError::NfkcNetloc));
        assert_eq!(urlparse("1http://x").map(|p| p.scheme), Ok(String::new()));
    }
}
