//! `django/core/signing.py`: `Signer`, `TimestampSigner`, `dumps`, `loads` (sha256, sep `:`).
//!
//! Layout: `[.]<b64url(json or zlib(json))>:<base62 unix time>:<b64url(HMAC-SHA256)>`, where the
//! HMAC key is `SHA-256(salt + "signer" + secret)` (`base64_hmac` → `salted_hmac`).

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::URL_SAFE_NO_PAD};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::Value;

use super::crypto::{SaltedHmac, constant_time_eq};
use super::py_json;

/// Default salt of `signing.dumps` / `signing.loads`.
pub const DEFAULT_SALT: &str = "django.core.signing";
/// `Signer.sep`.
pub const SEP: char = ':';
/// `signing.BASE62_ALPHABET`.
pub const BASE62_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Python's `urlsafe_b64decode` accepts missing or present padding and non-zero trailing bits.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `signing.BadSignature` and its subclass `SignatureExpired`, plus the `ValueError`s
/// Django's `loads` can raise on a malformed value (sessions treat all of them alike).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    /// `No ":" found in value`.
    #[error("No \":\" found in value")]
    NoSeparator,
    /// The signature matched neither the key nor any fallback key.
    #[error("Signature \"{0}\" does not match")]
    Mismatch(String),
    /// `SignatureExpired`.
    #[error("Signature age {age} > {max_age} seconds")]
    Expired {
        /// Seconds since signing.
        age: i64,
        /// The allowed maximum.
        max_age: i64,
    },
    /// The timestamp is missing or not base62 (a `ValueError` in Django).
    #[error("malformed timestamp")]
    BadTimestamp,
    /// Signed, but the payload is not base64 / zlib / JSON (a `ValueError` in Django).
    #[error("malformed payload: {0}")]
    BadPayload(String),
}

/// `b64_encode`: URL-safe base64 without padding.
pub fn b64_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// `b64_decode`: URL-safe base64, padding optional.
pub fn b64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_LENIENT.decode(s)
}

/// `b62_encode`: most-significant digit first, `-` for negatives, `"0"` for 0.
pub fn b62_encode(i: i64) -> String {
    if i == 0 {
        return "0".to_owned();
    }
    let mut n = i.unsigned_abs();
    let mut digits = Vec::with_capacity(12);
    while n > 0 {
        digits.push(BASE62_ALPHABET[(n % 62) as usize]);
        n /= 62;
    }
    if i < 0 {
        digits.push(b'-');
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

/// `b62_decode`. `None` where Python raises (empty string, a character outside the
/// alphabet). Python's integers do not overflow; here values saturate at the `i64` range,
/// which keeps every age comparison the same.
pub fn b62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None if s.is_empty() => return None,
        None => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62_ALPHABET.iter().position(|&a| a == b)?;
        n = n.saturating_mul(62).saturating_add(d as i64);
    }
    Some(if negative { -n } else { n })
}

/// `Signer(key=…, salt=…, fallback_keys=…, algorithm="sha256", sep=":")`.
/// The HMAC keys are derived once, so keep one signer per purpose and reuse it.
#[derive(Debug, Clone)]
pub struct Signer {
    macs: Vec<SaltedHmac>,
}

impl Signer {
    /// A signer for `key` (`SECRET_KEY`) and `salt`, without fallback keys.
    pub fn new(key: &str, salt: &str) -> Self {
        Self::with_fallbacks(key, &[] as &[&str], salt)
    }

    /// A signer that also accepts signatures made with any of `fallback_keys`
    /// (`SECRET_KEY_FALLBACKS`); it always signs with `key`.
    pub fn with_fallbacks<S: AsRef<str>>(key: &str, fallback_keys: &[S], salt: &str) -> Self {
        let key_salt = format!("{salt}signer");
        let macs = std::iter::once(key)
            .chain(fallback_keys.iter().map(AsRef::as_ref))
            .map(|k| SaltedHmac::new(&key_salt, k))
            .collect();
        Self { macs }
    }

    fn signature_with(mac: &SaltedHmac, value: &str) -> String {
        b64_encode(&mac.digest(value.as_bytes()))
    }

    /// `Signer.signature(value)` with the current key.
    pub fn signature(&self, value: &str) -> String {
        match self.macs.first() {
            Some(mac) => Self::signature_with(mac, value),
            None => String::new(),
        }
    }

    /// `Signer.sign(value)` = `value:signature`.
    pub fn sign(&self, value: &str) -> String {
        let sig = self.signature(value);
        let mut out = String::with_capacity(value.len() + 1 + sig.len());
        out.push_str(value);
        out.push(SEP);
        out.push_str(&sig);
        out
    }

    /// `Signer.unsign(signed_value)`: the value before the last `:` if the signature after it
    /// matches under the key or a fallback key (constant-time comparison of each).
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, BadSignature> {
        let (value, sig) = signed.rsplit_once(SEP).ok_or(BadSignature::NoSeparator)?;
        for mac in &self.macs {
            if constant_time_eq(sig.as_bytes(), Self::signature_with(mac, value).as_bytes()) {
                return Ok(value);
            }
        }
        Err(BadSignature::Mismatch(sig.to_owned()))
    }

    /// `Signer.sign_object(obj, compress=…)` (JSON serializer).
    pub fn sign_object(&self, obj: &Value, compress: bool) -> String {
        self.sign(&encode_payload(obj, compress))
    }

    /// `Signer.unsign_object(signed)` (JSON serializer).
    pub fn unsign_object(&self, signed: &str) -> Result<Value, BadSignature> {
        decode_payload(self.unsign(signed)?)
    }
}

/// `TimestampSigner`: `value:<base62 time>:signature`.
#[derive(Debug, Clone)]
pub struct TimestampSigner {
    signer: Signer,
}

impl TimestampSigner {
    /// See [`Signer::new`].
    pub fn new(key: &str, salt: &str) -> Self {
        Self {
            signer: Signer::new(key, salt),
        }
    }

    /// See [`Signer::with_fallbacks`].
    pub fn with_fallbacks<S: AsRef<str>>(key: &str, fallback_keys: &[S], salt: &str) -> Self {
        Self {
            signer: Signer::with_fallbacks(key, fallback_keys, salt),
        }
    }

    /// `TimestampSigner.sign(value)` at time `now_unix` (`int(time.time())`).
    pub fn sign(&self, value: &str, now_unix: i64) -> String {
        let mut stamped = String::with_capacity(value.len() + 8);
        stamped.push_str(value);
        stamped.push(SEP);
        stamped.push_str(&b62_encode(now_unix));
        self.signer.sign(&stamped)
    }

    /// `TimestampSigner.unsign(value, max_age)`. Django compares `time.time() - timestamp >
    /// max_age` with a fractional `time.time()`; whole seconds here.
    pub fn unsign<'a>(
        &self,
        signed: &'a str,
        max_age: Option<i64>,
        now_unix: i64,
    ) -> Result<&'a str, BadSignature> {
        let stamped = self.signer.unsign(signed)?;
        let (value, ts) = stamped.rsplit_once(SEP).ok_or(BadSignature::BadTimestamp)?;
        let ts = b62_decode(ts).ok_or(BadSignature::BadTimestamp)?;
        if let Some(max_age) = max_age {
            let age = now_unix.saturating_sub(ts);
            if age > max_age {
                return Err(BadSignature::Expired { age, max_age });
            }
        }
        Ok(value)
    }

    /// `TimestampSigner.sign_object(obj, compress=…)`.
    pub fn sign_object(&self, obj: &Value, compress: bool, now_unix: i64) -> String {
        self.sign(&encode_payload(obj, compress), now_unix)
    }

    /// `TimestampSigner.unsign_object(signed, max_age=…)`.
    pub fn unsign_object(
        &self,
        signed: &str,
        max_age: Option<i64>,
        now_unix: i64,
    ) -> Result<Value, BadSignature> {
        decode_payload(self.unsign(signed, max_age, now_unix)?)
    }
}

/// The payload half of `sign_object`: compact `json.dumps` (`ensure_ascii`), zlib only when it
/// saves more than one byte, URL-safe base64, `.` prefix when compressed.
fn encode_payload(obj: &Value, compress: bool) -> String {
    encode_json_bytes(py_json::dumps_compact(obj).as_bytes(), compress)
}

/// As [`encode_payload`] for JSON text that is already serialised.
pub(crate) fn encode_json_bytes(data: &[u8], compress: bool) -> String {
    if compress
        && let Some(z) = zlib_compress(data)
        && z.len() < data.len().saturating_sub(1)
    {
        let mut out = String::with_capacity(1 + z.len() * 4 / 3 + 4);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&z, &mut out);
        return out;
    }
    b64_encode(data)
}

fn zlib_compress(data: &[u8]) -> Option<Vec<u8>> {
    // zlib.compress() default level (6); any valid zlib stream interoperates.
    let mut enc = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 16), Compression::new(6));
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// The payload half of `unsign_object`. Only reached after the signature checked out, so a
/// zip bomb would have to be signed with our key.
fn decode_payload(b64: &str) -> Result<Value, BadSignature> {
    let (compressed, b64) = match b64.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, b64),
    };
    let mut data = b64_decode(b64).map_err(|e| BadSignature::BadPayload(e.to_string()))?;
    if compressed {
        let mut out = Vec::with_capacity(data.len() * 4);
        ZlibDecoder::new(data.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| BadSignature::BadPayload(e.to_string()))?;
        data = out;
    }
    // JSONSerializer.loads: data.decode("latin-1"), then json.loads.
    let text: String = if data.is_ascii() {
        String::from_utf8(data).map_err(|e| BadSignature::BadPayload(e.to_string()))?
    } else {
        data.iter().map(|&b| char::from(b)).collect()
    };
    serde_json::from_str(&text).map_err(|e| BadSignature::BadPayload(e.to_string()))
}

/// `signing.dumps(obj, key, salt, compress=…)` at time `now_unix`.
pub fn dumps(value: &Value, key: &str, salt: &str, compress: bool, now_unix: i64) -> String {
    TimestampSigner::new(key, salt).sign_object(value, compress, now_unix)
}

/// `signing.loads(s, key, salt, max_age=…, fallback_keys=…)` at time `now_unix`.
pub fn loads(
    s: &str,
    key: &str,
    fallbacks: &[String],
    salt: &str,
    max_age: Option<i64>,
    now_unix: i64,
) -> Result<Value, BadSignature> {
    TimestampSigner::with_fallbacks(key, fallbacks, salt).unsign_object(s, max_age, now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "django-insecure-test-vectors-0123456789abcdefghijklmnopqrstuvwxyz";
    const T: i64 = 1_704_110_400;

    #[test]
    fn base62() {
        for (n, s) in [
            (0, "0"),
            (1, "1"),
            (61, "z"),
            (62, "10"),
            (3843, "zz"),
            (T, "1rKGxc"),
            (-62, "-10"),
        ] {
            assert_eq!(b62_encode(n), s);
            assert_eq!(b62_decode(s), Some(n));
        }
        assert_eq!(b62_encode(i64::MIN), "-AzL8n0Y58m8");
        assert_eq!(b62_decode("-"), Some(0)); // as Python
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("1:"), None);
        assert_eq!(b62_decode("zzzzzzzzzzzzzzzzzzzzzzzz"), Some(i64::MAX));
    }

    #[test]
    fn invite_vector_round_trip() {
        let obj = json!({"room": "lobby", "user_id": 1});
        let s = dumps(&obj, KEY, "chatapp.invite", false, T);
        assert_eq!(
            s,
            "eyJyb29tIjoibG9iYnkiLCJ1c2VyX2lkIjoxfQ:1rKGxc:0xmA2dEclyJAd20ZdIME_DB6KeAoYhmaA05J3BqS7gc"
        );
        assert_eq!(loads(&s, KEY, &[], "chatapp.invite", None, T), Ok(obj));
        assert!(matches!(
            loads(&s, KEY, &[], "other", None, T),
            Err(BadSignature::Mismatch(_))
        ));
    }

    #[test]
    fn max_age() {
        let s = dumps(&json!(1), KEY, DEFAULT_SALT, false, T);
        assert!(loads(&s, KEY, &[], DEFAULT_SALT, Some(10), T + 10).is_ok());
        assert_eq!(
            loads(&s, KEY, &[], DEFAULT_SALT, Some(10), T + 11),
            Err(BadSignature::Expired {
                age: 11,
                max_age: 10
            })
        );
    }

    #[test]
    fn garbage_never_panics() {
        let signer = TimestampSigner::new(KEY, DEFAULT_SALT);
        for s in [
            "",
            ":",
            "::",
            "a:b:c",
            ".:1:x",
            "\u{0}:\u{ff}",
            "é:é:é",
            ":::::::::",
        ] {
            assert!(signer.unsign_object(s, None, T).is_err(), "{s:?}");
        }
        // Validly signed but not a payload: each layer fails cleanly.
        let plain = Signer::new(KEY, DEFAULT_SALT);
        for inner in [
            "!!!:1rKGxc",
            ".AAAA:1rKGxc",
            "e30:",
            "e30",
            "bm90IGpzb24:1rKGxc",
        ] {
            let signed = plain.sign(inner);
            assert!(signer.unsign_object(&signed, None, T).is_err(), "{inner:?}");
        }
        // `{}` with an empty timestamp field.
        assert_eq!(
            signer.unsign_object(&plain.sign("e30:0"), None, T),
            Ok(json!({}))
        );
    }

    #[test]
    fn latin1_payload_like_python() {
        // Django decodes the JSON bytes as latin-1: raw UTF-8 "é" reads back as "Ã©".
        let plain = Signer::new(KEY, DEFAULT_SALT);
        let payload = b64_encode("\"é\"".as_bytes());
        let s = plain.sign(&format!("{payload}:1rKGxc"));
        let v = TimestampSigner::new(KEY, DEFAULT_SALT).unsign_object(&s, None, T);
        assert_eq!(v, Ok(json!("Ã©")));
    }

    #[test]
    fn compression_only_when_it_pays() {
        let small = dumps(&json!({"theme": "dark"}), KEY, DEFAULT_SALT, true, T);
        assert!(!small.starts_with('.'));
        let big = dumps(&json!(vec!["lobby"; 60]), KEY, DEFAULT_SALT, true, T);
        assert!(big.starts_with(".eJ"));
        assert_eq!(
            loads(&big, KEY, &[], DEFAULT_SALT, None, T),
            Ok(json!(vec!["lobby"; 60]))
        );
    }
}
