//! A PostgreSQL cluster of the test's own, TLS-only: `initdb` as the `postgres` user into a
//! temporary directory, `ssl = on` with a certificate of the test's CA, and a `pg_hba.conf` that
//! rejects every connection over TCP without TLS.

use std::path::PathBuf;
use std::process::Command;

use super::{Certs, run, temp_dir_for};
use crate::support::server::free_port;

pub const USER: &str = "chat";
pub const PASSWORD: &str = "chat-pw";
pub const DATABASE: &str = "chat";

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates, starts and fills the cluster: a `chat` user (password auth) owning a `chat`
    /// database.
    pub fn start(certs: &Certs) -> PrivatePostgres {
        let dir = temp_dir_for("postgres", "ferrochat-pg-");
        let pg = PrivatePostgres {
            dir,
            port: free_port(),
        };
        let data = pg.data();
        pg.as_postgres(
            "initdb",
            &[
                "initdb",
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
        );
        let (cert, key) = certs.server();
        for (from, to) in [
            (cert, "server.crt"),
            (key, "server.key"),
            (certs.ca_pem(), "ca.crt"),
        ] {
            std::fs::copy(&from, data.join(to)).expect("copy a certificate into the cluster");
        }
        run(
            "chown",
            Command::new("chown").arg("-R").arg("postgres:").arg(&data),
        );
        run(
            "chmod",
            Command::new("chmod")
                .arg("600")
                .arg(data.join("server.key")),
        );
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sock}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             ssl_ca_file = 'ca.crt'\nfsync = off\nshared_buffers = 16MB\nmax_connections = 50\n",
            port = pg.port,
            sock = pg.dir.path().display(),
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all chatcert 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("write pg_hba.conf");
        pg.pg_ctl(&["start", "-w", "-t", "60"]);
        pg.psql(&format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
        // Logs in with the client certificate only (pg_hba `cert`): Certs::client_cert.
        pg.psql("CREATE ROLE chatcert LOGIN");
        // Separately: CREATE DATABASE cannot run inside psql's one-command transaction.
        pg.psql(&format!("CREATE DATABASE {DATABASE} OWNER {USER}"));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, what: &str, args: &[&str]) -> String {
        run(
            what,
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .current_dir(self.dir.path()),
        )
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data().to_string_lossy().into_owned();
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        let mut all = vec!["pg_ctl", "-D", &data, "-l", &log];
        all.extend_from_slice(args);
        self.as_postgres("pg_ctl", &all);
    }

    /// Runs SQL as the superuser over the cluster's own socket.
    pub fn psql(&self, sql: &str) {
        let sock = self.dir.path().to_string_lossy().into_owned();
        self.as_postgres(
            "psql",
            &[
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &sock,
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        );
    }

    /// `postgres://chat:…@localhost:<port>/chat?<query>`.
    pub fn url(&self, query: &str) -> String {
        let url = format!(
            "postgres://{USER}:{PASSWORD}@localhost:{}/{DATABASE}",
            self.port
        );
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }

    /// `postgres://chatcert@localhost:<port>/chat?<query>`: no password, the client certificate
    /// logs in.
    pub fn cert_url(&self, query: &str) -> String {
        format!(
            "postgres://chatcert@localhost:{}/{DATABASE}?{query}",
            self.port
        )
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server is back within seconds.
    pub fn restart_fast(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    }

    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    pub fn start_again(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().to_string_lossy().into_owned();
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "pg_ctl",
                "-D",
                &data,
                "stop",
                "-m",
                "immediate",
            ])
            .output();
    }
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the configuration");
    file.write_all(text.as_bytes())
        .expect("append the configuration");
}
