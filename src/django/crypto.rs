//! `django/utils/crypto.py`: `salted_hmac`, `constant_time_compare`, `get_random_string`.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `django.utils.crypto.RANDOM_STRING_CHARS` (the salt / unusable-password alphabet).
pub const RANDOM_STRING_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// HMAC block size of SHA-1 and SHA-256. A shorter key is zero-padded to it by HMAC itself,
/// so padding it here gives the same MAC and lets us use the infallible `KeyInit::new`.
const BLOCK: usize = 64;

/// `salted_hmac(key_salt, value, secret, algorithm="sha256").digest()`
/// (`django/utils/crypto.py: salted_hmac`): key = SHA-256(key_salt ‖ secret), HMAC-SHA256(key, value).
pub fn salted_hmac(key_salt: &str, value: &[u8], secret: &str) -> [u8; 32] {
    SaltedHmac::new(key_salt, secret).digest(value)
}

/// A `salted_hmac` key derived once and reused (the signer checks every session with it).
#[derive(Clone)]
pub struct SaltedHmac(Hmac<Sha256>);

impl SaltedHmac {
    /// Derives the HMAC key `SHA-256(key_salt ‖ secret)`.
    pub fn new(key_salt: &str, secret: &str) -> Self {
        let derived = Sha256::new()
            .chain_update(key_salt.as_bytes())
            .chain_update(secret.as_bytes())
            .finalize();
        let mut key = [0u8; BLOCK];
        key[..derived.len()].copy_from_slice(&derived);
        Self(<Hmac<Sha256> as KeyInit>::new(&key.into()))
    }

    /// HMAC-SHA256 of `value` under the derived key.
    pub fn digest(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for SaltedHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaltedHmac(..)")
    }
}

/// `salted_hmac(...).hexdigest()` with sha256 (e.g. `_auth_user_hash`).
pub fn salted_hmac_hex(key_salt: &str, value: &[u8], secret: &str) -> String {
    hex::encode(salted_hmac(key_salt, value, secret))
}

/// `salted_hmac(key_salt, value, secret)` with Django's historical default `algorithm="sha1"`.
/// Nothing in the chat app uses it; kept because the vectors pin it down.
pub fn salted_hmac_sha1(key_salt: &str, value: &[u8], secret: &str) -> [u8; 20] {
    let derived = Sha1::new()
        .chain_update(key_salt.as_bytes())
        .chain_update(secret.as_bytes())
        .finalize();
    let mut key = [0u8; BLOCK];
    key[..derived.len()].copy_from_slice(&derived);
    let mut mac = <Hmac<Sha1> as KeyInit>::new(&key.into());
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// `constant_time_compare(a, b)` (`secrets.compare_digest`): constant time in the content;
/// different lengths return false at once, as in Python.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `get_random_string(length, allowed_chars)`: each character drawn uniformly
/// (`secrets.choice`) from `alphabet` with the thread-local CSPRNG (ChaCha, seeded from the OS).
/// `alphabet` must be ASCII; an empty alphabet gives an empty string.
pub fn get_random_string(len: usize, alphabet: &[u8]) -> String {
    debug_assert!(alphabet.is_ascii());
    if alphabet.is_empty() {
        return String::new();
    }
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "django-insecure-test-vectors-0123456789abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn session_auth_hash_vector() {
        let v = "pbkdf2_sha256$720000$Xb8pTqW3zRkL9mNvC2hJ4d$fb9CgwiHzEMQsiZ+u7ES/XuruvQZGSMLkUy/F8punOs=";
        assert_eq!(
            salted_hmac_hex(
                "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
                v.as_bytes(),
                SECRET
            ),
            "69ccf6b569a63a8df985e8099c6535fd7af2884722dcb84005e6e255768e6cd4"
        );
    }

    #[test]
    fn sha1_vector() {
        let mac = salted_hmac_sha1("chatapp.example.key_salt", b"some value", SECRET);
        assert_eq!(hex::encode(mac), "5e978717fe68af3bd01e4c29f480c3e013b9b563");
    }

    #[test]
    fn constant_time_eq_lengths() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_string_uses_alphabet() {
        let s = get_random_string(1000, b"ab");
        assert_eq!(s.len(), 1000);
        assert!(s.contains('a') && s.contains('b'));
        assert!(s.bytes().all(|c| c == b'a' || c == b'b'));
        assert_eq!(get_random_string(5, b""), "");
        assert_eq!(get_random_string(0, RANDOM_STRING_CHARS), "");
        assert_ne!(
            get_random_string(32, RANDOM_STRING_CHARS),
            get_random_string(32, RANDOM_STRING_CHARS)
        );
    }
}
