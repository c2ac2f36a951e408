//! The pages are the legacy pages: every page state is rendered by ferrochat's templates and
//! forms, and the same state by the real legacy Django views and templates (through the legacy
//! venv, `tests/template_parity/render_legacy.py`); the two documents must match once parsed and
//! normalized (elements, attributes as sets, text with whitespace between elements ignored and
//! CSRF token values masked). The `date` filter and `json_script` are compared the same way.
//!
//! Python runs once for all tests (the cases are batched); without the legacy venv the tests
//! fail, they never skip.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use ferrochat::django::dateformat;
use ferrochat::django::html::escape;
use ferrochat::web::forms::{AuthenticationForm, DjangoValidators, RoomForm, UserCreationForm};
use ferrochat::web::templates::{
    self, ChatMessageContext, IndexPage, LoginPage, RoomPage, SignupPage, Templates, UserContext,
};
use serde_json::{Value, json};
use support::html::{diff, save_pages};

/// A masked token of the right shape; the comparison masks token values anyway.
const CSRF_TOKEN: &str = "Vx6pL0VJkvM2Z1SAdDwX3Yq9G2f0V9S3r8q0ZtHcX0n3mPcWd0nF0Kk2s3p8Q9a1";

/// One page state: what Django is asked to render, and what ferrochat rendered.
struct PageCase {
    id: String,
    django: Value,
    ferrochat_html: String,
}

struct Parity {
    pages: Vec<PageCase>,
    page_results: BTreeMap<String, Value>,
    dates: Vec<(String, Option<String>, String)>,
    date_results: Vec<String>,
    json_scripts: Vec<(Value, Option<String>, String)>,
    json_script_results: Vec<String>,
}

fn parity() -> &'static Parity {
    static PARITY: OnceLock<Parity> = OnceLock::new();
    PARITY.get_or_init(run_parity)
}

/// `FERROCHAT_LEGACY_PYTHON`, else the legacy venv's (`FERROCHAT_LEGACY_VENV`, as every other
/// interop suite finds it).
fn legacy_python() -> PathBuf {
    match std::env::var_os("FERROCHAT_LEGACY_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => support::legacy::venv().join("bin/python"),
    }
}

fn run_parity() -> Parity {
    let templates = Templates::load(None).expect("built-in templates load");
    let mut pages = Vec::new();
    login_cases(&templates, &mut pages);
    signup_cases(&templates, &mut pages);
    index_cases(&templates, &mut pages);
    room_cases(&templates, &mut pages);
    let dates = date_cases();
    let json_scripts = json_script_cases();

    let request = json!({
        "cases": pages.iter().map(|case| {
            let mut spec = case.django.clone();
            spec["id"] = json!(case.id);
            spec["ferrochat_html"] = json!(case.ferrochat_html);
            spec
        }).collect::<Vec<_>>(),
        "dates": dates.iter().map(|(ts, format, _)| json!({"timestamp": ts, "format": format})).collect::<Vec<_>>(),
        "json_scripts": json_scripts.iter().map(|(value, id, _)| json!({"value": value, "id": id})).collect::<Vec<_>>(),
    });

    let python = legacy_python();
    assert!(
        python.exists(),
        "the legacy Django venv is missing: {} does not exist. Create it (python3.11 -m venv \
         .legacy-venv && .legacy-venv/bin/pip install -r \
         vendor/legacy-django/chat_project/requirements.txt) or point FERROCHAT_LEGACY_PYTHON \
         at a Python with Django 5.0.1. These tests never skip.",
        python.display()
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/template_parity/render_legacy.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let input = serde_json::to_vec(&request).expect("request serializes");
    // Write from a thread: Python may fill its stdout pipe before reading all of stdin.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("python runs");
    writer
        .join()
        .expect("writer thread")
        .expect("python reads its input");
    assert!(
        output.status.success(),
        "render_legacy.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let response: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "render_legacy.py printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let page_results = response["results"]
        .as_object()
        .expect("results object")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let strings = |key: &str| -> Vec<String> {
        response[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} array"))
            .iter()
            .map(|v| v.as_str().expect("string result").to_owned())
            .collect()
    };
    Parity {
        pages,
        page_results,
        date_results: strings("dates"),
        dates,
        json_script_results: strings("json_scripts"),
        json_scripts,
    }
}

// ---------------------------------------------------------------------------------------------
// Page states

fn login_cases(templates: &Templates, pages: &mut Vec<PageCase>) {
    let render = |user: UserContext, form: &AuthenticationForm, next: &str| {
        templates
            .render_page(&LoginPage {
                user,
                csrf_token: CSRF_TOKEN.to_owned(),
                form: form.context(),
                next: next.to_owned(),
            })
            .expect("login page renders")
    };
    let anonymous = UserContext::anonymous;

    pages.push(PageCase {
        id: "login_empty".into(),
        django: json!({"view": "login", "path": "/login/"}),
        ferrochat_html: render(anonymous(), &AuthenticationForm::new(), ""),
    });

    let mut failed = AuthenticationForm::bind(Some("alice"), Some("wrong password"));
    assert!(failed.credentials().is_some());
    failed.reject_login();
    pages.push(PageCase {
        id: "login_failed_keeps_username".into(),
        django: json!({"view": "login", "method": "POST", "path": "/login/", "users": ["alice"],
                       "post": {"username": "alice", "password": "wrong password"}}),
        ferrochat_html: render(anonymous(), &failed, ""),
    });

    let odd = "  bob<&>\"'é ";
    let mut failed = AuthenticationForm::bind(Some(odd), Some("x"));
    failed.reject_login();
    pages.push(PageCase {
        id: "login_failed_escapes_username".into(),
        django: json!({"view": "login", "method": "POST", "path": "/login/",
                       "post": {"username": odd, "password": "x"}}),
        ferrochat_html: render(anonymous(), &failed, ""),
    });

    let missing = AuthenticationForm::bind(None, None);
    assert!(missing.credentials().is_none());
    pages.push(PageCase {
        id: "login_missing_fields".into(),
        django: json!({"view": "login", "method": "POST", "path": "/login/", "post": {}}),
        ferrochat_html: render(anonymous(), &missing, ""),
    });

    let no_password = AuthenticationForm::bind(Some("alice"), Some(""));
    pages.push(PageCase {
        id: "login_missing_password".into(),
        django: json!({"view": "login", "method": "POST", "path": "/login/",
                       "post": {"username": "alice", "password": ""}}),
        ferrochat_html: render(anonymous(), &no_password, ""),
    });

    pages.push(PageCase {
        id: "login_with_next".into(),
        django: json!({"view": "login", "path": "/login/?next=/chat/lobby/"}),
        ferrochat_html: render(anonymous(), &AuthenticationForm::new(), "/chat/lobby/"),
    });

    pages.push(PageCase {
        id: "login_with_next_needing_escapes".into(),
        django: json!({"view": "login",
                       "path": "/login/?next=%2Fchat%2Flobby%2F%3Fa%3D1%26b%3D%272%22%3C"}),
        ferrochat_html: render(
            anonymous(),
            &AuthenticationForm::new(),
            "/chat/lobby/?a=1&b='2\"<",
        ),
    });

    let mut failed = AuthenticationForm::bind(Some("alice"), Some("nope"));
    failed.reject_login();
    pages.push(PageCase {
        id: "login_failed_with_next".into(),
        django: json!({"view": "login", "method": "POST", "path": "/login/?next=/chat/a-b/",
                       "post": {"username": "alice", "password": "nope", "next": "/chat/a-b/"}}),
        ferrochat_html: render(anonymous(), &failed, "/chat/a-b/"),
    });

    pages.push(PageCase {
        id: "login_next_while_logged_in".into(),
        django: json!({"view": "login", "path": "/login/?next=/chat/x/", "user": "alice",
                       "users": ["alice"]}),
        ferrochat_html: render(
            UserContext::authenticated("alice"),
            &AuthenticationForm::new(),
            "/chat/x/",
        ),
    });
}

/// (case id, username, password1, password2, users that already exist); `None` = not posted.
type SignupPost = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
);

fn signup_cases(templates: &Templates, pages: &mut Vec<PageCase>) {
    let render = |form: &UserCreationForm| {
        templates
            .render_page(&SignupPage {
                user: UserContext::anonymous(),
                csrf_token: CSRF_TOKEN.to_owned(),
                form: form.context(),
            })
            .expect("signup page renders")
    };
    pages.push(PageCase {
        id: "signup_empty".into(),
        django: json!({"view": "signup", "path": "/signup/"}),
        ferrochat_html: render(&UserCreationForm::new()),
    });

    // (id, username, password1, password2, existing users). The real validators
    // (`ferrochat::django::validators`) decide, so this also checks their messages.
    let posts: [SignupPost; 12] = [
        ("signup_all_missing", None, None, None, &[]),
        ("signup_all_blank", Some(""), Some(""), Some(""), &[]),
        (
            "signup_invalid_username",
            Some("bad name!"),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!pz"),
            &[],
        ),
        (
            "signup_username_html",
            Some("<b>\"x\" & 'y'"),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!pz"),
            &[],
        ),
        (
            "signup_duplicate_username",
            Some("ALICE"),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!pz"),
            &["alice"],
        ),
        (
            "signup_username_too_long",
            Some(&*LONG_USERNAME),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!pz"),
            &[],
        ),
        (
            "signup_mismatch",
            Some("bob"),
            Some("Xk9#mq2!pz"),
            Some("Xk9#mq2!py"),
            &[],
        ),
        (
            "signup_too_short",
            Some("bob"),
            Some("Xk9#m"),
            Some("Xk9#m"),
            &[],
        ),
        (
            "signup_common",
            Some("bob"),
            Some("password"),
            Some("password"),
            &[],
        ),
        (
            "signup_numeric",
            Some("bob"),
            Some("8472910365"),
            Some("8472910365"),
            &[],
        ),
        (
            "signup_similar",
            Some("zebrafish"),
            Some("zebrafish9"),
            Some("zebrafish9"),
            &[],
        ),
        ("signup_many_errors", Some("b a d"), Some("123"), None, &[]),
    ];
    for (id, username, password1, password2, users) in posts {
        let mut form = UserCreationForm::bind(username, password1, password2);
        let taken = form
            .username_for_lookup()
            .is_some_and(|name| users.iter().any(|u| u.eq_ignore_ascii_case(name)));
        form.validate(taken, &DjangoValidators);
        assert!(!form.is_valid(), "{id} must fail");
        let mut post = serde_json::Map::new();
        for (key, value) in [
            ("username", username),
            ("password1", password1),
            ("password2", password2),
        ] {
            if let Some(value) = value {
                post.insert(key.to_owned(), json!(value));
            }
        }
        pages.push(PageCase {
            id: id.into(),
            django: json!({"view": "signup", "method": "POST", "path": "/signup/",
                           "post": post, "users": users}),
            ferrochat_html: render(&form),
        });
    }

    // The similarity check also runs against a name the username validator rejects.
    let mut form = UserCreationForm::bind(Some("b a d"), Some("b a d!!!!"), Some("b a d!!!!"));
    form.validate(false, &DjangoValidators);
    pages.push(PageCase {
        id: "signup_invalid_username_similar_password".into(),
        django: json!({"view": "signup", "method": "POST", "path": "/signup/",
                       "post": {"username": "b a d", "password1": "b a d!!!!",
                                "password2": "b a d!!!!"}}),
        ferrochat_html: render(&form),
    });
}

static LONG_USERNAME: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}!", "x".repeat(151)));

fn index_cases(templates: &Templates, pages: &mut Vec<PageCase>) {
    let render = |form: &RoomForm, rooms: &[&str]| {
        templates
            .render_page(&IndexPage {
                user: UserContext::authenticated("alice"),
                csrf_token: CSRF_TOKEN.to_owned(),
                form: form.context(),
                rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            })
            .expect("index page renders")
    };
    let alice = |extra: Value| {
        let mut spec = json!({"view": "index", "path": "/", "user": "alice", "users": ["alice"]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        spec
    };

    pages.push(PageCase {
        id: "index_no_rooms".into(),
        django: alice(json!({})),
        ferrochat_html: render(&RoomForm::new(), &[]),
    });

    // The legacy view orders by name (binary collation on SQLite: upper case first).
    let mut rooms = vec!["lobby", "general", "a-b_c", "Z9", "x", "_", "-dash"];
    let created = rooms.clone();
    rooms.sort_unstable();
    pages.push(PageCase {
        id: "index_rooms".into(),
        django: alice(json!({"rooms": created})),
        ferrochat_html: render(&RoomForm::new(), &rooms),
    });

    // Rooms created elsewhere (Django's admin) need no valid name: quoted in the link, escaped
    // in the text.
    let mut odd_rooms = vec!["a b", "<x>&'\"", "café", "100%", "q?x#y", "~tilde:@!$;=,"];
    let created = odd_rooms.clone();
    odd_rooms.sort_unstable();
    pages.push(PageCase {
        id: "index_rooms_needing_quoting".into(),
        django: alice(json!({"rooms": created})),
        ferrochat_html: render(&RoomForm::new(), &odd_rooms),
    });

    for (id, value) in [
        ("index_invalid_name_kept", Some("  bad name <x> & \"y\" ")),
        ("index_name_too_long", Some(&*"a".repeat(65))),
        ("index_name_non_ascii", Some("café")),
        ("index_name_blank", Some("   ")),
        ("index_name_missing", None),
    ] {
        let form = RoomForm::bind(value);
        assert!(!form.is_valid(), "{id} must fail");
        let post = match value {
            Some(v) => json!({"room_name": v}),
            None => json!({}),
        };
        pages.push(PageCase {
            id: id.into(),
            django: alice(json!({"method": "POST", "post": post, "rooms": ["lobby"]})),
            ferrochat_html: render(&form, &["lobby"]),
        });
    }
}

fn room_cases(templates: &Templates, pages: &mut Vec<PageCase>) {
    let contents = [
        "<script>alert(1)</script>",
        "Tom & \"Jerry\" say 'hi' > <b>bold</b> &amp;",
        "héllo wörld — ünïcödé ✓ 日本語",
        "emoji 😀🎉 and a zero-width joiner 👩‍💻",
        "line one\nline two\ttabbed",
        "  padded  ",
        "{{ not_a_template }} {% if %} {# #}",
        "\\u003C backslash \\ and </script> close",
    ];
    let usernames = ["alice", "zoë", "bob.smith+1@x"];
    let mut messages = Vec::new();
    for i in 0..60 {
        // Distinct times, increasing; every seventh message has zero microseconds.
        let micros = if i % 7 == 0 { 0 } else { 1000 * i + 17 };
        let timestamp = format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}{}+00:00",
            20 + i / 24,
            i % 24,
            (i * 7) % 60,
            (i * 13) % 60,
            if micros == 0 {
                String::new()
            } else {
                format!(".{micros:06}")
            }
        );
        messages.push(json!({
            "id": 100 + i,
            "room": "lobby",
            "username": usernames[i as usize % usernames.len()],
            "content": format!("{} #{i}", contents[i as usize % contents.len()]),
            "timestamp": timestamp,
        }));
    }
    // The legacy view shows the last 50, oldest first.
    let shown: Vec<ChatMessageContext> = messages[10..]
        .iter()
        .map(|m| ChatMessageContext {
            id: m["id"].as_i64().expect("id"),
            username: m["username"].as_str().expect("username").to_owned(),
            content: m["content"].as_str().expect("content").to_owned(),
            timestamp: utc(m["timestamp"].as_str().expect("timestamp")),
        })
        .collect();
    let render = |user: &str, room: &str, chat_messages: Vec<ChatMessageContext>| {
        templates
            .render_page(&RoomPage {
                user: UserContext::authenticated(user),
                csrf_token: CSRF_TOKEN.to_owned(),
                room_name: room.to_owned(),
                chat_messages,
            })
            .expect("room page renders")
    };
    pages.push(PageCase {
        id: "room_history".into(),
        django: json!({"view": "room", "room_name": "lobby", "path": "/chat/lobby/",
                       "user": "zoë", "users": usernames, "messages": messages}),
        ferrochat_html: render("zoë", "lobby", shown),
    });
    pages.push(PageCase {
        id: "room_empty".into(),
        django: json!({"view": "room", "room_name": "Room_1-x", "path": "/chat/Room_1-x/",
                       "user": "alice", "users": ["alice"]}),
        ferrochat_html: render("alice", "Room_1-x", Vec::new()),
    });
}

// ---------------------------------------------------------------------------------------------
// Filters

/// The instant a test timestamp (RFC 3339) names, as the database hands it to the page.
fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .with_timezone(&chrono::Utc)
}

fn date_cases() -> Vec<(String, Option<String>, String)> {
    let timestamps = [
        "2026-11-24T04:36:42.485068+00:00",
        "2026-01-01T00:00:00+00:00",
        "2024-02-29T12:00:00+00:00",
        "2021-01-03T23:59:59.000001+00:00",
        "1999-12-31T12:30:05+00:00",
        "2026-03-01T13:05:09.5+02:00",
        "2026-07-11T11:01:00-04:30",
        "2026-09-22T21:45:00+00:00",
    ];
    let formats = [
        Some("c"),
        Some("H:i"),
        None,
        Some("DATETIME_FORMAT"),
        Some("SHORT_DATETIME_FORMAT"),
        Some("a A b d D e E f F g G h H i I j l L m M n N o O P r s S t T u U w W y Y z Z"),
        Some(r"\c \\c \H\i \\\Y jS \o\f F"),
        Some("<&>\"' literal"),
    ];
    let mut cases = Vec::new();
    for ts in timestamps {
        for format in formats {
            let ours = escape(&dateformat::date_filter(&utc(ts), format));
            cases.push((ts.to_owned(), format.map(str::to_owned), ours));
        }
    }
    cases
}

fn json_script_cases() -> Vec<(Value, Option<String>, String)> {
    let values = [
        (json!("lobby"), Some("room-name")),
        (json!("zoë 😀"), Some("username")),
        (
            json!("</script><script>alert(\"x\")</script> & 'q'"),
            Some("a\"b<c>"),
        ),
        (json!("\u{7f}\t\n\r\u{8}\u{c}\u{1}\u{2028}\\"), Some("x")),
        (json!(""), None),
        (
            json!([1, -2, 2.5, 1e16, 0.0001, true, false, null, {"k": "v", "n": [1]}]),
            Some("data"),
        ),
    ];
    values
        .into_iter()
        .map(|(value, id)| {
            let ours = templates::json_script(&tera::Value::from_serializable(&value), id)
                .expect("json_script renders");
            (value, id.map(str::to_owned), ours)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Comparison

fn lines(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("normalized lines")
        .iter()
        .map(|line| line.as_str().expect("line").to_owned())
        .collect()
}

fn check_pages(prefix: &str) {
    let parity = parity();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in parity.pages.iter().filter(|c| c.id.starts_with(prefix)) {
        checked += 1;
        let result = &parity.page_results[&case.id];
        if result["status"] != json!(200) {
            failures.push(format!(
                "{}: Django answered {} instead of rendering the page",
                case.id, result["status"]
            ));
            continue;
        }
        let django = lines(&result["django"]);
        let ours = lines(&result["ferrochat"]);
        assert!(
            django.len() > 40 && django.iter().any(|l| l.starts_with("<form")),
            "{}: Django's page is not a legacy page:\n{}",
            case.id,
            result["django_html"]
        );
        if django != ours {
            let (django_file, ours_file) = save_pages(
                "template_parity",
                &case.id,
                result["django_html"].as_str().unwrap_or_default(),
                &case.ferrochat_html,
            );
            failures.push(format!(
                "{}: ferrochat's page differs from Django's (pages saved as {} and {})\n{}",
                case.id,
                django_file.display(),
                ours_file.display(),
                diff(&django, &ours),
            ));
        }
    }
    assert!(checked > 0, "no {prefix} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} {prefix} pages differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn login_pages_match_django() {
    check_pages("login_");
}

#[test]
fn signup_pages_match_django() {
    check_pages("signup_");
}

#[test]
fn index_pages_match_django() {
    check_pages("index_");
}

#[test]
fn room_pages_match_django() {
    check_pages("room_");
}

#[test]
fn date_filter_matches_django() {
    let parity = parity();
    let mismatches: Vec<String> = parity
        .dates
        .iter()
        .zip(&parity.date_results)
        .filter(|((_, _, ours), django)| ours != *django)
        .map(|((ts, format, ours), django)| {
            format!("{ts} | date:{format:?}\n  django:    {django}\n  ferrochat: {ours}")
        })
        .collect();
    assert_eq!(parity.dates.len(), parity.date_results.len());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn json_script_matches_django() {
    let parity = parity();
    let mismatches: Vec<String> = parity
        .json_scripts
        .iter()
        .zip(&parity.json_script_results)
        .filter(|((_, _, ours), django)| ours != *django)
        .map(|((value, id, ours), django)| {
            format!("{value} | json_script:{id:?}\n  django:    {django}\n  ferrochat: {ours}")
        })
        .collect();
    assert_eq!(parity.json_scripts.len(), parity.json_script_results.len());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
