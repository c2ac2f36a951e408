//! The current system user's name, as Python's `getpass.getuser()` finds it, and the default
//! username `createsuperuser` derives from it
//! (`django/contrib/auth/management/__init__.py get_default_username`).

use unicode_normalization::UnicodeNormalization;

use crate::django::validators::Username;

/// `getpass.getuser()`: the first non-empty of `LOGNAME`, `USER`, `LNAME`, `USERNAME`, else the
/// password-database name of the real user id; `None` when neither exists (Python raises, and
/// `get_system_username` turns that into `""`).
pub fn system_username() -> Option<String> {
    let env = |name: &str| std::env::var(name).ok();
    getuser(env, passwd_name)
}

/// [`system_username`] with its sources injected.
pub fn getuser(
    env: impl Fn(&str) -> Option<String>,
    passwd: impl FnOnce() -> Option<String>,
) -> Option<String> {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .filter_map(|name| env(name))
        .find(|value| !value.is_empty())
        .or_else(passwd)
}

/// `pwd.getpwuid(os.getuid())[0]` from `/etc/passwd` (the files NSS source; directory
/// services are not consulted).
fn passwd_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = real_uid(&status)?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_lookup(&passwd, uid)
}

/// The real uid from `/proc/self/status` (`Uid:\treal\teffective\tsaved\tfs`).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The name of the first `/etc/passwd` entry with this uid.
fn passwd_lookup(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let entry_uid: u32 = fields.next()?.parse().ok()?;
        (entry_uid == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The candidate default username before the database check: NFKD, non-ASCII dropped, spaces
/// removed, lower-cased; `""` when it fails the username validators (an empty name passes them
/// and is returned as is, meaning "no default").
pub fn default_username_candidate(system_username: &str) -> String {
    let folded: String = system_username
        .nfkd()
        .filter(char::is_ascii)
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // `run_validators` skips empty values.
    if folded.is_empty() || Username::parse_model(&folded).is_ok() {
        folded
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_order_then_passwd() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            getuser(env(&[("USER", "u"), ("LOGNAME", "l")]), || None).as_deref(),
            Some("l")
        );
        assert_eq!(
            getuser(env(&[("LOGNAME", ""), ("USERNAME", "n")]), || None).as_deref(),
            Some("n")
        );
        assert_eq!(
            getuser(env(&[]), || Some("root".into())).as_deref(),
            Some("root")
        );
        assert_eq!(getuser(env(&[]), || None), None);
    }

    #[test]
    fn passwd_parsing() {
        let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t1\n";
        assert_eq!(real_uid(status), Some(1000));
        let passwd = "root:x:0:0:root:/root:/bin/bash\n#c\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(passwd_lookup(passwd, 1000).as_deref(), Some("bob"));
        assert_eq!(passwd_lookup(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_lookup(passwd, 7), None);
    }

    #[test]
    fn folding_as_get_default_username() {
        assert_eq!(default_username_candidate("Carol"), "carol");
        assert_eq!(default_username_candidate("Jöhn Smith"), "johnsmith");
        assert_eq!(default_username_candidate("ﬁnn"), "finn");
        assert_eq!(default_username_candidate("日本"), "");
        assert_eq!(default_username_candidate("a/b"), "");
        assert_eq!(default_username_candidate(&"x".repeat(151)), "");
        assert_eq!(default_username_candidate("o'brien"), "");
    }
}
