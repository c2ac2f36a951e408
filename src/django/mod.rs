//! Pure Django-compatibility functions (no I/O), each tested against vectors Django produced:
//! Django's own behaviour (hashers, signing, sessions, CSRF, validators, `json.dumps`, date
//! formats, HTML escaping) and the legacy chat app's rules (`room_name`, `chat_json`). The only
//! home of such ports; it imports nothing else of the crate.
//!
//! Every item names the Django 5.0.1 (Python 3.11) function it mirrors;
//! `tests/compat_vectors.rs` checks them against `tests/data/django_vectors.json` and
//! `tests/data/django_extra_vectors.json`, both made by real Django.

pub mod chat_json;
pub mod crypto;
pub mod csrf;
pub mod dateformat;
pub mod dates;
pub mod deploy_checks;
pub mod email;
pub mod hashers;
pub mod hosts;
pub mod html;
pub mod http;
pub mod py_json;
pub mod pyunicode;
mod pyunicode_tables;
pub mod room_name;
pub mod sessions;
pub mod settings;
pub mod signing;
pub mod validators;

#[cfg(test)]
mod garbage_tests {
    //! Random junk through every parser: errors, never panics.
    use rand::RngExt;

    use super::*;

    /// Separators, multi-byte and control characters; `0` is the only digit so no stored
    /// hash can ask for real work.
    const PIECES: &[&str] = &[
        ":", "$", ".", "/", "\\", "[", "]", "%", "@", "#", "?", ";", "a", "Z", "0", "é", "😀",
        "\0", " ", "\t", "\n", "\u{2100}", "\u{301}", "-", "_", "=", "!", "::1", "v", "http", "//",
    ];
    const PREFIXES: &[&str] = &[
        "",
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "scrypt$",
        "argon2$",
        "bcrypt$",
        "md5$",
        "https://",
        ".eJ",
        "!",
    ];

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = rand::rng();
        let signer = sessions::SessionSigner::new("k", &["old"]);
        for _ in 0..20_000 {
            let mut s = PREFIXES[rng.random_range(0..PREFIXES.len())].to_owned();
            for _ in 0..rng.random_range(0..16) {
                s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
            let _ = hashers::identify_hasher(&s);
            let _ = hashers::must_update(&s);
            let _ = hashers::verify_password(&s, &s);
            let _ = signer.decode(&s);
            let _ = signing::b62_decode(&s);
            let _ = signing::b64_decode(&s);
            let _ = csrf::check_token_format(&s);
            let _ = csrf::secret_from_cookie(&s);
            let _ = csrf::unmask_cipher_token(&s);
            let _ = csrf::does_token_match(&s, &s);
            let _ = csrf::check_referer(Some(&s), Some(&s), &[&s]);
            let _ = csrf::origin_verified(&s, Some(&s), true, &[&s]);
            let _ = csrf::csrf_failure_body(&s, true);
            let _ = http::urlparse(&s).map(|p| p.geturl());
            let _ = http::url_has_allowed_host_and_scheme(&s, &["a"], false);
            let _ = http::is_same_domain(&s, &s);
            let _ = validators::Username::parse(&s);
            let _ = validators::Username::parse_model(&s);
            let _ = validators::validate_password(
                &s,
                &validators::UserAttributes {
                    username: &s,
                    email: &s,
                    ..Default::default()
                },
            );
            let _ = pyunicode::split_non_word(&s);
            let _ = py_json::dumps(&serde_json::Value::String(s));
        }
    }
}
