//! `django/middleware/csrf.py` (Django 5.0.1): secrets, masking, token checks, the Origin /
//! Referer checks, the failure reasons, and the page `django.views.csrf.csrf_failure` renders.

use super::crypto::{constant_time_eq, get_random_string};
use super::http::urlparse;
pub use super::http::{is_same_domain, url_has_allowed_host_and_scheme};

/// `CSRF_SECRET_LENGTH`.
pub const CSRF_SECRET_LENGTH: usize = 32;
/// `CSRF_TOKEN_LENGTH` (a masked secret).
pub const CSRF_TOKEN_LENGTH: usize = 2 * CSRF_SECRET_LENGTH;
/// `CSRF_ALLOWED_CHARS` = `string.ascii_letters + string.digits` (index 0 = `a`, 26 = `A`, 52 = `0`).
pub const CSRF_ALLOWED_CHARS: &[u8; 62] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// `CSRF_COOKIE_NAME`.
pub const CSRF_COOKIE_NAME: &str = "csrftoken";
/// `CSRF_COOKIE_AGE` (52 weeks).
pub const CSRF_COOKIE_AGE: i64 = 31_449_600;
/// The form field `{% csrf_token %}` renders.
pub const CSRF_FORM_FIELD: &str = "csrfmiddlewaretoken";
/// `CSRF_HEADER_NAME` as an HTTP header.
pub const CSRF_HEADER: &str = "X-CSRFToken";

/// `REASON_BAD_ORIGIN` (`%s` = the Origin header).
pub const REASON_BAD_ORIGIN: &str =
    "Origin checking failed - %s does not match any trusted origins.";
/// `REASON_NO_REFERER`.
pub const REASON_NO_REFERER: &str = "Referer checking failed - no Referer.";
/// `REASON_BAD_REFERER` (`%s` = the parsed Referer's `geturl()`).
pub const REASON_BAD_REFERER: &str =
    "Referer checking failed - %s does not match any trusted origins.";
/// `REASON_NO_CSRF_COOKIE`.
pub const REASON_NO_CSRF_COOKIE: &str = "CSRF cookie not set.";
/// `REASON_CSRF_TOKEN_MISSING`.
pub const REASON_CSRF_TOKEN_MISSING: &str = "CSRF token missing.";
/// `REASON_MALFORMED_REFERER`.
pub const REASON_MALFORMED_REFERER: &str = "Referer checking failed - Referer is malformed.";
/// `REASON_INSECURE_REFERER`.
pub const REASON_INSECURE_REFERER: &str =
    "Referer checking failed - Referer is insecure while host is secure.";
/// `REASON_INCORRECT_LENGTH` (a phrase: "CSRF cookie has incorrect length.").
pub const REASON_INCORRECT_LENGTH: &str = "has incorrect length";
/// `REASON_INVALID_CHARACTERS`.
pub const REASON_INVALID_CHARACTERS: &str = "has invalid characters";

/// `InvalidTokenFormat(reason)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfFormatError {
    /// Not 32 or 64 characters.
    #[error("has incorrect length")]
    IncorrectLength,
    /// A character outside `[a-zA-Z0-9]`.
    #[error("has invalid characters")]
    InvalidCharacters,
}

/// `_get_new_csrf_string()`: a fresh 32-character secret (the `csrftoken` cookie value).
pub fn new_csrf_secret() -> String {
    get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)
}

fn index(c: u8) -> usize {
    // Callers validated the characters; anything else maps to 0 rather than panicking.
    match c {
        b'a'..=b'z' => usize::from(c - b'a'),
        b'A'..=b'Z' => usize::from(c - b'A') + 26,
        b'0'..=b'9' => usize::from(c - b'0') + 52,
        _ => 0,
    }
}

/// `_mask_cipher_secret(secret)` with a fresh random mask: what `get_token()` puts in forms.
pub fn mask_cipher_secret(secret: &str) -> String {
    mask_with(secret, &new_csrf_secret())
}

/// `_mask_cipher_secret` with a given mask: `mask + cipher`, `cipher[i] = chars[(s + m) % 62]`.
/// Both arguments are assumed to be of `CSRF_ALLOWED_CHARS` (as in Django); pairs stop at the
/// shorter one.
pub fn mask_with(secret: &str, mask: &str) -> String {
    let mut out = String::with_capacity(CSRF_TOKEN_LENGTH);
    out.push_str(mask);
    for (s, m) in secret.bytes().zip(mask.bytes()) {
        out.push(char::from(CSRF_ALLOWED_CHARS[(index(s) + index(m)) % 62]));
    }
    out
}

/// `_unmask_cipher_token(token)`: `chars[c - m]` (Python's negative index wraps modulo 62).
/// Expects a checked 64-character token; shorter input yields a shorter result.
pub fn unmask_cipher_token(token: &str) -> String {
    let bytes = token.as_bytes();
    let split = CSRF_SECRET_LENGTH.min(bytes.len());
    let (mask, cipher) = bytes.split_at(split);
    cipher
        .iter()
        .zip(mask)
        .map(|(&c, &m)| char::from(CSRF_ALLOWED_CHARS[(index(c) + 62 - index(m)) % 62]))
        .collect()
}

/// `_check_token_format(token)`: length 32 or 64 (code points), then `[a-zA-Z0-9]` only.
pub fn check_token_format(token: &str) -> Result<(), CsrfFormatError> {
    let n = token.chars().count();
    if n != CSRF_TOKEN_LENGTH && n != CSRF_SECRET_LENGTH {
        return Err(CsrfFormatError::IncorrectLength);
    }
    if !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CsrfFormatError::InvalidCharacters);
    }
    Ok(())
}

/// `CsrfViewMiddleware._get_secret` for a cookie value: checks the format and unmasks a
/// 64-character cookie (written masked by Django < 4.0). A failure means Django replaces the
/// cookie with a new secret (`process_request`) and rejects an unsafe request with
/// `"CSRF cookie <error>."`.
pub fn secret_from_cookie(value: &str) -> Result<String, CsrfFormatError> {
    check_token_format(value)?;
    if value.len() == CSRF_TOKEN_LENGTH {
        Ok(unmask_cipher_token(value))
    } else {
        Ok(value.to_owned())
    }
}

/// `_does_token_match(request_csrf_token, csrf_secret)`: a 64-character token is unmasked first;
/// the comparison is constant-time. The token's format must have been checked.
pub fn does_token_match(request_token: &str, secret: &str) -> bool {
    if request_token.len() == CSRF_TOKEN_LENGTH {
        constant_time_eq(
            unmask_cipher_token(request_token).as_bytes(),
            secret.as_bytes(),
        )
    } else {
        constant_time_eq(request_token.as_bytes(), secret.as_bytes())
    }
}

/// Where the request token came from (`token_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `request.POST["csrfmiddlewaretoken"]`.
    Post,
    /// The `X-CSRFToken` header.
    Header,
}

fn bad_token_message(reason: &str, source: TokenSource) -> String {
    match source {
        TokenSource::Post => format!("CSRF token from POST {reason}."),
        TokenSource::Header => format!("CSRF token from the 'X-Csrftoken' HTTP header {reason}."),
    }
}

/// `CsrfViewMiddleware._check_token`: `Err(reason)` with Django's exact reason.
///
/// * `cookie`: the raw `csrftoken` cookie, if sent.
/// * `post_token`: `request.POST.get("csrfmiddlewaretoken")` for a POST (`None` otherwise);
///   an empty value falls back to the header, as in Django.
/// * `header_token`: the `X-CSRFToken` header, if sent.
pub fn check_token(
    cookie: Option<&str>,
    post_token: Option<&str>,
    header_token: Option<&str>,
) -> Result<(), String> {
    let secret = match cookie.map(secret_from_cookie) {
        None => return Err(REASON_NO_CSRF_COOKIE.to_owned()),
        Some(Err(e)) => return Err(format!("CSRF cookie {e}.")),
        Some(Ok(secret)) => secret,
    };
    let (token, source) = match post_token.filter(|t| !t.is_empty()) {
        Some(t) => (t, TokenSource::Post),
        None => match header_token {
            Some(h) => (h, TokenSource::Header),
            None => return Err(REASON_CSRF_TOKEN_MISSING.to_owned()),
        },
    };
    if let Err(e) = check_token_format(token) {
        return Err(bad_token_message(&e.to_string(), source));
    }
    if !does_token_match(token, &secret) {
        return Err(bad_token_message("incorrect", source));
    }
    Ok(())
}

/// `CsrfViewMiddleware._origin_verified`.
///
/// * `good_host`: `request.get_host()` (host[:port]) when it passed `ALLOWED_HOSTS`, else `None`.
/// * `trusted_origins`: `CSRF_TRUSTED_ORIGINS`.
pub fn origin_verified<S: AsRef<str>>(
    origin: &str,
    good_host: Option<&str>,
    is_secure: bool,
    trusted_origins: &[S],
) -> bool {
    if let Some(host) = good_host {
        let scheme = if is_secure { "https" } else { "http" };
        if origin.len() == scheme.len() + 3 + host.len()
            && origin.starts_with(scheme)
            && origin[scheme.len()..].starts_with("://")
            && &origin[scheme.len() + 3..] == host
        {
            return true;
        }
    }
    let trusted = trusted_origins.iter().map(AsRef::as_ref);
    if trusted.clone().any(|t| !t.contains('*') && t == origin) {
        return true;
    }
    let Ok(parsed) = urlparse(origin) else {
        return false;
    };
    trusted
        .filter(|t| t.contains('*'))
        .any(|t| match urlparse(t) {
            Ok(p) if p.scheme == parsed.scheme => {
                is_same_domain(&parsed.netloc, p.netloc.trim_start_matches('*'))
            }
            _ => false,
        })
}

/// `CsrfViewMiddleware._check_referer` (HTTPS requests without an Origin header), with
/// `CSRF_COOKIE_DOMAIN = None`: `Err(reason)` with Django's exact reason.
pub fn check_referer<S: AsRef<str>>(
    referer: Option<&str>,
    good_host: Option<&str>,
    trusted_origins: &[S],
) -> Result<(), String> {
    let referer = referer.ok_or_else(|| REASON_NO_REFERER.to_owned())?;
    let parsed = urlparse(referer).map_err(|_| REASON_MALFORMED_REFERER.to_owned())?;
    if parsed.scheme.is_empty() || parsed.netloc.is_empty() {
        return Err(REASON_MALFORMED_REFERER.to_owned());
    }
    if parsed.scheme != "https" {
        return Err(REASON_INSECURE_REFERER.to_owned());
    }
    let trusted_hosts = trusted_origins.iter().filter_map(|t| {
        urlparse(t.as_ref())
            .ok()
            .map(|p| p.netloc.trim_start_matches('*').to_owned())
    });
    if trusted_hosts
        .clone()
        .any(|h| is_same_domain(&parsed.netloc, &h))
    {
        return Ok(());
    }
    let bad = || REASON_BAD_REFERER.replacen("%s", &parsed.geturl(), 1);
    match good_host {
        Some(host) if is_same_domain(&parsed.netloc, host) => Ok(()),
        _ => Err(bad()),
    }
}

/// The inputs of [`check_request`] (`CsrfViewMiddleware.process_view` for an unsafe method of a
/// view that is not `csrf_exempt`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CsrfRequest<'a> {
    /// `request.get_host()` if it passed `ALLOWED_HOSTS`, else `None`.
    pub good_host: Option<&'a str>,
    /// `request.is_secure()`.
    pub is_secure: bool,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Referer` header.
    pub referer: Option<&'a str>,
    /// The `csrftoken` cookie.
    pub cookie: Option<&'a str>,
    /// The `csrfmiddlewaretoken` POST field (POST only).
    pub post_token: Option<&'a str>,
    /// The `X-CSRFToken` header.
    pub header_token: Option<&'a str>,
}

/// `process_view` for POST/PUT/PATCH/DELETE: the Origin check if an Origin header is present,
/// else the Referer check on HTTPS, then the token check. `Err(reason)` is Django's reason,
/// logged as `Forbidden (<reason>): <path>` and shown by [`csrf_failure_body`] with DEBUG.
pub fn check_request<S: AsRef<str>>(
    req: &CsrfRequest<'_>,
    trusted_origins: &[S],
) -> Result<(), String> {
    if let Some(origin) = req.origin {
        if !origin_verified(origin, req.good_host, req.is_secure, trusted_origins) {
            return Err(REASON_BAD_ORIGIN.replacen("%s", origin, 1));
        }
    } else if req.is_secure {
        check_referer(req.referer, req.good_host, trusted_origins)?;
    }
    check_token(req.cookie, req.post_token, req.header_token)
}

const PAGE_HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta http-equiv="content-type" content="text/html; charset=utf-8">
  <meta name="robots" content="NONE,NOARCHIVE">
  <title>403 Forbidden</title>
  <style type="text/css">
    html * { padding:0; margin:0; }
    body * { padding:10px 20px; }
    body * * { padding:0; }
    body { font:small sans-serif; background:#eee; color:#000; }
    body>div { border-bottom:1px solid #ddd; }
    h1 { font-weight:normal; margin-bottom:.4em; }
    h1 span { font-size:60%; color:#666; font-weight:normal; }
    #info { background:#f6f6f6; }
    #info ul { margin: 0.5em 4em; }
    #info p, #summary p { padding-top:10px; }
    #summary { background: #ffc; }
    #explanation { background:#eee; border-bottom: 0px none; }
  </style>
</head>
<body>
<div id="summary">
  <h1>Forbidden <span>(403)</span></h1>
  <p>CSRF verification failed. Request aborted.</p>
"#;

const NO_REFERER: &str = "
  <p>You are seeing this message because this HTTPS site requires a “Referer header” to be sent by your web browser, but none was sent. This header is required for security reasons, to ensure that your browser is not being hijacked by third parties.</p>
  <p>If you have configured your browser to disable “Referer” headers, please re-enable them, at least for this site, or for HTTPS connections, or for “same-origin” requests.</p>
  <p>If you are using the &lt;meta name=&quot;referrer&quot; content=&quot;no-referrer&quot;&gt; tag or including the “Referrer-Policy: no-referrer” header, please remove them. The CSRF protection requires the “Referer” header to do strict referer checking. If you’re concerned about privacy, use alternatives like &lt;a rel=&quot;noreferrer&quot; …&gt; for links to third-party sites.</p>
";

const NO_COOKIE: &str = "
  <p>You are seeing this message because this site requires a CSRF cookie when submitting forms. This cookie is required for security reasons, to ensure that your browser is not being hijacked by third parties.</p>
  <p>If you have configured your browser to disable cookies, please re-enable them, at least for this site, or for “same-origin” requests.</p>
";

const DEBUG_HELP: &str = r#"

  <p>In general, this can occur when there is a genuine Cross Site Request Forgery, or when
  <a
  href="https://docs.djangoproject.com/en/5.0/ref/csrf/">Django’s
  CSRF mechanism</a> has not been used correctly.  For POST forms, you need to
  ensure:</p>

  <ul>
    <li>Your browser is accepting cookies.</li>

    <li>The view function passes a <code>request</code> to the template’s <a
    href="https://docs.djangoproject.com/en/dev/topics/templates/#django.template.backends.base.Template.render"><code>render</code></a>
    method.</li>

    <li>In the template, there is a <code>{% csrf_token
    %}</code> template tag inside each POST form that
    targets an internal URL.</li>

    <li>If you are not using <code>CsrfViewMiddleware</code>, then you must use
    <code>csrf_protect</code> on any views that use the <code>csrf_token</code>
    template tag, as well as those that accept the POST data.</li>

    <li>The form has a valid CSRF token. After logging in in another browser
    tab or hitting the back button after a login, you may need to reload the
    page with the form, because the token is rotated after a login.</li>
  </ul>

  <p>You’re seeing the help section of this page because you have <code>DEBUG =
  True</code> in your Django settings file. Change that to <code>False</code>,
  and only the initial error message will be displayed.  </p>

  <p>You can customize this page using the CSRF_FAILURE_VIEW setting.</p>
</div>
"#;

const NO_DEBUG_FOOTER: &str = r#"
<div id="explanation">
  <p><small>More information is available with DEBUG=True.</small></p>
</div>
"#;

/// The body of `django.views.csrf.csrf_failure(request, reason)` rendered from Django's
/// built-in `csrf_403.html` (the legacy app has no `403_csrf.html`), served as a 403 with
/// `Content-Type: text/html; charset=utf-8`. With `debug` the page adds a "Help" section that
/// shows the (HTML-escaped) reason; without it, "More information is available with
/// DEBUG=True." The "no Referer" / "no cookie" paragraphs appear for exactly those reasons.
pub fn csrf_failure_body(reason: &str, debug: bool) -> String {
    let mut out = String::with_capacity(if debug { 3200 } else { 1600 });
    out.push_str(PAGE_HEAD);
    // {% if no_referer %}…{% endif %}\n
    if reason == REASON_NO_REFERER {
        out.push_str(NO_REFERER);
    }
    out.push('\n');
    // {% if no_cookie %}…{% endif %}\n
    if reason == REASON_NO_CSRF_COOKIE {
        out.push_str(NO_COOKIE);
    }
    out.push_str("\n</div>\n");
    if debug {
        out.push_str("\n<div id=\"info\">\n  <h2>Help</h2>\n    ");
        if !reason.is_empty() {
            out.push_str("\n    <p>Reason given for failure:</p>\n    <pre>\n    ");
            out.push_str(&super::html::escape(reason));
            out.push_str("\n    </pre>\n    ");
        }
        out.push_str(DEBUG_HELP);
    } else {
        out.push_str(NO_DEBUG_FOOTER);
    }
    out.push_str("\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_unmask_vector() {
        let secret = "abcdefghijklmnopqrstuvwxyz012345";
        let token = mask_with(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ6789ab");
        assert_eq!(
            token,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ6789abACEGIKMOQSUWY02468acegikmoWY0246"
        );
        assert_eq!(unmask_cipher_token(&token), secret);
        assert!(does_token_match(&token, secret));
        let fresh = mask_cipher_secret(secret);
        assert_eq!(fresh.len(), 64);
        assert!(check_token_format(&fresh).is_ok());
        assert!(does_token_match(&fresh, secret));
        assert!(does_token_match(secret, secret));
        assert!(!does_token_match(&new_csrf_secret(), secret));
    }

    #[test]
    fn formats() {
        assert_eq!(
            check_token_format(""),
            Err(CsrfFormatError::IncorrectLength)
        );
        assert_eq!(
            check_token_format(&"a".repeat(33)),
            Err(CsrfFormatError::IncorrectLength)
        );
        assert_eq!(
            check_token_format(&"-".repeat(32)),
            Err(CsrfFormatError::InvalidCharacters)
        );
        assert_eq!(
            check_token_format(&"é".repeat(32)),
            Err(CsrfFormatError::InvalidCharacters)
        );
        assert_eq!(
            check_token_format(&"é".repeat(16)),
            Err(CsrfFormatError::IncorrectLength)
        );
        assert!(secret_from_cookie(&"A".repeat(64)).is_ok());
        // Garbage into the unchecked helpers never panics.
        let _ = unmask_cipher_token("");
        let _ = unmask_cipher_token("é!");
        let _ = mask_with("é!", "");
        assert!(!does_token_match("", "x"));
    }

    #[test]
    fn token_reasons() {
        let secret = "abcdefghijklmnopqrstuvwxyz012345";
        let good = mask_cipher_secret(secret);
        assert_eq!(
            check_token(None, Some(&good), None),
            Err(REASON_NO_CSRF_COOKIE.to_owned())
        );
        assert_eq!(
            check_token(Some("short"), Some(&good), None),
            Err("CSRF cookie has incorrect length.".to_owned())
        );
        assert_eq!(
            check_token(Some(&"!".repeat(32)), Some(&good), None),
            Err("CSRF cookie has invalid characters.".to_owned())
        );
        assert_eq!(
            check_token(Some(secret), None, None),
            Err(REASON_CSRF_TOKEN_MISSING.to_owned())
        );
        assert_eq!(
            check_token(Some(secret), Some(""), None),
            Err(REASON_CSRF_TOKEN_MISSING.to_owned())
        );
        assert_eq!(check_token(Some(secret), Some(&good), None), Ok(()));
        assert_eq!(check_token(Some(secret), Some(""), Some(secret)), Ok(()));
        assert_eq!(
            check_token(Some(secret), Some("x"), None),
            Err("CSRF token from POST has incorrect length.".to_owned())
        );
        assert_eq!(
            check_token(Some(secret), None, Some(&"?".repeat(64))),
            Err("CSRF token from the 'X-Csrftoken' HTTP header has invalid characters.".to_owned())
        );
        assert_eq!(
            check_token(Some(secret), Some(&"a".repeat(64)), None),
            Err("CSRF token from POST incorrect.".to_owned())
        );
        assert_eq!(
            check_token(Some(secret), None, Some(&"a".repeat(32))),
            Err("CSRF token from the 'X-Csrftoken' HTTP header incorrect.".to_owned())
        );
        // A Django < 4.0 masked cookie.
        assert_eq!(check_token(Some(&good), Some(secret), None), Ok(()));
    }

    #[test]
    fn request_order() {
        let secret = "abcdefghijklmnopqrstuvwxyz012345";
        let none: &[&str] = &[];
        let req = CsrfRequest {
            good_host: Some("testserver"),
            origin: Some("http://evil.example"),
            cookie: Some(secret),
            post_token: Some(secret),
            ..Default::default()
        };
        assert_eq!(
            check_request(&req, none),
            Err(
                "Origin checking failed - http://evil.example does not match any trusted origins."
                    .to_owned()
            )
        );
        let req = CsrfRequest {
            origin: Some("http://testserver"),
            ..req
        };
        assert_eq!(check_request(&req, none), Ok(()));
        let req = CsrfRequest {
            origin: None,
            is_secure: true,
            ..req
        };
        assert_eq!(check_request(&req, none), Err(REASON_NO_REFERER.to_owned()));
        let req = CsrfRequest {
            referer: Some("https://testserver/x"),
            ..req
        };
        assert_eq!(check_request(&req, none), Ok(()));
    }
}
