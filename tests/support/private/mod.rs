//! Services a test owns outright, to make them TLS-only, restart them or kill them, never
//! touching the machine's shared servers: a CA and certificates made with the `openssl` CLI, a
//! PostgreSQL cluster (`initdb` as the `postgres` user into a temporary directory), a MariaDB
//! (`mariadb-install-db` into a temporary directory) and `redis-server`s (TLS-only, or a
//! master, a replica and sentinels). Every one is stopped when its value drops.

pub mod certs;
pub mod mariadb;
pub mod postgres;
pub mod redis;

use std::process::Command;

pub use certs::Certs;
pub use mariadb::PrivateMariaDb;
pub use postgres::PrivatePostgres;
pub use redis::TlsRedis;

/// Runs a set-up command; a failure panics with its output.
fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temporary directory that `user` may write (the servers refuse to run as root).
fn temp_dir_for(user: &str, prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory");
    run(
        "chown",
        Command::new("chown")
            .arg(format!("{user}:"))
            .arg(dir.path()),
    );
    dir
}
