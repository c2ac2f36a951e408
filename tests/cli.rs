//! The `ferrochat` binary as an operator uses it, next to the legacy Django app's own
//! `manage.py` on the same databases: what each command prints, asks and exits with, that
//! Django's `check_password` accepts the superusers ferrochat creates (and the other way round),
//! and that the interactive commands, driven through a real pseudo-terminal, show exactly the
//! transcript Django shows.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ferrochat::django::hashers::check_password;
use serde_json::{Value, json};
use support::{Backend, Legacy, SECRET_KEY, TestDb, ferrochat_bin, legacy::venv};

/// A ferrochat command that takes longer than this fails the test.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished `ferrochat` printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// `ferrochat` with a clean environment: only what is set here reaches it.
#[derive(Clone)]
struct Ferrochat {
    env: BTreeMap<String, String>,
}

impl Ferrochat {
    fn on(database_url: &str) -> Ferrochat {
        let mut env = BTreeMap::new();
        if let Ok(path) = std::env::var("PATH") {
            env.insert("PATH".to_owned(), path);
        }
        for (k, v) in [
            ("DATABASE_URL", database_url),
            ("DJANGO_SECRET_KEY", SECRET_KEY),
            ("CHANNEL_LAYER", "memory"),
            // Only errors: a slow-statement warning on a busy machine must not reach stderr.
            ("RUST_LOG", "error"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        Ferrochat { env }
    }

    fn env(mut self, key: &str, value: &str) -> Ferrochat {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    fn env_remove(mut self, key: &str) -> Ferrochat {
        self.env.remove(key);
        self
    }

    /// Runs `ferrochat <args>` with stdin closed (not a terminal).
    async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(ferrochat_bin());
        cmd.args(args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let child = cmd.spawn().expect("start ferrochat");
        let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("ferrochat {args:?} did not finish in time"))
            .expect("wait for ferrochat");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// `run`, failing the test unless it exits 0.
    async fn run_ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, Some(0), "ferrochat {args:?}: {run}");
        run
    }

    /// Runs `ferrochat <args>` on a pseudo-terminal, answering each expected prompt.
    async fn pty(&self, args: &[&str], steps: &[(&str, &str)]) -> Terminal {
        let mut argv = vec![ferrochat_bin().to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let spec = json!({
            "argv": argv,
            "env_clear": true,
            "env": self.env,
            "cwd": std::env::temp_dir(),
        });
        drive(spec, steps).await
    }
}

/// A session on a pseudo-terminal: everything the terminal showed.
#[derive(Debug)]
struct Terminal {
    /// Every expected prompt appeared and was answered.
    answered: bool,
    code: Option<i32>,
    /// The raw bytes the terminal received (echo, prompts, stdout and stderr, colours).
    raw: String,
    /// Whether the terminal still echoes input after the process ended.
    echo_after: bool,
}

impl Terminal {
    /// The transcript as a person reads it: colours removed, `\r\n` as `\n`.
    fn text(&self) -> String {
        strip_ansi(&self.raw).replace("\r\n", "\n")
    }
}

/// Drives a process on a pty with Python's `pty` module (the legacy venv's interpreter):
/// waits for each expected text, then types the answer (`\r` is Enter, `\u{3}` Ctrl-C).
const PTY_DRIVER: &str = r#"
import json, os, pty, select, signal, sys, termios, time
spec = json.loads(sys.argv[1])
env = {} if spec["env_clear"] else dict(os.environ)
for k, v in spec["env"].items():
    if v is None:
        env.pop(k, None)
    else:
        env[k] = v
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec["cwd"])
    os.execvpe(spec["argv"][0], spec["argv"], env)
buf = b""
def read_until(deadline):
    global buf
    r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    buf += data
    return True
pos = 0
answered = True
for expect, send in spec["steps"]:
    deadline = time.time() + spec["timeout"]
    while True:
        i = buf.find(expect.encode(), pos)
        if i >= 0:
            pos = i + len(expect.encode())
            break
        if time.time() > deadline or read_until(deadline) is None:
            answered = False
            break
    if not answered:
        break
    time.sleep(0.05)
    os.write(fd, send.encode())
deadline = time.time() + spec["timeout"]
while time.time() < deadline and read_until(deadline) is not None:
    pass
status = None
while time.time() < deadline + 5:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    time.sleep(0.05)
if status is None:
    answered = False
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
try:
    echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
except termios.error:
    echo_after = None
print(json.dumps({"answered": answered, "code": os.waitstatus_to_exitcode(status),
                  "raw": buf.decode("utf-8", "replace"), "echo_after": echo_after}))
"#;

async fn drive(mut spec: Value, steps: &[(&str, &str)]) -> Terminal {
    spec["steps"] = json!(steps);
    spec["timeout"] = json!(20);
    let python = venv().join("bin/python");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg("-c")
        .arg(PTY_DRIVER)
        .arg(spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the pty driver finished")
        .expect("run the pty driver");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pty driver output is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Terminal {
        answered: result["answered"].as_bool().unwrap_or(false),
        code: result["code"].as_i64().and_then(|c| i32::try_from(c).ok()),
        raw: result["raw"].as_str().unwrap_or_default().to_owned(),
        echo_after: result["echo_after"].as_bool().unwrap_or(false),
    }
}

/// The legacy `manage.py <args>` on a pseudo-terminal, in the same environment `Legacy` uses.
async fn legacy_pty(
    legacy: &Legacy,
    args: &[&str],
    extra_env: &[(&str, &str)],
    steps: &[(&str, &str)],
) -> Terminal {
    let mut cmd = legacy.command("python");
    cmd.arg("manage.py").args(args);
    let mut env = serde_json::Map::new();
    for (k, v) in cmd.get_envs() {
        env.insert(
            k.to_string_lossy().into_owned(),
            v.map_or(Value::Null, |v| json!(v.to_string_lossy())),
        );
    }
    for (k, v) in extra_env {
        env.insert((*k).to_owned(), json!(v));
    }
    let mut argv = vec![cmd.get_program().to_string_lossy().into_owned()];
    argv.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let spec = json!({
        "argv": argv,
        "env_clear": false,
        "env": env,
        "cwd": legacy.project_dir(),
    });
    drive(spec, steps).await
}

/// Removes `ESC [ … m` colour sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `management_commands` vectors Django 5.0.1 produced.
fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/django_vectors.json");
    let text = std::fs::read_to_string(&path).expect("read the vectors");
    let all: Value = serde_json::from_str(&text).expect("vectors are JSON");
    all["management_commands"].clone()
}

fn vector_str<'a>(v: &'a Value, case: &str, field: &str) -> &'a str {
    v[case][field]
        .as_str()
        .unwrap_or_else(|| panic!("vector {case}.{field} is not a string"))
}

/// A migrated SQLite database with ferrochat pointed at it.
async fn migrated_sqlite() -> (TestDb, Ferrochat) {
    let tdb = TestDb::sqlite();
    let fc = Ferrochat::on(tdb.url());
    fc.run_ok(&["migrate"]).await;
    (tdb, fc)
}

#[tokio::test]
async fn noinput_errors_are_djangos() {
    let v = vectors();
    let (_tdb, fc) = migrated_sqlite().await;
    let expect_error = |run: &Run, case: &str| {
        assert_eq!(run.code, Some(1), "{case}: {run}");
        assert_eq!(run.stdout, "", "{case}: {run}");
        assert_eq!(
            run.stderr,
            format!("CommandError: {}\n", vector_str(&v, case, "CommandError")),
            "{case}: {run}"
        );
    };

    let run = fc
        .run(&["createsuperuser", "--noinput", "--email", "a@example.com"])
        .await;
    expect_error(&run, "noinput_missing_username");
    let run = fc
        .run(&["createsuperuser", "--no-input", "--username", "admin"])
        .await;
    expect_error(&run, "noinput_missing_email");
    let run = fc
        .run(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "bad name!",
            "--email",
            "a@example.com",
        ])
        .await;
    expect_error(&run, "noinput_invalid_username");

    // A blank email given explicitly is allowed; without a password the user cannot log in.
    let run = fc
        .run_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "",
        ])
        .await;
    assert_eq!(
        run.stdout,
        vector_str(&v, "noinput_blank_email_allowed", "stdout")
    );
    assert_eq!(run.stderr, "");

    let run = fc
        .clone()
        .env("DJANGO_SUPERUSER_PASSWORD", "whatever-1")
        .run(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "b@example.com",
        ])
        .await;
    expect_error(&run, "noinput_duplicate");

    // Verbosity 0 prints nothing; the user is still created.
    let run = fc
        .run_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "quiet",
            "--email",
            "",
            "-v",
            "0",
        ])
        .await;
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn superuser_interop_sqlite() {
    superuser_interop(Backend::Sqlite).await;
}

#[tokio::test]
async fn superuser_interop_postgres() {
    superuser_interop(Backend::Postgres).await;
}

/// A superuser from `ferrochat createsuperuser --noinput` logs in on Django, and one from
/// Django's own command logs in on ferrochat, whose `changepassword` Django then honours.
async fn superuser_interop(backend: Backend) {
    let v = vectors();
    let tdb = TestDb::new(backend);
    let fc = Ferrochat::on(tdb.url());
    fc.run_ok(&["migrate"]).await;
    let legacy = Legacy::new(tdb.url());

    // ferrochat → Django, with the vector's 3-character password (no validators in --noinput).
    let run = fc
        .clone()
        .env("DJANGO_SUPERUSER_PASSWORD", "123")
        .run_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ])
        .await;
    assert_eq!(
        run.stdout,
        vector_str(&v, "noinput_with_env_password", "stdout")
    );
    let out = legacy
        .python_ok(
            "from django.contrib.auth.models import User\n\
             u = User.objects.get(username='admin')\n\
             print(u.is_superuser, u.is_staff, u.is_active, u.email)\n\
             print(u.password.startswith('pbkdf2_sha256$720000$'), u.check_password('123'))",
        )
        .await;
    assert_eq!(
        out.stdout, "True True True admin@example.com\nTrue True\n",
        "{out}"
    );

    // Environment only, no password: an unusable password, as Django makes it.
    fc.clone()
        .env("DJANGO_SUPERUSER_USERNAME", "envuser")
        .env("DJANGO_SUPERUSER_EMAIL", "env@example.com")
        .run_ok(&["createsuperuser", "--noinput"])
        .await;
    let out = legacy
        .python_ok(
            "from django.contrib.auth.models import User\n\
             u = User.objects.get(username='envuser')\n\
             print(u.email, u.has_usable_password(), len(u.password))",
        )
        .await;
    assert_eq!(out.stdout, "env@example.com False 41\n", "{out}");

    // Django → ferrochat.
    let legacy = legacy
        .env("DJANGO_SUPERUSER_USERNAME", "djadmin")
        .env("DJANGO_SUPERUSER_EMAIL", "dj@example.com")
        .env("DJANGO_SUPERUSER_PASSWORD", "django-pass-1");
    let out = legacy.manage_ok(&["createsuperuser", "--noinput"]).await;
    assert_eq!(out.stdout, "Superuser created successfully.\n");
    let db = tdb.connect().await;
    let djadmin = db
        .user_by_username("djadmin")
        .await
        .expect("query")
        .expect("Django's superuser is visible");
    assert!(djadmin.is_superuser && djadmin.is_staff);
    assert!(check_password("django-pass-1", &djadmin.password));

    // A Django login session for djadmin, to see the password change end it.
    let out = legacy
        .python_ok(
            "from django.contrib.auth import login\n\
             from django.contrib.auth.models import User\n\
             from django.contrib.sessions.backends.db import SessionStore\n\
             from django.http import HttpRequest\n\
             r = HttpRequest()\n\
             r.session = SessionStore()\n\
             login(r, User.objects.get(username='djadmin'))\n\
             r.session.save()\n\
             print(r.session.session_key)",
        )
        .await;
    let session_key = out.stdout.trim().to_owned();
    let still_logged_in = format!(
        "from django.contrib.auth import get_user\n\
         from django.contrib.sessions.backends.db import SessionStore\n\
         from django.http import HttpRequest\n\
         r = HttpRequest()\n\
         r.session = SessionStore(session_key='{session_key}')\n\
         print(get_user(r).is_authenticated)"
    );
    let out = legacy.python_ok(&still_logged_in).await;
    assert_eq!(out.stdout, "True\n", "{out}");

    // ferrochat changes its password; Django accepts the new one and refuses the old.
    let term = fc
        .pty(
            &["changepassword", "djadmin"],
            &[
                ("Password: ", "New-pass-from-ferro-9\r"),
                ("(again): ", "New-pass-from-ferro-9\r"),
            ],
        )
        .await;
    assert!(term.answered && term.code == Some(0), "{term:?}");
    assert_eq!(
        term.text(),
        "Changing password for user 'djadmin'\nPassword: \nPassword (again): \n\
         Password changed successfully for user 'djadmin'\n"
    );
    let out = legacy
        .python_ok(
            "from django.contrib.auth.models import User\n\
             u = User.objects.get(username='djadmin')\n\
             print(u.check_password('New-pass-from-ferro-9'), u.check_password('django-pass-1'))",
        )
        .await;
    assert_eq!(out.stdout, "True False\n", "{out}");
    // The session's `_auth_user_hash` no longer matches: Django logs it out.
    let out = legacy.python_ok(&still_logged_in).await;
    assert_eq!(out.stdout, "False\n", "{out}");
    db.close().await;
}

#[tokio::test]
async fn interactive_createsuperuser_matches_django_on_a_terminal() {
    let v = vectors();
    let session = &v["interactive_session"];
    // The vector's session: admin taken, then the default (carol), passwords that mismatch,
    // are blank, fail validation (not bypassed), then a good one.
    let steps: &[(&str, &str)] = &[
        ("Username (leave blank to use 'carol'): ", "admin\r"),
        ("Username (leave blank to use 'carol'): ", "\r"),
        ("Email address: ", "alice2@example.com\r"),
        ("Password: ", "x\r"),
        ("Password (again): ", "y\r"),
        ("Password: ", "   \r"),
        ("Password (again): ", "   \r"),
        ("Password: ", "alice\r"),
        ("Password (again): ", "alice\r"),
        ("[y/N]: ", "n\r"),
        ("Password: ", "a-Strong-pass-42\r"),
        ("Password (again): ", "a-Strong-pass-42\r"),
    ];

    let (tdb, fc) = migrated_sqlite().await;
    fc.run_ok(&[
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "",
    ])
    .await;
    let ours = fc
        .clone()
        .env("LOGNAME", "carol")
        .pty(&["createsuperuser"], steps)
        .await;
    assert!(ours.answered && ours.code == Some(0), "{ours:?}");
    let text = ours.text();

    // Every prompt of the vector, in order, and every line Django wrote to stdout and stderr.
    let mut rest = text.as_str();
    for prompt in session["prompts_in_order"].as_array().expect("prompts") {
        let prompt = prompt.as_str().expect("prompt");
        let at = rest
            .find(prompt)
            .unwrap_or_else(|| panic!("prompt {prompt:?} missing (in order) from:\n{text}"));
        rest = &rest[at + prompt.len()..];
    }
    for field in ["stdout", "stderr"] {
        let mut rest = text.as_str();
        for line in vector_str(&v, "interactive_session", field).lines() {
            let at = rest.find(line).unwrap_or_else(|| {
                panic!("{field} line {line:?} missing (in order) from:\n{text}")
            });
            rest = &rest[at + line.len()..];
        }
    }

    // The same keystrokes on Django's own command: the very same bytes on the terminal.
    let dj_db = TestDb::sqlite();
    let legacy = Legacy::new(dj_db.url());
    legacy.manage_ok(&["migrate"]).await;
    legacy
        .manage_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "",
        ])
        .await;
    let django = legacy_pty(
        &legacy,
        &["createsuperuser"],
        &[("LOGNAME", "carol")],
        steps,
    )
    .await;
    assert!(django.answered && django.code == Some(0), "{django:?}");
    assert_eq!(ours.raw, django.raw);

    // And Django logs carol in with the password typed.
    let out = Legacy::new(tdb.url())
        .python_ok(
            "from django.contrib.auth import authenticate\n\
             u = authenticate(username='carol', password='a-Strong-pass-42')\n\
             print(u is not None and u.is_superuser, u.email)",
        )
        .await;
    assert_eq!(out.stdout, "True alice2@example.com\n", "{out}");
}

#[tokio::test]
async fn interactive_createsuperuser_cancel_and_no_tty() {
    let v = vectors();
    let (_tdb, fc) = migrated_sqlite().await;

    // Not a terminal: skipped, exit 0.
    let run = fc.run_ok(&["createsuperuser"]).await;
    assert_eq!(
        run.stdout,
        vector_str(&v, "interactive_not_a_tty", "stdout").replace("manage.py", "ferrochat")
    );

    // Ctrl-C at the username prompt, and at the hidden password prompt: "Operation cancelled.",
    // exit 1, nothing created, and the terminal echoes again.
    let term = fc
        .clone()
        .env("LOGNAME", "carol")
        .pty(&["createsuperuser"], &[("Username", "\u{3}")])
        .await;
    assert!(term.answered && term.code == Some(1), "{term:?}");
    assert_eq!(
        term.text(),
        "Username (leave blank to use 'carol'): ^C\nOperation cancelled.\n"
    );
    let term = fc
        .pty(
            &["createsuperuser"],
            &[
                ("Username", "bob\r"),
                ("Email address: ", "bob@example.com\r"),
                ("Password: ", "\u{3}"),
            ],
        )
        .await;
    assert!(term.answered && term.code == Some(1), "{term:?}");
    assert!(
        term.text().ends_with("Password: \nOperation cancelled.\n"),
        "{term:?}"
    );
    assert!(term.echo_after, "the terminal was left without echo");
    let run = fc
        .run_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "bob",
            "--email",
            "",
        ])
        .await;
    assert_eq!(
        run.stdout, "Superuser created successfully.\n",
        "bob must not exist yet"
    );
}

#[tokio::test]
async fn changepassword_on_a_terminal() {
    let v = vectors();
    let session_steps: &[(&str, &str)] = &[
        ("Password: ", "a\r"),
        ("(again): ", "b\r"),
        ("Password: ", "short\r"),
        ("(again): ", "short\r"),
        ("Password: ", "a-Strong-pass-43\r"),
        ("(again): ", "a-Strong-pass-43\r"),
    ];
    let (tdb, fc) = migrated_sqlite().await;
    fc.clone()
        .env("DJANGO_SUPERUSER_PASSWORD", "old-pass-1")
        .run_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ])
        .await;

    // The vector's session, with the user taken from LOGNAME as getpass.getuser() does.
    let ours = fc
        .clone()
        .env("LOGNAME", "admin")
        .pty(&["changepassword"], session_steps)
        .await;
    assert!(ours.answered && ours.code == Some(0), "{ours:?}");
    let session = &v["changepassword_session"];
    let expected = format!(
        "{}Password: \nPassword (again): \n{}Password: \nPassword (again): \n{}\
         Password: \nPassword (again): \n{}",
        "Changing password for user 'admin'\n",
        "Passwords do not match. Please try again.\n",
        vector_str(&v, "changepassword_session", "stderr"),
        "Password changed successfully for user 'admin'\n",
    );
    assert_eq!(ours.text(), expected);
    assert_eq!(
        session["prompts_in_order"].as_array().map(Vec::len),
        Some(6),
        "the vector asks six times"
    );
    let db = tdb.connect().await;
    let admin = db
        .user_by_username("admin")
        .await
        .expect("query")
        .expect("admin");
    assert!(check_password("a-Strong-pass-43", &admin.password));
    db.close().await;

    // Three mismatches: Django's texts and exit 1; the password is unchanged.
    let mut steps = Vec::new();
    for _ in 0..3 {
        steps.extend([("Password: ", "a\r"), ("(again): ", "b\r")]);
    }
    let term = fc.pty(&["changepassword", "admin"], &steps).await;
    assert!(term.answered && term.code == Some(1), "{term:?}");
    // The vector's stdout with the (silent) password prompts in between, then the error.
    let mut lines = vector_str(&v, "changepassword_three_mismatches", "stdout").lines();
    let mut expected = format!("{}\n", lines.next().expect("first line"));
    for line in lines {
        expected.push_str(&format!("Password: \nPassword (again): \n{line}\n"));
    }
    expected.push_str(&format!(
        "CommandError: {}\n",
        vector_str(&v, "changepassword_three_mismatches", "CommandError")
    ));
    assert_eq!(term.text(), expected);

    // Unknown user (the vector's case), without a terminal.
    let run = fc.run(&["changepassword", "nosuchuser"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(
        run.stderr,
        format!(
            "CommandError: {}\n",
            vector_str(&v, "changepassword_unknown_user", "CommandError")
        )
    );

    // The same session on Django's own command: the same bytes on the terminal.
    let dj_db = TestDb::sqlite();
    let legacy = Legacy::new(dj_db.url()).env("DJANGO_SUPERUSER_PASSWORD", "old-pass-1");
    legacy.manage_ok(&["migrate"]).await;
    legacy
        .manage_ok(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ])
        .await;
    let django = legacy_pty(
        &legacy,
        &["changepassword"],
        &[("LOGNAME", "admin")],
        session_steps,
    )
    .await;
    assert!(django.answered && django.code == Some(0), "{django:?}");
    assert_eq!(ours.raw, django.raw);
}

#[tokio::test]
async fn check_unreachable_database_fails_fast() {
    let fc = Ferrochat::on("postgres://postgres@127.0.0.1:1/x");
    let run = fc.run(&["check"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.elapsed < Duration::from_secs(10), "{run}");
    assert!(run.stdout.contains("Database: UNREACHABLE"), "{run}");
    assert!(
        run.stderr
            .starts_with("SystemCheckError: System check identified some issues:\n\nERRORS:\n"),
        "{run}"
    );
    assert!(
        run.stderr.contains(
            "?: (ferrochat.E001) cannot connect to the database postgres://postgres@127.0.0.1:1/x"
        ),
        "{run}"
    );
    assert!(
        run.stderr
            .ends_with("System check identified 1 issue (0 silenced).\n"),
        "{run}"
    );
}

#[tokio::test]
async fn check_reports_a_healthy_deployment_and_problems() {
    let (tdb, fc) = migrated_sqlite().await;
    let run = fc.run_ok(&["check"]).await;
    assert_eq!(run.stderr, "", "{run}");
    assert!(
        run.stdout.contains("Schema: the schema is up to date"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("Redis: not checked (CHANNEL_LAYER=memory)"),
        "{run}"
    );
    assert!(
        run.stdout
            .ends_with("System check identified no issues (0 silenced).\n"),
        "{run}"
    );
    assert!(
        !run.stdout.contains(SECRET_KEY),
        "the secret key is never printed"
    );

    // The insecure default key is reported by plain `check` and warned about by
    // `check --deploy` (Django's security.W009, exit 0), an error with --fail-level WARNING.
    let default_key = fc.clone().env_remove("DJANGO_SECRET_KEY");
    let run = default_key.run_ok(&["check"]).await;
    assert!(run.stdout.contains("DJANGO_SECRET_KEY: NOT SET"), "{run}");
    assert!(!run.stderr.contains("security.W009"), "{run}");
    let run = default_key.run_ok(&["check", "--deploy"]).await;
    assert!(
        run.stderr.contains(
            "?: (security.W009) Your SECRET_KEY has less than 50 characters, less than 5 \
             unique characters, or it's prefixed with 'django-insecure-'"
        ),
        "{run}"
    );
    let run = default_key
        .run(&["check", "--deploy", "--fail-level", "WARNING"])
        .await;
    assert_eq!(run.code, Some(1), "{run}");

    // CHANNEL_LAYER=redis with no Redis is an error; auto only warns.
    let no_redis = fc.clone().env("REDIS_URL", "redis://127.0.0.1:1/0");
    let run = no_redis
        .clone()
        .env("CHANNEL_LAYER", "redis")
        .run(&["check"])
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("(ferrochat.E003)"), "{run}");
    let run = no_redis
        .env_remove("CHANNEL_LAYER")
        .run_ok(&["check"])
        .await;
    assert!(run.stderr.contains("(ferrochat.W005)"), "{run}");
    assert!(run.stderr.contains("in-process channel layer"), "{run}");

    // A password in DATABASE_URL is redacted.
    let run = Ferrochat::on("postgres://u:hunter2@127.0.0.1:1/x")
        .run(&["check"])
        .await;
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{run}"
    );
    drop(tdb);
}

#[tokio::test]
async fn migrate_prints_djangos_output_then_nothing_to_apply() {
    let tdb = TestDb::sqlite();
    let fc = Ferrochat::on(tdb.url());
    let first = fc.run_ok(&["migrate"]).await;

    // Django's own migrate on another empty database prints the same.
    let dj_db = TestDb::sqlite();
    let django = Legacy::new(dj_db.url()).manage_ok(&["migrate"]).await;
    assert_eq!(first.stdout, django.stdout);
    assert!(
        first
            .stdout
            .contains("  Applying contenttypes.0001_initial... OK\n")
    );

    let second = fc.run_ok(&["migrate", "--noinput"]).await;
    assert_eq!(
        second.stdout,
        "Operations to perform:\n  Apply all migrations: admin, auth, chatapp, contenttypes, \
         sessions\nRunning migrations:\n  No migrations to apply.\n"
    );
    let run = fc.run_ok(&["migrate", "-v", "0"]).await;
    assert_eq!(run.stdout, "");
    fc.run_ok(&["migrate", "--check"]).await;

    // Django agrees there is nothing to do on ferrochat's database.
    let out = Legacy::new(tdb.url()).manage_ok(&["migrate"]).await;
    assert!(out.stdout.ends_with("  No migrations to apply.\n"), "{out}");

    // An empty database: `--check` fails, createsuperuser says what to do.
    let empty = TestDb::sqlite();
    let fc = Ferrochat::on(empty.url());
    let run = fc.run(&["migrate", "--check"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let run = fc
        .run(&[
            "createsuperuser",
            "--noinput",
            "--username",
            "a",
            "--email",
            "",
        ])
        .await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("You have 19 unapplied migration(s)."),
        "{run}"
    );
    assert!(run.stderr.contains("ferrochat migrate"), "{run}");
}

#[tokio::test]
async fn bad_environment_is_one_line_for_every_command() {
    let tdb = TestDb::sqlite();
    for (var, value) in [
        ("CHANNEL_LAYER", "kafka"),
        ("DATABASE_URL", "oracle://h/db"),
    ] {
        let fc = Ferrochat::on(tdb.url()).env(var, value);
        for args in [
            &["runserver"][..],
            &["migrate"],
            &["createsuperuser", "--noinput"],
            &["changepassword", "admin"],
            &["check"],
        ] {
            let run = fc.run(args).await;
            assert_eq!(run.code, Some(1), "{args:?} with {var}={value}: {run}");
            assert_eq!(run.stdout, "", "{args:?}: {run}");
            assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run}");
            assert!(
                run.stderr
                    .starts_with(&format!("ImproperlyConfigured: {var}:")),
                "{args:?}: {run}"
            );
        }
    }
}

#[tokio::test]
async fn runserver_refuses_bad_addresses() {
    let fc = Ferrochat::on("sqlite://:memory:");
    for (addr, message) in [
        (
            "abc:",
            "CommandError: \"abc:\" is not a valid port number or address:port pair.\n",
        ),
        (
            "70000",
            "CommandError: '70000' is not a valid port number.\n",
        ),
        (
            "[::1",
            "CommandError: \"[::1\" is not a valid port number or address:port pair.\n",
        ),
    ] {
        let run = fc.run(&["runserver", addr]).await;
        assert_eq!(run.code, Some(1), "{addr}: {run}");
        assert_eq!(run.stderr, message, "{addr}: {run}");
    }
    // Django's argparse refuses an unknown verbosity with exit 2; so does clap.
    let run = fc.run(&["migrate", "-v", "7"]).await;
    assert_eq!(run.code, Some(2), "{run}");
}

#[tokio::test]
async fn showmigrations_and_migrate_plan_print_what_django_prints() {
    // An empty database: everything unapplied, the whole plan.
    let empty = TestDb::sqlite();
    let fc = Ferrochat::on(empty.url());
    let dj_empty = TestDb::sqlite();
    let django = Legacy::new(dj_empty.url());
    for args in [
        &["showmigrations"][..],
        &["showmigrations", "auth", "sessions"],
        &["showmigrations", "--plan"],
        &["migrate", "--plan"],
    ] {
        let ours = fc.run_ok(args).await;
        let theirs = django.manage_ok(args).await;
        assert_eq!(ours.stdout, theirs.stdout, "ferrochat {args:?}");
    }
    let run = fc.run(&["migrate", "--plan", "--check"]).await;
    assert_eq!(run.code, Some(1), "{run}");

    // A migrated database (by ferrochat, read by both): everything applied, nothing planned.
    let (tdb, fc) = migrated_sqlite().await;
    let django = Legacy::new(tdb.url());
    for args in [
        &["showmigrations"][..],
        &["showmigrations", "--plan"],
        &["migrate", "--plan"],
    ] {
        let ours = fc.run_ok(args).await;
        let theirs = django.manage_ok(args).await;
        assert_eq!(ours.stdout, theirs.stdout, "ferrochat {args:?}");
    }
    fc.run_ok(&["migrate", "--plan", "--check"]).await;
    let run = fc.run(&["showmigrations", "nope"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("No installed app with label 'nope'."),
        "{run}"
    );
}

#[tokio::test]
async fn clearsessions_deletes_only_expired_sessions_as_django_does() {
    let (tdb, fc) = migrated_sqlite().await;
    let db = tdb.connect().await;
    let now = chrono::Utc::now();
    for (key, expire) in [
        (
            "expiredsession00000000000000001",
            now - chrono::Duration::days(1),
        ),
        (
            "livesession0000000000000000001",
            now + chrono::Duration::days(1),
        ),
    ] {
        assert!(
            db.session_insert(key, "e30:x:y", &expire)
                .await
                .expect("insert")
        );
    }
    let run = fc.run_ok(&["clearsessions"]).await;
    assert_eq!(run.stdout, "", "{run}");
    let django = Legacy::new(tdb.url())
        .python(
            "from django.contrib.sessions.models import Session\n\
             print(sorted(Session.objects.values_list('session_key', flat=True)))",
        )
        .await;
    assert!(
        django.stdout.contains("['livesession0000000000000000001']"),
        "{django}"
    );
    db.close().await;
}

/// The `?: (security.Wnnn) …` lines of a check report, leaving out the warnings about HSTS
/// and the HTTPS redirect (W004, W008), which belong to the TLS proxy in front of ferrochat.
fn security_lines(report: &str) -> Vec<String> {
    let mut lines: Vec<String> = report
        .lines()
        .filter(|l| l.starts_with("?: (security."))
        .filter(|l| !l.starts_with("?: (security.W004)") && !l.starts_with("?: (security.W008)"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn check_deploy_warns_as_djangos_does() {
    let (tdb, fc) = migrated_sqlite().await;
    let strong = "k7#Qv9!zP2@xL5$wR8^tN1&yM4*uB6(oE3)iA0-sD9+fG2=hJ5";
    // The legacy defaults (DEBUG on, the django-insecure key, plain cookies), then a
    // deployment behind TLS.
    let legacy_defaults = fc.clone().env_remove("DJANGO_SECRET_KEY");
    let ours = legacy_defaults.run_ok(&["check", "--deploy"]).await;
    let theirs = Legacy::new(tdb.url())
        .env_remove("DJANGO_SECRET_KEY")
        .manage_ok(&["check", "--deploy"])
        .await;
    let expected = security_lines(&theirs.stderr);
    assert_eq!(expected.len(), 4, "{theirs}");
    assert_eq!(security_lines(&ours.stderr), expected, "{ours}");

    let secure = fc
        .clone()
        .env("DJANGO_SECRET_KEY", strong)
        .env("DJANGO_DEBUG", "0")
        .env("FERROCHAT_SESSION_COOKIE_SECURE", "1")
        .env("FERROCHAT_CSRF_COOKIE_SECURE", "1");
    let ours = secure.run_ok(&["check", "--deploy"]).await;
    let settings_dir = support::repo_root().join("tests/django_settings");
    let theirs = Legacy::new(tdb.url())
        .env("DJANGO_SECRET_KEY", strong)
        .env("DJANGO_DEBUG", "0")
        .env("PYTHONPATH", &settings_dir.display().to_string())
        .env("DJANGO_SETTINGS_MODULE", "tls_proxy_settings")
        .manage_ok(&["check", "--deploy"])
        .await;
    assert_eq!(
        security_lines(&theirs.stderr),
        Vec::<String>::new(),
        "{theirs}"
    );
    assert_eq!(security_lines(&ours.stderr), Vec::<String>::new(), "{ours}");
}
