//! The legacy pages, rendered with Tera 2 ports of `chatapp/templates/*.html`.
//!
//! [`Templates`] is built once at startup: the ports in `templates/` are embedded in the binary,
//! unless `FERROCHAT_TEMPLATES_DIR` (`Settings::templates_dir`) names a directory to load them from.
//! Before any template is added, the Django-isms the legacy templates use are registered:
//!
//! | Django | Tera port |
//! |---|---|
//! | autoescape (`django.utils.html.escape`) | [`django_escape`] as the escape function |
//! | `{% static 'p' %}` | `{{ static(path='p') }}` (`STATIC_URL` = `/static/`) |
//! | `{% url 'room' name %}` | `{{ url(name='room', arg=name) }}` (index, room, login, logout, signup) |
//! | `{% csrf_token %}` | `{{ csrf_input() }}` (reads `csrf_token` from the render context) |
//! | `{{ v\|json_script:"id" }}` | `{{ v \| json_script(id="id") }}` |
//! | `{{ v\|date:"c" }}` | `{{ v \| date(format="c") }}` (a port of `django.utils.dateformat`, UTC) |
//!
//! # Context contract
//!
//! Every page (`base.html`):
//! - `user`: `{is_authenticated: bool, username: str}` ([`UserContext`]; anonymous = `false`, `""`).
//!   Optional: missing means anonymous.
//! - `csrf_token`: the masked 64-character `csrfmiddlewaretoken` for this response. Optional:
//!   missing renders no hidden input (as Django does without a token).
//!
//! `index.html` ([`IndexPage`]):
//! - `form`: `{room_name: BoundField}` ([`RoomForm::context`](super::forms::RoomForm::context)).
//! - `rooms`: list of room names, in display order (the legacy view orders by name).
//!
//! `room.html` ([`RoomPage`]):
//! - `room_name`: str.
//! - `chat_messages`: list of `{id: int, username: str, content: str, timestamp: str}`
//!   ([`ChatMessageContext`]), oldest first (the legacy view shows the last 50). `timestamp` is any
//!   string [`parse_timestamp`] accepts: Python `isoformat()` / RFC 3339 with an offset
//!   (`2026-11-24T04:36:42.485068+00:00`, made by `crate::django::dates::isoformat`), or
//!   Django's naive SQLite text
//!   (`2026-11-24 04:36:42[.485068]`), read as UTC.
//!
//! `registration/login.html` ([`LoginPage`]):
//! - `form`: [`AuthenticationForm::context`](super::forms::AuthenticationForm::context):
//!   `{errors: [str], username: BoundField, password: BoundField}`.
//! - `next`: str, the safe redirect target or `""` (LoginView's `next` context variable).
//!
//! `registration/signup.html` ([`SignupPage`]):
//! - `form`: [`UserCreationForm::context`](super::forms::UserCreationForm::context):
//!   `{non_field_errors: html, fields: [BoundField]}`.
//!
//! A `BoundField` ([`BoundFieldContext`](super::forms::BoundFieldContext)) carries the widget, the
//! error list and the help text already rendered as Django renders them (inserted with `| safe`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde::Serialize;
use tera::{Context, Kwargs, State, Tera, Value};

use super::forms::{AuthenticationFormContext, RoomFormContext, UserCreationFormContext};
use crate::django::dates::{push_digits, write_isoformat};

/// The templates every deployment must provide (the legacy app's five).
pub const TEMPLATE_NAMES: [&str; 5] = [
    "base.html",
    "index.html",
    "room.html",
    "registration/login.html",
    "registration/signup.html",
];

/// The ports shipped in the binary.
const BUILTIN_TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("room.html", include_str!("../../templates/room.html")),
    (
        "registration/login.html",
        include_str!("../../templates/registration/login.html"),
    ),
    (
        "registration/signup.html",
        include_str!("../../templates/registration/signup.html"),
    ),
];

/// `settings.STATIC_URL`.
pub const STATIC_URL: &str = "/static/";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("FERROCHAT_TEMPLATES_DIR {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("FERROCHAT_TEMPLATES_DIR {dir} has no {name} (required: {required})", required = TEMPLATE_NAMES.join(", "))]
    Missing { dir: PathBuf, name: &'static str },
    #[error("cannot read template {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid templates ({origin}): {}", error_chain(.source))]
    Invalid {
        origin: String,
        #[source]
        source: tera::Error,
    },
    #[error("rendering {name}: {}", error_chain(.source))]
    Render {
        name: String,
        #[source]
        source: tera::Error,
    },
    #[error("building the context for {name}: {source}")]
    Context {
        name: &'static str,
        #[source]
        source: tera::Error,
    },
}

/// Tera's messages nest (a filter error inside a render error): show the whole chain at once.
fn error_chain(err: &tera::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The compiled templates, shared by every request.
#[derive(Clone)]
pub struct Templates {
    tera: Tera,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field(
                "templates",
                &self.tera.get_template_names().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Templates {
    /// The built-in ports, or every `*.html` under `dir` (which must hold the five legacy
    /// templates). Any missing or invalid template is an error here, never at request time.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut tera = new_tera();
        match dir {
            None => tera
                .add_raw_templates(BUILTIN_TEMPLATES)
                .map_err(|source| TemplateError::Invalid {
                    origin: "built-in".to_owned(),
                    source,
                })?,
            Some(dir) => {
                let files = read_template_dir(dir)?;
                for name in TEMPLATE_NAMES {
                    if !files.contains_key(name) {
                        return Err(TemplateError::Missing {
                            dir: dir.to_owned(),
                            name,
                        });
                    }
                }
                tera.add_raw_templates(&files)
                    .map_err(|source| TemplateError::Invalid {
                        origin: dir.display().to_string(),
                        source,
                    })?;
            }
        }
        Ok(Templates { tera })
    }

    /// Render `name` (e.g. `"registration/login.html"`) with `context`.
    pub fn render(&self, name: &str, context: &Context) -> Result<String, TemplateError> {
        self.tera
            .render(name, context)
            .map_err(|source| TemplateError::Render {
                name: name.to_owned(),
                source,
            })
    }

    /// Render one of the typed page contexts below.
    pub fn render_page<P: Page>(&self, page: &P) -> Result<String, TemplateError> {
        let context = Context::from_serialize(page).map_err(|source| TemplateError::Context {
            name: P::TEMPLATE,
            source,
        })?;
        self.render(P::TEMPLATE, &context)
    }
}

/// A typed page context: serializes to exactly what its template reads.
pub trait Page: Serialize {
    const TEMPLATE: &'static str;
}

/// `request.user` as the templates read it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserContext {
    pub is_authenticated: bool,
    pub username: String,
}

impl UserContext {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn authenticated(username: impl Into<String>) -> Self {
        UserContext {
            is_authenticated: true,
            username: username.into(),
        }
    }
}

/// One line of `room.html`'s history.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessageContext {
    pub id: i64,
    pub username: String,
    pub content: String,
    /// See [`parse_timestamp`]; `crate::django::dates::isoformat` makes one from a stored time.
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexPage {
    pub user: UserContext,
    pub csrf_token: String,
    pub form: RoomFormContext,
    pub rooms: Vec<String>,
}

impl Page for IndexPage {
    const TEMPLATE: &'static str = "index.html";
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomPage {
    pub user: UserContext,
    pub csrf_token: String,
    pub room_name: String,
    pub chat_messages: Vec<ChatMessageContext>,
}

impl Page for RoomPage {
    const TEMPLATE: &'static str = "room.html";
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginPage {
    pub user: UserContext,
    pub csrf_token: String,
    pub form: AuthenticationFormContext,
    /// The safe `next` target, or `""`.
    pub next: String,
}

impl Page for LoginPage {
    const TEMPLATE: &'static str = "registration/login.html";
}

#[derive(Debug, Clone, Serialize)]
pub struct SignupPage {
    pub user: UserContext,
    pub csrf_token: String,
    pub form: UserCreationFormContext,
}

impl Page for SignupPage {
    const TEMPLATE: &'static str = "registration/signup.html";
}

/// A Tera with every Django-flavoured filter and function registered (before any template is
/// added: Tera 2 checks them when it compiles a template).
fn new_tera() -> Tera {
    let mut tera = Tera::new();
    tera.set_escape_fn(django_escape);
    tera.autoescape_on([".html"]);
    tera.register_function("static", static_fn);
    tera.register_function("url", url_fn);
    tera.register_function("csrf_input", csrf_input_fn);
    tera.register_filter("json_script", json_script_filter);
    tera.register_filter("date", date_filter);
    tera
}

/// Every `*.html` under `dir`, named by its `/`-separated path relative to `dir`.
fn read_template_dir(dir: &Path) -> Result<BTreeMap<String, String>, TemplateError> {
    // A symlink loop must not hang startup: nobody nests templates this deep.
    const MAX_DEPTH: usize = 16;
    let mut files = BTreeMap::new();
    let mut pending = vec![(dir.to_owned(), 0)];
    while let Some((current, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| TemplateError::Dir {
            dir: current.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| TemplateError::Dir {
                dir: current.clone(),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                if depth < MAX_DEPTH {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("html") {
                continue;
            }
            let Ok(relative) = path.strip_prefix(dir) else {
                continue;
            };
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let content = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            })?;
            files.insert(name, content);
        }
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Escaping

/// `django.utils.html.escape` (`html.escape(s, quote=True)`): `& < > " '` →
/// `&amp; &lt; &gt; &quot; &#x27;`, byte-for-byte. Tera's own escaper writes `&#39;` and `&#x2F;`.
pub fn django_escape(input: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let bytes = input.as_bytes();
    let mut start = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let replacement: &[u8] = match byte {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&#x27;",
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        out.write_all(replacement)?;
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

/// [`django_escape`] into a `String`.
pub use crate::django::html::escape;

// ---------------------------------------------------------------------------------------------
// static(), url(), csrf_input()

/// Python's `urllib.parse.quote(s, safe)`: UTF-8 bytes, `%XX` in upper case, letters, digits and
/// `_.-~` always safe.
fn py_quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &byte in s.as_bytes() {
        if byte.is_ascii_alphanumeric()
            || b"_.-~".contains(&byte)
            || safe.as_bytes().contains(&byte)
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `{% static %}` through `StaticFilesStorage.url`: `filepath_to_uri` (quote with
/// `/~!*()'` safe), leading `/` dropped, joined to `STATIC_URL`
/// (django/core/files/storage/filesystem.py, django/utils/encoding.py).
pub fn static_url(path: &str) -> String {
    let quoted = py_quote(&path.replace('\\', "/"), "/~!*()'");
    format!("{STATIC_URL}{}", quoted.trim_start_matches('/'))
}

fn static_fn(kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let path = kwargs.must_get::<&str>("path")?;
    Ok(static_url(path))
}

/// `reverse()` for the legacy URL names (chat_project/urls.py). The room argument is quoted as
/// `_reverse_with_prefix` quotes the whole path (RFC 3986 sub-delims and `/~:@` safe) and, like
/// the `str` converter, may not be empty or contain `/`.
pub fn reverse(name: &str, arg: Option<&str>) -> Result<String, String> {
    let fixed = match name {
        "index" => Some("/"),
        "login" => Some("/login/"),
        "logout" => Some("/logout/"),
        "signup" => Some("/signup/"),
        "room" => None,
        _ => return Err(format!("Reverse for '{name}' not found.")),
    };
    match (fixed, arg) {
        (Some(path), None) => Ok(path.to_owned()),
        (None, Some(room)) if !room.is_empty() && !room.contains('/') => {
            Ok(format!("/chat/{}/", py_quote(room, "!$&'()*+,;=/~:@")))
        }
        _ => Err(format!(
            "Reverse for '{name}' with arguments '{arg:?}' not found."
        )),
    }
}

fn url_fn(kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let name = kwargs.must_get::<&str>("name")?;
    let arg = kwargs.get::<&str>("arg")?;
    reverse(name, arg).map_err(tera::Error::message)
}

/// `{% csrf_token %}` (django/template/defaulttags.py: CsrfTokenNode). Without a token Django
/// renders nothing.
fn csrf_input_fn(_: Kwargs, state: &State) -> tera::TeraResult<Value> {
    match state.get::<String>("csrf_token")? {
        Some(token) if !token.is_empty() => Ok(Value::safe_string(&format!(
            r#"<input type="hidden" name="csrfmiddlewaretoken" value="{}">"#,
            escape(&token)
        ))),
        _ => {
            tracing::warn!("csrf_input() used in a template without a csrf_token in the context");
            Ok(Value::safe_string(""))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// json_script

/// `django.utils.html.json_script`: `json.dumps(value, cls=DjangoJSONEncoder)` (default
/// separators, `ensure_ascii=True`), then `<`, `>`, `&` as `\u003C`, `\u003E`, `\u0026`, in a
/// `<script type="application/json">` whose id is escaped.
pub fn json_script(value: &Value, id: Option<&str>) -> Result<String, String> {
    let mut json = String::new();
    py_json_dumps(value, &mut json)?;
    let json = json
        .replace('<', "\\u003C")
        .replace('>', "\\u003E")
        .replace('&', "\\u0026");
    Ok(match id {
        Some(id) if !id.is_empty() => format!(
            r#"<script id="{}" type="application/json">{json}</script>"#,
            escape(id)
        ),
        _ => format!(r#"<script type="application/json">{json}</script>"#),
    })
}

fn json_script_filter(value: &Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<Value> {
    let id = kwargs.get::<&str>("id")?;
    json_script(value, id)
        .map(|html| Value::safe_string(&html))
        .map_err(tera::Error::message)
}

/// Python's `json.dumps` with its defaults: `", "` and `": "` separators, non-ASCII as `\uXXXX`
/// (UTF-16 surrogate pairs beyond the BMP), floats as `repr()`.
fn py_json_dumps(value: &Value, out: &mut String) -> Result<(), String> {
    if value.is_undefined() || value.is_none() {
        out.push_str("null");
    } else if let Some(b) = value.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(s) = value.as_str() {
        py_json_string(s, out);
    } else if let Some(number) = value.as_number() {
        if number.is_integer() {
            match number.as_integer() {
                Some(i) => out.push_str(&i.to_string()),
                None => return Err("integer out of range".to_owned()),
            }
        } else {
            out.push_str(&py_float_repr(number.as_float()));
        }
    } else if let Some(items) = value.as_array() {
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            py_json_dumps(item, out)?;
        }
        out.push(']');
    } else if let Some(map) = value.as_map() {
        // Python keeps insertion order; Tera's map (without its `preserve_order` feature) does
        // not, so keys are sorted for a deterministic output. The legacy templates only pass
        // strings.
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        out.push('{');
        for (i, (key, item)) in entries.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            // json.dumps turns bool/int keys into their JSON text, quoted.
            let key = match key.as_str() {
                Some(s) => s.to_owned(),
                None => {
                    let mut text = String::new();
                    py_json_dumps(&key.as_value(), &mut text)?;
                    text
                }
            };
            py_json_string(&key, out);
            out.push_str(": ");
            py_json_dumps(item, out)?;
        }
        out.push('}');
    } else {
        return Err(format!(
            "Object of type {} is not JSON serializable",
            value.name()
        ));
    }
    Ok(())
}

/// `json.encoder.py_encode_basestring_ascii`.
fn py_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python `float.__repr__` (shortest round-trip digits; scientific notation below 1e-4 or from
/// 1e16), as `json.dumps` writes floats; `NaN`/`Infinity` as `json.dumps` allows them.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits too: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if (point as usize) >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

// ---------------------------------------------------------------------------------------------
// date

/// A datetime as templates receive it: RFC 3339 / `isoformat()` with an offset (`T` or space
/// between date and time, `Z` allowed), or a naive `YYYY-MM-DD HH:MM:SS[.ffffff]` (Django's SQLite
/// storage) taken as UTC. Converted to UTC, as Django converts to `TIME_ZONE` before `|date`.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    parse_isoformat_utc(text).or_else(|| parse_timestamp_general(text))
}

/// The shape [`isoformat`] writes for UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (or with a
/// space), read without chrono's format-string parser: what [`parse_timestamp_general`] gives
/// for it, or `None` to leave anything else (leap seconds, out-of-range fields) to that.
fn parse_isoformat_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let micros = match b.len() {
        25 => 0,
        32 if b[19] == b'.' => fixed_digits(&b[20..26])?,
        _ => return None,
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
        || !b.ends_with(b"+00:00")
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(fixed_digits(&b[0..4])?).ok()?,
        fixed_digits(&b[5..7])?,
        fixed_digits(&b[8..10])?,
    )?;
    let time = NaiveTime::from_hms_micro_opt(
        fixed_digits(&b[11..13])?,
        fixed_digits(&b[14..16])?,
        fixed_digits(&b[17..19])?,
        micros,
    )?;
    Some(date.and_time(time).and_utc())
}

/// ASCII digits as a number; `None` if any byte is not a digit.
fn fixed_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

fn parse_timestamp_general(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().replacen('T', " ", 1);
    let text = match text.strip_suffix('Z') {
        Some(rest) => format!("{rest}+00:00"),
        None => text,
    };
    if let Ok(dt) = DateTime::<FixedOffset>::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// `django.utils.dates.MONTHS_AP` (Associated Press style).
const MONTHS_AP: [&str; 12] = [
    "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.",
    "Dec.",
];

/// The en locale's named formats (django/conf/locale/en/formats.py), which `|date` accepts
/// instead of a format string.
fn named_format(name: &str) -> Option<&'static str> {
    Some(match name {
        "DATE_FORMAT" => "N j, Y",
        "TIME_FORMAT" => "P",
        "DATETIME_FORMAT" => "N j, Y, P",
        "YEAR_MONTH_FORMAT" => "F Y",
        "MONTH_DAY_FORMAT" => "F j",
        "SHORT_DATE_FORMAT" => "m/d/Y",
        "SHORT_DATETIME_FORMAT" => "m/d/Y P",
        _ => return None,
    })
}

/// The characters `django.utils.dateformat.re_formatchars` recognises.
const FORMAT_CHARS: &str = "aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ";

/// `django.utils.dateformat.format(value, format_string)` for an aware datetime in UTC
/// (TIME_ZONE = "UTC", USE_TZ = True, LANGUAGE_CODE = "en-us").
pub fn format_date(dt: &DateTime<Utc>, format: &str) -> String {
    let mut out = String::with_capacity(32);
    // The literal piece since the last format character, as a byte range of `format`.
    let mut literal_start = 0;
    let mut previous = None;
    for (i, c) in format.char_indices() {
        // `(?<!\\)([chars])`: a format character not preceded by a backslash.
        if FORMAT_CHARS.contains(c) && previous != Some('\\') {
            unescape_literal(&format[literal_start..i], &mut out);
            literal_start = i + c.len_utf8();
            format_char(dt, c, &mut out);
        }
        previous = Some(c);
    }
    unescape_literal(&format[literal_start..], &mut out);
    out
}

/// `re_escaped.sub(r"\1", piece)` with `re_escaped = r"\\(.)"` (`.` does not match a newline).
fn unescape_literal(piece: &str, out: &mut String) {
    let mut chars = piece.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if next != '\n' => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
}

fn format_char(dt: &DateTime<Utc>, c: char, out: &mut String) {
    use std::fmt::Write as _;
    let hour12 = match dt.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month0 = dt.month0() as usize;
    let weekday0 = dt.weekday().num_days_from_monday() as usize;
    // `write!` into a String cannot fail.
    let _ = match c {
        'a' => write!(out, "{}", if dt.hour() > 11 { "p.m." } else { "a.m." }),
        'A' => write!(out, "{}", if dt.hour() > 11 { "PM" } else { "AM" }),
        'b' => write!(out, "{}", MONTHS[month0][..3].to_lowercase()),
        'c' => {
            write_isoformat(dt, out);
            Ok(())
        }
        'd' => write!(out, "{:02}", dt.day()),
        'D' => write!(out, "{}", &WEEKDAYS[weekday0][..3]),
        'e' | 'T' => write!(out, "UTC"),
        'E' | 'F' => write!(out, "{}", MONTHS[month0]),
        'f' => {
            if dt.minute() == 0 {
                write!(out, "{hour12}")
            } else {
                write!(out, "{hour12}:{:02}", dt.minute())
            }
        }
        'g' => write!(out, "{hour12}"),
        'G' => write!(out, "{}", dt.hour()),
        'h' => write!(out, "{hour12:02}"),
        'H' => {
            push_digits(out, dt.hour(), 2);
            Ok(())
        }
        'i' => {
            push_digits(out, dt.minute(), 2);
            Ok(())
        }
        'I' => write!(out, "0"),
        'j' => write!(out, "{}", dt.day()),
        'l' => write!(out, "{}", WEEKDAYS[weekday0]),
        'L' => write!(out, "{}", if is_leap(dt.year()) { "True" } else { "False" }),
        'm' => write!(out, "{:02}", dt.month()),
        'M' => write!(out, "{}", &MONTHS[month0][..3]),
        'n' => write!(out, "{}", dt.month()),
        'N' => write!(out, "{}", MONTHS_AP[month0]),
        'o' => write!(out, "{}", dt.iso_week().year()),
        'O' => write!(out, "+0000"),
        'P' => match (dt.hour(), dt.minute()) {
            (0, 0) => write!(out, "midnight"),
            (12, 0) => write!(out, "noon"),
            _ => {
                format_char(dt, 'f', out);
                out.push(' ');
                format_char(dt, 'a', out);
                Ok(())
            }
        },
        // email.utils.format_datetime(): "Thu, 21 Dec 2000 16:01:07 +0000".
        'r' => write!(
            out,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
            &WEEKDAYS[weekday0][..3],
            dt.day(),
            &MONTHS[month0][..3],
            dt.year(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        's' => write!(out, "{:02}", dt.second()),
        'S' => write!(
            out,
            "{}",
            match dt.day() {
                11..=13 => "th",
                d if d % 10 == 1 => "st",
                d if d % 10 == 2 => "nd",
                d if d % 10 == 3 => "rd",
                _ => "th",
            }
        ),
        't' => write!(out, "{}", days_in_month(dt.year(), dt.month())),
        'u' => write!(out, "{:06}", dt.nanosecond() / 1000 % 1_000_000),
        // int(value.timestamp()) truncates toward zero.
        'U' => {
            let mut secs = dt.timestamp();
            if secs < 0 && dt.nanosecond() > 0 {
                secs += 1;
            }
            write!(out, "{secs}")
        }
        'w' => write!(out, "{}", dt.weekday().num_days_from_sunday()),
        'W' => write!(out, "{}", dt.iso_week().week()),
        'y' => write!(out, "{:02}", dt.year() % 100),
        'Y' => write!(out, "{:04}", dt.year()),
        'z' => write!(out, "{}", dt.ordinal()),
        'Z' => write!(out, "0"),
        _ => write!(out, "{c}"),
    };
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `{{ value|date:format }}` (django/template/defaultfilters.py: date) before escaping: no
/// format means `DATE_FORMAT`, a named format (`"SHORT_DATE_FORMAT"`…) is the en locale's, and a
/// value that is not a datetime ([`parse_timestamp`]) renders `""`, as in Django.
pub fn django_date(value: &str, format: Option<&str>) -> String {
    let format = format.unwrap_or("DATE_FORMAT");
    let format = named_format(format).unwrap_or(format);
    match parse_timestamp(value) {
        Some(dt) => format_date(&dt, format),
        None => String::new(),
    }
}

fn date_filter(value: &Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let format = kwargs.get::<&str>("format")?;
    Ok(value
        .as_str()
        .map(|v| django_date(v, format))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::django::dates::isoformat;

    fn render_str(tera: &mut Tera, src: &str, context: &Context) -> String {
        tera.add_raw_template("t.html", src)
            .expect("test template compiles");
        tera.render("t.html", context)
            .expect("test template renders")
    }

    #[test]
    fn escape_matches_django_byte_for_byte() {
        let mut out = Vec::new();
        django_escape(r#"<a href="x">Tom & 'Jerry' / é</a>"#, &mut out).expect("write to Vec");
        let expected = "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27; / é&lt;/a&gt;";
        assert_eq!(String::from_utf8(out).expect("utf-8"), expected);
        assert_eq!(escape(r#"<a href="x">Tom & 'Jerry' / é</a>"#), expected);
    }

    #[test]
    fn autoescape_uses_django_escape() {
        let mut tera = new_tera();
        let mut context = Context::new();
        context.insert("v", "'<&>\"");
        let html = render_str(&mut tera, "{{ v }}|{{ v | safe }}", &context);
        assert_eq!(html, "&#x27;&lt;&amp;&gt;&quot;|'<&>\"");
    }

    #[test]
    fn static_and_url() {
        assert_eq!(static_url("chatapp/style.css"), "/static/chatapp/style.css");
        assert_eq!(static_url("/a b/é.js"), "/static/a%20b/%C3%A9.js");
        assert_eq!(reverse("index", None).as_deref(), Ok("/"));
        assert_eq!(reverse("login", None).as_deref(), Ok("/login/"));
        assert_eq!(reverse("logout", None).as_deref(), Ok("/logout/"));
        assert_eq!(reverse("signup", None).as_deref(), Ok("/signup/"));
        assert_eq!(
            reverse("room", Some("lobby")).as_deref(),
            Ok("/chat/lobby/")
        );
        assert_eq!(
            reverse("room", Some("a b&é?#")).as_deref(),
            Ok("/chat/a%20b&%C3%A9%3F%23/")
        );
        assert!(reverse("room", None).is_err());
        assert!(reverse("room", Some("a/b")).is_err());
        assert!(reverse("admin", None).is_err());
        let mut tera = new_tera();
        let html = render_str(
            &mut tera,
            "{{ url(name='room', arg=r) }} {{ static(path='x.css') }}",
            &Context::from_serialize(&serde_json::json!({"r": "a'b"})).expect("context"),
        );
        // Django's url/static tags escape their output under autoescape.
        assert_eq!(html, "/chat/a&#x27;b/ /static/x.css");
    }

    #[test]
    fn csrf_input_reads_the_context() {
        let mut tera = new_tera();
        let mut context = Context::new();
        context.insert("csrf_token", "abc\"def");
        let html = render_str(&mut tera, "{{ csrf_input() }}", &context);
        assert_eq!(
            html,
            r#"<input type="hidden" name="csrfmiddlewaretoken" value="abc&quot;def">"#
        );
        let html = tera
            .render("t.html", &Context::new())
            .expect("renders without a token");
        assert_eq!(html, "");
    }

    #[test]
    fn json_script_matches_django() {
        let script = |v: serde_json::Value, id: Option<&str>| {
            json_script(&Value::from_serializable(&v), id).expect("serializable")
        };
        assert_eq!(
            script(serde_json::json!("lobby"), Some("room-name")),
            r#"<script id="room-name" type="application/json">"lobby"</script>"#
        );
        assert_eq!(
            script(serde_json::json!("<b>&\"é😀\u{7f}\n"), Some("x\"y")),
            r#"<script id="x&quot;y" type="application/json">"\u003Cb\u003E\u0026\"\u00e9\ud83d\ude00\u007f\n"</script>"#
        );
        assert_eq!(
            script(serde_json::json!({"a": [1, 2.5, true, null]}), None),
            r#"<script type="application/json">{"a": [1, 2.5, true, null]}</script>"#
        );
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, expected) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.25e-7, "-1.25e-07"),
            (1e300, "1e+300"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(py_float_repr(f), expected, "{f}");
        }
    }

    #[test]
    fn timestamps_parse_and_format() {
        let dt = parse_timestamp("2026-11-24T04:36:42.485068+00:00").expect("isoformat");
        assert_eq!(isoformat(&dt), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(format_date(&dt, "c"), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(format_date(&dt, "H:i"), "04:36");
        let dt = parse_timestamp("2026-01-02 13:00:05").expect("sqlite text");
        assert_eq!(format_date(&dt, "c"), "2026-01-02T13:00:05+00:00");
        let dt = parse_timestamp("2026-01-02T15:00:05.5+02:00").expect("offset");
        assert_eq!(format_date(&dt, "c"), "2026-01-02T13:00:05.500000+00:00");
        assert_eq!(
            format_date(&dt, r"D, d M Y \a\t P e O Z \\c"),
            r"Fri, 02 Jan 2026 at 1 p.m. UTC +0000 0 \c"
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn isoformat_fast_path_agrees_with_the_general_parser() {
        let mut inputs = vec![
            "2026-11-24T04:36:42.485068+00:00".to_owned(),
            "2026-11-24 04:36:42.485068+00:00".to_owned(),
            "2026-11-24T04:36:42+00:00".to_owned(),
            "0000-01-01T00:00:00+00:00".to_owned(),
            "2024-02-29T23:59:59.999999+00:00".to_owned(),
            "2023-02-29T23:59:59+00:00".to_owned(),
            "2026-13-01T00:00:00+00:00".to_owned(),
            "2026-12-31T24:00:00+00:00".to_owned(),
            "2026-12-31T23:60:00+00:00".to_owned(),
            "2026-12-31T23:59:60+00:00".to_owned(),
            "2026-12-31T23:59:60.5+00:00".to_owned(),
            "2026-12-31X23:59:59+00:00".to_owned(),
            "2026-12-31T23:59:59+01:00".to_owned(),
            "2026-12-31T23:59:59.12345x+00:00".to_owned(),
            "2026-12-31T23:59:59,123456+00:00".to_owned(),
            "2026-1a-31T23:59:59+00:00".to_owned(),
            " 2026-12-31T23:59:59+00:00".to_owned(),
        ];
        for step in 0..2_000i64 {
            let secs = -62_135_596_800 + step * 126_000_000 + step * 7_919;
            // Every third one on a whole second (no fraction in `isoformat`).
            let micros = if step % 3 == 0 {
                0
            } else {
                step * 104_729 % 1_000_000
            };
            let nanos = u32::try_from(micros * 1_000).expect("in range");
            let dt = Utc.timestamp_opt(secs, nanos).single().expect("valid");
            inputs.push(isoformat(&dt));
        }
        for text in &inputs {
            assert_eq!(
                parse_timestamp(text),
                parse_timestamp_general(text),
                "{text}"
            );
        }
        assert!(parse_isoformat_utc(&inputs[0]).is_some());
    }

    #[test]
    fn format_date_literals_and_escapes() {
        let dt = parse_timestamp("2026-01-02T15:04:05.000006+00:00").expect("valid");
        for (format, expected) in [
            ("", ""),
            ("c", "2026-01-02T15:04:05.000006+00:00"),
            ("H:i", "15:04"),
            (r"\H\i", "Hi"),
            (r"\\H", r"\H"),
            ("é H é", "é 15 é"),
            ("xHx", "x15x"),
            (r"\", r"\"),
            ("\\\n", "\\\n"),
        ] {
            assert_eq!(format_date(&dt, format), expected, "{format:?}");
        }
    }

    #[test]
    fn date_filter_renders_like_django() {
        let mut tera = new_tera();
        let context = Context::from_serialize(&serde_json::json!({
            "t": "2026-11-24 00:00:00", "bad": "nope", "none": null
        }))
        .expect("context");
        let html = render_str(
            &mut tera,
            "{{ t | date }}|{{ t | date(format='P') }}|{{ bad | date(format='c') }}|{{ none | date }}",
            &context,
        );
        assert_eq!(html, "Nov. 24, 2026|midnight||");
    }

    #[test]
    fn builtin_templates_load() {
        let templates = Templates::load(None).expect("built-in templates compile");
        for name in TEMPLATE_NAMES {
            assert!(templates.tera.contains_template(name), "{name}");
        }
    }

    #[test]
    fn template_dir_must_hold_every_template() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("base.html"), "x").expect("write");
        let err = Templates::load(Some(dir.path())).expect_err("incomplete dir");
        assert!(
            matches!(
                err,
                TemplateError::Missing {
                    name: "index.html",
                    ..
                }
            ),
            "{err}"
        );

        for (name, content) in BUILTIN_TEMPLATES {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        Templates::load(Some(dir.path())).expect("a full copy loads");

        std::fs::write(dir.path().join("room.html"), "{% if %}").expect("write");
        let err = Templates::load(Some(dir.path())).expect_err("syntax error");
        assert!(matches!(err, TemplateError::Invalid { .. }), "{err}");

        let err = Templates::load(Some(&dir.path().join("nope"))).expect_err("no dir");
        assert!(matches!(err, TemplateError::Dir { .. }), "{err}");
    }
}
