//! The live frontend (`FERROCHAT_FRONTEND=live`) in headless Chromium (Debian's
//! `/usr/bin/chromium`, driven by playwright-core from `tests/browser/live*.test.mjs`):
//!
//! - alice on one ferrochat node, bob on another, one PostgreSQL database and one Redis. Alice's
//!   node is killed (SIGKILL) and restarted mid-conversation while bob keeps sending through his;
//!   alice's page reconnects by itself and shows every message exactly once, in order; both
//!   member lists and the typing line follow. Screenshots: `target/artifacts/live-*.png`.
//! - behind a load balancer whose node answers as Daphne does (no subprotocol selected), the
//!   page falls back to the legacy protocol, catches up from the room page after a reconnect,
//!   and speaks `ferrochat.v1` again once the node does.
//!
//! A missing Chromium or `tests/browser/node_modules` fails these tests (`tools/test-all`
//! installs both).

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ferrochat::db::schema;
use ferrochat::db::users::NewUser;
use ferrochat::django::hashers::make_password_with;
use ferrochat::django::validators::Username;
use support::node::Node;
use support::redis_env::{Space, node_id};
use support::server::free_port;
use support::{TestDb, TestServer, repo_root};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "a long browser passphrase";

fn browser_dir() -> PathBuf {
    let dir = repo_root().join("tests/browser");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's package with `apt-get install -y chromium` (tools/test-all does)"
    );
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser (tools/test-all does)"
    );
    dir
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: Username::parse(username).expect("valid username"),
        email: String::new(),
        password_hash: make_password_with(PASSWORD, "browserSALTbrowserSALT", 1000),
        is_staff: false,
        is_superuser: false,
    }
}

/// Runs `node --test <script>` in tests/browser with `env`; fails with its output (and `logs`,
/// read when it is done) unless every test passed.
async fn run_node(script: &str, env: &[(&str, String)], logs: impl AsyncFnOnce() -> String) {
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", script])
        .current_dir(browser_dir())
        .env("FERROCHAT_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = match tokio::time::timeout(Duration::from_secs(300), command.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run node (is Node.js installed?): {e}"),
        Err(_) => panic!("{script} did not finish within 300 s"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "--- node --test {script} stdout ---\n{stdout}\n--- stderr ---\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs().await,
    );
    assert!(
        out.status.success() && stdout.contains("# fail 0"),
        "{script} failed ({}):\n{report}",
        out.status
    );
}

type ActionFuture = Pin<Box<dyn Future<Output = bool> + Send>>;
type Action = Arc<dyn Fn(String) -> ActionFuture + Send + Sync>;

/// A control URL for the page script: `GET /<action>` runs `action("<action>")` and answers 200
/// when it is done (404 when it returned false).
async fn serve_control(listener: TcpListener, action: Action) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]);
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let status = if action(path.trim_start_matches('/').to_owned()).await {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let _ = conn
            .write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
    }
}

async fn control_url(action: Action) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the control URL");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (url, tokio::spawn(serve_control(listener, action)))
}

/// One ferrochat node of the test: its port and environment, so it can be restarted as it was.
struct NodeSpec {
    port: u16,
    env: Vec<(String, String)>,
}

impl NodeSpec {
    fn new(space: &Space, tdb: &TestDb, tag: &str) -> NodeSpec {
        let mut env = space.ferrochat_env(&node_id(tag));
        for (k, v) in [
            ("DATABASE_URL", tdb.url()),
            ("FERROCHAT_FRONTEND", "live"),
            // A killed node's users leave the member lists within seconds, not 30.
            ("FERROCHAT_PRESENCE_TTL", "3"),
        ] {
            env.push((k.to_owned(), v.to_owned()));
        }
        NodeSpec {
            port: free_port(),
            env,
        }
    }

    async fn start(&self) -> Node {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Node::start(self.port, &env).await
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_rides_out_a_node_restart_in_chromium() {
    let artifacts = repo_root().join("target/artifacts");
    let shots = ["live-room.png", "live-reconnecting.png", "live-phone.png"];
    for shot in shots {
        let _ = std::fs::remove_file(artifacts.join(shot));
    }

    let tdb = TestDb::postgres();
    let db = tdb.connect().await;
    schema::migrate(&db).await.expect("ferrochat migrate");
    for username in ["alice", "bob"] {
        db.create_user(new_user(username))
            .await
            .expect("create user");
    }
    db.close().await;

    let space = Space::new();
    let alice_spec = Arc::new(NodeSpec::new(&space, &tdb, "la"));
    let bob_spec = NodeSpec::new(&space, &tdb, "lb");
    let alice_node = Arc::new(Mutex::new(Some(alice_spec.start().await)));
    let bob_node = bob_spec.start().await;

    let (control, controller) = control_url({
        let (spec, node) = (alice_spec.clone(), alice_node.clone());
        Arc::new(move |action: String| -> ActionFuture {
            let (spec, node) = (spec.clone(), node.clone());
            Box::pin(async move {
                match action.as_str() {
                    // kill_on_drop: dropping the child sends SIGKILL, as a crash would end it.
                    "kill" => drop(node.lock().await.take()),
                    "start" => *node.lock().await = Some(spec.start().await),
                    _ => return false,
                }
                true
            })
        })
    })
    .await;

    run_node(
        "live.test.mjs",
        &[
            ("FERROCHAT_URL_A", alice_spec.url()),
            ("FERROCHAT_URL_B", bob_spec.url()),
            ("FERROCHAT_CONTROL_URL", control),
            ("FERROCHAT_ARTIFACTS", artifacts.display().to_string()),
        ],
        async || {
            let alice = match alice_node.lock().await.as_ref() {
                Some(node) => node.log_text(),
                None => "(not running)".to_owned(),
            };
            format!(
                "--- alice's node ---\n{alice}\n--- bob's node ---\n{}",
                bob_node.log_text()
            )
        },
    )
    .await;
    controller.abort();
    for shot in shots {
        assert!(
            artifacts.join(shot).is_file(),
            "no screenshot at target/artifacts/{shot}"
        );
    }
}

/// What the balancer does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Drops every connection and refuses new ones: the node is gone.
    Down,
    /// Passes requests through without `Sec-WebSocket-Protocol`, so the 101 selects none: what
    /// a Daphne node answers a `ferrochat.v1` client.
    Legacy,
    /// Passes everything through.
    V1,
}

/// A load balancer's stand-in in front of `upstream`.
async fn balance(listener: TcpListener, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(proxy(client, upstream, mode.clone()));
    }
}

async fn proxy(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    if now == Mode::Down {
        return;
    }
    // The request head (browsers open a new connection for each WebSocket).
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut buf).await {
            Ok(n) if n > 0 && head.len() < 65_536 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let forwarded = if now == Mode::Legacy {
        text.split("\r\n")
            .filter(|line| {
                !line
                    .to_ascii_lowercase()
                    .starts_with("sec-websocket-protocol:")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    } else {
        text.into_owned()
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(forwarded.as_bytes()).await.is_err()
        || server.write_all(&head[end..]).await.is_err()
    {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = mode.wait_for(|m| *m == Mode::Down) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_falls_back_to_the_legacy_protocol_in_chromium() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[("FERROCHAT_FRONTEND", "live")]).await;
    for username in ["alice", "bob"] {
        server
            .state
            .db
            .create_user(new_user(username))
            .await
            .expect("create user");
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the balancer");
    let balanced = format!("http://{}", listener.local_addr().expect("addr"));
    let (mode, watching) = watch::channel(Mode::Legacy);
    let balancer = tokio::spawn(balance(listener, server.addr, watching));
    let mode = Arc::new(mode);
    let (control, controller) = control_url(Arc::new(move |action: String| -> ActionFuture {
        let mode = mode.clone();
        Box::pin(async move {
            let next = match action.as_str() {
                "down" => Mode::Down,
                "legacy" => Mode::Legacy,
                "v1" => Mode::V1,
                _ => return false,
            };
            mode.send_replace(next);
            true
        })
    }))
    .await;

    run_node(
        "live-fallback.test.mjs",
        &[
            ("FERROCHAT_BALANCED_URL", balanced),
            ("FERROCHAT_URL", server.url("")),
            ("FERROCHAT_CONTROL_URL", control),
        ],
        async || String::new(),
    )
    .await;
    controller.abort();
    balancer.abort();
    server.stop().await;
}
