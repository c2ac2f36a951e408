//! The access log and the HTTP metrics: one line per request (target `ferrochat::access`) with
//! method, path, status, duration, bytes and client address (after `FERROCHAT_TRUSTED_PROXIES`),
//! and `ferrochat_http_requests_total` / `ferrochat_http_request_duration_seconds` by handler.
//! A WebSocket's session end is logged by the consumer in the same shape.

use std::time::Instant;

use salvo::http::header::CONTENT_LENGTH;
use salvo::prelude::*;

use crate::ops::metrics::metrics;

pub use crate::ops::logging::ACCESS_TARGET;

/// The `handler` label: the route a path belongs to, from a fixed set (a path a client makes
/// up must not make a new time series).
pub fn handler_label(path: &str) -> &'static str {
    match path {
        "/" => "index",
        "/healthz" | "/healthz/" => "healthz",
        "/login/" | "/login" => "login",
        "/logout/" | "/logout" => "logout",
        "/signup/" | "/signup" => "signup",
        p if p.starts_with("/ws/") => "ws",
        p if p.starts_with("/static/") => "static",
        p if p.starts_with("/chat/") => "room",
        _ => "other",
    }
}

/// The client's address for logs: `ip:port` (after `FERROCHAT_TRUSTED_PROXIES`), or `unix`
/// for a peer on a Unix socket.
pub fn client_addr(req: &Request) -> String {
    req.remote_addr()
        .clone()
        .into_std()
        .map_or_else(|| "unix".to_owned(), |a| a.to_string())
}

#[handler]
pub async fn access_log(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let start = Instant::now();
    ctrl.call_next(req, depot, res).await;
    let took = start.elapsed();
    let status = res.status_code.map_or(200, |s| s.as_u16());
    let path = req.uri().path();
    let handler = handler_label(path);
    metrics().http_request(handler, status, took);
    let bytes = res.body.size().or_else(|| {
        res.headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    tracing::info!(
        target: ACCESS_TARGET,
        method = %req.method(),
        path,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        bytes = bytes.unwrap_or(0),
        client = %client_addr(req),
        handler,
        "{} {} {status}",
        req.method(),
        path,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_labels_are_a_fixed_set() {
        assert_eq!(handler_label("/"), "index");
        assert_eq!(handler_label("/chat/lobby/"), "room");
        assert_eq!(handler_label("/ws/chat/lobby/"), "ws");
        assert_eq!(handler_label("/static/chat/room.js"), "static");
        assert_eq!(handler_label("/wp-admin/x"), "other");
    }
}
