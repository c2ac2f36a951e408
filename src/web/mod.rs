//! The salvo application: router, hoops, pages, static files, health.
//!
//! A page request flows Host check → APPEND_SLASH → session (+ `request.user`) → CSRF → view, the
//! order of the legacy `MIDDLEWARE`; every response gets the security headers Django's
//! `SecurityMiddleware` and `XFrameOptionsMiddleware` add.

pub mod access;
pub mod csrf;
pub mod errors;
pub mod forms;
pub mod health;
pub mod host;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod server;
pub mod session;
pub mod static_files;
pub mod templates;
pub mod ws;

use std::sync::Arc;

use salvo::catcher::Catcher;
use salvo::http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, LOCATION, TRANSFER_ENCODING};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use tokio_util::task::TaskTracker;

use crate::auth::PasswordHasher;
use crate::chat::consumer::ConsumerContext;
use crate::config::Settings;
use crate::db::Db;
use crate::django::sessions::SessionSigner;
use crate::layer::LayerKind;
use crate::layer::hub::Hub;
use crate::layer::live::Live;

/// The largest request body read: Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` (2.5 MiB), above which
/// Django refuses to parse a form. A larger declared body is answered 413 unread.
pub const MAX_BODY_BYTES: usize = 2_621_440;

/// Everything a request handler may need, built once at startup and shared.
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub layer_kind: LayerKind,
    pub static_files: static_files::StaticFiles,
    pub templates: templates::Templates,
    /// The session signer with `SECRET_KEY` and its fallbacks derived once.
    pub session_signer: SessionSigner,
    pub hasher: PasswordHasher,
    /// The local room hub every socket joins.
    pub hub: Arc<Hub>,
    /// What every WebSocket shares: database, channel layer, clock, limits, shutdown token.
    pub chat: Arc<ConsumerContext>,
    /// Presence and the `ferrochat.v1` events (docs/protocol.md).
    pub live: Arc<Live>,
    /// Every open socket. salvo's graceful stop cannot see upgraded connections, so shutdown
    /// waits for these itself.
    pub sockets: TaskTracker,
    /// Open sockets per process and per user, against their limits.
    pub connections: limits::Connections,
}

/// The whole HTTP service: global hoops, routes and Django's error pages. `mounted` (the admin,
/// which `web` does not import) is served among the pages, behind their hoops.
pub fn service(state: Arc<AppState>, mounted: Router) -> Service {
    Service::new(router(mounted))
        .hoop(access::access_log)
        .hoop(InjectState(state))
        .hoop(proxy::forwarded)
        .hoop(security_headers)
        .hoop(limit_body)
        .catcher(Catcher::default().hoop(errors::error_pages))
}

fn router(mounted: Router) -> Router {
    let pages = Router::new()
        .hoop(host::host_hoop)
        .hoop(append_slash)
        .hoop(session::session_hoop)
        .hoop(csrf::csrf_hoop)
        .get(pages::index)
        .post(pages::index)
        .push(Router::with_path("chat/{room_name}").get(pages::room))
        .push(
            Router::with_path("login")
                .get(pages::login)
                .post(pages::login),
        )
        .push(
            Router::with_path("logout")
                .get(pages::logout)
                .post(pages::logout),
        )
        .push(
            Router::with_path("signup")
                .get(pages::signup)
                .post(pages::signup),
        )
        .push(mounted);
    Router::new()
        .push(Router::with_path("healthz").get(health::healthz))
        .push(Router::with_path("ws/{**rest}").goal(ws::chat_socket))
        .push(
            Router::with_path("static/{**path}")
                .hoop(host::host_hoop)
                .get(static_files::serve_static),
        )
        .push(pages)
        // A path no page matches still passes `CommonMiddleware` (the Host check) and
        // `SessionMiddleware` (a malformed session cookie is deleted) before Django's 404.
        .push(
            Router::with_path("{**rest}")
                .hoop(host::host_hoop)
                .hoop(session::session_hoop)
                .goal(errors::unknown_path),
        )
}

/// A hoop that puts the shared state into every request's depot.
struct InjectState(Arc<AppState>);

#[async_trait]
impl Handler for InjectState {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        depot.insert_typed(self.0.clone());
        ctrl.call_next(req, depot, res).await;
    }
}

/// Reads the shared state a hoop injected; a missing state is a programming error surfaced as 500.
pub fn app_state(depot: &Depot) -> Result<Arc<AppState>, StatusError> {
    depot
        .get_typed::<Arc<AppState>>()
        .cloned()
        .map_err(|_| StatusError::internal_server_error())
}

/// Marks a response `CommonMiddleware` made (a disallowed Host's 400, the `APPEND_SLASH`
/// redirect): in the legacy `MIDDLEWARE` order it never passes through the inner
/// `XFrameOptionsMiddleware`, so it has no `X-Frame-Options`.
pub struct BeforeXFrameOptions;

/// `SecurityMiddleware` (nosniff, `Referrer-Policy`, `Cross-Origin-Opener-Policy`) on every
/// response, and `XFrameOptionsMiddleware` (`DENY`) on those that reach it.
#[handler]
async fn security_headers(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    let x_frame_options = !depot.contains_typed::<BeforeXFrameOptions>();
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        if name == "x-frame-options" && !x_frame_options {
            continue;
        }
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
}

/// Bodies over [`MAX_BODY_BYTES`]: a declared length over it is answered 413 at once, without
/// reading the body (and the connection closed, so the rest is never read either); a chunked
/// body is read up to the limit, and 413 if it goes beyond.
#[handler]
async fn limit_body(req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_big = match declared {
        Some(len) => len > MAX_BODY_BYTES as u64,
        None if req.headers().contains_key(TRANSFER_ENCODING) => {
            req.payload_with_max_size(MAX_BODY_BYTES).await.is_err()
        }
        None => false,
    };
    if too_big {
        tracing::info!(
            path = req.uri().path(),
            declared,
            "request body over {MAX_BODY_BYTES} bytes: 413"
        );
        res.status_code(StatusCode::PAYLOAD_TOO_LARGE);
        res.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        let _ = res.write_body(Vec::<u8>::new());
        ctrl.skip_rest();
        return;
    }
    // salvo's form parser reads up to this (its own default is 64 KiB).
    req.set_secure_max_size(MAX_BODY_BYTES);
}

/// `APPEND_SLASH`: salvo matches `/login` like `/login/`, Django redirects it permanently.
#[handler]
async fn append_slash(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let path = req.uri().path();
    if path.ends_with('/') && !path.contains("//") {
        return;
    }
    if path.contains("//") {
        errors::not_found(res);
    } else {
        let location = match req.uri().query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        res.status_code(StatusCode::MOVED_PERMANENTLY);
        if let Ok(v) = HeaderValue::from_str(&location) {
            res.headers_mut().insert(LOCATION, v);
        }
        res.headers_mut().insert(
            salvo::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        depot.insert_typed(BeforeXFrameOptions);
    }
    ctrl.skip_rest();
}
