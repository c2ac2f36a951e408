//! `AbstractUser.email` as `createsuperuser` cleans it: the model `EmailField(blank=True,
//! max_length=254)`, i.e. `validate_email` then `MaxLengthValidator(254)`, all messages
//! reported, no stripping (`django/db/models/fields/__init__.py EmailField`,
//! `django/core/validators.py EmailValidator`, Django 5.0.1).

use std::net::{Ipv4Addr, Ipv6Addr};

/// `AbstractUser.email` `max_length`.
pub const EMAIL_MAX_LENGTH: usize = 254;
/// `EmailValidator.message`.
pub const INVALID_EMAIL_MESSAGE: &str = "Enter a valid email address.";

/// `email_field.clean(value, None)`: `Ok` with the value unchanged, or Django's messages in
/// order. An empty value is allowed (`blank=True`; validators skip empty values).
pub fn clean_email_field(value: &str) -> Result<String, Vec<String>> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let mut errors = Vec::new();
    if !is_valid_email(value) {
        errors.push(INVALID_EMAIL_MESSAGE.to_owned());
    }
    let n = value.chars().count();
    if n > EMAIL_MAX_LENGTH {
        errors.push(format!(
            "Ensure this value has at most {EMAIL_MAX_LENGTH} characters (it has {n})."
        ));
    }
    if errors.is_empty() {
        Ok(value.to_owned())
    } else {
        Err(errors)
    }
}

/// `BaseUserManager.normalize_email`: the domain part lower-cased.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((name, domain)) => format!("{name}@{}", domain.to_lowercase()),
        None => email.to_owned(),
    }
}

/// `EmailValidator()(value)` with the default `domain_allowlist = ["localhost"]`.
pub fn is_valid_email(value: &str) -> bool {
    if value.is_empty() || !value.contains('@') || value.chars().count() > 320 {
        return false;
    }
    let Some((user, domain)) = value.rsplit_once('@') else {
        return false;
    };
    if !is_valid_user_part(user) {
        return false;
    }
    if domain == "localhost" || is_valid_domain_part(domain) {
        return true;
    }
    // "Try for possible IDN domain-part": Python's `domain.encode("idna")`, approximated by
    // the WHATWG host parser (UTS 46). Only non-ASCII domains are converted, so the URL parser's
    // percent-decoding can never turn an invalid ASCII domain into a valid one.
    if domain.is_ascii() || domain.contains('%') {
        return false;
    }
    match url::Host::parse(domain) {
        Ok(url::Host::Domain(ascii)) => is_valid_domain_part(&ascii),
        _ => false,
    }
}

/// `[A-Z]` under `re.IGNORECASE` in Python's Unicode mode also matches these four characters
/// (they case-fold to ASCII letters).
fn is_ignorecase_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

/// One character of `[-!#$%&'*+/=?^_`{}|~0-9A-Z]` (case-insensitive).
fn is_atom_char(c: char) -> bool {
    is_ignorecase_letter(c) || c.is_ascii_digit() || "-!#$%&'*+/=?^_`{}|~".contains(c)
}

/// `user_regex`: a dot-atom or a quoted string.
fn is_valid_user_part(user: &str) -> bool {
    let dot_atom = !user.is_empty()
        && user
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atom_char));
    dot_atom || is_quoted_string(user)
}

/// `^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z`.
fn is_quoted_string(user: &str) -> bool {
    let Some(inner) = user
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let plain = |c: char| {
        matches!(c, '\u{1}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '!' | '#'..='[' | ']'..='\u{7f}')
            || is_ignorecase_letter(c)
    };
    let escaped = |c: char| {
        matches!(c, '\u{1}'..='\u{9}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{7f}')
            || is_ignorecase_letter(c)
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // A backslash must escape something; a lone trailing one would have to be `plain`,
            // which excludes it.
            match chars.next() {
                Some(e) if escaped(e) => {}
                _ => return false,
            }
        } else if !plain(c) {
            return false;
        }
    }
    true
}

/// `validate_domain_part`: `domain_regex`, or an IP literal in brackets.
fn is_valid_domain_part(domain: &str) -> bool {
    is_domain_name(domain) || is_ip_literal(domain)
}

/// `((?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+)(?:[A-Z0-9-]{2,63}(?<!-))\Z`: one or more labels
/// then a top-level part of 2–63 letters, digits or hyphens not ending with a hyphen.
fn is_domain_name(domain: &str) -> bool {
    let alnum = |c: char| is_ignorecase_letter(c) || c.is_ascii_digit();
    let Some((labels, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let tld_len = tld.chars().count();
    let tld_ok = (2..=63).contains(&tld_len)
        && tld.chars().all(|c| alnum(c) || c == '-')
        && !tld.ends_with('-');
    let label_ok = |label: &str| {
        let n = label.chars().count();
        (1..=63).contains(&n)
            && label.chars().all(|c| alnum(c) || c == '-')
            && label.chars().next().is_some_and(alnum)
            && label.chars().last().is_some_and(alnum)
    };
    tld_ok && labels.split('.').all(label_ok)
}

/// `\[([A-F0-9:.]+)\]\Z` holding an address `validate_ipv46_address` accepts (Python's
/// `ipaddress`, which like Rust's parser refuses leading zeros in IPv4 octets).
fn is_ip_literal(domain: &str) -> bool {
    let Some(ip) = domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    else {
        return false;
    };
    !ip.is_empty()
        && ip
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        && (ip.parse::<Ipv4Addr>().is_ok() || ip.parse::<Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case was run through Django 5.0.1's `User._meta.get_field("email").clean()`.
    #[test]
    fn matches_django_email_field() {
        let long_local = format!("{}@example.com", "a".repeat(250));
        let long_domain = format!("x@{}", "a".repeat(300));
        let cases: &[(&str, Result<(), &[&str]>)] = &[
            ("", Ok(())),
            ("admin@example.com", Ok(())),
            ("a@localhost", Ok(())),
            ("a@[1.2.3.4]", Ok(())),
            ("a@[::1]", Ok(())),
            ("a@bücher.de", Ok(())),
            ("a@x.c0", Ok(())),
            ("a@ſ.com", Ok(())),
            ("first.last+tag@sub.example.co", Ok(())),
            ("\"quoted\\ space\"@x.com", Ok(())),
            ("a@b.c", Err(&["Enter a valid email address."])),
            (" a@b.com", Err(&["Enter a valid email address."])),
            ("a@[01.2.3.4]", Err(&["Enter a valid email address."])),
            ("ü@x.de", Err(&["Enter a valid email address."])),
            ("\"a b\"@x.com", Err(&["Enter a valid email address."])),
            ("a@x.c-", Err(&["Enter a valid email address."])),
            ("a@-x.com", Err(&["Enter a valid email address."])),
            ("bad", Err(&["Enter a valid email address."])),
            ("a..b@x.com", Err(&["Enter a valid email address."])),
            ("a@x..com", Err(&["Enter a valid email address."])),
            ("a@example.com.", Err(&["Enter a valid email address."])),
            ("a@exam%70le.com", Err(&["Enter a valid email address."])),
            (
                &long_local,
                Err(&["Ensure this value has at most 254 characters (it has 262)."]),
            ),
            (
                &long_domain,
                Err(&[
                    "Enter a valid email address.",
                    "Ensure this value has at most 254 characters (it has 302).",
                ]),
            ),
        ];
        for (value, expected) in cases {
            let got = clean_email_field(value);
            match expected {
                Ok(()) => assert_eq!(got.as_deref(), Ok(*value), "{value:?}"),
                Err(messages) => assert_eq!(
                    got.expect_err(value),
                    messages.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    "{value:?}"
                ),
            }
        }
    }

    #[test]
    fn domain_is_lowercased_on_save() {
        assert_eq!(normalize_email("Alice@Example.COM"), "Alice@example.com");
        assert_eq!(normalize_email(""), "");
    }

    /// `validate_email` verdicts Django 5.0.1 gave for these inputs (IDN, IP literals, quoted
    /// local parts, label lengths, the case-folding quirk of `re.IGNORECASE`).
    #[test]
    fn matches_django_validate_email() {
        let cases: &[(&str, bool)] = &[
            ("a@b.co", true),
            ("A@B.CO", true),
            ("a.b.c@x.io", true),
            (".a@x.io", false),
            ("a.@x.io", false),
            ("a@x.io.", false),
            ("a@x", false),
            ("a@localhost", true),
            ("a@LOCALHOST", false),
            ("a@[127.0.0.1]", true),
            ("a@[1.2.3]", false),
            ("a@[::ffff:1.2.3.4]", true),
            ("a@[fe80::1%eth0]", false),
            ("a@[zz::1]", false),
            ("\"\"@x.io", true),
            ("\"a\\\"b\"@x.io", true),
            ("\"a\"b@x.io", false),
            ("a@b@x.io", false),
            ("\"a@b\"@x.io", true),
            ("a@xn--bcher-kva.de", true),
            ("a@b\u{fc}cher.de", true),
            ("a@m\u{fc}nchen.de", true),
            ("a@\u{4f8b}\u{3048}.\u{30c6}\u{30b9}\u{30c8}", true),
            ("a@x.\u{30c6}\u{30b9}\u{30c8}", true),
            ("a@-.io", false),
            ("a@a-.io", false),
            ("a@a--b.io", true),
            ("a@1.2.3.4", false),
            ("a@123.io", true),
            ("a@x.1o", true),
            ("a@x.o", false),
            (
                "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.io",
                true,
            ),
            (
                "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.io",
                false,
            ),
            (
                "a@x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                true,
            ),
            (
                "a@x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("a+b@x.io", true),
            ("a!#$%&*/=?^_`{|}~-@x.io", true),
            ("a b@x.io", false),
            ("a\n@x.io", false),
            ("a@x.io\n", false),
            ("\u{131}@x.io", true),
            ("K@x.io", true),
            ("a@x_y.io", false),
            ("a@x.i_o", false),
            ("a@.io", false),
            ("@x.io", false),
            ("a@", false),
            ("a@b..c", false),
            ("a@b.c.", false),
            ("a@B.C-D", true),
            ("a@b.cd-", false),
            ("\u{e4}@x.io", false),
            ("a@\u{e4}.io", true),
            ("a@xn--.io", false),
            ("a@\u{3002}x.io", false),
            ("a@x\u{3002}io", true),
            ("a@\u{ff58}.io", true),
            ("a@x.\u{ff49}\u{ff4f}", true),
            ("a@x.io\u{200b}", true),
            ("a@%78.io", false),
        ];
        for (value, valid) in cases {
            assert_eq!(is_valid_email(value), *valid, "{value:?}");
        }
    }
}
