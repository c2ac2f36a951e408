//! ferrochat: a drop-in Rust replacement for the legacy Django + Channels chat app.
//!
//! Data flows one way: request → session → user → handler → database / layer → sockets.
//!
//! # Module direction
//!
//! The modules below are listed top to bottom; each may import only modules listed **below**
//! it, never one above (`module_order_holds` checks every `crate::` path under `src/`):
//!
//! | module | owns |
//! |---|---|
//! | `cli` | the manage.py-style commands (`main.rs` is a thin shell over it) |
//! | `admin` | Django's admin at `/admin/`, mounted into `web` by `cli::runserver` |
//! | `web` | the salvo app: routes, sessions, CSRF, pages, forms, templates, health, the `/ws/` handshake |
//! | `config` | `Settings` from the environment, handing each module only its own settings type |
//! | `auth` | `authenticate` and the password-hashing thread pool |
//! | `chat` | the per-socket WebSocket consumer and its clock |
//! | `layer` | room fan-out: the local hub and the channel layer (in-process, channels_redis) |
//! | `db` | the three sqlx backends, schema, users, sessions, rooms, messages, stored datetimes |
//! | `ops` | operating: Prometheus metrics, the log format, trusted proxies, TLS-proxy settings, the message rate |
//! | `tls` | the one rustls crypto provider of the database and Redis clients |
//! | `secret` | URL password redaction and the `Password` type whose `Debug` hides it |
//! | `django` | pure Django ports (no I/O): hashers, signing, sessions, CSRF, validators, `json.dumps`, dates, HTML escape, the legacy room-name rule and chat JSON |
//!
//! Nothing below `web` knows about HTTP; `tls`, `django` and `secret` import nothing of the crate.

// Blank lines keep rustfmt from sorting the list out of its order.
pub mod cli;

pub mod admin;

pub mod web;

pub mod config;

pub mod auth;

pub mod chat;

pub mod layer;

pub mod db;

pub mod ops;
pub mod tls;

pub mod secret;

pub mod django;

#[cfg(test)]
mod property_tests;

/// The module list above, top to bottom.
#[cfg(test)]
const MODULE_ORDER: [&str; 12] = [
    "cli", "admin", "web", "config", "auth", "chat", "layer", "db", "ops", "tls", "secret",
    "django",
];

#[cfg(test)]
mod module_order {
    use std::path::{Path, PathBuf};

    use super::MODULE_ORDER;

    fn rank(module: &str) -> Option<usize> {
        MODULE_ORDER.iter().position(|m| *m == module)
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every top-level module a line names through `crate::x` or `crate::{x, y::z}`.
    fn crate_modules(line: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = Vec::new();
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    let group = group.split('}').next().unwrap_or_default();
                    found.extend(group.split(',').map(ident));
                }
                None => found.push(ident(rest)),
            }
        }
        found.retain(|m| !m.is_empty());
        found
    }

    /// The offending `file:line: a -> b` edges of the tree under `src`.
    fn back_edges(src: &Path) -> Vec<String> {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        files.sort();
        let mut edges = Vec::new();
        for file in files {
            let relative = file.strip_prefix(src).expect("under src");
            let first = relative
                .components()
                .next()
                .map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_owned()
                })
                .unwrap_or_default();
            // lib.rs and main.rs sit above every module.
            let Some(from) = rank(&first) else {
                continue;
            };
            let text = std::fs::read_to_string(&file).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for to in crate_modules(line) {
                    match rank(&to) {
                        Some(to_rank) if to_rank > from => {}
                        Some(to_rank) if to_rank == from => {
                            // `crate::` naming its own module is allowed.
                        }
                        _ => edges.push(format!(
                            "{}:{}: {first} -> {to}",
                            relative.display(),
                            number + 1
                        )),
                    }
                }
            }
        }
        edges
    }

    #[test]
    fn module_order_holds() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let edges = back_edges(&src);
        assert!(
            edges.is_empty(),
            "imports against the module direction in src/lib.rs:\n{}",
            edges.join("\n")
        );
    }

    #[test]
    fn a_back_edge_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("django")).expect("mkdir");
        std::fs::write(
            dir.path().join("django/x.rs"),
            "// crate::web in a comment is fine\nuse crate::web::AppState;\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("layer.rs"),
            "use crate::{django::x, db};\nfn f() { crate::chat::g(); crate::nope::h() }\n",
        )
        .expect("write");
        assert_eq!(
            back_edges(dir.path()),
            [
                "django/x.rs:2: django -> web",
                "layer.rs:2: layer -> chat",
                "layer.rs:2: layer -> nope"
            ]
        );
    }
}
