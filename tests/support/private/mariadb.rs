//! A MariaDB of the test's own that requires TLS (`require_secure_transport`): the shared one
//! has TLS disabled and must not be restarted. `mariadb-install-db` into a temporary directory,
//! `mariadbd` on a free port with a certificate of the test's CA.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Certs, run, temp_dir_for};
use crate::support::server::free_port;

pub const USER: &str = "chat";
pub const PASSWORD: &str = "chat-pw";
pub const DATABASE: &str = "chat";

pub struct PrivateMariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    certs: (PathBuf, PathBuf, PathBuf),
}

impl PrivateMariaDb {
    pub fn start(certs: &Certs) -> PrivateMariaDb {
        let dir = temp_dir_for("mysql", "ferrochat-mariadb-");
        let data = dir.path().join("data");
        run(
            "mariadb-install-db",
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args(["--user=mysql", "--auth-root-authentication-method=socket"])
                .arg("--skip-test-db"),
        );
        let (cert, key) = certs.server();
        let mut db = PrivateMariaDb {
            dir,
            port: free_port(),
            child: None,
            certs: (certs.ca_pem(), cert, key),
        };
        db.start_again();
        db.sql(&format!(
            "CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4; \
             CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
        ));
        db
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Starts `mariadbd` (again, on the same port) and waits until it answers on its socket.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the private MariaDB is running");
        let (ca, cert, key) = &self.certs;
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!(
                "--datadir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--user=mysql", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"])
            .arg("--require-secure-transport=ON")
            .arg(format!("--ssl-ca={}", ca.display()))
            .arg(format!("--ssl-cert={}", cert.display()))
            .arg(format!("--ssl-key={}", key.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("mariadbd is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-u", "root", "-e", "SELECT 1"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("mariadbd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, as a service manager does) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on a child we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Runs SQL as root over the server's socket.
    pub fn sql(&self, sql: &str) {
        run(
            "mariadb",
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-u", "root", "-e", sql]),
        );
    }

    /// `mysql://chat:…@localhost:<port>/chat?<query>`.
    pub fn url(&self, query: &str) -> String {
        let url = format!(
            "mysql://{USER}:{PASSWORD}@localhost:{}/{DATABASE}",
            self.port
        );
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
