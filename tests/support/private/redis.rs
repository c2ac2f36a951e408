//! `redis-server`s of the test's own: one listening only on a TLS port, and (for Sentinel) a
//! master, a replica and three sentinels (`redis-server --sentinel`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::Certs;
use crate::support::server::free_port;

/// `redis-server --port 0 --tls-port <port>`: no plain-text port at all.
pub struct TlsRedis {
    pub port: u16,
    ca: PathBuf,
    _child: Child,
}

impl TlsRedis {
    /// With the certificate for `redis.internal` (`named`) or for `127.0.0.1` (`server`).
    pub async fn start(certs: &Certs, named: bool) -> TlsRedis {
        TlsRedis::start_with(certs, named, false).await
    }

    /// `client_certs`: clients must present a certificate of the CA (`--tls-auth-clients yes`).
    pub async fn start_with(certs: &Certs, named: bool, client_certs: bool) -> TlsRedis {
        let (cert, key) = if named { certs.named() } else { certs.server() };
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(certs.ca_pem())
            .args([
                "--tls-auth-clients",
                if client_certs { "yes" } else { "no" },
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        let redis = TlsRedis {
            port,
            ca: certs.ca_pem(),
            _child: child,
        };
        let client = client_certs.then(|| certs.client_cert());
        wait_for_ping_as(port, Some(&redis.ca), client.as_ref()).await;
        redis
    }

    /// `rediss://127.0.0.1:<port>/<db>?<query>`.
    pub fn url(&self, db: u32, query: &str) -> String {
        let url = format!("rediss://127.0.0.1:{}/{db}", self.port);
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }

    /// `?ssl_ca_certs=<ca>`: the URL a Django deployment of it would have.
    pub fn url_with_ca(&self, db: u32) -> String {
        self.url(db, &format!("ssl_ca_certs={}", self.ca.display()))
    }
}

/// `redis-cli PING` until it answers (over TLS when `ca` is given).
pub async fn wait_for_ping(port: u16, ca: Option<&Path>) {
    wait_for_ping_as(port, ca, None).await;
}

async fn wait_for_ping_as(port: u16, ca: Option<&Path>, client: Option<&(PathBuf, PathBuf)>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(ca) = ca {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        if let Some((cert, key)) = client {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let out = cmd.arg("PING").output().await;
        if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not answer PING"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `redis-cli` against a port, returning its output.
pub async fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A master, a replica and three sentinels watching them as `master_name`.
pub struct SentinelGroup {
    pub master_name: String,
    pub master_port: u16,
    pub replica_port: u16,
    pub sentinel_ports: Vec<u16>,
    dir: tempfile::TempDir,
    _children: Vec<Child>,
}

impl SentinelGroup {
    pub async fn start(master_name: &str) -> SentinelGroup {
        let dir = tempfile::Builder::new()
            .prefix("ferrochat-sentinel-")
            .tempdir()
            .expect("a temporary directory");
        let master_port = free_port();
        let replica_port = free_port();
        let mut children = Vec::new();
        let server = |port: u16, extra: &[String]| {
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(extra)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server is installed")
        };
        children.push(server(master_port, &[]));
        wait_for_ping(master_port, None).await;
        children.push(server(
            replica_port,
            &[
                "--replicaof".into(),
                "127.0.0.1".into(),
                master_port.to_string(),
            ],
        ));
        wait_for_ping(replica_port, None).await;
        let mut sentinel_ports = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\n\
                     sentinel monitor {master_name} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {master_name} 2000\n\
                     sentinel failover-timeout {master_name} 10000\n\
                     sentinel parallel-syncs {master_name} 1\n"
                ),
            )
            .expect("write a sentinel configuration");
            children.push(
                Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("redis-server is installed"),
            );
            wait_for_ping(port, None).await;
            sentinel_ports.push(port);
        }
        SentinelGroup {
            master_name: master_name.to_owned(),
            master_port,
            replica_port,
            sentinel_ports,
            dir,
            _children: children,
        }
    }

    /// `127.0.0.1:<port>,…` for `FERROCHAT_REDIS_SENTINELS`.
    pub fn sentinels(&self) -> String {
        self.sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port the sentinels currently name as master.
    pub async fn current_master(&self) -> u16 {
        let out = cli(
            self.sentinel_ports[0],
            &["SENTINEL", "get-master-addr-by-name", &self.master_name],
        )
        .await;
        out.lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no master named: {out}"))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
