//! `AdminSite`'s own views (`django/contrib/admin/sites.py`): login, logout, the index, an
//! app's index, and the catch-all 404.

use salvo::http::Method;
use salvo::prelude::*;
use serde::Serialize;

use crate::auth;
use crate::web::csrf::CsrfState;
use crate::web::errors::{method_not_allowed, not_found};
use crate::web::pages::safe_next;
use crate::web::session;

use super::log::{self, Entry};
use super::models::{APPS, App};
use super::perms::Perms;
use super::request::{
    AdminResult, Chrome, current_user, finish, form_value, is_admin, never_cache, redirect, render,
    staff, state, templates,
};

/// `AdminAuthenticationForm`'s `invalid_login` (`django/contrib/admin/forms.py`).
pub const INVALID_LOGIN: &str = "Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive.";
const REQUIRED: &str = "This field is required.";

#[derive(Serialize)]
struct LoginPage {
    chrome: Chrome,
    username: String,
    username_error: Option<&'static str>,
    password_error: Option<&'static str>,
    error: Option<&'static str>,
    /// "You are authenticated as …, but are not authorized to access this page."
    authenticated_as: Option<String>,
    next: String,
}

/// `AdminSite.login`.
#[handler]
pub async fn login(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        never_cache(res);
        let state = state(depot)?;
        let templates = templates(depot)?;
        let user = current_user(depot).await?;
        // An admin who is already logged in goes to the index (a GET only, as Django).
        if req.method() == Method::GET && user.as_ref().is_some_and(is_admin) {
            redirect(res, "/admin/");
            return Ok(());
        }
        let next = safe_next(req, &state, crate::web::proxy::is_secure(depot)).await;
        let mut page = LoginPage {
            chrome: Chrome::new(depot, "", "Log in")?,
            username: String::new(),
            username_error: None,
            password_error: None,
            error: None,
            authenticated_as: user.filter(|u| !is_admin(u)).map(|u| u.username),
            next,
        };
        if req.method() == Method::POST {
            let username = form_value(req, "username").await.unwrap_or_default();
            let password = form_value(req, "password").await.unwrap_or_default();
            page.username = username.clone();
            // Django's CharField strips the username, never the password.
            let trimmed = username.trim();
            if trimmed.is_empty() {
                page.username_error = Some(REQUIRED);
            }
            if password.is_empty() {
                page.password_error = Some(REQUIRED);
            }
            if page.username_error.is_none() && page.password_error.is_none() {
                match auth::authenticate(&state.db, &state.hasher, trimmed, &password).await? {
                    Some(user) if is_admin(&user) => {
                        session::login(&state, super::request::session(depot)?, &user).await?;
                        depot.insert_typed(session::CurrentUser(Some(user)));
                        if let Ok(csrf) = depot.get_typed_mut::<CsrfState>() {
                            csrf.rotate();
                        }
                        let to = if page.next.is_empty() {
                            "/admin/"
                        } else {
                            page.next.as_str()
                        };
                        redirect(res, to);
                        return Ok(());
                    }
                    // `confirm_login_allowed` raises the same error for a non-staff user.
                    _ => page.error = Some(INVALID_LOGIN),
                }
            }
            // The form was re-rendered: it needs a fresh token from the same secret.
            page.chrome.csrf_token = super::request::csrf_token(depot)?;
        }
        render(&templates, res, "admin/login.html", &page)
    }
    .await;
    finish(res, result);
}

#[derive(Serialize)]
struct LoggedOutPage {
    chrome: Chrome,
}

/// `AdminSite.logout`: `LogoutView` (POST only since Django 5.0), then `registration/logged_out.html`.
#[handler]
pub async fn logout(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        never_cache(res);
        if req.method() != Method::POST {
            method_not_allowed(res, "POST, OPTIONS");
            return Ok(());
        }
        let state = state(depot)?;
        let templates = templates(depot)?;
        session::logout(&state, super::request::session(depot)?).await?;
        let page = LoggedOutPage {
            chrome: Chrome::new(depot, "", "Logged out")?,
        };
        render(&templates, res, "admin/logged_out.html", &page)
    }
    .await;
    finish(res, result);
}

#[derive(Serialize)]
struct ModelLink {
    name: String,
    admin_url: Option<String>,
    add_url: Option<String>,
    view_only: bool,
}

#[derive(Serialize)]
struct AppEntry {
    name: &'static str,
    app_url: String,
    models: Vec<ModelLink>,
}

#[derive(Serialize)]
struct IndexPage {
    chrome: Chrome,
    apps: Vec<AppEntry>,
    recent: Vec<Entry>,
    show_recent: bool,
}

/// `AdminSite._build_app_dict`: the models the user has any permission on.
fn app_list(perms: &Perms, only: Option<&str>) -> Vec<AppEntry> {
    APPS.iter()
        .filter(|a: &&App| only.is_none_or(|l| l == a.label))
        .filter_map(|a| {
            let models: Vec<ModelLink> = a
                .models
                .iter()
                .filter_map(|m| {
                    let p = perms.model(m);
                    p.any().then(|| ModelLink {
                        name: log::capfirst(m.verbose_name_plural),
                        admin_url: p.view.then(|| m.changelist_url()),
                        add_url: p.add.then(|| format!("{}add/", m.changelist_url())),
                        view_only: !p.change,
                    })
                })
                .collect();
            (!models.is_empty()).then(|| AppEntry {
                name: a.name,
                app_url: format!("/admin/{}/", a.label),
                models,
            })
        })
        .collect()
}

/// `AdminSite.index`.
#[handler]
pub async fn index(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let mut chrome = Chrome::new(depot, &s.user.username, "Site administration")?;
        chrome.breadcrumbs.clear();
        let page = IndexPage {
            chrome,
            apps: app_list(&s.perms, None),
            recent: log::recent_for_user(&s.state.db, s.user.id).await?,
            show_recent: true,
        };
        render(&s.templates, res, "admin/index.html", &page)
    }
    .await;
    finish(res, result);
}

/// `AdminSite.app_index`: 404 when the user may see none of the app's models.
#[handler]
pub async fn app_index(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let label = req.param::<String>("app").unwrap_or_default();
        let apps = app_list(&s.perms, Some(&label));
        let Some(app) = apps.first() else {
            not_found(res);
            return Ok(());
        };
        let title = format!("{} administration", app.name);
        let chrome = Chrome::new(depot, &s.user.username, title)?.crumb(app.name, "");
        let page = IndexPage {
            chrome,
            apps,
            recent: Vec::new(),
            show_recent: false,
        };
        render(&s.templates, res, "admin/index.html", &page)
    }
    .await;
    finish(res, result);
}

/// `AdminSite.catch_all_view`, behind `admin_view`: anonymous users log in first, then 404.
#[handler]
pub async fn catch_all(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        if staff(req, depot, res).await?.is_some() {
            not_found(res);
        }
        Ok(())
    }
    .await;
    finish(res, result);
}
