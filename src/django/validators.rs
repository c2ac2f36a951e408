//! Usernames (`contrib/auth/validators.py UnicodeUsernameValidator`, `forms.py UsernameField`,
//! `base_user.py normalize_username`) and the four default password validators
//! (`contrib/auth/password_validation.py`), with Django 5.0.1's exact messages.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::LazyLock;

use flate2::read::GzDecoder;
use unicode_normalization::UnicodeNormalization;

use super::pyunicode;

/// `AbstractUser.username` `max_length`.
pub const USERNAME_MAX_LENGTH: usize = 150;
/// `UnicodeUsernameValidator.message`.
pub const USERNAME_INVALID_MESSAGE: &str = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";
/// `AbstractUser.username` `error_messages["unique"]` (the caller checks the database).
pub const USERNAME_TAKEN_MESSAGE: &str = "A user with that username already exists.";
/// `AbstractUser.username` help text.
pub const USERNAME_HELP_TEXT: &str =
    "Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.";
/// `Field.default_error_messages["required"]` (forms).
pub const REQUIRED_MESSAGE: &str = "This field is required.";
/// `BaseUserCreationForm.error_messages["password_mismatch"]` (with U+2019).
pub const PASSWORD_MISMATCH_MESSAGE: &str = "The two password fields didn’t match.";
/// `MinimumLengthValidator` default.
pub const PASSWORD_MIN_LENGTH: usize = 8;
/// `UserAttributeSimilarityValidator` default.
pub const MAX_SIMILARITY: f64 = 0.7;

/// One reason a username is refused, displayed as Django's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameProblem {
    /// Form field: empty after stripping.
    Required,
    /// Model field (`createsuperuser`): empty.
    Blank,
    /// `MaxLengthValidator(150)`, with the length it has.
    TooLong(usize),
    /// Form `CharField`'s `ProhibitNullCharactersValidator`.
    NullCharacters,
    /// `UnicodeUsernameValidator`.
    Invalid,
}

impl std::fmt::Display for UsernameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsernameProblem::Required => f.write_str(REQUIRED_MESSAGE),
            UsernameProblem::Blank => f.write_str("This field cannot be blank."),
            UsernameProblem::TooLong(n) => write!(
                f,
                "Ensure this value has at most {USERNAME_MAX_LENGTH} characters (it has {n})."
            ),
            UsernameProblem::NullCharacters => f.write_str("Null characters are not allowed."),
            UsernameProblem::Invalid => f.write_str(USERNAME_INVALID_MESSAGE),
        }
    }
}

/// The messages Django gives for a refused username, in its order. `Display` joins them with
/// `"; "` as `createsuperuser` prints them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.messages().join("; "))]
pub struct UsernameError(pub Vec<UsernameProblem>);

impl UsernameError {
    /// The problems, in Django's order.
    pub fn problems(&self) -> &[UsernameProblem] {
        &self.0
    }

    /// One message per problem (a form shows each as an `<li>`).
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// A username Django would accept: NFKC-normalised, 1–150 code points of `[\w.@+-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

/// `UnicodeUsernameValidator`: `^[\w.@+-]+\Z` with Python's Unicode `\w`.
pub fn is_valid_username_chars(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| pyunicode::is_word(c) || matches!(c, '.' | '@' | '+' | '-'))
}

/// `UsernameField.to_python` (login and signup forms): strip (Python whitespace), then NFKC
/// unless already longer than 150 code points (Django skips normalising over-long input).
pub fn normalize_form_username(raw: &str) -> String {
    let stripped = pyunicode::strip(raw);
    if pyunicode::len(stripped) > USERNAME_MAX_LENGTH {
        stripped.to_owned()
    } else {
        stripped.nfkc().collect()
    }
}

impl Username {
    /// The `username` field of `UserCreationForm`: [`normalize_form_username`], then "required",
    /// then the form validators (max length, null characters; all reported), then, if those
    /// passed, the model's `UnicodeUsernameValidator`. Django runs the case-insensitive
    /// duplicate check (`clean_username`) between the last two steps; a caller that needs the
    /// exact message for a taken *and* malformed name checks duplicates first.
    pub fn parse(raw: &str) -> Result<Username, UsernameError> {
        let value = normalize_form_username(raw);
        if value.is_empty() {
            return Err(UsernameError(vec![UsernameProblem::Required]));
        }
        let mut problems = Vec::new();
        let n = pyunicode::len(&value);
        if n > USERNAME_MAX_LENGTH {
            problems.push(UsernameProblem::TooLong(n));
        }
        if value.contains('\0') {
            problems.push(UsernameProblem::NullCharacters);
        }
        if problems.is_empty() && !is_valid_username_chars(&value) {
            problems.push(UsernameProblem::Invalid);
        }
        if problems.is_empty() {
            Ok(Username(value))
        } else {
            Err(UsernameError(problems))
        }
    }

    /// The model field's `clean()` as `createsuperuser` uses it: no stripping, the value
    /// validated as typed (`UnicodeUsernameValidator`, then max length; both reported), then
    /// `normalize_username` (NFKC) as `UserManager._create_user` stores it.
    pub fn parse_model(raw: &str) -> Result<Username, UsernameError> {
        if raw.is_empty() {
            return Err(UsernameError(vec![UsernameProblem::Blank]));
        }
        let mut problems = Vec::new();
        if !is_valid_username_chars(raw) {
            problems.push(UsernameProblem::Invalid);
        }
        let n = pyunicode::len(raw);
        if n > USERNAME_MAX_LENGTH {
            problems.push(UsernameProblem::TooLong(n));
        }
        if problems.is_empty() {
            Ok(Username(raw.nfkc().collect()))
        } else {
            Err(UsernameError(problems))
        }
    }

    /// The model's `UnicodeUsernameValidator` on a value a form's username field already
    /// cleaned (stripped, NFKC, 1–150 code points, no NUL): the value is kept exactly, not
    /// normalised again. Anything the field should have refused is refused here too.
    pub fn parse_cleaned(cleaned: &str) -> Result<Username, UsernameError> {
        let n = pyunicode::len(cleaned);
        if n > USERNAME_MAX_LENGTH {
            return Err(UsernameError(vec![UsernameProblem::TooLong(n)]));
        }
        if is_valid_username_chars(cleaned) {
            Ok(Username(cleaned.to_owned()))
        } else {
            Err(UsernameError(vec![UsernameProblem::Invalid]))
        }
    }

    /// Wraps a username read from `auth_user` (trusted: it was validated when stored).
    pub fn from_db(stored: String) -> Username {
        Username(stored)
    }

    /// The normalised username.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised username.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user fields `UserAttributeSimilarityValidator` compares with (empty = absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserAttributes<'a> {
    /// `username`
    pub username: &'a str,
    /// `first_name`
    pub first_name: &'a str,
    /// `last_name`
    pub last_name: &'a str,
    /// `email`
    pub email: &'a str,
}

/// `difflib.SequenceMatcher(a=a, b=b).quick_ratio()`: 2·(multiset intersection of the
/// characters)/(len(a) + len(b)); 1.0 when both are empty.
pub fn quick_ratio(a: &str, b: &str) -> f64 {
    let mut fullbcount: HashMap<char, i64> = HashMap::new();
    let mut len_b = 0usize;
    for c in b.chars() {
        *fullbcount.entry(c).or_insert(0) += 1;
        len_b += 1;
    }
    let mut matches = 0usize;
    let mut len_a = 0usize;
    for c in a.chars() {
        len_a += 1;
        if let Some(n) = fullbcount.get_mut(&c) {
            if *n > 0 {
                matches += 1;
            }
            *n -= 1;
        }
    }
    let length = len_a + len_b;
    if length == 0 {
        1.0
    } else {
        2.0 * matches as f64 / length as f64
    }
}

/// `exceeds_maximum_length_ratio(password, max_similarity, value)`.
fn exceeds_maximum_length_ratio(pwd_len: usize, value_len: usize) -> bool {
    let length_bound_similarity = MAX_SIMILARITY / 2.0 * pwd_len as f64;
    pwd_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// `UserAttributeSimilarityValidator.validate`: the verbose name of the first attribute the
/// password is too similar to.
fn too_similar_to(password: &str, user: &UserAttributes<'_>) -> Option<&'static str> {
    let password = password.to_lowercase();
    let pwd_len = pyunicode::len(&password);
    let attributes = [
        (user.username, "username"),
        (user.first_name, "first name"),
        (user.last_name, "last name"),
        (user.email, "email address"),
    ];
    for (value, verbose_name) in attributes {
        if value.is_empty() {
            continue;
        }
        let value_lower = value.to_lowercase();
        let mut parts = pyunicode::split_non_word(&value_lower);
        parts.push(&value_lower);
        for part in parts {
            if exceeds_maximum_length_ratio(pwd_len, pyunicode::len(part)) {
                continue;
            }
            if quick_ratio(&password, part) >= MAX_SIMILARITY {
                return Some(verbose_name);
            }
        }
    }
    None
}

static COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("common-passwords.txt.gz");

/// Django's common-password list (20 000 lines, 19 729 distinct; see
/// `COMMON-PASSWORDS-NOTICE.md`), decompressed once on first use.
static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut text = String::new();
    if let Err(e) = GzDecoder::new(COMMON_PASSWORDS_GZ).read_to_string(&mut text) {
        tracing::error!(error = %e, "embedded common-password list is unreadable; CommonPasswordValidator disabled");
        return HashSet::new();
    }
    text.lines()
        .map(|l| pyunicode::strip(l).to_owned())
        .collect()
});

/// `CommonPasswordValidator`: `password.lower().strip() in passwords`.
pub fn is_common_password(password: &str) -> bool {
    let lowered = password.to_lowercase();
    COMMON_PASSWORDS.contains(pyunicode::strip(&lowered))
}

/// `validate_password(password, user)` with the startproject `AUTH_PASSWORD_VALIDATORS`
/// (similarity, minimum length 8, common, numeric): every failing validator's message, in that
/// order; empty when the password is acceptable. Pass `UserAttributes::default()` for `user=None`.
pub fn validate_password(password: &str, user: &UserAttributes<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(verbose_name) = too_similar_to(password, user) {
        errors.push(format!(
            "The password is too similar to the {verbose_name}."
        ));
    }
    if pyunicode::len(password) < PASSWORD_MIN_LENGTH {
        errors.push(format!(
            "This password is too short. It must contain at least {PASSWORD_MIN_LENGTH} characters."
        ));
    }
    if is_common_password(password) {
        errors.push("This password is too common.".to_owned());
    }
    if pyunicode::str_is_digit(password) {
        errors.push("This password is entirely numeric.".to_owned());
    }
    errors
}

/// `password_validators_help_texts()` for the same validators (U+2019 apostrophes).
pub fn password_validators_help_texts() -> Vec<&'static str> {
    vec![
        "Your password can’t be too similar to your other personal information.",
        "Your password must contain at least 8 characters.",
        "Your password can’t be a commonly used password.",
        "Your password can’t be entirely numeric.",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_messages(raw: &str) -> Vec<String> {
        match Username::parse(raw) {
            Ok(_) => vec![],
            Err(e) => e.messages(),
        }
    }

    #[test]
    fn usernames_like_user_creation_form() {
        // Checked against Django 5.0.1's UserCreationForm.
        let too_long = |n| format!("Ensure this value has at most 150 characters (it has {n}).");
        assert_eq!(form_messages(&"a".repeat(151)), [too_long(151)]);
        assert_eq!(form_messages(&"a b".repeat(60)), [too_long(180)]);
        assert_eq!(form_messages("a\0b"), ["Null characters are not allowed."]);
        assert_eq!(
            form_messages(&format!("{}\0", "a".repeat(150))),
            [too_long(151), "Null characters are not allowed.".to_owned()]
        );
        assert_eq!(
            Username::parse("  alice  ").map(Username::into_inner),
            Ok("alice".to_owned())
        );
        assert_eq!(form_messages(&"ﬀ".repeat(80)), [too_long(160)]);
        assert_eq!(form_messages(&"ﬀ".repeat(150)), [too_long(300)]);
        assert_eq!(form_messages(&"ﬀ".repeat(151)), [too_long(151)]);
        assert_eq!(form_messages("\u{2003}"), [REQUIRED_MESSAGE]);
        assert_eq!(form_messages("   "), [REQUIRED_MESSAGE]);
        assert_eq!(form_messages(""), [REQUIRED_MESSAGE]);
        assert_eq!(
            Username::parse("Ⅻ").map(Username::into_inner),
            Ok("XII".to_owned())
        );
        assert_eq!(
            Username::parse("ｆｕｌｌ").map(Username::into_inner),
            Ok("full".to_owned())
        );
        assert_eq!(
            Username::parse("Ⓐ").map(Username::into_inner),
            Ok("A".to_owned())
        );
        assert_eq!(
            Username::parse("a\r").map(Username::into_inner),
            Ok("a".to_owned())
        );
        for bad in ["a\nb", "x\u{301}", "हिन्दी", "bad name", "bad/name"] {
            assert_eq!(form_messages(bad), [USERNAME_INVALID_MESSAGE], "{bad:?}");
        }
        assert!(Username::parse(&format!("{}é", "a".repeat(149))).is_ok());
    }

    #[test]
    fn usernames_like_model_field() {
        let msgs = |raw: &str| match Username::parse_model(raw) {
            Ok(_) => vec![],
            Err(e) => e.messages(),
        };
        assert_eq!(
            msgs(&"a b".repeat(60)),
            [
                USERNAME_INVALID_MESSAGE.to_owned(),
                "Ensure this value has at most 150 characters (it has 180).".to_owned()
            ]
        );
        assert_eq!(msgs(" alice"), [USERNAME_INVALID_MESSAGE]);
        assert_eq!(msgs("a\0"), [USERNAME_INVALID_MESSAGE]);
        assert_eq!(msgs(""), ["This field cannot be blank."]);
        assert_eq!(msgs("Ⓐ"), [USERNAME_INVALID_MESSAGE]);
        assert_eq!(
            Username::parse_model("ﬀ").map(Username::into_inner),
            Ok("ff".to_owned())
        );
        let err = Username::parse_model(&"a b".repeat(60)).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!(
                "{USERNAME_INVALID_MESSAGE}; Ensure this value has at most 150 characters (it has 180)."
            )
        );
    }

    #[test]
    fn quick_ratio_like_difflib() {
        assert_eq!(quick_ratio("", ""), 1.0);
        assert_eq!(quick_ratio("abc", ""), 0.0);
        assert_eq!(quick_ratio("alice@example", "example"), 0.7);
        assert_eq!(quick_ratio("aab", "abb"), 2.0 * 2.0 / 6.0);
        assert_eq!(quick_ratio("A", &"A".repeat(10)), 2.0 / 11.0);
    }

    #[test]
    fn password_validators() {
        let user = UserAttributes {
            username: "alice",
            email: "alice@example.com",
            first_name: "Alice",
            last_name: "Smith",
        };
        assert_eq!(
            validate_password("alice", &user),
            [
                "The password is too similar to the username.",
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common."
            ]
        );
        assert_eq!(
            validate_password("  PassWord \n", &user),
            ["This password is too common."]
        );
        assert_eq!(
            validate_password("²³⁴⁵⁶⁷⁸⁹", &user),
            ["This password is entirely numeric."]
        );
        assert!(validate_password("Xq7!mZ2#vB9$", &user).is_empty());
        assert!(validate_password("Xq7!mZ2#vB9$", &UserAttributes::default()).is_empty());
        // Empty password against an attribute: quick_ratio("", "") is 1.0 (as in Django).
        let odd = UserAttributes {
            username: "@",
            ..Default::default()
        };
        assert_eq!(
            validate_password("", &odd)[0],
            "The password is too similar to the username."
        );
        assert_eq!(password_validators_help_texts().len(), 4);
    }

    #[test]
    fn common_list_loads() {
        // 20 000 lines, 19 729 distinct (Django says "deduplicated"; its set has 19 729 entries too).
        assert_eq!(COMMON_PASSWORDS.len(), 19_729);
        assert!(is_common_password("123456"));
        assert!(is_common_password("friend of emily"));
        assert!(!is_common_password("a-Strong-pass-42"));
    }
}
