//! ferrochat as an operator runs it: the built binary (`runserver`) in its own process, its
//! stderr (the logs) kept in a file, stopped with SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::{SECRET_KEY, ferrochat_bin};

/// A running `ferrochat runserver`.
pub struct Node {
    child: Option<Child>,
    /// Where it listens: `127.0.0.1:port`, or `unix:/path`.
    pub listen: String,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `ferrochat runserver <listen>` with the test secret key and `env`, and waits until
    /// `health` (an `http://` base URL whose `/healthz` answers) does.
    pub async fn start_with(
        listen: &str,
        health: Option<&str>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("stderr.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(ferrochat_bin());
        cmd.arg("runserver")
            .arg(listen)
            .args(args)
            .env("DJANGO_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn ferrochat");
        let port = listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        let mut node = Node {
            child: Some(child),
            listen: listen.to_owned(),
            port,
            log,
            _dir: dir,
        };
        if let Some(base) = health {
            node.wait_healthy(base).await;
        }
        node
    }

    /// `ferrochat runserver 127.0.0.1:<port>` with `env`.
    pub async fn start(port: u16, env: &[(&str, &str)]) -> Node {
        let base = format!("http://127.0.0.1:{port}");
        Node::start_with(&format!("127.0.0.1:{port}"), Some(&base), env, &[]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `base/healthz` answers; fails with the node's log if it exits or takes long.
    pub async fn wait_healthy(&mut self, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = reqwest::get(format!("{base}/healthz")).await
                && resp.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("ferrochat exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "ferrochat did not answer /healthz:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (at most 30 s); returns whether it exited cleanly.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        if let Some(pid) = child.id() {
            // SAFETY: kill takes no pointers; the pid is our own child's, not yet reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = child.kill().await;
                false
            }
        }
    }
}

/// A scrape of `/metrics`: every sample (`name{labels}` → value).
pub struct Scrape {
    pub samples: std::collections::BTreeMap<String, f64>,
    pub text: String,
}

impl Scrape {
    pub async fn get(url: String) -> Scrape {
        let resp = reqwest::get(url).await.expect("GET /metrics");
        assert_eq!(resp.status().as_u16(), 200);
        Scrape::parse(resp.text().await.expect("metrics body"))
    }

    /// This test process's own registry: the metrics of the servers it runs in-process.
    pub fn local() -> Scrape {
        Scrape::parse(ferrochat::ops::metrics::metrics().encode())
    }

    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        Scrape { samples, text }
    }

    /// A sample's value; panics (with the scrape) when it is missing.
    pub fn value(&self, sample: &str) -> f64 {
        *self
            .samples
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in:\n{}", self.text))
    }
}

/// Waits until `ferrochat_ws_closed_total{reason}` of this process's in-process servers reaches
/// `count` (a socket's close is counted as its task ends, just after its close frame is sent).
pub async fn closes_counted(reason: &str, count: f64) {
    let sample = format!("ferrochat_ws_closed_total{{reason=\"{reason}\"}}");
    super::redis_env::eventually(
        std::time::Duration::from_secs(10),
        &format!("{count} closes counted as {reason}"),
        || async { Scrape::local().value(&sample) == count },
    )
    .await;
}
