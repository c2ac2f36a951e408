//! The legacy forms, validated and rendered exactly as Django 5.0.1 does it.
//!
//! - [`RoomForm`] mirrors `chatapp/forms.py`.
//! - [`AuthenticationForm`] mirrors `django.contrib.auth.forms.AuthenticationForm` (login).
//! - [`UserCreationForm`] mirrors `django.contrib.auth.forms.UserCreationForm` (signup).
//!
//! Each form cleans its fields like Django's `CharField`/`UsernameField`, keeps the submitted
//! value for re-rendering as Django does, and renders to a [`BoundFieldContext`] per field: the
//! widget, the error list and the help text as the HTML Django's form templates produce
//! (`django/forms/templates/django/forms/widgets/input.html`, `.../errors/list/ul.html`), to be
//! inserted with `| safe`. Attribute order follows Django's (widget attrs, then `required`,
//! `aria-invalid`, `aria-describedby`, `id`).
//!
//! Checks that need the database or the password validators are inputs: the caller looks the
//! username up (case-insensitively) and passes the answer, and supplies the validators through
//! [`SignupChecks`].
//!
//! Form data: pass the value Django's `QueryDict.get` would return (the last one when a field
//! is repeated), or `None` when the field is absent.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::django::html::escape;
use crate::django::pyunicode;
use crate::django::room_name::{self, MAX_ROOM_NAME_LEN, is_valid_room_name};
use crate::django::validators::{self, UserAttributes, Username};
use crate::secret::Password;

/// `chatapp.forms.ROOM_NAME_ERROR`.
pub const ROOM_NAME_ERROR: &str = room_name::ROOM_NAME_ERROR;
/// `Field.default_error_messages["required"]`.
pub const REQUIRED_ERROR: &str = validators::REQUIRED_MESSAGE;
/// `ProhibitNullCharactersValidator.message`, which every `CharField` runs.
pub const NULL_CHARACTERS_ERROR: &str = "Null characters are not allowed.";
/// `AuthenticationForm.error_messages["invalid_login"]` with the username field's verbose name.
pub const INVALID_LOGIN_ERROR: &str = "Please enter a correct username and password. Note that \
                                       both fields may be case-sensitive.";
/// `BaseUserCreationForm.error_messages["password_mismatch"]` (with a typographic apostrophe).
pub const PASSWORD_MISMATCH_ERROR: &str = validators::PASSWORD_MISMATCH_MESSAGE;
/// `User.username`'s `unique` error message, which `UserCreationForm.clean_username` reports.
pub const USERNAME_TAKEN_ERROR: &str = validators::USERNAME_TAKEN_MESSAGE;
/// `UnicodeUsernameValidator.message`.
pub const USERNAME_INVALID_ERROR: &str = validators::USERNAME_INVALID_MESSAGE;
/// `User.username` max_length.
pub const USERNAME_MAX_LENGTH: usize = validators::USERNAME_MAX_LENGTH;
/// `BaseUserCreationForm.password2` help_text.
pub const PASSWORD2_HELP_TEXT: &str = "Enter the same password as before, for verification.";

/// `MaxLengthValidator.message` (ngettext on the limit).
fn max_length_error(limit: usize, actual: usize) -> String {
    let unit = if limit == 1 {
        "character"
    } else {
        "characters"
    };
    format!("Ensure this value has at most {limit} {unit} (it has {actual}).")
}

/// A rendered field, as the templates read it.
#[derive(Debug, Clone, Serialize)]
pub struct BoundFieldContext {
    /// `field.html_name`.
    pub name: String,
    /// `field.label` (plain text: the template escapes it).
    pub label: String,
    /// `field.id_for_label`.
    pub id_for_label: String,
    /// `{{ field }}`: the widget HTML.
    pub widget: String,
    /// `field.errors` as plain messages (the index template loops over them).
    pub errors: Vec<String>,
    /// `{{ field.errors }}`: `<ul class="errorlist"><li>…</li></ul>`, or `""`.
    pub errors_html: String,
    /// `field.help_text` as HTML (the signup template marks it safe), or `""`.
    pub help_text: String,
}

/// One `<input>` as `django/forms/widgets/input.html` + `attrs.html` render it: `value` only
/// when non-empty (`Input.format_value`), flag attributes without a value.
fn render_input(
    input_type: &str,
    name: &str,
    value: Option<&str>,
    attrs: &[(&str, Option<&str>)],
) -> String {
    let mut html = format!(
        r#"<input type="{}" name="{}""#,
        escape(input_type),
        escape(name)
    );
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        html.push_str(&format!(r#" value="{}""#, escape(value)));
    }
    for (attr, value) in attrs {
        match value {
            None => html.push_str(&format!(" {attr}")),
            Some(value) => html.push_str(&format!(r#" {attr}="{}""#, escape(value))),
        }
    }
    html.push('>');
    html
}

/// `ErrorList.as_ul()` (`django/forms/errors/list/ul.html`); empty when there are no errors.
pub fn render_error_list(errors: &[String], error_class: &str) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let items: String = errors
        .iter()
        .map(|e| format!("<li>{}</li>", escape(e)))
        .collect();
    format!(r#"<ul class="{}">{items}</ul>"#, escape(error_class))
}

/// `password_validation.password_validators_help_text_html()`.
pub fn password_help_text_html(help_texts: &[&str]) -> String {
    if help_texts.is_empty() {
        return String::new();
    }
    let items: String = help_texts
        .iter()
        .map(|t| format!("<li>{}</li>", escape(t)))
        .collect();
    format!("<ul>{items}</ul>")
}

/// How a `CharField` cleans a value (django/forms/fields.py: `CharField.to_python`, `validate`,
/// `run_validators`).
struct CharFieldSpec {
    /// `strip=True` (the default) or `False` for passwords.
    strip: bool,
    /// `UsernameField.to_python`: NFKC unless already longer than this.
    nfkc_below: Option<usize>,
    /// The `MaxLengthValidator` added at construction (`AuthenticationForm` sets its limit only
    /// afterwards, so its username has none).
    max_length: Option<usize>,
    required_error: &'static str,
    max_length_error: Option<&'static str>,
    /// Extra validators that run before the built-in ones (`Field.__init__` puts the field's own
    /// validators first, then `CharField` appends max-length and null-character checks).
    regex: Option<fn(&str) -> bool>,
    regex_error: &'static str,
}

impl CharFieldSpec {
    const fn plain(strip: bool) -> Self {
        CharFieldSpec {
            strip,
            nfkc_below: None,
            max_length: None,
            required_error: REQUIRED_ERROR,
            max_length_error: None,
            regex: None,
            regex_error: "",
        }
    }

    /// The cleaned value, or every error Django would report for it (validators all run and
    /// their messages accumulate, duplicates included).
    fn clean(&self, raw: Option<&str>) -> Result<String, Vec<String>> {
        let raw = raw.unwrap_or("");
        let mut value = if self.strip {
            pyunicode::strip(raw)
        } else {
            raw
        }
        .to_owned();
        if let Some(limit) = self.nfkc_below
            && pyunicode::len(&value) <= limit
        {
            value = value.nfkc().collect();
        }
        if value.is_empty() {
            return Err(vec![self.required_error.to_owned()]);
        }
        let mut errors = Vec::new();
        if let Some(regex) = self.regex
            && !regex(&value)
        {
            errors.push(self.regex_error.to_owned());
        }
        let length = pyunicode::len(&value);
        if let Some(limit) = self.max_length
            && length > limit
        {
            errors.push(match self.max_length_error {
                Some(message) => message.to_owned(),
                None => max_length_error(limit, length),
            });
        }
        if value.contains('\0') {
            errors.push(NULL_CHARACTERS_ERROR.to_owned());
        }
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(errors)
        }
    }
}

fn errors_of<T>(result: &Result<T, Vec<String>>) -> &[String] {
    match result {
        Ok(_) => &[],
        Err(errors) => errors,
    }
}

// ---------------------------------------------------------------------------------------------
// RoomForm

const ROOM_NAME_FIELD: CharFieldSpec = CharFieldSpec {
    strip: true,
    nfkc_below: None,
    max_length: Some(MAX_ROOM_NAME_LEN),
    required_error: ROOM_NAME_ERROR,
    max_length_error: Some(ROOM_NAME_ERROR),
    regex: Some(is_valid_room_name),
    regex_error: ROOM_NAME_ERROR,
};

/// `chatapp.forms.RoomForm`.
#[derive(Debug, Clone, Default)]
pub struct RoomForm {
    /// `None` while unbound; the submitted `room_name` (absent = `None`) once bound.
    data: Option<Option<String>>,
    result: Option<Result<String, Vec<String>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomFormContext {
    pub room_name: BoundFieldContext,
}

impl RoomForm {
    /// `RoomForm()` (GET).
    pub fn new() -> Self {
        Self::default()
    }

    /// `RoomForm(request.POST)`, validated. A name with surrounding whitespace is valid and
    /// cleaned (the view then redirects to the stripped name). Several failing validators give
    /// several (identical) messages, as Django does.
    pub fn bind(room_name: Option<&str>) -> Self {
        RoomForm {
            data: Some(room_name.map(str::to_owned)),
            result: Some(ROOM_NAME_FIELD.clean(room_name)),
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self.result, Some(Ok(_)))
    }

    /// `form.cleaned_data["room_name"]` when valid.
    pub fn cleaned_room_name(&self) -> Option<&str> {
        match &self.result {
            Some(Ok(name)) => Some(name),
            _ => None,
        }
    }

    pub fn errors(&self) -> &[String] {
        self.result.as_ref().map(errors_of).unwrap_or_default()
    }

    /// The `form` value for `index.html`.
    pub fn context(&self) -> RoomFormContext {
        let errors = self.errors().to_vec();
        let max_length = MAX_ROOM_NAME_LEN.to_string();
        let mut attrs: Vec<(&str, Option<&str>)> = vec![
            ("id", Some("room-name-input")),
            ("placeholder", Some("e.g. lobby")),
            ("autocomplete", Some("off")),
            ("autofocus", None),
            ("maxlength", Some(&max_length)),
            ("required", None),
        ];
        if !errors.is_empty() {
            attrs.push(("aria-invalid", Some("true")));
        }
        let value = self.data.as_ref().and_then(|v| v.as_deref());
        RoomFormContext {
            room_name: BoundFieldContext {
                name: "room_name".to_owned(),
                label: "Room name".to_owned(),
                id_for_label: "room-name-input".to_owned(),
                widget: render_input("text", "room_name", value, &attrs),
                errors_html: render_error_list(&errors, "errorlist"),
                errors,
                help_text: String::new(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AuthenticationForm

const LOGIN_USERNAME_FIELD: CharFieldSpec = CharFieldSpec {
    nfkc_below: Some(USERNAME_MAX_LENGTH),
    ..CharFieldSpec::plain(true)
};
const PASSWORD_FIELD: CharFieldSpec = CharFieldSpec::plain(false);

/// `django.contrib.auth.forms.AuthenticationForm`.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationForm {
    /// `None` while unbound.
    bound: Option<BoundLogin>,
}

#[derive(Debug, Clone)]
struct BoundLogin {
    username_data: Option<String>,
    username: Result<String, Vec<String>>,
    password: Result<Password, Vec<String>>,
    non_field_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthenticationFormContext {
    /// Every error message (`form.errors` is truthy when this is non-empty).
    pub errors: Vec<String>,
    pub username: BoundFieldContext,
    pub password: BoundFieldContext,
}

impl AuthenticationForm {
    /// The login page on GET.
    pub fn new() -> Self {
        Self::default()
    }

    /// `AuthenticationForm(request, data=request.POST)`, fields cleaned.
    pub fn bind(username: Option<&str>, password: Option<&str>) -> Self {
        AuthenticationForm {
            bound: Some(BoundLogin {
                username_data: username.map(str::to_owned),
                username: LOGIN_USERNAME_FIELD.clean(username),
                password: PASSWORD_FIELD.clean(password).map(Password::new),
                non_field_errors: Vec::new(),
            }),
        }
    }

    /// The cleaned username (stripped, NFKC) and the password to authenticate with, when both
    /// fields are clean: Django's `clean()` only calls `authenticate()` then.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        let bound = self.bound.as_ref()?;
        match (&bound.username, &bound.password) {
            (Ok(username), Ok(password)) => Some((username, password.expose())),
            _ => None,
        }
    }

    /// `authenticate()` found no (active) user: the `invalid_login` error. Django's backend
    /// rejects inactive users the same way, so this covers them too.
    pub fn reject_login(&mut self) {
        if let Some(bound) = &mut self.bound {
            bound.non_field_errors = vec![INVALID_LOGIN_ERROR.to_owned()];
        }
    }

    /// Bound, both fields clean and the login not rejected.
    pub fn is_valid(&self) -> bool {
        self.credentials().is_some()
            && self
                .bound
                .as_ref()
                .is_some_and(|b| b.non_field_errors.is_empty())
    }

    /// `form.errors`, non-field errors last as Django lists `__all__` after the fields.
    pub fn errors(&self) -> Vec<String> {
        let Some(bound) = &self.bound else {
            return Vec::new();
        };
        errors_of(&bound.username)
            .iter()
            .chain(errors_of(&bound.password))
            .chain(&bound.non_field_errors)
            .cloned()
            .collect()
    }

    /// The `form` value for `registration/login.html`.
    pub fn context(&self) -> AuthenticationFormContext {
        let (username_data, username_errors, password_errors) = match &self.bound {
            None => (None, &[][..], &[][..]),
            Some(b) => (
                b.username_data.as_deref(),
                errors_of(&b.username),
                errors_of(&b.password),
            ),
        };
        let mut username_attrs: Vec<(&str, Option<&str>)> = vec![
            ("autofocus", None),
            ("autocapitalize", Some("none")),
            ("autocomplete", Some("username")),
            ("maxlength", Some("150")),
            ("required", None),
        ];
        if !username_errors.is_empty() {
            username_attrs.push(("aria-invalid", Some("true")));
        }
        username_attrs.push(("id", Some("id_username")));
        let mut password_attrs: Vec<(&str, Option<&str>)> = vec![
            ("autocomplete", Some("current-password")),
            ("required", None),
        ];
        if !password_errors.is_empty() {
            password_attrs.push(("aria-invalid", Some("true")));
        }
        password_attrs.push(("id", Some("id_password")));
        AuthenticationFormContext {
            errors: self.errors(),
            username: BoundFieldContext {
                name: "username".to_owned(),
                label: "Username".to_owned(),
                id_for_label: "id_username".to_owned(),
                widget: render_input("text", "username", username_data, &username_attrs),
                errors: username_errors.to_vec(),
                errors_html: render_error_list(username_errors, "errorlist"),
                help_text: String::new(),
            },
            password: BoundFieldContext {
                name: "password".to_owned(),
                label: "Password".to_owned(),
                id_for_label: "id_password".to_owned(),
                // PasswordInput(render_value=False): the password never comes back.
                widget: render_input("password", "password", None, &password_attrs),
                errors: password_errors.to_vec(),
                errors_html: render_error_list(password_errors, "errorlist"),
                help_text: String::new(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// UserCreationForm

const SIGNUP_USERNAME_FIELD: CharFieldSpec = CharFieldSpec {
    nfkc_below: Some(USERNAME_MAX_LENGTH),
    max_length: Some(USERNAME_MAX_LENGTH),
    ..CharFieldSpec::plain(true)
};

/// The checks `UserCreationForm` delegates: the model's username validator and the configured
/// password validators.
pub trait SignupChecks {
    /// `UnicodeUsernameValidator` on the cleaned username: the [`Username`] it accepts, or its
    /// message.
    fn username(&self, cleaned: &str) -> Result<Username, String>;
    /// `password_validation.validate_password(password, user)`: every message, in validator
    /// order. `username` is the user's `username` attribute, `None` when Django's instance has
    /// none to compare with (the field failed or the name is taken).
    fn password_errors(&self, password: &str, username: Option<&str>) -> Vec<String>;
}

/// The legacy settings' checks: `UnicodeUsernameValidator` and the four default
/// `AUTH_PASSWORD_VALIDATORS` (`crate::django::validators`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DjangoValidators;

impl SignupChecks for DjangoValidators {
    fn username(&self, cleaned: &str) -> Result<Username, String> {
        // Stripping, NFKC, length and null characters were the form field's.
        Username::parse_cleaned(cleaned).map_err(|e| e.to_string())
    }

    fn password_errors(&self, password: &str, username: Option<&str>) -> Vec<String> {
        let user = UserAttributes {
            username: username.unwrap_or(""),
            ..UserAttributes::default()
        };
        validators::validate_password(password, &user)
    }
}

/// `django.contrib.auth.forms.UserCreationForm`, validated in two steps because the duplicate
/// check needs the database:
///
/// ```text
/// let mut form = UserCreationForm::bind(username, password1, password2);
/// let taken = match form.username_for_lookup() {
///     Some(name) => /* SELECT … WHERE username iexact name */,
///     None => false,
/// };
/// form.validate(taken, &DjangoValidators);
/// match form.cleaned() { Some(new_user) => /* create, log in, 302 */, None => /* re-render */ }
/// ```
#[derive(Debug, Clone, Default)]
pub struct UserCreationForm {
    bound: Option<BoundSignup>,
}

#[derive(Debug, Clone)]
struct BoundSignup {
    username_data: Option<String>,
    username: Result<String, Vec<String>>,
    /// The username the model validator accepted, once [`UserCreationForm::validate`] ran.
    valid_username: Option<Username>,
    password1: Result<Password, Vec<String>>,
    password2: Result<Password, Vec<String>>,
    non_field_errors: Vec<String>,
    validated: bool,
}

/// A valid signup: the username to store (stripped, NFKC, validated) and the password to hash.
/// `crate::db::users::NewUser::signup` makes the row to create from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub username: Username,
    pub password: Password,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserCreationFormContext {
    /// `{{ form.non_field_errors }}`: `<ul class="errorlist nonfield">…</ul>` or `""`.
    pub non_field_errors: String,
    /// `{% for field in form %}`: username, password1, password2.
    pub fields: Vec<BoundFieldContext>,
}

impl UserCreationForm {
    /// The signup page on GET.
    pub fn new() -> Self {
        Self::default()
    }

    /// `UserCreationForm(request.POST)`: field cleaning (`_clean_fields`) and the password
    /// mismatch check (`clean_password2`).
    pub fn bind(username: Option<&str>, password1: Option<&str>, password2: Option<&str>) -> Self {
        let password1_result = PASSWORD_FIELD.clean(password1).map(Password::new);
        let mut password2_result = PASSWORD_FIELD.clean(password2).map(Password::new);
        if let (Ok(p1), Ok(p2)) = (&password1_result, &password2_result)
            && p1 != p2
        {
            password2_result = Err(vec![PASSWORD_MISMATCH_ERROR.to_owned()]);
        }
        UserCreationForm {
            bound: Some(BoundSignup {
                username_data: username.map(str::to_owned),
                username: SIGNUP_USERNAME_FIELD.clean(username),
                valid_username: None,
                password1: password1_result,
                password2: password2_result,
                non_field_errors: Vec::new(),
                validated: false,
            }),
        }
    }

    /// The cleaned username to look up case-insensitively (`username__iexact`), when its field
    /// is clean; `None` means there is nothing to look up.
    pub fn username_for_lookup(&self) -> Option<&str> {
        match &self.bound.as_ref()?.username {
            Ok(username) => Some(username),
            Err(_) => None,
        }
    }

    /// The rest of `is_valid()`: `clean_username` (with the lookup's answer), the model's
    /// username validator, then `validate_password` on `password2` as `_post_clean` runs it.
    pub fn validate(&mut self, username_taken: bool, checks: &impl SignupChecks) {
        let Some(bound) = &mut self.bound else {
            return;
        };
        // The username the password is compared with: Django's instance keeps the cleaned
        // name even when the model validator rejects it, but has none when the field failed
        // or clean_username() replaced it with None.
        let mut similarity_username = None;
        if let Ok(username) = &bound.username {
            if username_taken {
                bound.username = Err(vec![USERNAME_TAKEN_ERROR.to_owned()]);
            } else {
                similarity_username = Some(username.clone());
                match checks.username(username) {
                    Ok(valid) => bound.valid_username = Some(valid),
                    Err(error) => bound.username = Err(vec![error]),
                }
            }
        }
        if let Ok(password) = &bound.password2 {
            let errors = checks.password_errors(password.expose(), similarity_username.as_deref());
            if !errors.is_empty() {
                bound.password2 = Err(errors);
            }
        }
        bound.validated = true;
    }

    /// The new user, once [`validate`](Self::validate) ran and every check passed.
    pub fn cleaned(&self) -> Option<Signup> {
        let bound = self.bound.as_ref()?;
        if !bound.validated || !bound.non_field_errors.is_empty() {
            return None;
        }
        match (
            &bound.username,
            &bound.valid_username,
            &bound.password1,
            &bound.password2,
        ) {
            (Ok(_), Some(username), Ok(password), Ok(_)) => Some(Signup {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        }
    }

    pub fn is_valid(&self) -> bool {
        self.cleaned().is_some()
    }

    /// The `form` value for `registration/signup.html`.
    pub fn context(&self) -> UserCreationFormContext {
        let (username_data, username, password1, password2, non_field) = match &self.bound {
            None => (None, &[][..], &[][..], &[][..], &[][..]),
            Some(b) => (
                b.username_data.as_deref(),
                errors_of(&b.username),
                errors_of(&b.password1),
                errors_of(&b.password2),
                &b.non_field_errors[..],
            ),
        };
        let password_help = password_help_text_html(&validators::password_validators_help_texts());
        UserCreationFormContext {
            non_field_errors: render_error_list(non_field, "errorlist nonfield"),
            fields: vec![
                signup_field(
                    "username",
                    "Username",
                    "text",
                    username_data,
                    &[
                        ("maxlength", Some("150")),
                        ("autocapitalize", Some("none")),
                        ("autocomplete", Some("username")),
                        ("autofocus", None),
                    ],
                    username,
                    escape(validators::USERNAME_HELP_TEXT),
                ),
                signup_field(
                    "password1",
                    "Password",
                    "password",
                    None,
                    &[("autocomplete", Some("new-password"))],
                    password1,
                    password_help,
                ),
                signup_field(
                    "password2",
                    "Password confirmation",
                    "password",
                    None,
                    &[("autocomplete", Some("new-password"))],
                    password2,
                    escape(PASSWORD2_HELP_TEXT),
                ),
            ],
        }
    }
}

/// One field of the signup loop: widget attrs, then what `BoundField.build_widget_attrs` adds
/// (`required`, `aria-invalid`, `aria-describedby` for help text), then the auto id.
fn signup_field(
    name: &str,
    label: &str,
    input_type: &str,
    value: Option<&str>,
    widget_attrs: &[(&str, Option<&str>)],
    errors: &[String],
    help_text: String,
) -> BoundFieldContext {
    let id = format!("id_{name}");
    let describedby = format!("{id}_helptext");
    let mut attrs = widget_attrs.to_vec();
    attrs.push(("required", None));
    if !errors.is_empty() {
        attrs.push(("aria-invalid", Some("true")));
    }
    if !help_text.is_empty() {
        attrs.push(("aria-describedby", Some(&describedby)));
    }
    attrs.push(("id", Some(&id)));
    BoundFieldContext {
        name: name.to_owned(),
        label: label.to_owned(),
        widget: render_input(input_type, name, value, &attrs),
        id_for_label: id.clone(),
        errors: errors.to_vec(),
        errors_html: render_error_list(errors, "errorlist"),
        help_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT_ATTRS: &str = r#"id="room-name-input" placeholder="e.g. lobby" autocomplete="off" autofocus maxlength="64" required"#;

    #[test]
    fn room_form_unbound_widget() {
        let ctx = RoomForm::new().context();
        assert_eq!(
            ctx.room_name.widget,
            format!(r#"<input type="text" name="room_name" {TEXT_ATTRS}>"#)
        );
        assert!(ctx.room_name.errors.is_empty());
    }

    #[test]
    fn room_form_validation_matches_django() {
        let form = RoomForm::bind(Some(" lobby-1_x "));
        assert_eq!(form.cleaned_room_name(), Some("lobby-1_x"));
        for (input, expected) in [
            (None, vec![ROOM_NAME_ERROR]),
            (Some(""), vec![ROOM_NAME_ERROR]),
            (Some("   "), vec![ROOM_NAME_ERROR]),
            (Some("é"), vec![ROOM_NAME_ERROR]),
            (
                Some(&"a".repeat(65)[..]),
                vec![ROOM_NAME_ERROR, ROOM_NAME_ERROR],
            ),
            (Some("a\0b"), vec![ROOM_NAME_ERROR, NULL_CHARACTERS_ERROR]),
        ] {
            let form = RoomForm::bind(input);
            assert!(!form.is_valid());
            assert_eq!(form.errors(), expected, "{input:?}");
        }
        let ctx = RoomForm::bind(Some("  bad <x> ")).context();
        assert_eq!(
            ctx.room_name.widget,
            format!(
                r#"<input type="text" name="room_name" value="  bad &lt;x&gt; " {TEXT_ATTRS} aria-invalid="true">"#
            )
        );
    }

    #[test]
    fn login_form_fields() {
        let ctx = AuthenticationForm::new().context();
        assert_eq!(
            ctx.username.widget,
            r#"<input type="text" name="username" autofocus autocapitalize="none" autocomplete="username" maxlength="150" required id="id_username">"#
        );
        assert_eq!(
            ctx.password.widget,
            r#"<input type="password" name="password" autocomplete="current-password" required id="id_password">"#
        );
        assert!(ctx.errors.is_empty());

        let form = AuthenticationForm::bind(Some(" ﬀ "), Some(" pw "));
        assert_eq!(form.credentials(), Some(("ff", " pw ")));
        let mut form = AuthenticationForm::bind(Some("alice"), Some("x"));
        form.reject_login();
        assert!(!form.is_valid());
        assert_eq!(form.errors(), vec![INVALID_LOGIN_ERROR]);
        assert!(form.context().username.widget.contains(r#"value="alice""#));
        assert!(!form.context().username.widget.contains("aria-invalid"));

        let form = AuthenticationForm::bind(Some(""), None);
        assert_eq!(form.credentials(), None);
        let ctx = form.context();
        assert_eq!(ctx.errors, vec![REQUIRED_ERROR, REQUIRED_ERROR]);
        assert!(
            ctx.password
                .widget
                .contains(r#"aria-invalid="true" id="id_password""#)
        );
    }

    struct Checks;
    impl SignupChecks for Checks {
        fn username(&self, cleaned: &str) -> Result<Username, String> {
            if cleaned.contains(' ') {
                return Err(USERNAME_INVALID_ERROR.to_owned());
            }
            Username::parse_cleaned(cleaned).map_err(|e| e.to_string())
        }
        fn password_errors(&self, password: &str, username: Option<&str>) -> Vec<String> {
            let mut errors = Vec::new();
            if username.is_some_and(|u| password.contains(u)) {
                errors.push("The password is too similar to the username.".to_owned());
            }
            if password.chars().count() < 8 {
                errors.push(
                    "This password is too short. It must contain at least 8 characters.".to_owned(),
                );
            }
            errors
        }
    }

    fn signup(
        u: Option<&str>,
        p1: Option<&str>,
        p2: Option<&str>,
        taken: bool,
    ) -> UserCreationForm {
        let mut form = UserCreationForm::bind(u, p1, p2);
        form.validate(taken, &Checks);
        form
    }

    fn field_errors(form: &UserCreationForm) -> Vec<Vec<String>> {
        form.context()
            .fields
            .into_iter()
            .map(|f| f.errors)
            .collect()
    }

    #[test]
    fn signup_validation_follows_django_order() {
        let form = signup(
            Some(" ﬀoo "),
            Some("s3cret-pass"),
            Some("s3cret-pass"),
            false,
        );
        assert_eq!(
            form.cleaned(),
            Some(Signup {
                username: Username::parse("ffoo").expect("valid"),
                password: Password::new("s3cret-pass")
            })
        );
        // A taken name is not compared with the password.
        let form = signup(Some("Alice"), Some("Alice123"), Some("Alice123"), true);
        assert_eq!(
            field_errors(&form),
            vec![vec![USERNAME_TAKEN_ERROR.to_owned()], vec![], vec![]]
        );
        // An invalid name still is.
        let form = signup(Some("b a d"), Some("b a d!!!!"), Some("b a d!!!!"), false);
        assert_eq!(
            field_errors(&form)[2],
            vec!["The password is too similar to the username."]
        );
        assert_eq!(field_errors(&form)[0], vec![USERNAME_INVALID_ERROR]);
        // Mismatch: no validator runs.
        let form = signup(Some("bob"), Some("1"), Some("2"), false);
        assert_eq!(field_errors(&form)[2], vec![PASSWORD_MISMATCH_ERROR]);
        // Too long: Django counts after stripping and NFKC.
        let long = format!("{}!", "x".repeat(151));
        let form = signup(Some(&long), Some("a"), Some("a"), false);
        assert_eq!(
            field_errors(&form)[0],
            vec!["Ensure this value has at most 150 characters (it has 152)."]
        );
        assert_eq!(form.username_for_lookup(), None);
        let form = signup(None, None, None, false);
        assert_eq!(
            field_errors(&form),
            vec![vec![REQUIRED_ERROR.to_owned()]; 3]
        );
        assert!(!form.is_valid());
        // Not validated yet: never valid.
        let form = UserCreationForm::bind(Some("bob"), Some("s3cret-pass"), Some("s3cret-pass"));
        assert_eq!(form.cleaned(), None);
    }

    #[test]
    fn signup_widgets() {
        let ctx = UserCreationForm::new().context();
        assert_eq!(ctx.non_field_errors, "");
        assert_eq!(
            ctx.fields[0].widget,
            r#"<input type="text" name="username" maxlength="150" autocapitalize="none" autocomplete="username" autofocus required aria-describedby="id_username_helptext" id="id_username">"#
        );
        assert_eq!(
            ctx.fields[1].help_text,
            "<ul><li>Your password can’t be too similar to your other personal information.</li><li>Your password must contain at least 8 characters.</li><li>Your password can’t be a commonly used password.</li><li>Your password can’t be entirely numeric.</li></ul>"
        );
        let form = signup(Some("bad name!"), Some("123"), Some("1234"), false);
        let ctx = form.context();
        assert_eq!(
            ctx.fields[2].widget,
            r#"<input type="password" name="password2" autocomplete="new-password" required aria-invalid="true" aria-describedby="id_password2_helptext" id="id_password2">"#
        );
        assert_eq!(
            ctx.fields[2].errors_html,
            r#"<ul class="errorlist"><li>The two password fields didn’t match.</li></ul>"#
        );
    }

    #[test]
    fn django_validators_are_wired() {
        let mut form =
            UserCreationForm::bind(Some("zebrafish"), Some("zebrafish9"), Some("zebrafish9"));
        form.validate(false, &DjangoValidators);
        assert_eq!(
            form.context().fields[2].errors,
            vec!["The password is too similar to the username."]
        );
        let mut form =
            UserCreationForm::bind(Some("bad name"), Some("Xk9#mq2!pz"), Some("Xk9#mq2!pz"));
        form.validate(false, &DjangoValidators);
        assert_eq!(
            form.context().fields[0].errors,
            vec![USERNAME_INVALID_ERROR]
        );
        let mut form = UserCreationForm::bind(
            Some("\u{1c}bob\u{3000}"),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!pz"),
        );
        form.validate(false, &DjangoValidators);
        assert_eq!(
            form.cleaned().map(|u| u.username.into_inner()).as_deref(),
            Some("bob")
        );
    }
}
