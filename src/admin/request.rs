//! What every admin view shares: the staff check (`AdminSite.admin_view`), the user's
//! permissions, flash messages, and the responses (render, redirect, 403, 500).

use std::sync::Arc;

use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::db::dynamic::WriteError;
use crate::db::{DbError, User};
use crate::django::dates::http_date;
use crate::django::http::quote;
use crate::django::py_json;
use crate::web::csrf::CsrfState;
use crate::web::session::{self, CurrentUser, FallbackKeys, Session};
use crate::web::{AppState, app_state};

use super::perms::Perms;
use super::templates::{AdminTemplateError, AdminTemplates};

/// Why an admin page failed; logged, and the user gets Django's 500 page.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Template(#[from] AdminTemplateError),
    #[error("request state missing: {0}")]
    State(&'static str),
}

pub type AdminResult = Result<(), AdminError>;

/// A request from an active staff user.
pub struct Staff {
    pub state: Arc<AppState>,
    pub templates: Arc<AdminTemplates>,
    pub user: User,
    pub perms: Perms,
}

/// The session key Django's `SessionStorage` keeps messages under.
const MESSAGES_KEY: &str = "_messages";
pub const INFO: i64 = 20;
pub const SUCCESS: i64 = 25;
pub const WARNING: i64 = 30;

pub fn state(depot: &Depot) -> Result<Arc<AppState>, AdminError> {
    app_state(depot).map_err(|_| AdminError::State("app state"))
}

pub fn templates(depot: &Depot) -> Result<Arc<AdminTemplates>, AdminError> {
    depot
        .get_typed::<Arc<AdminTemplates>>()
        .cloned()
        .map_err(|_| AdminError::State("admin templates"))
}

pub fn session(depot: &mut Depot) -> Result<&mut Session, AdminError> {
    depot
        .get_typed_mut::<Session>()
        .map_err(|_| AdminError::State("session"))
}

/// `request.user`, resolved once per request.
pub async fn current_user(depot: &mut Depot) -> Result<Option<User>, AdminError> {
    if let Ok(user) = depot.get_typed::<CurrentUser>() {
        return Ok(user.0.clone());
    }
    let state = state(depot)?;
    let user = session::get_user(&state, session(depot)?, FallbackKeys::Upgrade).await?;
    depot.insert_typed(CurrentUser(user.clone()));
    Ok(user)
}

/// `AdminSite.has_permission`: active and staff.
pub fn is_admin(user: &User) -> bool {
    user.is_active && user.is_staff
}

/// `admin_view`: an active staff user, else a redirect to the admin login with `next`.
pub async fn staff(
    req: &Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<Option<Staff>, AdminError> {
    never_cache(res);
    match current_user(depot).await? {
        Some(user) if is_admin(&user) => {
            let state = state(depot)?;
            let perms = Perms::load(&state.db, &user).await?;
            Ok(Some(Staff {
                state,
                templates: templates(depot)?,
                user,
                perms,
            }))
        }
        _ => {
            redirect(
                res,
                &format!("/admin/login/?next={}", quote(&full_path(req), "/")),
            );
            Ok(None)
        }
    }
}

pub fn full_path(req: &Request) -> String {
    match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_owned(),
    }
}

pub fn csrf_token(depot: &mut Depot) -> Result<String, AdminError> {
    Ok(depot
        .get_typed_mut::<CsrfState>()
        .map_err(|_| AdminError::State("csrf"))?
        .token())
}

/// `messages.add_message`, stored as Django's `SessionStorage` stores them.
pub fn add_message(depot: &mut Depot, level: i64, text: &str) -> AdminResult {
    let session = session(depot)?;
    let mut list = match session.get(MESSAGES_KEY) {
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
        _ => Vec::new(),
    };
    list.push(json!(["__json_message", 0, level, text, ""]));
    session.insert(
        MESSAGES_KEY,
        Value::String(py_json::dumps(&Value::Array(list))),
    );
    Ok(())
}

/// The pending messages, removed from the session (they show once).
pub fn take_messages(depot: &mut Depot) -> Result<Vec<FlashMessage>, AdminError> {
    let session = session(depot)?;
    let list = match session.get(MESSAGES_KEY) {
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
        _ => return Ok(Vec::new()),
    };
    session.insert(MESSAGES_KEY, Value::String("[]".to_owned()));
    Ok(list
        .iter()
        .filter_map(|m| {
            let level = m.get(2)?.as_i64()?;
            let text = m.get(3)?.as_str()?.to_owned();
            let tag = match level {
                SUCCESS => "success",
                WARNING => "warning",
                40 => "error",
                _ => "info",
            };
            Some(FlashMessage { tag, text })
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct FlashMessage {
    pub tag: &'static str,
    pub text: String,
}

/// One breadcrumb: an empty `url` is the current page.
#[derive(Debug, Clone, Serialize)]
pub struct Crumb {
    pub label: String,
    pub url: String,
}

/// What `admin/base.html` reads on every page.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    pub title: String,
    pub username: String,
    pub csrf_token: String,
    pub messages: Vec<FlashMessage>,
    /// The trail from the index; the last has no link.
    pub breadcrumbs: Vec<Crumb>,
}

impl Chrome {
    pub fn new(
        depot: &mut Depot,
        username: &str,
        title: impl Into<String>,
    ) -> Result<Chrome, AdminError> {
        Ok(Chrome {
            title: title.into(),
            username: username.to_owned(),
            csrf_token: csrf_token(depot)?,
            messages: take_messages(depot)?,
            breadcrumbs: vec![Crumb {
                label: "Home".to_owned(),
                url: "/admin/".to_owned(),
            }],
        })
    }

    pub fn crumb(mut self, label: impl Into<String>, url: impl Into<String>) -> Chrome {
        self.breadcrumbs.push(Crumb {
            label: label.into(),
            url: url.into(),
        });
        self
    }
}

pub fn render_html(res: &mut Response, html: String) {
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let _ = res.write_body(html);
}

pub fn render(
    templates: &AdminTemplates,
    res: &mut Response,
    name: &'static str,
    context: &impl Serialize,
) -> AdminResult {
    render_html(res, templates.render(name, context)?);
    Ok(())
}

pub fn redirect(res: &mut Response, to: &str) {
    res.status_code(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
}

/// `PermissionDenied` → Django's default 403 page.
pub fn forbidden(res: &mut Response) {
    res.status_code(StatusCode::FORBIDDEN);
    render_html(
        res,
        "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>403 Forbidden</title>\n</head>\n<body>\n  <h1>403 Forbidden</h1><p></p>\n</body>\n</html>\n".to_owned(),
    );
}

/// `never_cache`, which `admin_view` puts on every admin page.
pub fn never_cache(res: &mut Response) {
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&http_date(chrono::Utc::now().timestamp())) {
        headers.insert(EXPIRES, v);
    }
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
}

/// Runs a view's result: an error is logged and answered with Django's 500 page.
pub fn finish(res: &mut Response, result: AdminResult) {
    if let Err(e) = result {
        tracing::error!(error = %e, "admin page failed");
        crate::web::errors::server_error(res);
    }
}

/// Every value of a submitted form field, in order (`request.POST.getlist`).
pub async fn form_list(req: &mut Request, name: &str) -> Vec<String> {
    match req.form_data().await {
        Ok(data) => data.fields.get_vec(name).cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// One submitted form field (the last value, as `QueryDict.get`).
pub async fn form_value(req: &mut Request, name: &str) -> Option<String> {
    form_list(req, name).await.pop()
}
