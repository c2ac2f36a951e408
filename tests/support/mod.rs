//! Shared harness for ferrochat's integration tests. Include it with `mod support;`.
//!
//! - [`TestDb`]: a fresh, uniquely named database on SQLite (a temp file), PostgreSQL or
//!   MariaDB/MySQL, dropped when the value drops. `.url()` is a `DATABASE_URL` that ferrochat and
//!   the legacy Django `settings.py` both accept.
//! - [`Legacy`]: the real legacy Django app (a private copy of `vendor/legacy-django`) run from
//!   the legacy venv: `manage.py <args>` and Python snippets with Django set up.
//! - [`html`]: HTML documents normalized (Python's `html.parser`) and diffed, for parity tests.
//! - [`schema`]: normalized schema and Django-row snapshots of a database, with readable diffs.
//! - [`redis_env`]: a test's own slice of the shared Redis, a private `redis-server` to stop and
//!   restart, and the real Python `channels_redis` layer.
//! - [`ws`]: a real WebSocket client for the chat socket (cookie, Origin, frames with deadlines).
//! - [`private`]: servers a test owns (TLS-only PostgreSQL, MariaDB and Redis, Redis Sentinel),
//!   with a CA of its own.
//! - [`ferrochat_bin`]: the built `ferrochat` binary.
//!
//! A missing service (PostgreSQL, MariaDB) or a missing legacy venv makes the test **fail** with
//! a message saying what to start or create; nothing is ever skipped silently.
//!
//! ```ignore
//! mod support;
//! use support::{Legacy, TestDb};
//!
//! #[tokio::test]
//! async fn django_reads_what_ferrochat_writes() {
//!     let tdb = TestDb::postgres();
//!     let db = tdb.connect().await;
//!     ferrochat::db::schema::migrate(&db).await.expect("migrate");
//!     let out = Legacy::new(tdb.url()).manage_ok(&["migrate"]).await;
//!     assert!(out.stdout.contains("No migrations to apply."));
//!     db.close().await;
//! }
//! ```

// Each test binary uses its own subset of the harness.
#![allow(dead_code, unused_imports)]

pub mod db;
pub mod html;
pub mod legacy;
pub mod node;
pub mod private;
pub mod redis_env;
pub mod schema;
pub mod server;
pub mod ws;

use std::path::PathBuf;

pub use db::{Backend, TestDb};
pub use legacy::{Legacy, Output};
pub use server::{Client, Daphne, Page, TestServer};

/// The `DJANGO_SECRET_KEY` tests give both ferrochat and Django, so cookies signed by one verify
/// on the other.
pub const SECRET_KEY: &str = "ferrochat-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// The `ferrochat` binary cargo built for this test run.
pub fn ferrochat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrochat"))
}

/// The repository root (`CARGO_MANIFEST_DIR`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
