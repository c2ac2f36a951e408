//! `django/contrib/auth/hashers.py` (Django 5.0.1) with the default `PASSWORD_HASHERS`
//! (`PBKDF2PasswordHasher`, `PBKDF2SHA1PasswordHasher`, `Argon2PasswordHasher`,
//! `BCryptSHA256PasswordHasher`, `ScryptPasswordHasher`).
//!
//! Verification re-encodes the password with the stored parameters and compares the whole
//! encoded strings in constant time, exactly as `PBKDF2PasswordHasher.verify` and
//! `ScryptPasswordHasher.verify` do, so only canonical encodings ever verify (as in Django).
//! Where Django would raise (a malformed hash: a 500 on login there) we log and say "wrong
//! password". Work factors are bounded so a stored hash can never cost minutes of CPU.
//!
//! These functions are CPU-bound (≈ 85–110 ms at 720 000 iterations): call them from
//! `tokio::task::spawn_blocking`, never on the async reactor.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::Sha1;
use sha2::Sha256;

use super::crypto::{RANDOM_STRING_CHARS, constant_time_eq, get_random_string};

/// `PBKDF2PasswordHasher.iterations` in Django 5.0.
pub const PBKDF2_ITERATIONS: u32 = 720_000;
/// Stored PBKDF2 hashes with more iterations are refused (≈ 12 s of CPU; Django 5.2 uses 1 000 000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 100_000_000;
/// `BasePasswordHasher.salt_entropy`.
pub const SALT_ENTROPY_BITS: u32 = 128;
/// `ceil(128 / log2(62))`: length of a salt from `BasePasswordHasher.salt()`.
pub const SALT_LENGTH: usize = 22;
/// `UNUSABLE_PASSWORD_PREFIX`.
pub const UNUSABLE_PASSWORD_PREFIX: char = '!';
/// `UNUSABLE_PASSWORD_SUFFIX_LENGTH`.
pub const UNUSABLE_PASSWORD_SUFFIX_LENGTH: usize = 40;
/// `ScryptPasswordHasher.work_factor` / `block_size` / `parallelism`.
pub const SCRYPT_N: u64 = 1 << 14;
/// See [`SCRYPT_N`].
pub const SCRYPT_R: u64 = 8;
/// See [`SCRYPT_N`].
pub const SCRYPT_P: u64 = 1;
/// `hashlib.scrypt(maxmem=0)` means OpenSSL's default limit, 32 MiB.
const SCRYPT_MAX_MEM: u64 = 32 * 1024 * 1024;
/// Beyond OpenSSL's memory limit, bound n·r·p (time) to 32× Django's default (≈ 1.5 s).
const SCRYPT_MAX_COST: u64 = 32 * SCRYPT_N * SCRYPT_R * SCRYPT_P;

/// The hashers `hashers.py` defines (5.0 dropped `crypt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `pbkdf2_sha256` (the preferred hasher).
    Pbkdf2Sha256,
    /// `pbkdf2_sha1`.
    Pbkdf2Sha1,
    /// `argon2`: in the default list, but argon2-cffi is not installed in the legacy app.
    Argon2,
    /// `bcrypt_sha256`: in the default list, but bcrypt is not installed in the legacy app.
    BcryptSha256,
    /// `scrypt` (Python's standard library; works on the legacy app).
    Scrypt,
    /// `bcrypt` (not in the default list).
    Bcrypt,
    /// `sha1` (not in the default list).
    Sha1,
    /// `md5` (not in the default list).
    Md5,
    /// `unsalted_sha1` (not in the default list).
    UnsaltedSha1,
    /// `unsalted_md5` (not in the default list).
    UnsaltedMd5,
}

impl Algorithm {
    /// The `algorithm` attribute / hash prefix.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Pbkdf2Sha256 => "pbkdf2_sha256",
            Algorithm::Pbkdf2Sha1 => "pbkdf2_sha1",
            Algorithm::Argon2 => "argon2",
            Algorithm::BcryptSha256 => "bcrypt_sha256",
            Algorithm::Scrypt => "scrypt",
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
            Algorithm::UnsaltedSha1 => "unsalted_sha1",
            Algorithm::UnsaltedMd5 => "unsalted_md5",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pbkdf2_sha256" => Algorithm::Pbkdf2Sha256,
            "pbkdf2_sha1" => Algorithm::Pbkdf2Sha1,
            "argon2" => Algorithm::Argon2,
            "bcrypt_sha256" => Algorithm::BcryptSha256,
            "scrypt" => Algorithm::Scrypt,
            "bcrypt" => Algorithm::Bcrypt,
            "sha1" => Algorithm::Sha1,
            "md5" => Algorithm::Md5,
            "unsalted_sha1" => Algorithm::UnsaltedSha1,
            "unsalted_md5" => Algorithm::UnsaltedMd5,
            _ => return None,
        })
    }

    /// Listed in Django 5.0's default `PASSWORD_HASHERS` (`get_hasher` accepts it).
    pub fn in_default_hashers(self) -> bool {
        matches!(
            self,
            Algorithm::Pbkdf2Sha256
                | Algorithm::Pbkdf2Sha1
                | Algorithm::Argon2
                | Algorithm::BcryptSha256
                | Algorithm::Scrypt
        )
    }

    /// ferrochat can verify it (as can the legacy app).
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            Algorithm::Pbkdf2Sha256 | Algorithm::Pbkdf2Sha1 | Algorithm::Scrypt
        )
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a stored hash cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// `!…`: `set_unusable_password()`.
    #[error("unusable password")]
    Unusable,
    /// `identify_hasher`'s `ValueError`.
    #[error("unknown password hashing algorithm '{0}'")]
    UnknownAlgorithm(String),
    /// Known to Django, but not in the default `PASSWORD_HASHERS`: the legacy app refuses it too.
    #[error("password hashing algorithm '{0}' is not in Django's default PASSWORD_HASHERS")]
    NotInstalled(Algorithm),
    /// In the default list, but its library is not installed in the legacy app, which fails on it.
    #[error("password hashing algorithm '{0}' needs a library the legacy app does not have")]
    Unsupported(Algorithm),
    /// The fields do not parse.
    #[error("malformed {0} hash: {1}")]
    Malformed(Algorithm, &'static str),
    /// An absurd PBKDF2 iteration count.
    #[error("PBKDF2 iteration count {0} outside 1..={MAX_PBKDF2_ITERATIONS}")]
    Iterations(u64),
    /// Scrypt parameters Python's `hashlib.scrypt` rejects, or that would cost too much.
    #[error("scrypt parameters n={n} r={r} p={p} are invalid or too costly")]
    ScryptParams {
        /// Work factor.
        n: u64,
        /// Block size.
        r: u64,
        /// Parallelism.
        p: u64,
    },
}

/// `verify_password(password, encoded)`'s two booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PasswordCheck {
    /// The password matches.
    pub correct: bool,
    /// The hash should be rewritten with [`make_password`] (only act on it when `correct`).
    pub must_update: bool,
}

/// `is_password_usable(encoded)`.
pub fn is_password_usable(encoded: &str) -> bool {
    !encoded.starts_with(UNUSABLE_PASSWORD_PREFIX)
}

/// `make_password(None)`: `"!"` + 40 random characters.
pub fn make_unusable_password() -> String {
    let mut s = String::with_capacity(1 + UNUSABLE_PASSWORD_SUFFIX_LENGTH);
    s.push(UNUSABLE_PASSWORD_PREFIX);
    s.push_str(&get_random_string(
        UNUSABLE_PASSWORD_SUFFIX_LENGTH,
        RANDOM_STRING_CHARS,
    ));
    s
}

/// `BasePasswordHasher.salt()`: 22 characters of `RANDOM_STRING_CHARS` (≥ 128 bits).
pub fn new_salt() -> String {
    get_random_string(SALT_LENGTH, RANDOM_STRING_CHARS)
}

/// `make_password(raw)`: pbkdf2_sha256, 720 000 iterations, a fresh 22-character salt.
pub fn make_password(raw: &str) -> String {
    encode_pbkdf2(Algorithm::Pbkdf2Sha256, raw, &new_salt(), PBKDF2_ITERATIONS)
}

/// `PBKDF2PasswordHasher().encode(raw, salt, iterations)`. As in Django an empty salt means a
/// fresh one (`make_password`'s `salt or hasher.salt()`) and 0 iterations means the default
/// (`iterations or self.iterations`). A salt containing `$` (a `ValueError` in Django) is
/// replaced by a fresh salt, with an error logged; iterations are capped at
/// [`MAX_PBKDF2_ITERATIONS`].
pub fn make_password_with(raw: &str, salt: &str, iterations: u32) -> String {
    let salt = if salt.is_empty() {
        new_salt()
    } else if salt.contains('$') {
        tracing::error!("make_password_with: a salt must not contain '$'; using a random salt");
        new_salt()
    } else {
        salt.to_owned()
    };
    let iterations = match iterations {
        0 => PBKDF2_ITERATIONS,
        n => n.min(MAX_PBKDF2_ITERATIONS),
    };
    encode_pbkdf2(Algorithm::Pbkdf2Sha256, raw, &salt, iterations)
}

/// `PBKDF2PasswordHasher.encode` for sha256 or sha1 (`iterations` ≥ 1, `salt` valid).
fn encode_pbkdf2(algorithm: Algorithm, raw: &str, salt: &str, iterations: u32) -> String {
    let b64 = match algorithm {
        Algorithm::Pbkdf2Sha1 => {
            let mut dk = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<Sha1>(raw.as_bytes(), salt.as_bytes(), iterations, &mut dk);
            STANDARD.encode(dk)
        }
        _ => {
            let mut dk = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(raw.as_bytes(), salt.as_bytes(), iterations, &mut dk);
            STANDARD.encode(dk)
        }
    };
    format!("{}${iterations}${salt}${b64}", algorithm.name())
}

/// `identify_hasher(encoded)`: the algorithm a hash names (including the ancient unsalted
/// md5/sha1 shapes), whether or not it can be verified.
pub fn identify_hasher(encoded: &str) -> Result<Algorithm, HashError> {
    if !is_password_usable(encoded) {
        return Err(HashError::Unusable);
    }
    let n = encoded.chars().count();
    let name = if (n == 32 && !encoded.contains('$')) || (n == 37 && encoded.starts_with("md5$$")) {
        "unsalted_md5"
    } else if n == 46 && encoded.starts_with("sha1$$") {
        "unsalted_sha1"
    } else {
        encoded.split('$').next().unwrap_or_default()
    };
    Algorithm::from_name(name).ok_or_else(|| HashError::UnknownAlgorithm(truncate(name)))
}

/// Keeps log lines short when a column holds junk.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Python's `"%d" % int(s)` round trip: only canonical decimal can ever verify, since
/// Django compares the re-encoded string with the stored one.
fn parse_canonical(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 19
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Checks `must_update_salt(salt, 128)`: `len(salt) * log2(62) < 128`.
fn salt_too_short(salt: &str) -> bool {
    (salt.chars().count() as f64) * (RANDOM_STRING_CHARS.len() as f64).log2()
        < f64::from(SALT_ENTROPY_BITS)
}

struct Pbkdf2Parts<'a> {
    algorithm: Algorithm,
    iterations: u64,
    salt: &'a str,
}

/// `PBKDF2PasswordHasher.decode`: `encoded.split("$", 3)` with an integer iteration count.
fn decode_pbkdf2(algorithm: Algorithm, encoded: &str) -> Result<Pbkdf2Parts<'_>, HashError> {
    let mut parts = encoded.splitn(4, '$');
    let (Some(_), Some(iterations), Some(salt), Some(_hash)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HashError::Malformed(
            algorithm,
            "expected 4 '$'-separated fields",
        ));
    };
    let iterations = parse_canonical(iterations).ok_or(HashError::Malformed(
        algorithm,
        "iterations is not a decimal integer",
    ))?;
    Ok(Pbkdf2Parts {
        algorithm,
        iterations,
        salt,
    })
}

struct ScryptParts<'a> {
    n: u64,
    salt: &'a str,
    r: u64,
    p: u64,
}

/// `ScryptPasswordHasher.decode`: exactly six `$`-separated fields.
fn decode_scrypt(encoded: &str) -> Result<ScryptParts<'_>, HashError> {
    let fields: Vec<&str> = encoded.split('$').collect();
    let [_, n, salt, r, p, _hash] = fields.as_slice() else {
        return Err(HashError::Malformed(
            Algorithm::Scrypt,
            "expected 6 '$'-separated fields",
        ));
    };
    let int = |s: &str| {
        parse_canonical(s).ok_or(HashError::Malformed(
            Algorithm::Scrypt,
            "n, r, p must be integers",
        ))
    };
    Ok(ScryptParts {
        n: int(n)?,
        salt,
        r: int(r)?,
        p: int(p)?,
    })
}

/// The checks OpenSSL's `EVP_PBE_scrypt` applies under `hashlib.scrypt(maxmem=0)` (32 MiB),
/// plus a time bound.
fn check_scrypt_params(n: u64, r: u64, p: u64) -> Result<u8, HashError> {
    let err = HashError::ScryptParams { n, r, p };
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
        return Err(err);
    }
    // p * r < SCRYPT_PR_MAX (2^30 - 1)
    if p > ((1u64 << 30) - 1) / r {
        return Err(err);
    }
    // N < 2^(16 r) when that fits in 64 bits
    if 16 * r <= 63 && n >= 1u64 << (16 * r) {
        return Err(err);
    }
    // Blen + Vlen = 128 r p + 128 r (N + 2) <= maxmem
    let mem = r
        .checked_mul(128)
        .and_then(|r128| n.checked_add(2)?.checked_add(p)?.checked_mul(r128));
    match mem {
        Some(m) if m <= SCRYPT_MAX_MEM => {}
        _ => return Err(err),
    }
    match n.checked_mul(r).and_then(|nr| nr.checked_mul(p)) {
        Some(cost) if cost <= SCRYPT_MAX_COST => {}
        _ => return Err(err),
    }
    Ok(n.trailing_zeros() as u8)
}

/// `ScryptPasswordHasher.encode(raw, salt, n, r, p)` (64-byte key, standard base64).
fn encode_scrypt(raw: &str, salt: &str, n: u64, r: u64, p: u64) -> Result<String, HashError> {
    let err = HashError::ScryptParams { n, r, p };
    let log_n = check_scrypt_params(n, r, p)?;
    let (r32, p32) = (
        u32::try_from(r).map_err(|_| err.clone())?,
        u32::try_from(p).map_err(|_| err.clone())?,
    );
    let params = scrypt::Params::new(log_n, r32, p32).map_err(|_| err.clone())?;
    let mut dk = [0u8; 64];
    scrypt::scrypt(raw.as_bytes(), salt.as_bytes(), &params, &mut dk).map_err(|_| err)?;
    Ok(format!("scrypt${n}${salt}${r}${p}${}", STANDARD.encode(dk)))
}

/// The preferred hasher's `must_update(encoded)` for a `pbkdf2_sha256` hash.
fn pbkdf2_must_update(parts: &Pbkdf2Parts<'_>) -> bool {
    parts.iterations != u64::from(PBKDF2_ITERATIONS) || salt_too_short(parts.salt)
}

/// `verify_password`'s `must_update`: `hasher.algorithm != preferred.algorithm or
/// preferred.must_update(encoded)`. False for unusable/unknown hashes and where Django raises.
pub fn must_update(encoded: &str) -> bool {
    match identify_hasher(encoded) {
        Ok(Algorithm::Pbkdf2Sha256) => decode_pbkdf2(Algorithm::Pbkdf2Sha256, encoded)
            .map(|p| pbkdf2_must_update(&p))
            .unwrap_or(false),
        Ok(alg) => alg.in_default_hashers(),
        Err(_) => false,
    }
}

/// `verify_password(password, encoded)` (Django 5.0.1), including `harden_runtime` (a wrong
/// password on an outdated `pbkdf2_sha256` hash runs the missing iterations). Never panics;
/// malformed, unknown and unsupported hashes are logged and do not match.
pub fn verify_password(raw: &str, encoded: &str) -> PasswordCheck {
    match check(raw, encoded) {
        Ok(result) => result,
        Err(HashError::Unusable) => PasswordCheck::default(),
        Err(e @ (HashError::Unsupported(_) | HashError::NotInstalled(_))) => {
            tracing::warn!(error = %e, "refusing a password hash ferrochat (like the legacy app) cannot verify");
            PasswordCheck {
                correct: false,
                must_update: must_update(encoded),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is malformed; treating the password as wrong");
            PasswordCheck {
                correct: false,
                must_update: must_update(encoded),
            }
        }
    }
}

fn check(raw: &str, encoded: &str) -> Result<PasswordCheck, HashError> {
    let algorithm = identify_hasher(encoded)?;
    if !algorithm.in_default_hashers() {
        return Err(HashError::NotInstalled(algorithm));
    }
    if !algorithm.is_supported() {
        return Err(HashError::Unsupported(algorithm));
    }
    let hasher_changed = algorithm != Algorithm::Pbkdf2Sha256;
    match algorithm {
        Algorithm::Pbkdf2Sha256 | Algorithm::Pbkdf2Sha1 => {
            let parts = decode_pbkdf2(algorithm, encoded)?;
            let must_update = hasher_changed || pbkdf2_must_update(&parts);
            if parts.salt.is_empty() {
                return Err(HashError::Malformed(algorithm, "empty salt"));
            }
            let iterations = u32::try_from(parts.iterations)
                .ok()
                .filter(|i| (1..=MAX_PBKDF2_ITERATIONS).contains(i))
                .ok_or(HashError::Iterations(parts.iterations))?;
            let encoded_2 = encode_pbkdf2(parts.algorithm, raw, parts.salt, iterations);
            let correct = constant_time_eq(encoded.as_bytes(), encoded_2.as_bytes());
            if !correct && !hasher_changed && must_update {
                // PBKDF2PasswordHasher.harden_runtime
                let extra = PBKDF2_ITERATIONS.saturating_sub(iterations);
                if extra > 0 {
                    let _ = encode_pbkdf2(Algorithm::Pbkdf2Sha256, raw, parts.salt, extra);
                }
            }
            Ok(PasswordCheck {
                correct,
                must_update,
            })
        }
        Algorithm::Scrypt => {
            let parts = decode_scrypt(encoded)?;
            if parts.salt.is_empty() {
                return Err(HashError::Malformed(algorithm, "empty salt"));
            }
            let encoded_2 = encode_scrypt(raw, parts.salt, parts.n, parts.r, parts.p)?;
            let correct = constant_time_eq(encoded.as_bytes(), encoded_2.as_bytes());
            // ScryptPasswordHasher.harden_runtime is a no-op, and the hasher always changed.
            Ok(PasswordCheck {
                correct,
                must_update: true,
            })
        }
        other => Err(HashError::Unsupported(other)),
    }
}

/// `check_password(password, encoded)` without a setter: whether the password matches.
pub fn check_password(raw: &str, encoded: &str) -> bool {
    verify_password(raw, encoded).correct
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: &str =
        "pbkdf2_sha256$1000$lowIterSalt0123456789a$CIMD3YEZdcALFrm0AOT8oARohvhIwfL4j2gCuipt9n0=";

    #[test]
    fn low_iteration_vector() {
        assert_eq!(
            verify_password("hunter2", LOW),
            PasswordCheck {
                correct: true,
                must_update: true
            }
        );
        assert_eq!(
            verify_password("hunter3", LOW),
            PasswordCheck {
                correct: false,
                must_update: true
            }
        );
        assert_eq!(
            make_password_with("hunter2", "lowIterSalt0123456789a", 1000),
            LOW
        );
    }

    #[test]
    fn made_passwords_verify_without_update() {
        let h = make_password_with("pw", "abcdefghijklmnopqrstuv", 2);
        assert!(check_password("pw", &h));
        assert!(must_update(&h)); // iterations != 720000
        let h = make_password("correct horse");
        assert!(h.starts_with("pbkdf2_sha256$720000$"));
        assert_eq!(h.split('$').nth(2).map(str::len), Some(22));
        assert_eq!(h.len(), 88);
        assert!(!must_update(&h));
        assert!(check_password("correct horse", &h));
    }

    #[test]
    fn unusable() {
        let u = make_unusable_password();
        assert_eq!(u.len(), 41);
        assert!(!is_password_usable(&u));
        assert_eq!(verify_password("", &u), PasswordCheck::default());
        assert_eq!(identify_hasher(&u), Err(HashError::Unusable));
        assert!(is_password_usable(""));
    }

    #[test]
    fn identify() {
        assert_eq!(identify_hasher(LOW), Ok(Algorithm::Pbkdf2Sha256));
        assert_eq!(identify_hasher(&"a".repeat(32)), Ok(Algorithm::UnsaltedMd5));
        assert_eq!(
            identify_hasher(&format!("md5$${}", "a".repeat(32))),
            Ok(Algorithm::UnsaltedMd5)
        );
        assert_eq!(
            identify_hasher(&format!("sha1$${}", "a".repeat(40))),
            Ok(Algorithm::UnsaltedSha1)
        );
        assert_eq!(identify_hasher("md5$salt$abc"), Ok(Algorithm::Md5));
        assert_eq!(
            identify_hasher("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA"),
            Ok(Algorithm::Argon2)
        );
        assert_eq!(
            identify_hasher("bcrypt_sha256$$2b$12$x"),
            Ok(Algorithm::BcryptSha256)
        );
        assert_eq!(identify_hasher("bcrypt$$2b$12$x"), Ok(Algorithm::Bcrypt));
        assert_eq!(
            identify_hasher(""),
            Err(HashError::UnknownAlgorithm(String::new()))
        );
        assert!(matches!(
            identify_hasher("crypt$$ab"),
            Err(HashError::UnknownAlgorithm(_))
        ));
    }

    #[test]
    fn refused_algorithms() {
        for h in [
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
            "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
        ] {
            assert_eq!(
                verify_password("x", h),
                PasswordCheck {
                    correct: false,
                    must_update: true
                }
            );
        }
        for h in [
            "bcrypt$$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "md5$md5SaltForVector012345$6f5f9689afbc95c6146aa41ec6ba8e92",
            "sha1$salt$0000000000000000000000000000000000000000",
            "5f4dcc3b5aa765d61d8327deb882cf99",
        ] {
            assert_eq!(verify_password("password", h), PasswordCheck::default());
            assert!(!must_update(h));
        }
    }

    #[test]
    fn malformed_hashes_never_panic() {
        let cases = [
            "pbkdf2_sha256",
            "pbkdf2_sha256$",
            "pbkdf2_sha256$1000",
            "pbkdf2_sha256$1000$salt",
            "pbkdf2_sha256$$salt$hash",
            "pbkdf2_sha256$abc$salt$hash",
            "pbkdf2_sha256$-5$salt$hash",
            "pbkdf2_sha256$+5$salt$hash",
            "pbkdf2_sha256$0$salt$hash",
            "pbkdf2_sha256$0100$salt$hash",
            "pbkdf2_sha256$1000$$hash",
            "pbkdf2_sha256$100000001$salt$hash",
            "pbkdf2_sha256$4294967296$salt$hash",
            "pbkdf2_sha256$99999999999999999999999$salt$hash",
            "pbkdf2_sha256$1000$lowIterSalt0123456789a$CIMD3YEZdcALFrm0AOT8oARohvhIwfL4j2gCuipt9n0",
            "pbkdf2_sha256$1000$lowIterSalt0123456789a$!!!!",
            "pbkdf2_sha256$1000$lowIterSalt0123456789a$CIMD3YEZdcALFrm0AOT8oARohvhIwfL4j2gCuipt9n0=$",
            "pbkdf2_sha1$1$s$",
            "scrypt",
            "scrypt$16384$salt$8$1",
            "scrypt$16384$salt$8$1$hash$extra",
            "scrypt$0$salt$8$1$hash",
            "scrypt$1$salt$8$1$hash",
            "scrypt$3$salt$8$1$hash",
            "scrypt$32768$salt$8$1$hash",
            "scrypt$65536$salt$1$1$hash",
            "scrypt$16384$salt$0$1$hash",
            "scrypt$16384$salt$8$0$hash",
            "scrypt$16384$salt$8$100000$hash",
            "scrypt$2$salt$1$262141$hash",
            "scrypt$2$salt$1$262140$hash",
            "scrypt$16384$salt$65536$65536$hash",
            "scrypt$9223372036854775808$salt$8$1$hash",
            "scrypt$16384$$8$1$hash",
            "$$$",
            "\u{0}",
            "é$é$é$é",
        ];
        for h in cases {
            assert!(!verify_password("hunter2", h).correct, "{h:?}");
            let _ = must_update(h);
        }
        // Django's must_update on a parseable but absurd count: 0 != 720000.
        assert!(must_update("pbkdf2_sha256$0$salt$hash"));
    }

    #[test]
    fn short_salt_must_update() {
        assert!(salt_too_short("shortsalt"));
        assert!(salt_too_short(&"a".repeat(21)));
        assert!(!salt_too_short(&"a".repeat(22)));
    }

    #[test]
    fn scrypt_small_params() {
        // python: hashlib.scrypt(b"pw", salt=b"salt", n=1024, r=1, p=1, maxmem=0, dklen=64)
        let h = encode_scrypt("pw", "salt", 1024, 1, 1).expect("valid params");
        assert!(h.starts_with("scrypt$1024$salt$1$1$"));
        assert_eq!(
            verify_password("pw", &h),
            PasswordCheck {
                correct: true,
                must_update: true
            }
        );
        assert!(!verify_password("px", &h).correct);
    }
}
