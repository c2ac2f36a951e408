//! `django/contrib/sessions/backends/base.py` (`SessionBase.encode/decode`, keys) and the session
//! keys `django/contrib/auth/__init__.py: login()` writes.

use serde_json::{Map, Value};

use super::crypto::{get_random_string, salted_hmac_hex};
use super::py_json;
use super::signing::{TimestampSigner, encode_json_bytes};

/// `SessionStore.key_salt` of the database backend.
pub const SESSION_KEY_SALT: &str = "django.contrib.sessions.SessionStore";
/// `VALID_KEY_CHARS` = `string.ascii_lowercase + string.digits`.
pub const VALID_KEY_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a key made by `_get_new_session_key`.
pub const SESSION_KEY_LENGTH: usize = 32;
/// `django_session.session_key` is `varchar(40)`.
pub const SESSION_KEY_MAX_LENGTH: usize = 40;

/// `SESSION_KEY` in `django.contrib.auth`.
pub const AUTH_USER_ID: &str = "_auth_user_id";
/// `BACKEND_SESSION_KEY`.
pub const AUTH_USER_BACKEND: &str = "_auth_user_backend";
/// `HASH_SESSION_KEY`.
pub const AUTH_USER_HASH: &str = "_auth_user_hash";
/// The only entry of the default `AUTHENTICATION_BACKENDS`.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";
/// `key_salt` of `AbstractBaseUser.get_session_auth_hash`.
pub const SESSION_AUTH_HASH_SALT: &str =
    "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// `SessionBase._get_new_session_key` minus the database uniqueness check (the caller retries
/// on a key collision, as Django does).
pub fn new_session_key() -> String {
    get_random_string(SESSION_KEY_LENGTH, VALID_KEY_CHARS)
}

/// `SessionBase._validate_session_key` (at least 8 characters), narrowed to what Django
/// generates so junk never reaches SQL: at most 40 characters of `[a-z0-9]`.
pub fn is_valid_session_key(key: &str) -> bool {
    (8..=SESSION_KEY_MAX_LENGTH).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `SessionBase.encode(session_dict)` = `signing.dumps(dict, salt=key_salt, compress=True)`.
pub fn encode_session(data: &Map<String, Value>, secret: &str, now_unix: i64) -> String {
    SessionSigner::new(secret, &[] as &[String]).encode(data, now_unix)
}

/// `SessionBase.decode(session_data)`: `None` where Django logs "Session data corrupted" (bad
/// signature) or swallows any other error and uses `{}`. Also `None` for valid JSON that is not
/// an object (Django would keep a non-dict there and fail later). The timestamp is never checked:
/// expiry is the `expire_date` column's job.
pub fn decode_session(
    session_data: &str,
    secret: &str,
    fallbacks: &[String],
) -> Option<Map<String, Value>> {
    SessionSigner::new(secret, fallbacks).decode(session_data)
}

/// The session signer with its keys derived once; keep one for the process.
#[derive(Debug, Clone)]
pub struct SessionSigner {
    signer: TimestampSigner,
}

impl SessionSigner {
    /// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`.
    pub fn new<S: AsRef<str>>(secret: &str, fallbacks: &[S]) -> Self {
        Self {
            signer: TimestampSigner::with_fallbacks(secret, fallbacks, SESSION_KEY_SALT),
        }
    }

    /// See [`encode_session`].
    pub fn encode(&self, data: &Map<String, Value>, now_unix: i64) -> String {
        let mut json = String::with_capacity(160);
        py_json::write_map(&mut json, data, py_json::Style::Compact);
        self.signer
            .sign(&encode_json_bytes(json.as_bytes(), true), now_unix)
    }

    /// See [`decode_session`].
    pub fn decode(&self, session_data: &str) -> Option<Map<String, Value>> {
        match self.signer.unsign_object(session_data, None, 0) {
            Ok(Value::Object(map)) => Some(map),
            Ok(_) => {
                tracing::warn!(
                    "session data is validly signed but not a JSON object; using an empty session"
                );
                None
            }
            Err(e @ super::signing::BadSignature::Mismatch(_))
            | Err(e @ super::signing::BadSignature::NoSeparator) => {
                // Django: logger "django.security.SuspiciousSession", "Session data corrupted".
                tracing::warn!(target: "django.security.SuspiciousSession", error = %e, "Session data corrupted");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable session data; using an empty session");
                None
            }
        }
    }
}

/// `AbstractBaseUser.get_session_auth_hash()` for the stored password hash (`_auth_user_hash`).
pub fn session_auth_hash(password_hash: &str, secret: &str) -> String {
    salted_hmac_hex(SESSION_AUTH_HASH_SALT, password_hash.as_bytes(), secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "django-insecure-test-vectors-0123456789abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn keys() {
        let k = new_session_key();
        assert_eq!(k.len(), 32);
        assert!(is_valid_session_key(&k));
        assert!(is_valid_session_key("abcdefgh"));
        assert!(!is_valid_session_key("abcdefg"));
        assert!(!is_valid_session_key(""));
        assert!(!is_valid_session_key(&"a".repeat(41)));
        assert!(is_valid_session_key(&"a".repeat(40)));
        for bad in [
            "ABCDEFGHIJ",
            "abcdefgh'--",
            "abcdefgh ",
            "abcdéfgh",
            "abcd\0efgh",
        ] {
            assert!(!is_valid_session_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn small_session_vector() {
        let Value::Object(m) = json!({"theme": "dark"}) else {
            unreachable!()
        };
        let s = encode_session(&m, KEY, 1_704_110_400);
        assert_eq!(
            s,
            "eyJ0aGVtZSI6ImRhcmsifQ:1rKGxc:-isCUkUOY4pvwCEEAW8GAnZUzg-M7pbCu7-7_A6xIlM"
        );
        assert_eq!(decode_session(&s, KEY, &[]), Some(m));
    }

    #[test]
    fn bad_data_is_none() {
        for s in [
            "",
            "x",
            "a:b:c",
            "eyJ0aGVtZSI6ImRhcmsifQ:1rKGxc:-isCUkUOY4pvwCEEAW8GAnZUzg-M7pbCu7-7_A6xIlm",
        ] {
            assert_eq!(decode_session(s, KEY, &[]), None);
        }
        // Validly signed list: not a session dict.
        let s = super::super::signing::dumps(&json!([1]), KEY, SESSION_KEY_SALT, true, 0);
        assert_eq!(decode_session(&s, KEY, &[]), None);
    }
}
