//! Page parity over HTTP: the real legacy Django app under Daphne and ferrochat, on the **same**
//! database with the same secret key and the same `DJANGO_DEBUG`, answer the same requests with
//! the same pages. For every request of a user's story (log in, fail to log in, sign up with
//! every kind of error, list and join rooms, read a room with 60 messages, hit error pages, log
//! out) the two responses must have:
//!
//! - the same status;
//! - the same body once parsed (`support::html`: elements, attributes as sets and texts in the
//!   same order; CSRF token values masked; whitespace-only text between elements ignored);
//! - the same response headers by name, with equal values where a browser or a cache acts on
//!   them, and the same cookies set or deleted with the same attributes (values masked).
//!
//! Each server has its own client (cookie jar), and each client goes through the same sequence
//! of requests on its own server, logging in through that server's own form: the two users are
//! the same Django user in two sessions, so each request meets the same state on both sides.
//! Both bodies of every exchange are saved under `target/tmp/page_parity/`.
//!
//! The story runs twice per database, with `DJANGO_DEBUG=0` and `=1`. The only declared
//! difference: with DEBUG=1 Django answers a 404 or a disallowed Host with its technical page
//! (the URLconf, settings, a traceback), which ferrochat never shows (COMPAT §1, §9); it serves
//! the production page, which must equal Django's DEBUG=0 page for the same request.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use ferrochat::db::schema;
use support::html::{diff, normalize_all, save_pages};
use support::{Backend, Client, Daphne, Legacy, Page, TestDb, TestServer};

const PASSWORD: &str = "correct horse battery";

/// A well-formed session key that names no session.
const STALE_KEY: &str = "0123456789abcdefghijklmnopqrstuv";

/// Rooms created through Django's ORM (names Django's admin would accept too, so some are not
/// valid room names: they are listed, escaped and quoted, and answer 404 when opened).
const ROOMS: &[&str] = &[
    "lobby", "general", "Z9", "a-b_c", "_", "-dash", "Room_1", "café", "a b",
];

/// Users, rooms and 60 messages in `lobby`, made by Django itself. Message texts cover HTML,
/// entities, quotes, non-ASCII text, emoji and newlines; every fifth timestamp has zero
/// microseconds (stored without a fraction on SQLite), two messages share a timestamp (the id
/// breaks the tie), and the newest message by id is the oldest by time (so it is not shown).
const SEED: &str = r#"
from datetime import datetime, timedelta, timezone
from django.contrib.auth import get_user_model
from chatapp.models import Message, Room

User = get_user_model()
alice = User.objects.get(username="alice")
zoe = User.objects.create_user("zoë", password="another horse battery")
bob = User.objects.create_user("bob.smith+1@x", password="another horse battery")
rooms = {name: Room.objects.create(name=name) for name in ROOMS}
contents = [
    '<script>alert("x")</script>',
    "Tom & Jerry's \"quotes\" > <b>bold</b> &amp; &lt;",
    "héllo wörld — ünïcödé ✓ 日本語",
    "emoji 😀🎉 and a zero-width joiner 👩‍💻",
    "line one\nline two\r\nline three\ttabbed",
    "{{ not_a_template }} {% if %} {# #}",
    '</span></div><div class="message">forged',
    "  padded with spaces, kept as typed  ",
]
users = [alice, zoe, bob]
base = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)
previous = None
for i in range(60):
    ts = base + timedelta(minutes=7 * i, seconds=i, microseconds=0 if i % 5 == 0 else 1000 * i + 17)
    if i == 41:
        ts = previous
    if i == 59:
        ts = base - timedelta(days=1)
    message = Message.objects.create(
        room=rooms["lobby"], user=users[i % 3], content=f"{contents[i % len(contents)]} #{i}"
    )
    Message.objects.filter(pk=message.pk).update(timestamp=ts)
    previous = ts
Message.objects.create(room=rooms["general"], user=zoe, content="elsewhere")
print(Message.objects.filter(room=rooms["lobby"]).count())
"#;

async fn seed(db: &TestDb) {
    let conn = db.connect().await;
    schema::migrate(&conn).await.expect("ferrochat migrate");
    conn.close().await;
    Legacy::new(db.url())
        .env("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
        .env("DJANGO_SUPERUSER_EMAIL", "")
        .manage_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "alice",
            "--email",
            "",
        ])
        .await;
    let rooms = serde_json::to_string(ROOMS).expect("room names serialize");
    let out = Legacy::new(db.url())
        .python_ok(&format!("ROOMS = {rooms}\n{SEED}"))
        .await;
    assert_eq!(out.stdout.trim(), "60", "seeding: {out}");
}

// ---------------------------------------------------------------------------------------------
// The story

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// What the two bodies must satisfy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyRule {
    /// The same parsed document.
    Same,
    /// An error page (404, the 400 of a disallowed Host): the same document with DEBUG=0; with
    /// DEBUG=1 Django shows a technical page (URL patterns, settings, traceback) and ferrochat
    /// still the production one (COMPAT §1 and §9: it never shows internals), which must then
    /// equal the page Django served for the same request with DEBUG=0.
    ErrorPage,
}

/// One request of the story, made by each side's client on its own server.
struct Step {
    id: &'static str,
    method: Method,
    path: String,
    fields: Vec<(&'static str, String)>,
    /// Add the `csrfmiddlewaretoken` of the side's latest page.
    with_token: bool,
    /// Use a new client without cookies instead of the side's client.
    fresh_client: bool,
    /// Send this `Host` header instead of the server's address.
    host: Option<&'static str>,
    /// Use a new client holding only this cookie instead of the side's client.
    cookie: Option<(&'static str, &'static str)>,
    /// The status Django must answer (so the story means what it says).
    status: u16,
    body: BodyRule,
}

fn get(id: &'static str, path: &str, status: u16) -> Step {
    Step {
        id,
        method: Method::Get,
        path: path.to_owned(),
        fields: Vec::new(),
        with_token: false,
        fresh_client: false,
        host: None,
        cookie: None,
        status,
        body: BodyRule::Same,
    }
}

/// A form POST with the side's CSRF token, as a browser submits it.
fn post(id: &'static str, path: &str, fields: &[(&'static str, &str)], status: u16) -> Step {
    Step {
        method: Method::Post,
        fields: fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        with_token: true,
        ..get(id, path, status)
    }
}

impl Step {
    fn without_token(mut self) -> Step {
        self.with_token = false;
        self
    }

    fn fresh_client(mut self) -> Step {
        self.fresh_client = true;
        self
    }

    fn error_page(mut self) -> Step {
        self.body = BodyRule::ErrorPage;
        self
    }

    fn cookie(mut self, name: &'static str, value: &'static str) -> Step {
        self.cookie = Some((name, value));
        self
    }

    fn host(mut self, host: &'static str) -> Step {
        self.host = Some(host);
        self
    }
}

fn signup(id: &'static str, username: &str, password1: &str, password2: &str) -> Step {
    post(
        id,
        "/signup/",
        &[
            ("username", username),
            ("password1", password1),
            ("password2", password2),
        ],
        200,
    )
}

fn story() -> Vec<Step> {
    let long_room = "a".repeat(65);
    vec![
        // Anonymous.
        get("login_get", "/login/", 200),
        get("login_get_next", "/login/?next=/chat/x/", 200),
        get(
            "login_get_unsafe_next",
            "/login/?next=https://evil.example/",
            200,
        ),
        post(
            "login_failed_keeps_username",
            "/login/",
            &[("username", "alice"), ("password", "wrong"), ("next", "")],
            200,
        ),
        post(
            "login_failed_with_next",
            "/login/?next=/chat/x/",
            &[
                ("username", "alice"),
                ("password", "wrong"),
                ("next", "/chat/x/"),
            ],
            200,
        ),
        post("login_missing_fields", "/login/", &[], 200),
        get("index_anonymous", "/", 302),
        get("room_anonymous", "/chat/lobby/?a=1&b=2", 302),
        get("signup_get", "/signup/", 200),
        signup(
            "signup_invalid_username",
            "bad name!",
            "Xk9#mq2!pz",
            "Xk9#mq2!pz",
        ),
        signup(
            "signup_duplicate_username",
            "ALICE",
            "Xk9#mq2!pz",
            "Xk9#mq2!pz",
        ),
        signup("signup_mismatch", "newbie", "Xk9#mq2!pz", "Xk9#mq2!py"),
        signup("signup_too_short", "newbie", "Xk9#m", "Xk9#m"),
        signup("signup_common", "newbie", "password", "password"),
        signup("signup_numeric", "newbie", "8472910365", "8472910365"),
        signup("signup_similar", "zebrafish", "zebrafish9", "zebrafish9"),
        signup("signup_html_username", "<b>\"x\" & 'y'", "123", "1234"),
        post("signup_all_missing", "/signup/", &[], 200),
        get("logout_get", "/logout/", 405),
        post(
            "csrf_missing_token",
            "/login/",
            &[("username", "alice"), ("password", PASSWORD)],
            403,
        )
        .without_token(),
        post(
            "csrf_no_cookie",
            "/login/",
            &[("username", "alice"), ("password", PASSWORD)],
            403,
        )
        .without_token()
        .fresh_client(),
        get("unknown_path", "/no/such/page/", 404).error_page(),
        get("unknown_path_without_slash", "/nope", 404).error_page(),
        get("append_slash", "/login?next=/chat/x/", 301),
        get("disallowed_host", "/login/", 400)
            .host("evil.example")
            .error_page(),
        get("disallowed_host_unknown_path", "/nope", 400)
            .host("evil.example")
            .error_page(),
        get("chat_without_room", "/chat/", 404).error_page(),
        post(
            "unknown_path_post_without_token",
            "/no/such/page/",
            &[],
            404,
        )
        .without_token()
        .error_page(),
        // A stale session cookie (a well-formed key without a row: expired, or logged out
        // elsewhere) and a malformed one, on pages that read the session and pages that do not.
        get("stale_session_login", "/login/", 200).cookie("sessionid", STALE_KEY),
        get("stale_session_index", "/", 302).cookie("sessionid", STALE_KEY),
        get("stale_session_logout_get", "/logout/", 405).cookie("sessionid", STALE_KEY),
        get("stale_session_unknown_path", "/no/such/page/", 404)
            .cookie("sessionid", STALE_KEY)
            .error_page(),
        get("malformed_session_login", "/login/", 200).cookie("sessionid", "x"),
        get("malformed_session_logout_get", "/logout/", 405).cookie("sessionid", "x"),
        get("malformed_session_unknown_path", "/no/such/page/", 404)
            .cookie("sessionid", "x")
            .error_page(),
        // Logged in.
        post(
            "login_ok",
            "/login/",
            &[("username", "alice"), ("password", PASSWORD), ("next", "")],
            302,
        ),
        get("index", "/", 200),
        post(
            "index_bad_name",
            "/",
            &[("room_name", "bad name <x> & \"y\"")],
            200,
        ),
        post(
            "index_name_too_long",
            "/",
            &[("room_name", &long_room)],
            200,
        ),
        post("index_join", "/", &[("room_name", "lobby")], 302),
        get("room_60_messages", "/chat/lobby/", 200),
        get("room_new", "/chat/Fresh-Room_1/", 200),
        get("room_invalid_name", "/chat/bad.name/", 404).error_page(),
        get("room_unlisted_name", "/chat/caf%C3%A9/", 404).error_page(),
        get("unknown_path_logged_in", "/no/such/page/", 404).error_page(),
        get("login_while_logged_in", "/login/?next=/chat/x/", 200),
        get("signup_while_logged_in", "/signup/", 200),
        post(
            "csrf_missing_logged_in",
            "/",
            &[("room_name", "lobby")],
            403,
        )
        .without_token(),
        post("logout", "/logout/", &[], 302),
        get("index_after_logout", "/", 302),
    ]
}

/// One server and the client that talks to it.
struct Side {
    base: String,
    client: Client,
    /// The `csrfmiddlewaretoken` of the latest page that had one.
    token: String,
}

impl Side {
    async fn send(&mut self, step: &Step) -> Page {
        let client = if let Some((name, value)) = step.cookie {
            let client = Client::new();
            client.set_cookie(&self.base, name, value);
            client
        } else if step.fresh_client {
            Client::new()
        } else {
            self.client.clone()
        };
        let url = format!("{}{}", self.base, step.path);
        let page = match (step.method, step.host) {
            (Method::Get, Some(host)) => {
                let resp = client
                    .http
                    .get(&url)
                    .header("Host", host)
                    .send()
                    .await
                    .expect("GET");
                Page {
                    status: resp.status().as_u16(),
                    headers: resp.headers().clone(),
                    body: resp.text().await.unwrap_or_default(),
                }
            }
            (Method::Get, None) => client.get(&url).await,
            (Method::Post, _) => {
                let mut fields: Vec<(&str, &str)> =
                    step.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if step.with_token {
                    fields.insert(0, ("csrfmiddlewaretoken", self.token.as_str()));
                }
                client.post(&url, &fields).await
            }
        };
        let own_client = step.cookie.is_none() && !step.fresh_client;
        if own_client && page.body.contains("name=\"csrfmiddlewaretoken\"") {
            self.token = page.csrf_token();
        }
        page
    }
}

struct Exchange {
    id: &'static str,
    body: BodyRule,
    django: Page,
    ferrochat: Page,
}

/// Runs the story against both servers; returns every exchange.
async fn run_story(daphne: &Daphne, ferrochat: &TestServer) -> Vec<Exchange> {
    let mut django = Side {
        base: daphne.url(""),
        client: Client::new(),
        token: String::new(),
    };
    let mut ours = Side {
        base: ferrochat.url(""),
        client: Client::new(),
        token: String::new(),
    };
    let mut exchanges = Vec::new();
    for step in story() {
        let d = django.send(&step).await;
        let f = ours.send(&step).await;
        assert_eq!(
            d.status, step.status,
            "{}: Django answered {} (the story expects {}):\n{}",
            step.id, d.status, step.status, d.body
        );
        exchanges.push(Exchange {
            id: step.id,
            body: step.body,
            django: d,
            ferrochat: f,
        });
    }
    exchanges
}

// ---------------------------------------------------------------------------------------------
// Comparing responses

/// Headers one side's server adds by its nature, whatever the application does: Daphne names
/// itself in `Server` and never sends `Date`, hyper always sends `Date`; `Transfer-Encoding` is
/// the server's framing choice (Daphne chunks a body Django gave no length).
const SERVER_HEADERS: &[&str] = &["server", "date", "transfer-encoding"];

/// Headers whose presence must match but whose value is a time.
const PRESENCE_ONLY: &[&str] = &["expires", "content-length"];

fn header_values(page: &Page) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &page.headers {
        map.entry(name.as_str().to_ascii_lowercase())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

/// `Vary` as a set of lower-cased tokens, however many headers carry them.
fn vary_tokens(values: &[String]) -> BTreeSet<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// An HTTP date as Django's `http_date` writes it: `Tue, 24 Nov 2026 06:21:49 GMT`.
fn is_http_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 29
        && s.ends_with(" GMT")
        && b[3] == b','
        && b[0].is_ascii_uppercase()
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[8].is_ascii_uppercase()
        && b[12..16].iter().all(u8::is_ascii_digit)
        && b[17..25].iter().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                *c == b':'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A `Set-Cookie` header as `name -> "value=<N chars>; attr; attr=v"`: the value masked to its
/// length (secrets and session keys are random; Django writes a deleted cookie's empty value
/// as `""`, which browsers store as the two quote characters — equivalent here, as the cookie
/// is expired at once), attribute names lower-cased and sorted, `Expires` reduced to "the
/// epoch" (a deletion) or "a date".
fn parse_set_cookie(header: &str, problems: &mut Vec<String>) -> (String, String) {
    let mut parts = header.split(';').map(str::trim);
    let (name, value) = parts
        .next()
        .and_then(|kv| kv.split_once('='))
        .unwrap_or((header, ""));
    let value = if value == "\"\"" { "" } else { value };
    let mut attrs = BTreeSet::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=').unwrap_or((part, ""));
        let key = key.trim().to_ascii_lowercase();
        let attr = match key.as_str() {
            "expires" => {
                if !is_http_date(val) {
                    problems.push(format!(
                        "cookie {name}: Expires {val:?} is not an HTTP date"
                    ));
                }
                if val.contains(" 1970 ") {
                    "expires=<epoch>".to_owned()
                } else {
                    "expires=<date>".to_owned()
                }
            }
            "samesite" => format!("samesite={}", val.to_ascii_lowercase()),
            "httponly" | "secure" | "partitioned" => key,
            _ => format!("{key}={val}"),
        };
        attrs.insert(attr);
    }
    let mut described = format!("value=<{} chars>", value.len());
    for attr in attrs {
        described.push_str("; ");
        described.push_str(&attr);
    }
    (name.to_owned(), described)
}

fn cookies(page: &Page, problems: &mut Vec<String>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for header in page.set_cookies() {
        let (name, described) = parse_set_cookie(&header, problems);
        map.entry(name).or_default().push(described);
    }
    map
}

/// Status and headers; returns the differences, one line each.
fn compare_heads(django: &Page, ours: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    if django.status != ours.status {
        problems.push(format!(
            "status: django {} ferrochat {}",
            django.status, ours.status
        ));
    }
    let (d, f) = (header_values(django), header_values(ours));
    let chunked = d.contains_key("transfer-encoding") || f.contains_key("transfer-encoding");
    let names: BTreeSet<&String> = d.keys().chain(f.keys()).collect();
    for name in names {
        let name = name.as_str();
        if SERVER_HEADERS.contains(&name) || name == "set-cookie" {
            continue;
        }
        // A chunked response carries no length: compare framing only when both sent one.
        if name == "content-length" && chunked {
            continue;
        }
        let (dv, fv) = (d.get(name), f.get(name));
        let (dv, fv) = match (dv, fv) {
            (Some(dv), Some(fv)) => (dv, fv),
            (Some(dv), None) => {
                problems.push(format!("{name}: only django sends it ({dv:?})"));
                continue;
            }
            (None, Some(fv)) => {
                problems.push(format!("{name}: only ferrochat sends it ({fv:?})"));
                continue;
            }
            (None, None) => continue,
        };
        if name == "expires" {
            for v in dv.iter().chain(fv) {
                if !is_http_date(v) {
                    problems.push(format!("expires: {v:?} is not an HTTP date"));
                }
            }
        }
        if PRESENCE_ONLY.contains(&name) {
            continue;
        }
        let same = if name == "vary" {
            vary_tokens(dv) == vary_tokens(fv)
        } else {
            dv.join(", ") == fv.join(", ")
        };
        if !same {
            problems.push(format!("{name}: django {dv:?} ferrochat {fv:?}"));
        }
    }
    let (dc, fc) = (cookies(django, &mut problems), cookies(ours, &mut problems));
    if dc != fc {
        problems.push(format!(
            "set-cookie:\n    django    {dc:?}\n    ferrochat {fc:?}"
        ));
    }
    problems
}

/// A technical error page of Django (DEBUG=1), recognised by its own words.
fn is_technical_page(body: &str) -> bool {
    body.contains("DEBUG = True")
}

/// Django's DEBUG=0 bodies of the error-page steps, by step id.
type ProductionPages = BTreeMap<&'static str, String>;

/// Compares every exchange of one run. With DEBUG=1, `production` holds Django's DEBUG=0 error
/// pages (from the earlier run) that ferrochat must serve instead of the technical ones.
/// Returns the failures.
fn compare(
    run: &str,
    exchanges: &[Exchange],
    debug: bool,
    production: &ProductionPages,
) -> Vec<String> {
    let mut docs: Vec<&str> = Vec::new();
    for ex in exchanges {
        docs.push(&ex.django.body);
        docs.push(&ex.ferrochat.body);
        if debug && ex.body == BodyRule::ErrorPage {
            docs.push(production.get(ex.id).map_or("", String::as_str));
        }
    }
    let mut normalized = normalize_all(&docs).into_iter();

    let mut failures = Vec::new();
    for ex in exchanges {
        let d = normalized.next().unwrap_or_default();
        let f = normalized.next().unwrap_or_default();
        let (django_file, ours_file) = save_pages(
            "page_parity",
            &format!("{run}/{}", ex.id),
            &ex.django.body,
            &ex.ferrochat.body,
        );
        let mut problems = compare_heads(&ex.django, &ex.ferrochat);
        let expected = if debug && ex.body == BodyRule::ErrorPage {
            if !is_technical_page(&ex.django.body) {
                problems.push("Django did not show its technical error page".to_owned());
            }
            normalized.next().unwrap_or_default()
        } else {
            d
        };
        if expected != f {
            problems.push(format!("body:\n{}", diff(&expected, &f)));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{run} {}: ferrochat differs from Django (bodies saved as {} and {})\n  {}",
                ex.id,
                django_file.display(),
                ours_file.display(),
                problems.join("\n  ")
            ));
        }
    }
    failures
}

/// The legacy room page really is what the story says: 50 messages of the 60, oldest first,
/// HTML escaped. (Parity alone would pass if both servers showed nothing.)
fn check_room_page(exchanges: &[Exchange]) {
    let room = exchanges
        .iter()
        .find(|ex| ex.id == "room_60_messages")
        .expect("the room exchange");
    let body = &room.django.body;
    assert_eq!(
        body.matches("<div class=\"message\"").count(),
        50,
        "Django's room page does not show 50 messages:\n{body}"
    );
    assert!(body.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(body.contains("😀🎉"));
    assert!(
        !body.contains("#59</span>"),
        "the oldest message is not shown"
    );
    let first = body
        .find("#9</span>")
        .expect("message 9 is the oldest shown");
    let last = body
        .find("#58</span>")
        .expect("message 58 is the newest shown");
    assert!(first < last, "oldest first");
    // The normalizer trims text runs; message texts must match to the byte.
    let texts = |body: &str| -> Vec<String> {
        body.split("<span class=\"content\">")
            .skip(1)
            .map(|rest| rest.split("</span>").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        texts(&room.ferrochat.body),
        texts(body),
        "ferrochat's message texts are not Django's, byte for byte"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

fn backend_name(db: &TestDb) -> &'static str {
    match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    }
}

/// One run of the story on fresh servers with `DJANGO_DEBUG` set to `debug` on both; returns the
/// failures and Django's error pages.
async fn one_run(
    db: &TestDb,
    debug: bool,
    production: &ProductionPages,
) -> (Vec<String>, ProductionPages) {
    let flag = if debug { "1" } else { "0" };
    let run = format!("{}-debug{flag}", backend_name(db));
    let started = Instant::now();
    let ferrochat = TestServer::start(db, &[("DJANGO_DEBUG", flag)]).await;
    let daphne = Daphne::start(Legacy::new(db.url()).env("DJANGO_DEBUG", flag)).await;
    let servers_up = started.elapsed();
    let exchanges = run_story(&daphne, &ferrochat).await;
    let requests_done = started.elapsed();
    check_room_page(&exchanges);
    let failures = compare(&run, &exchanges, debug, production);
    eprintln!(
        "{run}: {} exchanges; servers up in {:.1?}, requests done at {:.1?}, compared at {:.1?}",
        exchanges.len(),
        servers_up,
        requests_done,
        started.elapsed()
    );
    let error_pages = exchanges
        .iter()
        .filter(|ex| ex.body == BodyRule::ErrorPage)
        .map(|ex| (ex.id, ex.django.body.clone()))
        .collect();
    ferrochat.stop().await;
    drop(daphne);
    (failures, error_pages)
}

async fn pages_match(db: TestDb) {
    let started = Instant::now();
    seed(&db).await;
    eprintln!("{}: seeded in {:.1?}", backend_name(&db), started.elapsed());
    let (mut failures, production) = one_run(&db, false, &ProductionPages::new()).await;
    let (more, _) = one_run(&db, true, &production).await;
    failures.extend(more);
    eprintln!("{}: done in {:.1?}", backend_name(&db), started.elapsed());
    assert!(
        failures.is_empty(),
        "{} exchanges differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_match_django_on_sqlite() {
    pages_match(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_match_django_on_postgres() {
    pages_match(TestDb::postgres()).await;
}

/// The header comparison itself: what must be ignored is, what matters is reported.
#[test]
fn header_comparison_sees_what_matters() {
    fn page(status: u16, headers: &[(&'static str, &str)]) -> Page {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().expect("header value"));
        }
        Page {
            status,
            headers: map,
            body: String::new(),
        }
    }
    const CSRF: &str = "csrftoken=ijlD8V54pGz4JkqZKWDwR2zox5cjtX4s; expires=Tue, 23 Nov 2027 \
                        06:21:49 GMT; Max-Age=31449600; Path=/; SameSite=Lax";
    let django = page(
        200,
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("vary", "Cookie"),
            ("expires", "Tue, 24 Nov 2026 06:21:49 GMT"),
            ("set-cookie", CSRF),
            ("server", "daphne"),
            ("transfer-encoding", "chunked"),
        ],
    );
    // Another secret, another time, Vary twice, attribute names in another case, hyper's Date.
    let same = page(
        200,
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("vary", "Cookie"),
            ("vary", "cookie"),
            ("expires", "Tue, 24 Nov 2026 06:21:50 GMT"),
            (
                "set-cookie",
                "csrftoken=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; Expires=Tue, 23 Nov 2027 06:21:50 GMT; \
                 max-age=31449600; path=/; samesite=Lax",
            ),
            ("date", "Tue, 24 Nov 2026 06:21:50 GMT"),
            ("content-length", "1458"),
        ],
    );
    assert_eq!(compare_heads(&django, &same), Vec::<String>::new());

    let replace = |name: &'static str, value: Option<&str>| {
        let mut changed = page(200, &[]);
        changed.headers = django.headers.clone();
        changed.headers.remove(name);
        if let Some(value) = value {
            changed
                .headers
                .insert(name, value.parse().expect("header value"));
        }
        changed
    };
    let different = [
        ("status", page(302, &[])),
        ("content type", replace("content-type", Some("text/html"))),
        ("no vary", replace("vary", None)),
        ("no expires", replace("expires", None)),
        ("extra header", replace("x-frame-options", Some("DENY"))),
        ("no cookie", replace("set-cookie", None)),
        (
            "cookie deleted",
            replace(
                "set-cookie",
                Some(
                    "csrftoken=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; \
                     SameSite=Lax",
                ),
            ),
        ),
        (
            "cookie attribute",
            replace("set-cookie", Some(&format!("{CSRF}; HttpOnly"))),
        ),
        (
            "cookie max-age",
            replace("set-cookie", Some(&CSRF.replace("31449600", "31449601"))),
        ),
        (
            "cookie value length",
            replace("set-cookie", Some(&CSRF.replace("=ijlD8V54", "=ijl"))),
        ),
    ];
    for (what, changed) in different {
        assert!(
            !compare_heads(&django, &changed).is_empty(),
            "a different {what} went unnoticed"
        );
    }
}
