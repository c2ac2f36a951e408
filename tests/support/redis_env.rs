//! Redis for the channel-layer tests: a private slice of the shared server, a private
//! `redis-server` a test owns (to stop and restart it), and the real Python `channels_redis`.
//!
//! - [`Space`]: a database in 8..=15 of the shared Redis at 127.0.0.1:6379 and a key prefix of the
//!   test's own; dropping it deletes the test's keys (never `FLUSHALL`/`FLUSHDB`).
//! - [`PrivateRedis`]: `redis-server` on a free port, without persistence, killed on drop.
//! - [`Py`]: `tests/redis_wire/py_layer.py`, a real `RedisChannelLayer` driven over stdin/stdout.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::RngExt;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::repo_root;
use super::server::free_port;

pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)[..n].to_owned()
}

/// A valid `FERROCHAT_NODE_ID` nobody else uses.
pub fn node_id(tag: &str) -> String {
    format!("{tag}{}", random_hex(10))
}

/// How a [`Space`] finds its keys when it is dropped.
enum Cleanup {
    /// Every key starting with the test's own prefix.
    Prefix(String),
    /// The default `asgi` prefix is shared with whoever else uses this database: only these
    /// exact keys (and the queue keys of the members of these group keys).
    Keys(Vec<String>),
}

/// One test's slice of the shared Redis.
pub struct Space {
    pub db: u32,
    pub prefix: String,
    cleanup: Cleanup,
}

impl Space {
    /// A random database in 8..=15 and a random prefix.
    pub fn new() -> Space {
        let prefix = format!("asgitest{}", random_hex(10));
        Space {
            db: rand::rng().random_range(8..=15u32),
            cleanup: Cleanup::Prefix(prefix.clone()),
            prefix,
        }
    }

    /// A random database with channels_redis' default prefix `asgi`, as the legacy settings use
    /// (they read only `REDIS_URL`). `groups` are the test's group names (random rooms), whose
    /// keys and members' queues are deleted on drop.
    pub fn legacy(groups: &[String]) -> Space {
        Space {
            db: rand::rng().random_range(8..=15u32),
            prefix: "asgi".to_owned(),
            cleanup: Cleanup::Keys(groups.iter().map(|g| format!("asgi:group:{g}")).collect()),
        }
    }

    pub fn url(&self) -> String {
        format!("{SHARED_REDIS}/{}", self.db)
    }

    /// `CHANNEL_LAYER=redis` on this space, as ferrochat environment pairs.
    pub fn ferrochat_env(&self, node: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("CHANNEL_LAYER".to_owned(), "redis".to_owned()),
            ("REDIS_URL".to_owned(), self.url()),
            ("FERROCHAT_NODE_ID".to_owned(), node.to_owned()),
        ];
        if self.prefix != "asgi" {
            env.push(("FERROCHAT_REDIS_PREFIX".to_owned(), self.prefix.clone()));
        }
        env
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the shared Redis")
    }

    /// `{prefix}:group:{group}`'s members.
    pub async fn members(&self, group: &str) -> Vec<String> {
        let mut conn = self.conn().await;
        redis::cmd("ZRANGE")
            .arg(format!("{}:group:{group}", self.prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("ZRANGE")
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = match &self.cleanup {
            Cleanup::Prefix(prefix) => redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)
                .unwrap_or_default(),
            Cleanup::Keys(groups) => {
                let mut keys = groups.clone();
                for group in groups {
                    let members: Vec<String> = redis::cmd("ZRANGE")
                        .arg(group)
                        .arg(0)
                        .arg(-1)
                        .query(&mut conn)
                        .unwrap_or_default();
                    for member in members {
                        if let Some(i) = member.find('!') {
                            keys.push(format!("asgi{}", &member[..=i]));
                        }
                    }
                }
                keys
            }
        };
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A `redis-server` of the test's own on a free port, without persistence (a restart loses
/// everything, as a Redis without RDB/AOF does). Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis::reserve();
        redis.restart().await;
        redis
    }

    /// A free port where the server is not started yet ([`PrivateRedis::restart`] starts it).
    pub fn reserve() -> PrivateRedis {
        PrivateRedis {
            port: free_port(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the private redis-server is running");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the private redis-server exited with {status} (port {} taken?)",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "the private redis-server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill the private redis-server");
        }
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the private Redis")
    }
}

/// The legacy venv's python; a missing venv fails the test.
fn venv_python() -> PathBuf {
    super::legacy::venv().join("bin/python")
}

/// A real `channels_redis.core.RedisChannelLayer` in a Python process.
pub struct Py {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Py {
    /// A layer on `hosts` with `prefix`; `extra` adds init options (`{"keys": [...]}`).
    pub async fn start(hosts: &[String], prefix: &str, extra: Json) -> Py {
        let mut child = Command::new(venv_python())
            .arg(repo_root().join("tests/redis_wire/py_layer.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python channel layer");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut py = Py {
            _child: child,
            stdin,
            stdout,
        };
        let mut init = json!({"op": "init", "hosts": hosts, "prefix": prefix});
        if let (Some(init), Json::Object(extra)) = (init.as_object_mut(), extra) {
            init.extend(extra);
        }
        py.call(init).await;
        py
    }

    pub async fn call(&mut self, cmd: Json) -> Json {
        let line = format!("{cmd}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to Python");
        let reply = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("Python answers within 30 s")
            .expect("read from Python")
            .expect("Python is still running");
        let reply: Json = serde_json::from_str(&reply).expect("JSON reply");
        assert!(
            reply.get("exception").is_none(),
            "Python failed on {cmd}: {reply}"
        );
        reply
    }

    pub async fn new_channel(&mut self) -> String {
        self.call(json!({"op": "new_channel"})).await["channel"]
            .as_str()
            .expect("channel")
            .to_owned()
    }

    pub async fn group_add(&mut self, group: &str, channel: &str) {
        self.call(json!({"op": "group_add", "group": group, "channel": channel}))
            .await;
    }

    pub async fn group_send(&mut self, group: &str, message: Json) {
        self.call(json!({"op": "group_send", "group": group, "message": message}))
            .await;
    }

    /// `repr()` of the received message, or `None` on timeout.
    pub async fn receive(&mut self, channel: &str, timeout_secs: f64) -> Option<String> {
        let reply = self
            .call(json!({"op": "receive", "channel": channel, "timeout": timeout_secs}))
            .await;
        reply["repr"].as_str().map(str::to_owned)
    }
}

/// Polls `check` every 50 ms until it is true; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/healthz` of a server, as JSON.
pub async fn health(base: &str) -> Json {
    let body = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("GET /healthz")
        .text()
        .await
        .expect("health body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
