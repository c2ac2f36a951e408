//! Secrets kept out of logs and messages: URLs with their password masked, and a plain-text
//! password whose `Debug` shows nothing of it. Imports nothing else of the crate.

use std::fmt;

/// `url` with any password replaced by `***`, for logs, errors and `check`. A URL that does not
/// parse keeps its scheme and host but loses everything before the last `@`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
            _ => url.to_owned(),
        },
    }
}

/// A password as the user typed it, before hashing. `Debug` prints `Password(***)`, so a form,
/// a command's input or a log line holding one never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    pub fn new(plain: impl Into<String>) -> Password {
        Password(plain.into())
    }

    /// The plain text, for hashing or checking.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_plain(self) -> String {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(
            redact_url("unix:///run/redis.sock"),
            "unix:///run/redis.sock"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let unparsable = redact_url("redis://us er:pa[ss@h:x/0");
        assert!(!unparsable.contains("pa[ss"), "{unparsable}");
        assert!(unparsable.ends_with("@h:x/0"), "{unparsable}");
    }

    #[test]
    fn a_password_never_shows_in_debug() {
        let password = Password::new("hunter2");
        assert_eq!(format!("{password:?}"), "Password(***)");
        assert_eq!(
            format!("{:?}", Some(password.clone())),
            "Some(Password(***))"
        );
        assert_eq!(password.expose(), "hunter2");
    }
}
