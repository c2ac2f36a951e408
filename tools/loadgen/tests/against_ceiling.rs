//! The load generator end to end against the ceiling server on a free loopback port: short runs
//! (about a second per step) whose accounting must add up exactly. Nothing here asserts timings.

use std::net::SocketAddr;
use std::process::Command;
use std::thread::JoinHandle;

use serde_json::Value;

struct Ceiling {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<ceiling::Stats>>,
}

impl Ceiling {
    fn start() -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                ceiling::serve(listener, ceiling::Options::default(), async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn finish(mut self) -> ceiling::Stats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread
            .take()
            .expect("thread")
            .join()
            .expect("ceiling thread")
    }
}

fn loadgen(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--json", "--no-auth", "--max-secs", "120"])
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn fanout_accounts_for_every_delivery() {
    let server = Ceiling::start();
    let url = server.url();
    let r = loadgen(&[
        "fanout",
        "--url",
        &url,
        "-n",
        "40",
        "--senders",
        "4",
        "--rates",
        "100,400",
        "--step-secs",
        "1",
    ]);
    let stats = server.finish();
    assert_eq!(u(&r["connect"]["made"]), 40);
    assert_eq!(u(&r["connect"]["failed"]), 0);
    let steps = r["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{r:#}");
    let mut total_sent = 0;
    for s in steps {
        let sent = u(&s["sent"]);
        assert!(sent > 0);
        assert_eq!(u(&s["expected"]), sent * 40, "{s:#}");
        assert_eq!(u(&s["received"]), u(&s["expected"]), "{s:#}");
        assert_eq!(u(&s["lost"]), 0);
        assert_eq!(u(&s["duplicates"]), 0);
        assert_eq!(u(&s["disconnects"]), 0);
        assert!(s["p99_ms"].as_f64().expect("p99") >= s["p50_ms"].as_f64().expect("p50"));
        assert!(s["max_ms"].as_f64().expect("max") >= s["p99_ms"].as_f64().expect("p99"));
        total_sent += sent;
    }
    assert_eq!(r["sustained"]["step"], 1);
    // The server agrees with the load generator's books.
    assert_eq!(stats.frames_in, total_sent);
    assert_eq!(stats.frames_out, total_sent * 40);
    assert_eq!(stats.lagged, 0);
}

#[test]
fn processes_split_the_rooms_and_merge_their_reports() {
    let server = Ceiling::start();
    let url = server.url();
    let r = loadgen(&[
        "fanout",
        "--url",
        &url,
        "-n",
        "40",
        "--rooms",
        "4",
        "--processes",
        "2",
        "--rates",
        "200",
        "--step-secs",
        "1",
    ]);
    let stats = server.finish();
    assert_eq!(r["processes"], 2);
    assert_eq!(u(&r["connect"]["made"]), 40);
    let s = &r["steps"][0];
    let sent = u(&s["sent"]);
    assert!(sent > 0);
    assert_eq!(s["room_size"].as_f64(), Some(10.0));
    assert_eq!(u(&s["expected"]), sent * 10, "{s:#}");
    assert_eq!(u(&s["received"]), sent * 10, "{s:#}");
    assert_eq!(stats.frames_out, sent * 10);
    assert_eq!(stats.connections, 40);
}

#[test]
fn idle_and_connect_storm_count_connections_and_memory() {
    let server = Ceiling::start();
    let url = server.url();
    let pid = std::process::id().to_string();
    let r = loadgen(&[
        "idle",
        "--url",
        &url,
        "-n",
        "200",
        "--rooms",
        "3",
        "--connect-rate",
        "2000",
        "--hold-secs",
        "0.3",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(u(&r["idle"]["connections"]), 200);
    assert_eq!(u(&r["idle"]["alive_at_end"]), 200);
    assert!(r["idle"]["server_bytes_per_conn"].is_number(), "{r:#}");
    let r = loadgen(&[
        "connect-storm",
        "--url",
        &url,
        "-n",
        "300",
        "--connect-concurrency",
        "32",
        "--hold-secs",
        "0",
    ]);
    assert_eq!(u(&r["connect"]["made"]), 300);
    assert!(r["connect"]["per_s"].as_f64().expect("rate") > 0.0);
    let stats = server.finish();
    assert_eq!(stats.connections, 500);
}

#[test]
fn refused_connections_are_counted_not_hidden() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    let r = loadgen(&["idle", "--url", &url, "-n", "5", "--hold-secs", "0"]);
    assert_eq!(u(&r["connect"]["made"]), 0);
    assert_eq!(u(&r["connect"]["failed"]), 5);
    assert!(
        !r["connect"]["errors"]
            .as_object()
            .expect("errors")
            .is_empty()
    );
}
