//! `/static/`: the legacy frontend's files, byte-identical, embedded in the binary so the server
//! runs from anywhere; `FERROCHAT_STATIC_DIR` serves a team's own directory instead.

use std::path::{Component, Path, PathBuf};

use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use sha2::{Digest, Sha256};

use super::app_state;

/// The legacy `chatapp/static/chatapp/` files, as served at `/static/chatapp/…`, the admin's
/// stylesheet at `/static/ferrochat/admin.css` and the live frontend at `/static/ferrochat/live/`.
const EMBEDDED: &[(&str, &[u8])] = &[
    (
        "chatapp/room.js",
        include_bytes!("../../static/chatapp/room.js"),
    ),
    (
        "chatapp/style.css",
        include_bytes!("../../static/chatapp/style.css"),
    ),
    // ferrochat's own: the admin's stylesheet.
    (
        "ferrochat/admin.css",
        include_bytes!("../../static/ferrochat/admin.css"),
    ),
    // The live frontend (`FERROCHAT_FRONTEND=live`, docs/protocol.md).
    (
        "ferrochat/live/live.js",
        include_bytes!("../../static/ferrochat/live/live.js"),
    ),
    (
        "ferrochat/live/live.css",
        include_bytes!("../../static/ferrochat/live/live.css"),
    ),
];

pub enum StaticFiles {
    Embedded,
    Directory(PathBuf),
}

impl StaticFiles {
    pub fn new(dir: Option<&Path>) -> StaticFiles {
        match dir {
            Some(dir) => StaticFiles::Directory(dir.to_path_buf()),
            None => StaticFiles::Embedded,
        }
    }

    /// The bytes for a request path below `/static/`, refusing anything that could escape the root.
    async fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let rel_path = Path::new(rel);
        if rel.is_empty()
            || !rel_path
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        match self {
            StaticFiles::Embedded => EMBEDDED
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, b)| b.to_vec()),
            StaticFiles::Directory(root) => {
                let path = root.join(rel_path);
                let meta = tokio::fs::metadata(&path).await.ok()?;
                if !meta.is_file() {
                    return None;
                }
                tokio::fs::read(&path).await.ok()
            }
        }
    }
}

/// Content types as Python's `mimetypes` gives them to Django's static `serve` view.
fn content_type(rel: &str) -> &'static str {
    let ext = rel
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/vnd.microsoft.icon",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "map" => "application/json",
        _ => "application/octet-stream",
    }
}

#[handler]
pub async fn serve_static(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), StatusError> {
    let state = app_state(depot)?;
    let rel: String = req.param::<String>("path").unwrap_or_default();
    let Some(bytes) = state.static_files.read(&rel).await else {
        return Err(StatusError::not_found());
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let not_modified = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&rel)));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    if not_modified {
        res.status_code(StatusCode::NOT_MODIFIED);
    } else {
        res.write_body(bytes)
            .map_err(|_| StatusError::internal_server_error())?;
    }
    Ok(())
}
