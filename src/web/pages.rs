//! The legacy app's views (`chatapp/views.py` and `django.contrib.auth.views`), rendering the
//! Tera ports of its templates.

use std::sync::Arc;

use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION};
use salvo::http::{HeaderValue, Method, StatusCode};
use salvo::prelude::*;

use crate::auth::{self, AuthError};
use crate::config::Frontend;
use crate::db::DbError;
use crate::db::users::{NewUser, User};
use crate::django::dates::http_date;
use crate::django::http::{quote, url_has_allowed_host_and_scheme};
use crate::django::room_name::RoomName;
use crate::ops::metrics::metrics;

use super::csrf::CsrfState;
use super::errors::{method_not_allowed, not_found, server_error};
use super::forms::{AuthenticationForm, DjangoValidators, RoomForm, UserCreationForm};
use super::host::allowed_host;
use super::proxy::is_secure;
use super::session::{self, CurrentUser, FallbackKeys, Session};
use super::templates::{
    ChatMessageContext, IndexPage, LiveRoomPage, LoginPage, Page, RoomPage, SignupPage, UserContext,
};
use super::{AppState, app_state};

/// `HISTORY_LENGTH` in the legacy `views.py`.
const HISTORY_LENGTH: i64 = 50;
const LOGIN_URL: &str = "/login/";
const LOGIN_REDIRECT_URL: &str = "/";
const LOGOUT_REDIRECT_URL: &str = "/login/";

/// Why a page could not be served; the details go to the log, the user gets Django's 500 page.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Template(#[from] super::templates::TemplateError),
    #[error("request state missing: {0}")]
    State(&'static str),
}

type PageResult = Result<(), PageError>;

/// Runs a view and turns its error into a logged 500.
fn finish(res: &mut Response, result: PageResult) {
    if let Err(e) = result {
        tracing::error!(error = %e, "page failed");
        server_error(res);
    }
}

struct Ctx {
    state: Arc<AppState>,
}

fn ctx(depot: &Depot) -> Result<Ctx, PageError> {
    Ok(Ctx {
        state: app_state(depot).map_err(|_| PageError::State("app state"))?,
    })
}

/// `request.user`, resolved on first use as Django's lazy `AuthenticationMiddleware` user is:
/// only a view that looks at the user reads the session (so only its response gets
/// `Vary: Cookie`, and only it flushes a session whose password hash is stale).
async fn current_user(depot: &mut Depot) -> Result<Option<User>, PageError> {
    if let Ok(user) = depot.get_typed::<CurrentUser>() {
        return Ok(user.0.clone());
    }
    let state = app_state(depot).map_err(|_| PageError::State("app state"))?;
    let session = depot
        .get_typed_mut::<Session>()
        .map_err(|_| PageError::State("session"))?;
    let user = session::get_user(&state, session, FallbackKeys::Upgrade).await?;
    depot.insert_typed(CurrentUser(user.clone()));
    Ok(user)
}

/// The `user` of the template context (`django.contrib.auth.context_processors.auth`).
async fn user_context(depot: &mut Depot) -> Result<UserContext, PageError> {
    Ok(match current_user(depot).await? {
        Some(u) => UserContext::authenticated(u.username),
        None => UserContext::anonymous(),
    })
}

fn csrf_token(depot: &mut Depot) -> Result<String, PageError> {
    Ok(depot
        .get_typed_mut::<CsrfState>()
        .map_err(|_| PageError::State("csrf"))?
        .token())
}

fn render<P: Page>(state: &AppState, res: &mut Response, page: &P) -> PageResult {
    let html = state.templates.render_page(page)?;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let _ = res.write_body(html);
    Ok(())
}

fn redirect(res: &mut Response, to: &str) {
    res.status_code(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
}

/// `never_cache`: what Django's `add_never_cache_headers` sets on the login and logout views.
fn never_cache(res: &mut Response) {
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&http_date(chrono::Utc::now().timestamp())) {
        headers.insert(EXPIRES, v);
    }
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
}

/// `login_required`: anonymous users go to `/login/?next=<full path>`.
async fn require_login(
    req: &Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<bool, PageError> {
    if current_user(depot).await?.is_some() {
        return Ok(true);
    }
    let full_path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_owned(),
    };
    // `QueryDict.urlencode(safe="/")` of the `next` value.
    redirect(res, &format!("{LOGIN_URL}?next={}", quote(&full_path, "/")));
    Ok(false)
}

async fn form_field(req: &mut Request, name: &str) -> Option<String> {
    req.form::<String>(name).await
}

/// `RedirectURLMixin.get_redirect_url`: `next` from the POST, else the query, when it is safe
/// (on a secure request, only an `https` URL: `require_https=request.is_secure()`).
pub async fn safe_next(req: &mut Request, state: &AppState, secure: bool) -> String {
    let mut next = None;
    if req.method() == Method::POST {
        next = form_field(req, "next").await.filter(|n| !n.is_empty());
    }
    let next = next
        .or_else(|| req.query::<String>("next"))
        .unwrap_or_default();
    if next.is_empty() {
        return next;
    }
    let Some(host) = allowed_host(req, &state.settings.allowed_hosts, state.settings.debug) else {
        return String::new();
    };
    if url_has_allowed_host_and_scheme(&next, &[host.as_str()], secure) {
        next
    } else {
        String::new()
    }
}

/// `chatapp.views.index`: the room list and the join form.
#[handler]
pub async fn index(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result = async {
        if !require_login(req, depot, res).await? {
            return Ok(());
        }
        let Ctx { state } = ctx(depot)?;
        let form = if req.method() == Method::POST {
            let form = RoomForm::bind(form_field(req, "room_name").await.as_deref());
            if let Some(name) = form.cleaned_room_name() {
                redirect(res, &format!("/chat/{name}/"));
                return Ok(());
            }
            form
        } else {
            RoomForm::new()
        };
        let rooms = state.db.room_names().await?;
        let page = IndexPage {
            user: user_context(depot).await?,
            csrf_token: csrf_token(depot)?,
            form: form.context(),
            rooms,
        };
        render(&state, res, &page)
    }
    .await;
    finish(res, result);
}

/// `chatapp.views.room`: creates the room if needed, shows the last 50 messages oldest first
/// (with `FERROCHAT_FRONTEND=live`, in the live frontend's page).
#[handler]
pub async fn room(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result = async {
        if !require_login(req, depot, res).await? {
            return Ok(());
        }
        let Ctx { state } = ctx(depot)?;
        let raw: String = req.param::<String>("room_name").unwrap_or_default();
        let Ok(name) = RoomName::parse(&raw) else {
            not_found(res);
            return Ok(());
        };
        // `get_or_create` then the history: one query when the room exists (the usual case).
        let history = match state.db.room_history(name.as_str(), HISTORY_LENGTH).await? {
            Some(messages) => messages,
            None => {
                let stored_room = state.db.room_get_or_create(name.as_str()).await?;
                state
                    .db
                    .messages_latest(stored_room.id, HISTORY_LENGTH)
                    .await?
            }
        };
        let chat_messages = history
            .into_iter()
            .map(|m| ChatMessageContext {
                id: m.id,
                username: m.username,
                content: m.content,
                timestamp: m.timestamp,
            })
            .collect();
        let page = RoomPage {
            user: user_context(depot).await?,
            csrf_token: csrf_token(depot)?,
            room_name: name.as_str().to_owned(),
            chat_messages,
        };
        match state.settings.frontend {
            Frontend::Legacy => render(&state, res, &page),
            Frontend::Live => render(&state, res, &LiveRoomPage(page)),
        }
    }
    .await;
    finish(res, result);
}

/// `django.contrib.auth.login` for this request: the session, `request.user`, and a new CSRF
/// secret (`rotate_token`).
async fn log_in(state: &AppState, depot: &mut Depot, user: User) -> PageResult {
    let session = depot
        .get_typed_mut::<Session>()
        .map_err(|_| PageError::State("session"))?;
    session::login(state, session, &user).await?;
    depot.insert_typed(CurrentUser(Some(user)));
    if let Ok(csrf) = depot.get_typed_mut::<CsrfState>() {
        csrf.rotate();
    }
    Ok(())
}

/// `LoginView` with `registration/login.html`.
#[handler]
pub async fn login(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result = async {
        let Ctx { state } = ctx(depot)?;
        never_cache(res);
        let next = safe_next(req, &state, is_secure(depot)).await;
        let form = if req.method() == Method::POST {
            let username = form_field(req, "username").await;
            let password = form_field(req, "password").await;
            let mut form = AuthenticationForm::bind(username.as_deref(), password.as_deref());
            if let Some((username, password)) = form.credentials() {
                let user = auth::authenticate(&state.db, &state.hasher, username, password).await?;
                let m = metrics();
                let outcome = if user.is_some() {
                    &m.logins_ok
                } else {
                    &m.logins_failed
                };
                outcome.inc();
                match user {
                    Some(user) => {
                        log_in(&state, depot, user).await?;
                        let to = if next.is_empty() {
                            LOGIN_REDIRECT_URL
                        } else {
                            next.as_str()
                        };
                        redirect(res, to);
                        return Ok(());
                    }
                    None => form.reject_login(),
                }
            }
            form
        } else {
            AuthenticationForm::new()
        };
        let page = LoginPage {
            user: user_context(depot).await?,
            csrf_token: csrf_token(depot)?,
            form: form.context(),
            next,
        };
        render(&state, res, &page)
    }
    .await;
    finish(res, result);
}

/// `LogoutView`: POST only since Django 5.0; logs out and redirects to `LOGOUT_REDIRECT_URL`
/// (or a safe `next`).
#[handler]
pub async fn logout(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result = async {
        never_cache(res);
        if req.method() != Method::POST {
            method_not_allowed(res, "POST, OPTIONS");
            return Ok(());
        }
        let Ctx { state } = ctx(depot)?;
        let next = safe_next(req, &state, is_secure(depot)).await;
        let session = depot
            .get_typed_mut::<Session>()
            .map_err(|_| PageError::State("session"))?;
        session::logout(&state, session).await?;
        redirect(
            res,
            if next.is_empty() {
                LOGOUT_REDIRECT_URL
            } else {
                &next
            },
        );
        Ok(())
    }
    .await;
    finish(res, result);
}

/// `chatapp.views.signup`: `UserCreationForm`, then log the new user in.
#[handler]
pub async fn signup(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result = async {
        let Ctx { state } = ctx(depot)?;
        let form = if req.method() == Method::POST {
            let username = form_field(req, "username").await;
            let password1 = form_field(req, "password1").await;
            let password2 = form_field(req, "password2").await;
            let mut form = UserCreationForm::bind(
                username.as_deref(),
                password1.as_deref(),
                password2.as_deref(),
            );
            let taken = match form.username_for_lookup() {
                Some(name) => state.db.username_exists_case_insensitive(name).await?,
                None => false,
            };
            form.validate(taken, &DjangoValidators);
            if let Some(valid) = form.cleaned() {
                let password_hash = state.hasher.make(valid.password.into_plain()).await?;
                let created = state
                    .db
                    .create_user(NewUser::signup(valid.username, password_hash))
                    .await;
                match created {
                    Ok(user) => {
                        log_in(&state, depot, user).await?;
                        redirect(res, "/");
                        return Ok(());
                    }
                    // Someone took the name between the check and the insert.
                    Err(DbError::UsernameTaken) => {
                        let mut form = UserCreationForm::bind(
                            username.as_deref(),
                            password1.as_deref(),
                            password2.as_deref(),
                        );
                        form.validate(true, &DjangoValidators);
                        form
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                form
            }
        } else {
            UserCreationForm::new()
        };
        let page = SignupPage {
            user: user_context(depot).await?,
            csrf_token: csrf_token(depot)?,
            form: form.context(),
        };
        render(&state, res, &page)
    }
    .await;
    finish(res, result);
}
