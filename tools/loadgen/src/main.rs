//! `loadgen`: a WebSocket load generator for ferrochat, the legacy Daphne app and `ceiling`.
//!
//! It logs in through the HTML form (or takes session keys), opens N connections over K rooms
//! (rate-limited, bounded concurrency, spread over source addresses 127.0.0.2…), and runs one of:
//!
//! * `idle`: open, hold, report (with `--server-pid`: the server's memory per connection);
//! * `connect-storm`: open as fast as the server accepts, report connections per second;
//! * `fanout`: S senders send at stepped total rates; every delivery is accounted for
//!   (expected = sent × room members, received, lost, duplicates, out of order) and timed;
//! * `login-storm`: `fanout` at one rate while workers log in through the form continuously;
//! * `login`: print a session key (for `wrk` and for other runs' `--session`).
//!
//! With `--processes P` the load is split into P child processes (this binary again, with a
//! hidden `--child --shard i/P`) that the parent drives step by step over their stdin/stdout
//! with JSON lines, and whose reports it merges: one process holds at most ~19 000 sockets here.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::{Args, Parser, Subcommand};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use loadgen::hist::Histogram;
use loadgen::procfs;
use loadgen::report::{ConnectReport, IdleSummary, Report, StepReport};
use loadgen::tag::Tag;
use loadgen::tally::ConnTally;

type Ws = WebSocketStream<TcpStream>;

// ---------------------------------------------------------------------------------------------
// Command line

#[derive(Debug, Parser)]
#[command(
    version,
    about = "WebSocket load generator for ferrochat and the legacy Daphne app"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Log in through the HTML form and print the session key.
    Login(LoginArgs),
    /// Open N connections, hold them, report (server memory per connection with --server-pid).
    Idle(IdleArgs),
    /// Open N connections as fast as the server takes them; report connections per second.
    ConnectStorm(IdleArgs),
    /// S senders send at stepped total rates; loss, order and latency of every delivery.
    Fanout(FanoutArgs),
    /// Fan-out at one rate while workers log in through the form continuously.
    LoginStorm(FanoutArgs),
}

#[derive(Debug, Clone, Args)]
struct LoginArgs {
    /// Base URL of the server (http://127.0.0.x:PORT).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    #[arg(long)]
    user: String,
    #[arg(long, env = "LOADGEN_PASSWORD")]
    password: String,
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// Base URL of a server (http://127.0.0.x:PORT); repeat to spread connections over nodes.
    #[arg(long = "url", default_value = "http://127.0.0.1:8000")]
    urls: Vec<String>,
    /// A session key to connect with (repeatable; used round-robin). Else --user/--password.
    #[arg(long = "session")]
    sessions: Vec<String>,
    /// Log in as this user through the form (repeatable; sessions are used round-robin).
    #[arg(long = "user")]
    users: Vec<String>,
    #[arg(long, env = "LOADGEN_PASSWORD")]
    password: Option<String>,
    /// Connect without a session cookie (the ceiling server needs none).
    #[arg(long)]
    no_auth: bool,
    /// Total connections (over all processes).
    #[arg(short = 'n', long, default_value_t = 100)]
    connections: u64,
    /// Rooms; connection g joins room g mod K.
    #[arg(long, default_value_t = 1)]
    rooms: u32,
    /// Room names are PREFIX0, PREFIX1, …
    #[arg(long, default_value = "lg")]
    room_prefix: String,
    /// New connections per second (0: no limit).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 15.0)]
    connect_timeout_secs: f64,
    /// Spread connections over this many source addresses 127.0.0.2, 127.0.0.3, … (0: let the
    /// kernel pick 127.0.0.1). Each address has its own ~28 000 ephemeral ports.
    #[arg(long, default_value_t = 8)]
    source_addrs: u8,
    /// Split the load over this many processes (each holds its share of every room).
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// Internal: this process is shard i of n, driven by its parent over stdin/stdout.
    #[arg(long, hide = true)]
    shard: Option<String>,
    #[arg(long, hide = true)]
    child: bool,
    /// Tokio worker threads per process (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Server process(es) to sample CPU and memory from (/proc/PID/stat, /proc/PID/status).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Print the report as JSON (progress goes to stderr either way).
    #[arg(long)]
    json: bool,
    /// Give up after this long, whatever happens.
    #[arg(long, default_value_t = 900.0)]
    max_secs: f64,
}

#[derive(Debug, Clone, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// How long to hold the connections open.
    #[arg(long, default_value_t = 3.0)]
    hold_secs: f64,
}

#[derive(Debug, Clone, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Sending connections (default: one per room). Connection g < S sends, in room g mod K.
    #[arg(long)]
    senders: Option<u32>,
    /// Offered load steps in messages per second, all senders together (comma-separated).
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Offered load steps in deliveries per second (divided by the room size to get messages).
    #[arg(long, value_delimiter = ',', conflicts_with = "rates")]
    delivery_rates: Vec<f64>,
    /// Send phase of each step.
    #[arg(long, default_value_t = 3.0)]
    step_secs: f64,
    /// After a step's sends: wait for stragglers until quiet for --drain-quiet-ms, or this long.
    #[arg(long, default_value_t = 5.0)]
    drain_max_secs: f64,
    #[arg(long, default_value_t = 500)]
    drain_quiet_ms: u64,
    /// Stop stepping up once p99 exceeds this or anything is lost.
    #[arg(long, default_value_t = 100.0)]
    stop_p99_ms: f64,
    /// "Sustained" = the highest complete step with p99 at or under this.
    #[arg(long, default_value_t = 250.0)]
    sustain_p99_ms: f64,
    /// Run every step even after one fails.
    #[arg(long)]
    all_steps: bool,
    /// Message text length (the tag padded with x).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Concurrent login workers during the steps (login-storm defaults to 4).
    #[arg(long)]
    login_concurrency: Option<usize>,
    /// The user the login workers log in as (default: the first --user).
    #[arg(long)]
    login_user: Option<String>,
    #[arg(long, env = "LOADGEN_LOGIN_PASSWORD")]
    login_password: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Time

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The `Instant` at which the wall clock will read `unix_ns` (now, if that is past).
fn instant_at(target_unix_ns: u64) -> Instant {
    let now = Instant::now();
    now + Duration::from_nanos(target_unix_ns.saturating_sub(unix_ns()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Targets and logging in

/// One server: `http://host:port` and what the WebSocket handshake needs.
#[derive(Debug, Clone)]
struct Target {
    base: String,
    addr: SocketAddr,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// URLs"))?;
        let hostport = rest.trim_end_matches('/');
        ensure!(!hostport.contains('/'), "{url}: give the base URL only");
        let addr: SocketAddr = hostport
            .parse()
            .with_context(|| format!("{url}: expected http://127.x.y.z:PORT"))?;
        ensure!(
            addr.ip().is_loopback(),
            "{url}: load is only ever sent to loopback addresses (127.0.0.0/8)"
        );
        Ok(Self {
            base: format!("http://{hostport}"),
            addr,
        })
    }

    fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws/chat/{room}/", self.addr)
    }
}

fn source_ip(g: u64, count: u8) -> Option<IpAddr> {
    (count > 0).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (g % u64::from(count)) as u8)))
}

fn http_client(local: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(local)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `name=value` of the first `Set-Cookie` for `name`.
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// The `value` of `<input … name="NAME" … value="…">` in an HTML page.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(tag[v..v + len].to_owned())
}

/// The legacy login: GET /login/ for the CSRF cookie and form token, POST the form with an
/// Origin header; a 302 with a `sessionid` cookie is a success. Returns the session key.
async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{base}/login/");
    let resp = client.get(&url).send().await?;
    ensure!(
        resp.status().is_success(),
        "GET /login/ answered {}",
        resp.status()
    );
    let csrf = set_cookie(resp.headers(), "csrftoken").context("no csrftoken cookie")?;
    let page = resp.text().await?;
    let token = hidden_input(&page, "csrfmiddlewaretoken").context("no csrfmiddlewaretoken")?;
    let resp = client
        .post(&url)
        .header(reqwest::header::COOKIE, format!("csrftoken={csrf}"))
        .header(reqwest::header::ORIGIN, base)
        .header(reqwest::header::REFERER, &url)
        .form(&[
            ("csrfmiddlewaretoken", token.as_str()),
            ("username", user),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await?;
    let status = resp.status();
    match set_cookie(resp.headers(), "sessionid") {
        Some(s) if status.as_u16() == 302 && !s.is_empty() => Ok(s),
        _ => bail!("login as {user} failed: {status}"),
    }
}

// ---------------------------------------------------------------------------------------------
// One shard of the load: its connections, their tallies, and the phase they follow

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepPlan {
    step: u32,
    /// Messages per second, all senders of all shards together (0: just hold).
    rate: f64,
    secs: f64,
    start_unix_ns: u64,
    drain_max_secs: f64,
    drain_quiet_ms: u64,
}

#[derive(Debug, Clone)]
enum Phase {
    Hold,
    Send {
        plan: Arc<StepPlan>,
        start: Instant,
        /// Room sizes at the step's start (for the early end of the drain).
        members: Arc<Vec<u32>>,
    },
    Stop,
}

/// What the shard needs to know, resolved from the command line.
#[derive(Debug, Clone)]
struct Config {
    scenario: String,
    targets: Vec<Target>,
    connections: u64,
    rooms: u32,
    room_prefix: String,
    senders: u32,
    size: usize,
    connect_rate: f64,
    connect_concurrency: usize,
    connect_timeout: Duration,
    source_addrs: u8,
    shard: u32,
    shards: u32,
    sessions: Vec<String>,
    users: Vec<String>,
    password: Option<String>,
    no_auth: bool,
    login_workers: usize,
    login_user: Option<String>,
    login_password: Option<String>,
}

impl Config {
    /// The global indices of this shard's connections: room-major, so that every shard holds
    /// its share of every room.
    fn my_connections(&self) -> impl Iterator<Item = u64> + '_ {
        let k = u64::from(self.rooms.max(1));
        let n = u64::from(self.shards.max(1));
        (0..self.connections).filter(move |g| ((g / k) % n) as u32 == self.shard)
    }

    fn room_of(&self, g: u64) -> u32 {
        (g % u64::from(self.rooms.max(1))) as u32
    }

    fn target_of(&self, g: u64) -> &Target {
        let k = u64::from(self.rooms.max(1));
        &self.targets[((g / k) % self.targets.len() as u64) as usize]
    }
}

#[derive(Default)]
struct LoginTally {
    by_step: BTreeMap<u32, (u64, u64, Histogram)>,
}

struct Shard {
    cfg: Arc<Config>,
    tallies: Vec<Arc<Mutex<ConnTally>>>,
    phase: watch::Sender<Phase>,
    /// New deliveries / expected deliveries (single-process early end of the drain).
    delivered: Arc<AtomicU64>,
    expected: Arc<AtomicU64>,
    logins: Arc<Mutex<LoginTally>>,
    tasks: JoinSet<()>,
}

impl Shard {
    fn new(cfg: Config) -> Self {
        Self {
            cfg: Arc::new(cfg),
            tallies: Vec::new(),
            phase: watch::channel(Phase::Hold).0,
            delivered: Arc::new(AtomicU64::new(0)),
            expected: Arc::new(AtomicU64::new(0)),
            logins: Arc::new(Mutex::new(LoginTally::default())),
            tasks: JoinSet::new(),
        }
    }

    async fn sessions(&self, report: &mut ConnectReport) -> anyhow::Result<Vec<String>> {
        if self.cfg.no_auth {
            return Ok(vec![]);
        }
        if !self.cfg.sessions.is_empty() {
            return Ok(self.cfg.sessions.clone());
        }
        ensure!(
            !self.cfg.users.is_empty(),
            "give --session, --user with --password, or --no-auth"
        );
        let password = self
            .cfg
            .password
            .as_deref()
            .context("--user needs --password")?;
        let client = http_client(source_ip(u64::from(self.cfg.shard), self.cfg.source_addrs))?;
        let mut out = Vec::new();
        for user in &self.cfg.users {
            out.push(login(&client, &self.cfg.targets[0].base, user, password).await?);
            report.logins += 1;
        }
        Ok(out)
    }

    async fn connect_all(&mut self) -> anyhow::Result<ConnectReport> {
        let mut report = ConnectReport::default();
        let cpu0 = procfs::cpu_secs("self").unwrap_or(0.0);
        let sessions = Arc::new(self.sessions(&mut report).await?);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_write_buffer_size(1 << 20);
        let sem = Arc::new(Semaphore::new(self.cfg.connect_concurrency.max(1)));
        let mut pending = JoinSet::new();
        let start = Instant::now();
        report.first_ns = unix_ns();
        let mine: Vec<u64> = self.cfg.my_connections().collect();
        for (j, g) in mine.into_iter().enumerate() {
            if self.cfg.connect_rate > 0.0 {
                tokio::time::sleep_until(
                    start + Duration::from_secs_f64(j as f64 / self.cfg.connect_rate),
                )
                .await;
            }
            let permit = sem.clone().acquire_owned().await?;
            let cfg = self.cfg.clone();
            let sessions = sessions.clone();
            report.attempted += 1;
            pending.spawn(async move {
                let t0 = Instant::now();
                let session = (!sessions.is_empty())
                    .then(|| sessions[(g % sessions.len() as u64) as usize].as_str());
                let r = tokio::time::timeout(cfg.connect_timeout, open(&cfg, g, session, config))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out")));
                drop(permit);
                (g, r, t0.elapsed(), unix_ns())
            });
            while let Some(done) = pending.try_join_next() {
                self.connected(done, &mut report);
            }
        }
        while let Some(done) = pending.join_next().await {
            self.connected(done, &mut report);
        }
        report.cpu_secs = procfs::cpu_secs("self").unwrap_or(0.0) - cpu0;
        Ok(report)
    }

    fn connected(
        &mut self,
        done: Result<(u64, anyhow::Result<Ws>, Duration, u64), tokio::task::JoinError>,
        report: &mut ConnectReport,
    ) {
        let (g, result, took, at) = match done {
            Ok(d) => d,
            Err(e) => {
                report.error(format!("connect task: {e}"));
                return;
            }
        };
        report.last_ns = report.last_ns.max(at);
        let ws = match result {
            Ok(ws) => ws,
            Err(e) => {
                report.error(first_line(&format!("{e:#}")));
                return;
            }
        };
        report.made += 1;
        report.handshake.record(took.as_nanos() as u64);
        let room = self.cfg.room_of(g);
        let sender = (g < u64::from(self.cfg.senders)).then_some(g as u32);
        let tally = Arc::new(Mutex::new(ConnTally::new(room, sender)));
        self.tallies.push(tally.clone());
        let ctx = ConnCtx {
            tally,
            phase: self.phase.subscribe(),
            delivered: self.delivered.clone(),
            expected: self.expected.clone(),
            senders: self.cfg.senders,
            size: self.cfg.size,
        };
        match sender {
            Some(id) => {
                let (sink, stream) = ws.split();
                let writer_ctx = ctx.clone();
                self.tasks.spawn(send_loop(sink, writer_ctx, id, room));
                self.tasks.spawn(async move {
                    let mut stream = stream;
                    receive_loop(&mut stream, &ctx).await;
                });
            }
            None => {
                self.tasks.spawn(async move {
                    let mut ws = ws;
                    receive_loop(&mut ws, &ctx).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                });
            }
        }
    }

    fn start_login_workers(&mut self) {
        let n = self.cfg.login_workers;
        let (Some(user), Some(password)) =
            (self.cfg.login_user.clone(), self.cfg.login_password.clone())
        else {
            return;
        };
        for w in 0..n {
            let cfg = self.cfg.clone();
            let mut phase = self.phase.subscribe();
            let tally = self.logins.clone();
            let (user, password) = (user.clone(), password.clone());
            self.tasks.spawn(async move {
                let local = source_ip((cfg.shard as u64) * 64 + w as u64, cfg.source_addrs);
                let Ok(client) = http_client(local) else {
                    return;
                };
                loop {
                    let current = phase.borrow_and_update().clone();
                    match current {
                        Phase::Stop => break,
                        Phase::Hold => {}
                        Phase::Send { plan, start, .. } => {
                            let end = start + Duration::from_secs_f64(plan.secs);
                            tokio::time::sleep_until(start).await;
                            // Bounded: each attempt has a 30 s client timeout and the step ends.
                            while Instant::now() < end {
                                let t0 = Instant::now();
                                let r =
                                    login(&client, &cfg.targets[0].base, &user, &password).await;
                                {
                                    let mut t = lock(&tally);
                                    let e = t.by_step.entry(plan.step).or_default();
                                    if r.is_ok() {
                                        e.0 += 1;
                                        e.2.record(t0.elapsed().as_nanos() as u64);
                                    } else {
                                        e.1 += 1;
                                    }
                                }
                                if r.is_err() {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            }
                        }
                    }
                    if phase.changed().await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    fn members(&self) -> Vec<u32> {
        let mut members = vec![0u32; self.cfg.rooms.max(1) as usize];
        for t in &self.tallies {
            let t = lock(t);
            if t.alive {
                members[t.room as usize] += 1;
            }
        }
        members
    }

    async fn step(&mut self, plan: StepPlan) -> StepReport {
        let members = self.members();
        let alive_start: u64 = members.iter().map(|&m| u64::from(m)).sum();
        let mut report = StepReport::new(plan.step, plan.rate, plan.secs, members.clone());
        let start = instant_at(plan.start_unix_ns);
        let d0 = self.delivered.load(Ordering::Relaxed);
        let e0 = self.expected.load(Ordering::Relaxed);
        let plan = Arc::new(plan);
        let _ = self.phase.send(Phase::Send {
            plan: plan.clone(),
            start,
            members: Arc::new(members),
        });
        // CPU and wall time from the first send to the end of the drain.
        tokio::time::sleep_until(start).await;
        let cpu0 = procfs::cpu_secs("self").unwrap_or(0.0);
        let t0 = Instant::now();
        let send_end = start + Duration::from_secs_f64(plan.secs);
        tokio::time::sleep_until(send_end).await;
        // Drain: until everything expected arrived (known only when this process holds the
        // whole load), or nothing new came for drain_quiet_ms, or drain_max_secs.
        let deadline = send_end + Duration::from_secs_f64(plan.drain_max_secs);
        let quiet = Duration::from_millis(plan.drain_quiet_ms);
        let mut last = self.delivered.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let got = self.delivered.load(Ordering::Relaxed);
            let want = self.expected.load(Ordering::Relaxed) - e0;
            if self.cfg.shards == 1 && plan.rate > 0.0 && got - d0 >= want {
                break;
            }
            if got != last {
                last = got;
                last_change = Instant::now();
            } else if last_change.elapsed() >= quiet {
                break;
            }
        }
        let mut alive_end = 0;
        for t in &self.tallies {
            let mut t = lock(t);
            let record = t.harvest(plan.step);
            let (late, foreign) = t.take_strays();
            report.late += late;
            report.foreign += foreign;
            if t.died_in_step == Some(plan.step) {
                report.disconnects += 1;
            }
            if t.alive {
                alive_end += 1;
            }
            let sender = t.sender.map(|id| (id, t.room));
            report.absorb(sender, record);
        }
        report.disconnects = report
            .disconnects
            .max(alive_start.saturating_sub(alive_end));
        report.alive_end = alive_end;
        if let Some((ok, failed, hist)) = lock(&self.logins).by_step.remove(&plan.step) {
            report.logins_ok = ok;
            report.logins_failed = failed;
            report.login_latency = hist;
        }
        report.cpu_secs = procfs::cpu_secs("self").unwrap_or(0.0) - cpu0;
        report.wall_secs = t0.elapsed().as_secs_f64();
        report
    }

    async fn stop(&mut self) {
        let _ = self.phase.send(Phase::Stop);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(160).collect()
}

/// TCP connect from a 127.0.0.x source address, then the WebSocket handshake with the session
/// cookie and the Origin header the servers check.
async fn open(
    cfg: &Config,
    g: u64,
    session: Option<&str>,
    config: WebSocketConfig,
) -> anyhow::Result<Ws> {
    let target = cfg.target_of(g);
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source_ip(g, cfg.source_addrs) {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = socket.connect(target.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let room = format!("{}{}", cfg.room_prefix, cfg.room_of(g));
    let mut request = target.ws_url(&room).into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("Origin", HeaderValue::from_str(&target.base)?);
    if let Some(session) = session {
        headers.insert(
            "Cookie",
            HeaderValue::from_str(&format!("sessionid={session}"))?,
        );
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| match e {
            WsError::Http(resp) => anyhow::anyhow!("handshake refused: HTTP {}", resp.status()),
            e => anyhow::anyhow!("handshake: {e}"),
        })?;
    Ok(ws)
}

#[derive(Clone)]
struct ConnCtx {
    tally: Arc<Mutex<ConnTally>>,
    phase: watch::Receiver<Phase>,
    delivered: Arc<AtomicU64>,
    expected: Arc<AtomicU64>,
    senders: u32,
    size: usize,
}

fn current_step(phase: &watch::Receiver<Phase>) -> Option<u32> {
    match &*phase.borrow() {
        Phase::Send { plan, .. } => Some(plan.step),
        _ => None,
    }
}

/// Reads frames until the connection ends or the run stops; every frame is accounted for.
async fn receive_loop<S>(stream: &mut S, ctx: &ConnCtx)
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut phase = ctx.phase.clone();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let tag = Tag::find(text.as_str());
                    let now = unix_ns();
                    if lock(&ctx.tally).record_frame(tag, now, ctx.senders) {
                        ctx.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Binary(_))) => lock(&ctx.tally).foreign += 1,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    let mut t = lock(&ctx.tally);
                    t.alive = false;
                    t.died_in_step = current_step(&phase);
                    break;
                }
                Some(Ok(_)) => {}
            },
            changed = phase.changed() => {
                if changed.is_err() || matches!(*phase.borrow(), Phase::Stop) {
                    break;
                }
            }
        }
    }
}

/// How late a sender's timer may fire before the delay counts as latency.
const TIMER_SLACK_NS: u64 = 2_000_000;

/// Sends this connection's share of each step on an absolute schedule: message i of sender k
/// is due at start + (k / S + i) / (rate / S). The tag carries the due time, so a sender that
/// falls behind shows up as latency, not as a quieter server.
async fn send_loop(mut sink: SplitSink<Ws, Message>, ctx: ConnCtx, id: u32, room: u32) {
    let mut phase = ctx.phase.clone();
    'run: loop {
        let current = phase.borrow_and_update().clone();
        match current {
            Phase::Stop => break,
            Phase::Hold => {}
            Phase::Send {
                plan,
                start,
                members,
            } if plan.rate > 0.0 => {
                let per_sender = plan.rate / f64::from(ctx.senders.max(1));
                let interval = 1.0 / per_sender;
                let offset = interval * f64::from(id) / f64::from(ctx.senders.max(1));
                let room_size = u64::from(members.get(room as usize).copied().unwrap_or(0));
                // Bounded: at most secs × rate / S messages.
                for seq in 0u64.. {
                    let due = offset + seq as f64 * interval;
                    if due >= plan.secs {
                        break;
                    }
                    let at = start + Duration::from_secs_f64(due);
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        changed = phase.changed() => {
                            if changed.is_err() || matches!(*phase.borrow(), Phase::Stop) {
                                break 'run;
                            }
                            continue 'run;
                        }
                    }
                    // The timer wakes up to a millisecond late; that slack is the load
                    // generator's, not the server's, so it is not charged. Anything beyond it
                    // (the send blocked, the process fell behind) is.
                    let lag = Instant::now().saturating_duration_since(at).as_nanos() as u64;
                    let tag = Tag {
                        step: plan.step,
                        sender: id,
                        seq,
                        sent_nanos: plan.start_unix_ns
                            + (due * 1e9) as u64
                            + lag.min(TIMER_SLACK_NS),
                    };
                    let ok = sink.send(Message::text(tag.frame(ctx.size))).await.is_ok();
                    lock(&ctx.tally).record_send(plan.step, ok, lag, unix_ns());
                    if !ok {
                        break 'run;
                    }
                    ctx.expected.fetch_add(room_size, Ordering::Relaxed);
                }
            }
            Phase::Send { .. } => {}
        }
        if phase.changed().await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
}

// ---------------------------------------------------------------------------------------------
// Driving shards: in this process, or in child processes over JSON lines

#[derive(Debug, Serialize, Deserialize)]
enum ToChild {
    Step(StepPlan),
    Stop,
}

#[derive(Debug, Serialize, Deserialize)]
enum FromChild {
    Connected(ConnectReport),
    Step(StepReport),
    Stopped,
    Failed(String),
}

struct ChildShard {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl ChildShard {
    fn spawn(i: u32, n: u32) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut args: Vec<String> = Vec::new();
        let mut skip = false;
        for a in std::env::args().skip(1) {
            if skip {
                skip = false;
                continue;
            }
            if a == "--processes" || a == "--server-pid" {
                skip = true;
                continue;
            }
            if a.starts_with("--processes=") || a.starts_with("--server-pid=") || a == "--json" {
                continue;
            }
            args.push(a);
        }
        args.extend(["--child".into(), "--shard".into(), format!("{i}/{n}")]);
        let mut child = tokio::process::Command::new(exe)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn send(&mut self, msg: &ToChild) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(msg)?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<FromChild> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("a load process ended early")?;
        match serde_json::from_str(&line)? {
            FromChild::Failed(e) => bail!("a load process failed: {e}"),
            msg => Ok(msg),
        }
    }
}

enum ShardHandle {
    Local(Box<Shard>),
    Child(Box<ChildShard>),
}

impl ShardHandle {
    async fn connect(&mut self) -> anyhow::Result<ConnectReport> {
        match self {
            ShardHandle::Local(s) => s.connect_all().await,
            ShardHandle::Child(c) => match c.recv().await? {
                FromChild::Connected(r) => Ok(r),
                other => bail!("unexpected message from a load process: {other:?}"),
            },
        }
    }

    async fn step(&mut self, plan: &StepPlan) -> anyhow::Result<StepReport> {
        match self {
            ShardHandle::Local(s) => Ok(s.step(plan.clone()).await),
            ShardHandle::Child(c) => {
                c.send(&ToChild::Step(plan.clone())).await?;
                match c.recv().await? {
                    FromChild::Step(r) => Ok(r),
                    other => bail!("unexpected message from a load process: {other:?}"),
                }
            }
        }
    }

    async fn stop(&mut self) {
        match self {
            ShardHandle::Local(s) => s.stop().await,
            ShardHandle::Child(c) => {
                if c.send(&ToChild::Stop).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(15), c.recv()).await;
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), c.child.wait()).await;
                let _ = c.child.start_kill();
            }
        }
    }
}

async fn child_main(cfg: Config) -> anyhow::Result<()> {
    let mut out = tokio::io::stdout();
    let mut say = async |msg: FromChild| -> anyhow::Result<()> {
        let mut line = serde_json::to_string(&msg)?;
        line.push('\n');
        out.write_all(line.as_bytes()).await?;
        out.flush().await?;
        Ok(())
    };
    let mut shard = Shard::new(cfg);
    match shard.connect_all().await {
        Ok(r) => say(FromChild::Connected(r)).await?,
        Err(e) => {
            say(FromChild::Failed(format!("{e:#}"))).await?;
            return Err(e);
        }
    }
    shard.start_login_workers();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Bounded by the parent's step count; EOF (the parent died) stops it too.
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str(&line)? {
            ToChild::Step(plan) => {
                let r = shard.step(plan).await;
                say(FromChild::Step(r)).await?;
            }
            ToChild::Stop => break,
        }
    }
    shard.stop().await;
    say(FromChild::Stopped).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios

struct ServerSample {
    cpu: f64,
    at: Instant,
}

fn sample_servers(pids: &[u32]) -> Option<ServerSample> {
    if pids.is_empty() {
        return None;
    }
    let cpu = pids
        .iter()
        .map(|p| procfs::cpu_secs(&p.to_string()).unwrap_or(0.0))
        .sum();
    Some(ServerSample {
        cpu,
        at: Instant::now(),
    })
}

fn servers_rss(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    Some(
        pids.iter()
            .map(|p| procfs::rss_kib(&p.to_string()).unwrap_or(0))
            .sum(),
    )
}

fn config(common: &Common, scenario: &str, fan: Option<&FanoutArgs>) -> anyhow::Result<Config> {
    let targets = common
        .urls
        .iter()
        .map(|u| Target::parse(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(common.rooms >= 1, "--rooms must be at least 1");
    ensure!(common.processes >= 1, "--processes must be at least 1");
    let (shard, shards) = match &common.shard {
        Some(s) => {
            let (i, n) = s.split_once('/').context("--shard i/n")?;
            let (i, n): (u32, u32) = (i.parse()?, n.parse()?);
            ensure!(n >= 1 && i < n, "--shard i/n with i < n");
            (i, n)
        }
        None => (0, common.processes),
    };
    let senders = match fan {
        Some(f) => f.senders.unwrap_or(common.rooms).max(1),
        None => 0,
    };
    ensure!(
        u64::from(senders) <= common.connections,
        "more senders than connections"
    );
    let login_workers = match fan {
        Some(f) => f
            .login_concurrency
            .unwrap_or(if scenario == "login-storm" { 4 } else { 0 }),
        None => 0,
    };
    let login_user = fan
        .and_then(|f| f.login_user.clone())
        .or_else(|| common.users.first().cloned());
    let login_password = fan
        .and_then(|f| f.login_password.clone())
        .or_else(|| common.password.clone());
    if login_workers > 0 {
        ensure!(
            login_user.is_some() && login_password.is_some(),
            "login workers need --login-user/--login-password (or --user/--password)"
        );
    }
    Ok(Config {
        scenario: scenario.into(),
        targets,
        connections: common.connections,
        rooms: common.rooms,
        room_prefix: common.room_prefix.clone(),
        senders,
        size: fan.map_or(100, |f| f.size),
        connect_rate: common.connect_rate,
        connect_concurrency: common.connect_concurrency,
        connect_timeout: Duration::from_secs_f64(common.connect_timeout_secs.max(0.1)),
        source_addrs: common.source_addrs.min(250),
        shard,
        shards,
        sessions: common.sessions.clone(),
        users: common.users.clone(),
        password: common.password.clone(),
        no_auth: common.no_auth,
        login_workers,
        login_user,
        login_password,
    })
}

async fn open_shards(common: &Common, cfg: &Config) -> anyhow::Result<Vec<ShardHandle>> {
    let per_process = cfg.connections / u64::from(cfg.shards.max(1));
    if per_process > 19_000 {
        eprintln!(
            "loadgen: warning: {per_process} connections per process; the open-file limit here is about 20 000: use --processes"
        );
    }
    if common.processes <= 1 {
        return Ok(vec![ShardHandle::Local(Box::new(Shard::new(cfg.clone())))]);
    }
    (0..common.processes)
        .map(|i| ChildShard::spawn(i, common.processes).map(|c| ShardHandle::Child(Box::new(c))))
        .collect()
}

async fn connect_shards(shards: &mut [ShardHandle]) -> anyhow::Result<ConnectReport> {
    let results = futures_util::future::join_all(shards.iter_mut().map(|s| s.connect())).await;
    let mut merged = ConnectReport::default();
    for r in results {
        merged.merge(&r?);
    }
    for s in shards.iter_mut() {
        if let ShardHandle::Local(s) = s {
            s.start_login_workers();
        }
    }
    Ok(merged)
}

async fn run_step(
    shards: &mut [ShardHandle],
    plan: &StepPlan,
    pids: &[u32],
) -> anyhow::Result<loadgen::report::StepSummary> {
    // The servers' CPU from the first send to the end of the step, like the load generator's.
    let sample_at_start = async {
        tokio::time::sleep_until(instant_at(plan.start_unix_ns)).await;
        sample_servers(pids)
    };
    let (results, before) = tokio::join!(
        futures_util::future::join_all(shards.iter_mut().map(|s| s.step(plan))),
        sample_at_start
    );
    let mut merged: Option<StepReport> = None;
    for r in results {
        let r = r?;
        match &mut merged {
            Some(m) => m.merge(&r),
            None => merged = Some(r),
        }
    }
    let merged = merged.context("no shards")?;
    let mut summary = merged.summary();
    if let (Some(b), Some(a)) = (before, sample_servers(pids)) {
        let wall = a.at.duration_since(b.at).as_secs_f64();
        if wall > 0.0 {
            summary.server_cpu_pct = Some(100.0 * (a.cpu - b.cpu) / wall);
        }
        if summary.received > 0 {
            summary.server_cpu_us_per_delivery =
                Some(1e6 * (a.cpu - b.cpu) / summary.received as f64);
        }
    }
    summary.server_rss_kib = servers_rss(pids);
    Ok(summary)
}

async fn stop_shards(shards: &mut [ShardHandle]) {
    futures_util::future::join_all(shards.iter_mut().map(|s| s.stop())).await;
}

fn base_report(cfg: &Config, common: &Common) -> Report {
    Report {
        scenario: cfg.scenario.clone(),
        targets: cfg.targets.iter().map(|t| t.base.clone()).collect(),
        processes: common.processes,
        connections: cfg.connections,
        rooms: cfg.rooms,
        senders: cfg.senders,
        ..Report::default()
    }
}

fn idle_summary(
    made: u64,
    hold_secs: f64,
    alive: u64,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
) -> IdleSummary {
    IdleSummary {
        connections: made,
        hold_secs,
        alive_at_end: alive,
        server_rss_before_kib: rss_before,
        server_rss_after_kib: rss_after,
        server_bytes_per_conn: match (rss_before, rss_after) {
            (Some(b), Some(a)) if made > 0 => Some((a as f64 - b as f64) * 1024.0 / made as f64),
            _ => None,
        },
        loadgen_rss_kib: procfs::rss_kib("self").unwrap_or(0),
    }
}

async fn scenario_idle(args: IdleArgs, scenario: &str) -> anyhow::Result<Report> {
    let common = &args.common;
    let cfg = config(common, scenario, None)?;
    let mut report = base_report(&cfg, common);
    let rss_before = servers_rss(&common.server_pids);
    let mut shards = open_shards(common, &cfg).await?;
    let connect = connect_shards(&mut shards).await;
    let result = async {
        let connect = connect?;
        eprintln!(
            "loadgen: {} connections made, {} failed in {:.2} s",
            connect.made,
            connect.failed,
            connect.summary().secs
        );
        report.connect = connect.summary();
        let plan = StepPlan {
            step: 0,
            rate: 0.0,
            secs: args.hold_secs.max(0.0),
            start_unix_ns: unix_ns(),
            drain_max_secs: 0.0,
            drain_quiet_ms: 0,
        };
        let held = run_step(&mut shards, &plan, &common.server_pids).await?;
        // The servers' RSS while every connection is still open.
        let rss_after = servers_rss(&common.server_pids);
        let made = connect.made;
        report.idle = Some(idle_summary(
            made,
            plan.secs,
            held.alive_end,
            rss_before,
            rss_after,
        ));
        anyhow::Ok(())
    }
    .await;
    stop_shards(&mut shards).await;
    result?;
    Ok(report)
}

async fn scenario_fanout(args: FanoutArgs, scenario: &str) -> anyhow::Result<Report> {
    let common = &args.common;
    let cfg = config(common, scenario, Some(&args))?;
    ensure!(
        !args.rates.is_empty() || !args.delivery_rates.is_empty(),
        "give --rates or --delivery-rates"
    );
    let mut report = base_report(&cfg, common);
    let rss_before = servers_rss(&common.server_pids);
    let mut shards = open_shards(common, &cfg).await?;
    let connect = connect_shards(&mut shards).await;
    let result = async {
        let connect = connect?;
        report.connect = connect.summary();
        if rss_before.is_some() {
            // The server's memory with every connection open and no message sent yet: the idle
            // cost per connection, measured on the way.
            tokio::time::sleep(Duration::from_secs(1)).await;
            report.idle = Some(idle_summary(connect.made, 0.0, connect.made, rss_before, servers_rss(&common.server_pids)));
        }
        eprintln!(
            "loadgen: {} connections made, {} failed in {:.2} s ({:.0}/s)",
            connect.made, connect.failed, report.connect.secs, report.connect.per_s
        );
        ensure!(connect.made > 0, "no connection could be made");
        // Room size as the senders see it, for --delivery-rates.
        let room_size = connect.made as f64 / f64::from(cfg.rooms);
        let rates: Vec<f64> = if args.rates.is_empty() {
            args.delivery_rates.iter().map(|d| d / room_size).collect()
        } else {
            args.rates.clone()
        };
        for (k, &rate) in rates.iter().enumerate() {
            let plan = StepPlan {
                step: k as u32,
                rate,
                secs: args.step_secs,
                start_unix_ns: unix_ns() + 200_000_000,
                drain_max_secs: args.drain_max_secs,
                drain_quiet_ms: args.drain_quiet_ms,
            };
            let s = run_step(&mut shards, &plan, &common.server_pids).await?;
            eprintln!(
                "loadgen: step {k}: {:.0} msgs/s offered {:.0} deliveries/s: received {}/{} lost {} dup {} delivered {:.0}/s p50 {:.2} ms p99 {:.2} ms max {:.2} ms loadgen cpu {:.0}%{}",
                s.rate_msgs,
                s.offered_deliveries_per_s,
                s.received,
                s.expected,
                s.lost,
                s.duplicates,
                s.deliveries_per_s,
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                s.loadgen_cpu_pct,
                if s.logins_ok + s.logins_failed > 0 {
                    format!(" logins {:.1}/s ({} failed)", s.logins_per_s, s.logins_failed)
                } else {
                    String::new()
                }
            );
            let stop = if s.lost > 0 {
                Some(format!("step {k} lost {} deliveries", s.lost))
            } else if s.p99_ms > args.stop_p99_ms {
                Some(format!("step {k} p99 {:.1} ms > {} ms", s.p99_ms, args.stop_p99_ms))
            } else if s.disconnects > 0 {
                Some(format!("step {k}: {} connections dropped", s.disconnects))
            } else {
                None
            };
            report.steps.push(s);
            if let Some(why) = stop
                && !args.all_steps
            {
                report.stopped = Some(why);
                break;
            }
        }
        report.find_sustained(args.sustain_p99_ms);
        anyhow::Ok(())
    }
    .await;
    stop_shards(&mut shards).await;
    result?;
    Ok(report)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (common, report) = match cli.cmd {
        Cmd::Login(a) => {
            let target = Target::parse(&a.url)?;
            let client = http_client(None)?;
            println!(
                "{}",
                login(&client, &target.base, &a.user, &a.password).await?
            );
            return Ok(());
        }
        Cmd::Idle(a) | Cmd::ConnectStorm(a) if a.common.child => {
            let scenario = "child";
            return child_main(config(&a.common, scenario, None)?).await;
        }
        Cmd::Fanout(a) if a.common.child => {
            return child_main(config(&a.common, "fanout", Some(&a))?).await;
        }
        Cmd::LoginStorm(a) if a.common.child => {
            return child_main(config(&a.common, "login-storm", Some(&a))?).await;
        }
        Cmd::Idle(a) => (a.common.clone(), scenario_idle(a, "idle").await?),
        Cmd::ConnectStorm(a) => (a.common.clone(), scenario_idle(a, "connect-storm").await?),
        Cmd::Fanout(a) => (a.common.clone(), scenario_fanout(a, "fanout").await?),
        Cmd::LoginStorm(a) => (a.common.clone(), scenario_fanout(a, "login-storm").await?),
    };
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (threads, max_secs) = match &cli.cmd {
        Cmd::Login(_) => (Some(1), 120.0),
        Cmd::Idle(a) | Cmd::ConnectStorm(a) => (a.common.threads, a.common.max_secs),
        Cmd::Fanout(a) | Cmd::LoginStorm(a) => (a.common.threads, a.common.max_secs),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        rt.worker_threads(t.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs_f64(max_secs.max(1.0)), run(cli))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("gave up after --max-secs {max_secs}")))
    });
    // Don't wait for connection tasks still closing.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_csrf_form_token() {
        let html = r#"<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="abc123XYZ">
            <input type="text" name="username"></form>"#;
        assert_eq!(
            hidden_input(html, "csrfmiddlewaretoken").as_deref(),
            Some("abc123XYZ")
        );
        let reordered = r#"<input value="v1" type="hidden" name="csrfmiddlewaretoken">"#;
        assert_eq!(
            hidden_input(reordered, "csrfmiddlewaretoken").as_deref(),
            Some("v1")
        );
        assert_eq!(hidden_input("<form></form>", "csrfmiddlewaretoken"), None);
    }

    #[test]
    fn reads_set_cookie_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("csrftoken=tok; expires=x; Path=/; SameSite=Lax"),
        );
        h.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("sessionid=sess; HttpOnly; Path=/"),
        );
        assert_eq!(set_cookie(&h, "csrftoken").as_deref(), Some("tok"));
        assert_eq!(set_cookie(&h, "sessionid").as_deref(), Some("sess"));
        assert_eq!(set_cookie(&h, "other"), None);
    }

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("http://127.0.0.1:8000").is_ok());
        assert!(Target::parse("http://127.3.2.1:80/").is_ok());
        assert!(Target::parse("http://10.0.0.1:8000").is_err());
        assert!(Target::parse("https://127.0.0.1:8000").is_err());
        assert!(Target::parse("http://example.com:80").is_err());
    }

    fn cfg(connections: u64, rooms: u32, shards: u32, shard: u32) -> Config {
        Config {
            scenario: "test".into(),
            targets: vec![
                Target::parse("http://127.0.0.1:1").expect("target"),
                Target::parse("http://127.0.0.1:2").expect("target"),
            ],
            connections,
            rooms,
            room_prefix: "lg".into(),
            senders: 1,
            size: 100,
            connect_rate: 0.0,
            connect_concurrency: 1,
            connect_timeout: Duration::from_secs(1),
            source_addrs: 4,
            shard,
            shards,
            sessions: vec![],
            users: vec![],
            password: None,
            no_auth: true,
            login_workers: 0,
            login_user: None,
            login_password: None,
        }
    }

    #[test]
    fn shards_partition_connections_and_share_every_room() {
        let (n, k, shards) = (1000u64, 10u32, 3u32);
        let mut seen = vec![0u32; n as usize];
        for i in 0..shards {
            let c = cfg(n, k, shards, i);
            let mine: Vec<u64> = c.my_connections().collect();
            let mut rooms = vec![0u32; k as usize];
            for &g in &mine {
                seen[g as usize] += 1;
                rooms[c.room_of(g) as usize] += 1;
            }
            assert!(rooms.iter().all(|&r| r >= 30), "shard {i}: {rooms:?}");
        }
        assert!(seen.iter().all(|&s| s == 1));
        // One room over two nodes: consecutive connections alternate.
        let c = cfg(4, 1, 1, 0);
        let ports: Vec<u16> = (0..4).map(|g| c.target_of(g).addr.port()).collect();
        assert_eq!(ports, vec![1, 2, 1, 2]);
        assert_eq!(
            source_ip(5, 4),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))
        );
        assert_eq!(source_ip(5, 0), None);
    }
}
