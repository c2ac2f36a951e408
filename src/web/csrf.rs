//! `CsrfViewMiddleware` (Django ≥ 4.1): the `csrftoken` cookie holds the 32-char secret, forms
//! carry a freshly masked 64-char token, unsafe requests must present a matching one and a
//! trusted Origin (django_formats.md §3).

use salvo::http::cookie::{Cookie, SameSite};
use salvo::http::header::VARY;
use salvo::http::{HeaderValue, Method, StatusCode};
use salvo::prelude::*;

use crate::django::csrf::{
    self, CSRF_COOKIE_AGE, CSRF_COOKIE_NAME, CSRF_FORM_FIELD, CSRF_HEADER, CsrfRequest,
    mask_cipher_secret, new_csrf_secret, secret_from_cookie,
};

use super::host::allowed_host;
use super::proxy::is_secure;
use super::{AppState, app_state};

/// This request's CSRF state (`request.META["CSRF_COOKIE"]` and `CSRF_COOKIE_NEEDS_UPDATE`).
#[derive(Debug, Clone, Default)]
pub struct CsrfState {
    secret: Option<String>,
    needs_update: bool,
}

impl CsrfState {
    /// `get_token()`: a freshly masked token for a form; creates the secret if there is none,
    /// and marks the cookie to be (re)sent so its expiry is renewed.
    pub fn token(&mut self) -> String {
        let secret = self.secret.get_or_insert_with(new_csrf_secret).clone();
        self.needs_update = true;
        mask_cipher_secret(&secret)
    }

    /// `rotate_token()` on login: a new secret, sent in a new cookie.
    pub fn rotate(&mut self) {
        self.secret = Some(new_csrf_secret());
        self.needs_update = true;
    }
}

/// Reads the secret, checks unsafe requests, and sets the cookie after the handler if needed.
#[handler]
pub async fn csrf_hoop(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let Ok(state) = app_state(depot) else {
        return;
    };
    let cookie = req.cookie(CSRF_COOKIE_NAME).map(|c| c.value().to_owned());
    let cookie_secure = state.settings.ops.tls_proxy.csrf_cookie_secure;
    // process_request: a malformed cookie is replaced by a new secret.
    let csrf = match cookie.as_deref().map(secret_from_cookie) {
        None => CsrfState::default(),
        Some(Ok(secret)) => CsrfState {
            secret: Some(secret),
            needs_update: false,
        },
        Some(Err(_)) => CsrfState {
            secret: Some(new_csrf_secret()),
            needs_update: true,
        },
    };

    if !is_safe_method(req.method())
        && let Err(reason) = check_request(&state, req, cookie.as_deref(), is_secure(depot)).await
    {
        tracing::warn!(target: "django.security.csrf", "Forbidden ({reason}): {}", req.uri().path());
        reject(res, &reason, state.settings.debug);
        if csrf.needs_update {
            set_cookie(res, &csrf, cookie_secure);
        }
        ctrl.skip_rest();
        return;
    }

    depot.insert_typed(csrf);
    ctrl.call_next(req, depot, res).await;
    if let Ok(csrf) = depot.remove_typed::<CsrfState>()
        && csrf.needs_update
    {
        set_cookie(res, &csrf, cookie_secure);
    }
}

fn is_safe_method(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `process_view` for an unsafe method: the Origin (when sent), then the token.
async fn check_request(
    state: &AppState,
    req: &mut Request,
    cookie: Option<&str>,
    is_secure: bool,
) -> Result<(), String> {
    let settings = &state.settings;
    let good_host = allowed_host(req, &settings.allowed_hosts, settings.debug);
    let post_token = if req.method() == Method::POST {
        req.form::<String>(CSRF_FORM_FIELD).await
    } else {
        None
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    let (origin, referer, header_token) =
        (header("origin"), header("referer"), header(CSRF_HEADER));
    let request = CsrfRequest {
        good_host: good_host.as_deref(),
        // `request.is_secure()`: what the proxy settings make of this request.
        is_secure,
        origin: origin.as_deref(),
        referer: referer.as_deref(),
        cookie,
        post_token: post_token.as_deref(),
        header_token: header_token.as_deref(),
    };
    csrf::check_request(&request, &settings.csrf_trusted_origins)
}

fn reject(res: &mut Response, reason: &str, debug: bool) {
    res.status_code(StatusCode::FORBIDDEN);
    res.headers_mut().insert(
        salvo::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let _ = res.write_body(csrf::csrf_failure_body(reason, debug));
}

/// `csrftoken=<secret>; expires=…; Max-Age=31449600; Path=/; SameSite=Lax` (`; Secure` with
/// `CSRF_COOKIE_SECURE`) plus `Vary: Cookie`.
fn set_cookie(res: &mut Response, csrf: &CsrfState, secure: bool) {
    let Some(secret) = csrf.secret.clone() else {
        return;
    };
    let age = salvo::http::cookie::time::Duration::seconds(CSRF_COOKIE_AGE);
    let cookie = Cookie::build((CSRF_COOKIE_NAME, secret))
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(age)
        .expires(salvo::http::cookie::time::OffsetDateTime::now_utc() + age)
        .secure(secure)
        .build();
    res.add_cookie(cookie);
    res.headers_mut()
        .append(VARY, HeaderValue::from_static("Cookie"));
}
