//! The salvo application: router, hoops, pages, static files, health.
//!
//! A page request flows Host check → APPEND_SLASH → session (+ `request.user`) → CSRF → view, the
//! order of the legacy `MIDDLEWARE`; every response gets the security headers Django's
//! `SecurityMiddleware` and `XFrameOptionsMiddleware` add.

pub mod csrf;
pub mod errors;
pub mod forms;
pub mod health;
pub mod host;
pub mod pages;
pub mod server;
pub mod session;
pub mod static_files;
pub mod templates;

use std::sync::Arc;

use salvo::catcher::Catcher;
use salvo::http::header::{HeaderName, LOCATION};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;

use crate::auth::PasswordHasher;
use crate::config::Settings;
use crate::db::Db;
use crate::django::sessions::SessionSigner;
use crate::layer::LayerKind;

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
}

/// The whole HTTP service: global hoops, routes and Django's error pages.
pub fn service(state: Arc<AppState>) -> Service {
    Service::new(router())
        .hoop(InjectState(state))
        .hoop(security_headers)
        .catcher(Catcher::default().hoop(errors::error_pages))
}

fn router() -> Router {
    let pages = Router::new()
        .hoop(host::host_hoop)
        .hoop(append_slash)
        .hoop(session::session_hoop)
        .hoop(csrf::csrf_hoop)
        .get(pages::index)
        .post(pages::index)
        .push(Router::with_path("chat/{room_name}").get(pages::room))
        .push(Router::with_path("login").get(pages::login).post(pages::login))
        .push(Router::with_path("logout").get(pages::logout).post(pages::logout))
        .push(Router::with_path("signup").get(pages::signup).post(pages::signup));
    Router::new()
        .push(Router::with_path("healthz").get(health::healthz))
        .push(
            Router::with_path("static/{**path}")
                .hoop(host::host_hoop)
                .get(static_files::serve_static),
        )
        .push(pages)
}

/// A hoop that puts the shared state into every request's depot.
struct InjectState(Arc<AppState>);

#[async_trait]
impl Handler for InjectState {
    async fn handle(&self, req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
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

/// `SecurityMiddleware` (nosniff, `Referrer-Policy`, `Cross-Origin-Opener-Policy`) and
/// `XFrameOptionsMiddleware` (`DENY`) on every response.
#[handler]
async fn security_headers(req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
    ctrl.call_next(req, depot, res).await;
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.entry(HeaderName::from_static(name)).or_insert(HeaderValue::from_static(value));
    }
}

/// `APPEND_SLASH`: salvo matches `/login` like `/login/`, Django redirects it permanently.
#[handler]
async fn append_slash(req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
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
    }
    ctrl.skip_rest();
}
