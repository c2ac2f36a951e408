//! Django's session middleware on the `django_session` table, and the `login()`/`logout()`/
//! `get_user()` of `django.contrib.auth` on top of it (django_formats.md §2).
//!
//! The hoop loads the session named by the `sessionid` cookie before the handler runs and, after
//! it, saves what changed and sets or deletes the cookie as `SessionMiddleware.process_response`
//! does. Handlers reach it through [`Session`] in the depot.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use salvo::http::HeaderValue;
use salvo::http::cookie::{Cookie, SameSite};
use salvo::http::header::VARY;
use salvo::prelude::*;
use serde_json::{Map, Value};

use crate::db::users::User;
use crate::db::{Db, DbError, datetime};
use crate::django::crypto::constant_time_eq;
use crate::django::sessions::{
    AUTH_USER_BACKEND, AUTH_USER_HASH, AUTH_USER_ID, MODEL_BACKEND, SessionSigner,
    is_valid_session_key, new_session_key, session_auth_hash,
};

use super::{AppState, app_state};

pub const SESSION_COOKIE_NAME: &str = "sessionid";
/// `SESSION_COOKIE_AGE`: two weeks.
pub const SESSION_COOKIE_AGE: i64 = 1_209_600;

/// One request's session (`request.session`).
#[derive(Debug, Default)]
pub struct Session {
    /// The key of a row that exists (or will exist once saved).
    key: Option<String>,
    data: Map<String, Value>,
    modified: bool,
    accessed: bool,
    /// The request carried a `sessionid` cookie (so an emptied session deletes it).
    cookie_in_request: bool,
    /// That cookie's key is one Django keeps without looking it up (8 characters or more,
    /// `SessionBase._validate_session_key`).
    cookie_key_plausible: bool,
}

impl Session {
    /// Loads the session a `sessionid` cookie names: a missing, expired or malformed key gives
    /// an empty session; a row whose data fails to verify keeps its key with empty data, as Django.
    pub async fn load(
        db: &Db,
        signer: &SessionSigner,
        cookie: Option<&str>,
    ) -> Result<Session, DbError> {
        let mut session = Session {
            cookie_in_request: cookie.is_some(),
            cookie_key_plausible: cookie.is_some_and(|k| k.chars().count() >= 8),
            ..Session::default()
        };
        let Some(key) = cookie.filter(|k| is_valid_session_key(k)) else {
            return Ok(session);
        };
        if let Some(row) = db.session_load(key, &datetime::now()).await? {
            session.key = Some(key.to_owned());
            session.data = signer.decode(&row.session_data).unwrap_or_default();
        }
        Ok(session)
    }

    pub fn get(&mut self, name: &str) -> Option<&Value> {
        self.accessed = true;
        self.data.get(name)
    }

    pub fn insert(&mut self, name: &str, value: Value) {
        self.accessed = true;
        self.modified = true;
        self.data.insert(name.to_owned(), value);
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.data.is_empty()
    }

    /// `is_empty()` as `SessionMiddleware.process_response` sees it: Django reads the row only
    /// when a view reads the session, so a session never read is empty only when its cookie
    /// key was malformed (a stale but well-formed cookie survives a page that ignores it).
    fn is_empty_after_view(&self) -> bool {
        if self.accessed {
            self.is_empty()
        } else {
            !self.cookie_key_plausible
        }
    }

    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `flush()`: deletes the row now and empties the session (the cookie is then deleted).
    pub async fn flush(&mut self, db: &Db) -> Result<(), DbError> {
        self.accessed = true;
        self.modified = true;
        self.data.clear();
        if let Some(key) = self.key.take() {
            db.session_delete(&key).await?;
        }
        Ok(())
    }

    /// `cycle_key()`: same data under a new key; the old row goes (session fixation defence).
    pub async fn cycle_key(&mut self, db: &Db, signer: &SessionSigner) -> Result<(), DbError> {
        self.accessed = true;
        self.modified = true;
        let old = self.key.take();
        self.create(db, signer).await?;
        if let Some(old) = old {
            db.session_delete(&old).await?;
        }
        Ok(())
    }

    /// Inserts the data under a fresh key, drawing again on the (astronomically rare) collision.
    async fn create(&mut self, db: &Db, signer: &SessionSigner) -> Result<(), DbError> {
        let now = datetime::now();
        let data = signer.encode(&self.data, now.timestamp());
        let expire = expiry_from(now);
        loop {
            let key = new_session_key();
            if db.session_insert(&key, &data, &expire).await? {
                self.key = Some(key);
                return Ok(());
            }
        }
    }

    /// `save()`: update the row in place, or create one when there is none (any more).
    async fn save(&mut self, db: &Db, signer: &SessionSigner) -> Result<(), DbError> {
        let Some(key) = self.key.clone() else {
            return self.create(db, signer).await;
        };
        let now = datetime::now();
        let data = signer.encode(&self.data, now.timestamp());
        if !db.session_update(&key, &data, &expiry_from(now)).await? {
            // Deleted meanwhile (a logout elsewhere). Django answers 400 SessionInterrupted;
            // starting a fresh session keeps the user's request working instead.
            self.key = None;
            return self.create(db, signer).await;
        }
        Ok(())
    }
}

fn expiry_from(now: DateTime<Utc>) -> DateTime<Utc> {
    now + TimeDelta::seconds(SESSION_COOKIE_AGE)
}

/// The user of this request (`request.user`), cached in the depot once a view resolved it.
#[derive(Debug, Clone, Default)]
pub struct CurrentUser(pub Option<User>);

impl CurrentUser {
    pub fn user(&self) -> Option<&User> {
        self.0.as_ref()
    }
}

/// How `get_user` treats a session hash made with a fallback secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackKeys {
    /// `django.contrib.auth.get_user`: re-sign the hash with the current key and cycle the session.
    Upgrade,
    /// `channels.auth.get_user` (WebSocket handshakes): no fallbacks, a mismatch is anonymous.
    Ignore,
}

/// `django.contrib.auth.get_user`: the session's user if the id, backend and password hash all
/// check out; otherwise anonymous, and a session whose hash no longer matches is flushed.
pub async fn get_user(
    state: &AppState,
    session: &mut Session,
    fallbacks: FallbackKeys,
) -> Result<Option<User>, DbError> {
    let user_id = match session.get(AUTH_USER_ID) {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let backend_ok =
        matches!(session.get(AUTH_USER_BACKEND), Some(Value::String(b)) if b == MODEL_BACKEND);
    let (Some(user_id), true) = (user_id, backend_ok) else {
        return Ok(None);
    };
    let Some(user) = state.db.user_by_id(user_id).await? else {
        return Ok(None);
    };
    if !user.is_active {
        return Ok(None);
    }
    let stored_hash = match session.get(AUTH_USER_HASH) {
        Some(Value::String(h)) if !h.is_empty() => h.clone(),
        _ => String::new(),
    };
    let secret = &state.settings.secret_key;
    if !stored_hash.is_empty()
        && constant_time_eq(
            stored_hash.as_bytes(),
            session_auth_hash(&user.password, secret).as_bytes(),
        )
    {
        return Ok(Some(user));
    }
    if fallbacks == FallbackKeys::Upgrade && !stored_hash.is_empty() {
        let matches_fallback = state.settings.secret_key_fallbacks.iter().any(|old| {
            constant_time_eq(
                stored_hash.as_bytes(),
                session_auth_hash(&user.password, old).as_bytes(),
            )
        });
        if matches_fallback {
            session.cycle_key(&state.db, &state.session_signer).await?;
            session.insert(
                AUTH_USER_HASH,
                Value::String(session_auth_hash(&user.password, secret)),
            );
            return Ok(Some(user));
        }
    }
    session.flush(&state.db).await?;
    Ok(None)
}

/// `django.contrib.auth.login`: keeps the key for the same user with the same hash, flushes a
/// session of another user, cycles an anonymous one; stores the three auth keys.
pub async fn login(state: &AppState, session: &mut Session, user: &User) -> Result<(), DbError> {
    let hash = session_auth_hash(&user.password, &state.settings.secret_key);
    let current_id = match session.get(AUTH_USER_ID) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let user_id = user.id.to_string();
    match current_id {
        Some(id) => {
            let same_hash = matches!(session.get(AUTH_USER_HASH), Some(Value::String(h)) if constant_time_eq(h.as_bytes(), hash.as_bytes()));
            if id != user_id || !same_hash {
                session.flush(&state.db).await?;
            }
        }
        None => session.cycle_key(&state.db, &state.session_signer).await?,
    }
    session.insert(AUTH_USER_ID, Value::String(user_id));
    session.insert(AUTH_USER_BACKEND, Value::String(MODEL_BACKEND.to_owned()));
    session.insert(AUTH_USER_HASH, Value::String(hash));
    state.db.update_last_login(user.id, datetime::now()).await?;
    Ok(())
}

/// `django.contrib.auth.logout`: the row is deleted and the cookie cleared.
pub async fn logout(state: &AppState, session: &mut Session) -> Result<(), DbError> {
    session.flush(&state.db).await
}

/// The session hoop: load before, save and set the cookie after (`SessionMiddleware`). The user
/// (`AuthenticationMiddleware`) is resolved lazily, by the views that look at it.
#[handler]
pub async fn session_hoop(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let Ok(state) = app_state(depot) else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        ctrl.skip_rest();
        return;
    };
    let cookie = req
        .cookie(SESSION_COOKIE_NAME)
        .map(|c| c.value().to_owned());
    let loaded = Session::load(&state.db, &state.session_signer, cookie.as_deref()).await;
    let session = match loaded {
        Ok(s) => s,
        Err(e) => return fail(res, ctrl, &e),
    };
    depot.insert_typed(session);

    ctrl.call_next(req, depot, res).await;

    let Ok(mut session) = depot.remove_typed::<Session>() else {
        return;
    };
    if let Err(e) = finish(&state, &mut session, res).await {
        tracing::error!(error = %e, "could not save the session");
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
    }
}

fn fail(res: &mut Response, ctrl: &mut FlowCtrl, e: &DbError) {
    tracing::error!(error = %e, "session lookup failed");
    res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    ctrl.skip_rest();
}

/// `SessionMiddleware.process_response`.
async fn finish(
    state: &Arc<AppState>,
    session: &mut Session,
    res: &mut Response,
) -> Result<(), DbError> {
    let vary = |res: &mut Response| {
        res.headers_mut()
            .append(VARY, HeaderValue::from_static("Cookie"))
    };
    if session.cookie_in_request && session.is_empty_after_view() {
        res.add_cookie(deletion_cookie());
        vary(res);
        return Ok(());
    }
    if session.accessed {
        vary(res);
    }
    let status_ok = res.status_code.is_none_or(|s| s.as_u16() < 500);
    if session.modified && !session.is_empty() && status_ok {
        session.save(&state.db, &state.session_signer).await?;
        if let Some(key) = session.key.clone() {
            res.add_cookie(session_cookie(
                key,
                state.settings.ops.tls_proxy.session_cookie_secure,
            ));
        }
    }
    Ok(())
}

/// `sessionid=…; expires=…; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax` as Django sets it
/// (`; Secure` with `SESSION_COOKIE_SECURE`).
fn session_cookie(key: String, secure: bool) -> Cookie<'static> {
    let expires = salvo::http::cookie::time::OffsetDateTime::now_utc()
        + salvo::http::cookie::time::Duration::seconds(SESSION_COOKIE_AGE);
    Cookie::build((SESSION_COOKIE_NAME, key))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(salvo::http::cookie::time::Duration::seconds(
            SESSION_COOKIE_AGE,
        ))
        .expires(expires)
        .secure(secure)
        .build()
}

/// `sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax`.
fn deletion_cookie() -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE_NAME, ""))
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(salvo::http::cookie::time::Duration::ZERO)
        .expires(salvo::http::cookie::time::OffsetDateTime::UNIX_EPOCH)
        .build()
}
