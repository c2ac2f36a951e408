//! The real legacy Django app, run from the legacy venv on a database a test chose.
//!
//! Each `Legacy` copies `vendor/legacy-django/chat_project` into a temporary directory (never
//! running it from `vendor/` or the shared read-only tree) and runs it with
//! `PYTHONDONTWRITEBYTECODE=1`, the test secret key, `CHANNEL_LAYER=memory` and the given
//! `DATABASE_URL`; inherited Django/ferrochat variables are cleared so a developer's shell
//! cannot leak into a test. The venv is `FERROCHAT_LEGACY_VENV`, else `.legacy-venv` in the
//! repository (`tools/legacy-venv` creates it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{SECRET_KEY, repo_root};

/// Django commands that run longer than this are killed and fail the test.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Variables a developer's shell might hold that would change the legacy app's behaviour.
const CLEARED_VARS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "CHANNEL_LAYER",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_EMAIL",
    "DJANGO_SUPERUSER_PASSWORD",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
];

/// What a finished process printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A private copy of the legacy project plus the environment to run it in.
pub struct Legacy {
    _dir: tempfile::TempDir,
    project: PathBuf,
    venv: PathBuf,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl Legacy {
    /// The legacy app on `database_url` (e.g. `TestDb::url()`).
    pub fn new(database_url: &str) -> Legacy {
        let venv = venv();
        let dir = tempfile::Builder::new()
            .prefix("ferrochat-legacy-")
            .tempdir()
            .expect("create a temporary directory for the legacy project");
        let project = dir.path().join("chat_project");
        let source = repo_root().join("vendor/legacy-django/chat_project");
        assert!(
            source.join("manage.py").is_file(),
            "the vendored legacy app is missing: {} has no manage.py",
            source.display()
        );
        copy_project(&source, &project).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} to {}: {e}",
                source.display(),
                project.display()
            )
        });

        let mut env = BTreeMap::new();
        for (key, value) in [
            ("DATABASE_URL", database_url),
            ("DJANGO_SECRET_KEY", SECRET_KEY),
            ("CHANNEL_LAYER", "memory"),
            ("DJANGO_SETTINGS_MODULE", "chat_project.settings"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONUNBUFFERED", "1"),
        ] {
            env.insert(key.to_owned(), value.to_owned());
        }
        Legacy {
            _dir: dir,
            project,
            venv,
            env,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets (or overrides) an environment variable, e.g. `REDIS_URL` with `CHANNEL_LAYER=redis`.
    pub fn env(mut self, key: &str, value: &str) -> Legacy {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Removes one of the default variables (e.g. `CHANNEL_LAYER` to use Redis).
    pub fn env_remove(mut self, key: &str) -> Legacy {
        self.env.remove(key);
        self
    }

    /// Longest run of a `manage`/`python` call before it is killed (default 180 s).
    pub fn timeout(mut self, timeout: Duration) -> Legacy {
        self.timeout = timeout;
        self
    }

    /// The project copy (where `manage.py` is); a relative SQLite URL resolves against it.
    pub fn project_dir(&self) -> &Path {
        &self.project
    }

    /// The venv's `bin/` directory.
    pub fn bin_dir(&self) -> PathBuf {
        self.venv.join("bin")
    }

    /// A command for a venv program (`python`, `daphne`, …) in the project directory, with this
    /// Legacy's environment and stdin closed. Use it to spawn long-running processes (Daphne);
    /// `tokio::process::Command::from(cmd)` makes it async.
    pub fn command(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin_dir().join(program));
        cmd.current_dir(&self.project);
        for var in CLEARED_VARS {
            cmd.env_remove(var);
        }
        let path = match std::env::var_os("PATH") {
            Some(path) => {
                let mut dirs = vec![self.bin_dir()];
                dirs.extend(std::env::split_paths(&path));
                std::env::join_paths(dirs).unwrap_or(path)
            }
            None => self.bin_dir().into_os_string(),
        };
        cmd.env("PATH", path);
        cmd.env("VIRTUAL_ENV", &self.venv);
        cmd.envs(&self.env);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `python manage.py <args>`; returns whatever happened.
    pub async fn manage(&self, args: &[&str]) -> Output {
        let mut cmd = self.command("python");
        cmd.arg("manage.py").args(args);
        self.run(cmd, None, &format!("manage.py {}", args.join(" ")))
            .await
    }

    /// `python manage.py <args>` with `input` on stdin (not a TTY: Django's interactive prompts
    /// that need one refuse, as they would in a pipe).
    pub async fn manage_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = self.command("python");
        cmd.arg("manage.py").args(args);
        self.run(cmd, Some(input), &format!("manage.py {}", args.join(" ")))
            .await
    }

    /// `manage`, failing the test with the full output unless it exits 0.
    pub async fn manage_ok(&self, args: &[&str]) -> Output {
        let out = self.manage(args).await;
        assert!(
            out.success(),
            "legacy `manage.py {}` failed: {out}",
            args.join(" ")
        );
        out
    }

    /// Runs a Python snippet after `django.setup()` (settings `chat_project.settings`), e.g.
    /// `from django.contrib.auth.hashers import check_password; print(check_password(...))`.
    pub async fn python(&self, code: &str) -> Output {
        let script = format!("import django\ndjango.setup()\n{code}\n");
        let mut cmd = self.command("python");
        cmd.arg("-c").arg(script);
        self.run(cmd, None, "python snippet").await
    }

    /// `python`, failing the test with the full output unless it exits 0.
    pub async fn python_ok(&self, code: &str) -> Output {
        let out = self.python(code).await;
        assert!(out.success(), "legacy python snippet failed: {out}\n{code}");
        out
    }

    async fn run(&self, cmd: std::process::Command, input: Option<&str>, what: &str) -> Output {
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start legacy {what}: {e}"));
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A process that exits without reading its input is not an error here.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Output {
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Ok(Err(e)) => panic!("legacy {what} could not be awaited: {e}"),
            // Dropping the future kills the child (kill_on_drop).
            Err(_) => panic!(
                "legacy {what} did not finish within {} s",
                self.timeout.as_secs()
            ),
        }
    }
}

/// The legacy venv; fails the test (never skips) when it is missing.
pub fn venv() -> PathBuf {
    let venv = match std::env::var_os("FERROCHAT_LEGACY_VENV") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join(".legacy-venv"),
    };
    assert!(
        venv.join("bin/python").exists(),
        "the legacy Django venv is missing: {} has no bin/python. Create it with \
         `tools/legacy-venv` (the vendored app's requirements-test.txt), or point \
         FERROCHAT_LEGACY_VENV at one.",
        venv.display()
    );
    venv
}

/// Copies the project tree, leaving out byte code, databases and collected static files.
fn copy_project(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == "__pycache__"
            || name_str == "staticfiles"
            || name_str.ends_with(".pyc")
            || name_str.starts_with("db.sqlite3")
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_project(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
