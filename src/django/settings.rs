//! The legacy `chat_project/settings.py` helpers that read environment values, so every
//! variable (ours and the legacy app's) is read by the same rules.

/// `settings.py env_bool`: true for 1/true/yes/on after strip + lower-case.
pub fn env_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// `settings.py env_list`: comma-split, items stripped, empty items dropped.
pub fn env_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_settings_py() {
        assert!(env_bool(" On "));
        assert!(env_bool("1") && env_bool("TRUE") && env_bool("yes"));
        assert!(!env_bool("0") && !env_bool("off") && !env_bool(""));
        assert_eq!(env_list(" a , ,b,"), ["a", "b"]);
        assert!(env_list("").is_empty());
    }
}
