//! The legacy pages, rendered with Tera 2 ports of `chatapp/templates/*.html`.
//!
//! [`Templates`] is built once at startup: the ports in `templates/` are embedded in the binary,
//! unless `FERROCHAT_TEMPLATES_DIR` (`Settings::templates_dir`) names a directory to load them from.
//! Before any template is added, the Django-isms the legacy templates use are registered:
//!
//! | Django | Tera port |
//! |---|---|
//! | autoescape (`django.utils.html.escape`) | [`html::write_escaped`] as the escape function |
//! | `{% static 'p' %}` | `{{ static(path='p') }}` (`STATIC_URL` = `/static/`) |
//! | `{% url 'room' name %}` | `{{ url(name='room', arg=name) }}` (index, room, login, logout, signup) |
//! | `{% csrf_token %}` | `{{ csrf_input() }}` (reads `csrf_token` from the render context) |
//! | `{{ v\|json_script:"id" }}` | `{{ v \| json_script(id="id") }}` |
//! | `{{ v\|date:"c" }}` | `{{ v \| date(format="c") }}` ([`dateformat`], UTC) |
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
//! - `chat_messages`: list of `{id: int, username: str, content: str, timestamp: datetime}`
//!   ([`ChatMessageContext`]), oldest first (the legacy view shows the last 50). `timestamp` is
//!   meant for the `date` filter (`{{ message.timestamp | date(format='c') }}`), as the legacy
//!   template gets a datetime: Tera has no datetime value, so it holds the instant's whole
//!   microseconds since the Unix epoch.
//!
//! `live/room.html` ([`LiveRoomPage`], ferrochat's own, served with `FERROCHAT_FRONTEND=live`):
//! the context of `room.html`; each history line must carry `data-id="{{ message.id }}"`, where
//! the live script resumes from.
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
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tera::{Context, Kwargs, State, Tera, Value};

use super::forms::{AuthenticationFormContext, RoomFormContext, UserCreationFormContext};
use crate::django::html::{self, escape};
use crate::django::http::quote;
use crate::django::{dateformat, py_json};

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

/// ferrochat's own pages beyond the legacy five, built in; a `FERROCHAT_TEMPLATES_DIR` may
/// override each (they extend its `base.html`) but need not provide them.
const OWN_TEMPLATES: [(&str, &str); 1] = [(
    "live/room.html",
    include_str!("../../templates/live/room.html"),
)];

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
                .add_raw_templates(BUILTIN_TEMPLATES.into_iter().chain(OWN_TEMPLATES))
                .map_err(|source| TemplateError::Invalid {
                    origin: "built-in".to_owned(),
                    source,
                })?,
            Some(dir) => {
                let mut files = read_template_dir(dir)?;
                for name in TEMPLATE_NAMES {
                    if !files.contains_key(name) {
                        return Err(TemplateError::Missing {
                            dir: dir.to_owned(),
                            name,
                        });
                    }
                }
                for (name, content) in OWN_TEMPLATES {
                    files
                        .entry(name.to_owned())
                        .or_insert_with(|| content.to_owned());
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
    /// The stored time; the templates format it with `| date`.
    #[serde(serialize_with = "serialize_datetime")]
    pub timestamp: DateTime<Utc>,
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

/// The live frontend's room page (`FERROCHAT_FRONTEND=live`): the legacy context, another
/// template.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct LiveRoomPage(pub RoomPage);

impl Page for LiveRoomPage {
    const TEMPLATE: &'static str = "live/room.html";
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
    tera.set_escape_fn(html::write_escaped);
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
// static(), url(), csrf_input()

/// `{% static %}` through `StaticFilesStorage.url`: `filepath_to_uri` (quote with
/// `/~!*()'` safe), leading `/` dropped, joined to `STATIC_URL`
/// (django/core/files/storage/filesystem.py, django/utils/encoding.py).
pub fn static_url(path: &str) -> String {
    let quoted = quote(&path.replace('\\', "/"), "/~!*()'");
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
            Ok(format!("/chat/{}/", quote(room, "!$&'()*+,;=/~:@")))
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

/// `{{ value|json_script:"id" }}`: the Tera value as `json.dumps` writes it, in
/// [`html::json_script`]'s `<script>`.
pub fn json_script(value: &Value, id: Option<&str>) -> Result<String, String> {
    let mut json = String::new();
    py_json_dumps(value, &mut json)?;
    Ok(html::json_script(&json, id))
}

fn json_script_filter(value: &Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<Value> {
    let id = kwargs.get::<&str>("id")?;
    json_script(value, id)
        .map(|html| Value::safe_string(&html))
        .map_err(tera::Error::message)
}

/// Python's `json.dumps` with its defaults (`", "` and `": "` separators) over a Tera value; the
/// strings and floats are written by [`py_json`], as everywhere else.
fn py_json_dumps(value: &Value, out: &mut String) -> Result<(), String> {
    if value.is_undefined() || value.is_none() {
        out.push_str("null");
    } else if let Some(b) = value.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(s) = value.as_str() {
        py_json::write_str(out, s);
    } else if let Some(number) = value.as_number() {
        if number.is_integer() {
            match number.as_integer() {
                Some(i) => out.push_str(&i.to_string()),
                None => return Err("integer out of range".to_owned()),
            }
        } else {
            py_json::write_float(out, number.as_float());
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
            py_json::write_str(out, &key);
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

// ---------------------------------------------------------------------------------------------
// date

/// A datetime as the templates receive it: [`ChatMessageContext::timestamp`] is serialized as
/// whole microseconds since the Unix epoch (Tera has no datetime value), read back here as the
/// same instant. No text is parsed.
fn template_datetime(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value.as_i64()?)
}

/// `{{ value|date:format }}` ([`dateformat::date_filter`]); a value that is not a datetime
/// renders `""`, as in Django (where a string is not one either).
fn date_filter(value: &Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<String> {
    let format = kwargs.get::<&str>("format")?;
    Ok(template_datetime(value)
        .map(|dt| dateformat::date_filter(&dt, format))
        .unwrap_or_default())
}

/// Serializes a datetime for the templates as [`template_datetime`] reads it.
fn serialize_datetime<S: serde::Serializer>(
    dt: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_i64(dt.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn render_str(tera: &mut Tera, src: &str, context: &Context) -> String {
        tera.add_raw_template("t.html", src)
            .expect("test template compiles");
        tera.render("t.html", context)
            .expect("test template renders")
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
    fn date_filter_renders_like_django() {
        #[derive(Serialize)]
        struct Values {
            #[serde(serialize_with = "serialize_datetime")]
            t: DateTime<Utc>,
            bad: &'static str,
            text: &'static str,
            none: Option<()>,
        }
        let mut tera = new_tera();
        let context = Context::from_serialize(&Values {
            t: Utc
                .with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
                .single()
                .expect("valid"),
            bad: "nope",
            // A string is not a datetime to Django's `date` filter either.
            text: "2026-11-24 00:00:00",
            none: None,
        })
        .expect("context");
        let html = render_str(
            &mut tera,
            "{{ t | date }}|{{ t | date(format='P') }}|{{ bad | date(format='c') }}|{{ none | date }}",
            &context,
        );
        assert_eq!(html, "Nov. 24, 2026|midnight||");
        let html = render_str(&mut tera, "[{{ text | date(format='c') }}]", &context);
        assert_eq!(html, "[]");
    }

    #[test]
    fn chat_message_timestamps_reach_the_template_as_the_same_instant() {
        let at = Utc
            .timestamp_opt(1_795_495_002, 485_068_000)
            .single()
            .expect("valid");
        let message = ChatMessageContext {
            id: 1,
            username: "ann".into(),
            content: "hi".into(),
            timestamp: at,
        };
        let value = Value::from_serializable(&message);
        let timestamp = value
            .as_map()
            .and_then(|m| m.get(&"timestamp".into()))
            .expect("a timestamp");
        assert_eq!(template_datetime(timestamp), Some(at));
        let mut tera = new_tera();
        let mut context = Context::new();
        context.insert("m", &message);
        let html = render_str(&mut tera, "{{ m.timestamp | date(format='c') }}", &context);
        assert_eq!(html, "2026-11-24T04:36:42.485068+00:00");
    }

    #[test]
    fn builtin_templates_load() {
        let templates = Templates::load(None).expect("built-in templates compile");
        for name in TEMPLATE_NAMES
            .into_iter()
            .chain(OWN_TEMPLATES.map(|(n, _)| n))
        {
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
        let templates = Templates::load(Some(dir.path())).expect("a full copy loads");
        // ferrochat's own pages come built in when the directory has none.
        assert!(templates.tera.contains_template("live/room.html"));

        std::fs::write(dir.path().join("room.html"), "{% if %}").expect("write");
        let err = Templates::load(Some(dir.path())).expect_err("syntax error");
        assert!(matches!(err, TemplateError::Invalid { .. }), "{err}");

        let err = Templates::load(Some(&dir.path().join("nope"))).expect_err("no dir");
        assert!(matches!(err, TemplateError::Dir { .. }), "{err}");
    }
}
