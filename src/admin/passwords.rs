//! The two password forms: `UserAdmin.user_change_password` (`AdminPasswordChangeForm`, the
//! admin sets anyone's password) and `AdminSite.password_change` (`PasswordChangeForm`, one's
//! own). A new hash changes the session auth hash, so the user's other sessions stop
//! validating on ferrochat and Django alike; the acting session is kept
//! (`update_session_auth_hash`).

use salvo::http::Method;
use salvo::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::db::User;
use crate::django::sessions::{AUTH_USER_HASH, session_auth_hash};
use crate::django::validators::{
    UserAttributes, password_validators_help_texts, validate_password,
};
use crate::web::forms::password_help_text_html;

use super::changelist::missing;
use super::log::{self, CHANGE};
use super::models;
use super::request::{
    AdminResult, Chrome, SUCCESS, Staff, add_message, finish, forbidden, form_value, redirect,
    render, session, staff,
};

const MISMATCH: &str = "The two password fields didn’t match.";
const REQUIRED: &str = "This field is required.";

#[derive(Debug, Clone, Default, Serialize)]
struct PwField {
    name: &'static str,
    label: &'static str,
    errors: Vec<String>,
    help: String,
}

#[derive(Serialize)]
struct PasswordPage {
    chrome: Chrome,
    intro: String,
    fields: Vec<PwField>,
    errors: usize,
    done: bool,
}

/// `SetPasswordMixin.validate_passwords` + `validate_password_for_user`: both required, equal,
/// then the validators on the second. The new password when all pass.
fn check_new(
    p1: &str,
    p2: &str,
    user: &User,
    f1: &mut PwField,
    f2: &mut PwField,
) -> Option<String> {
    if p1.is_empty() {
        f1.errors.push(REQUIRED.to_owned());
    }
    if p2.is_empty() {
        f2.errors.push(REQUIRED.to_owned());
    }
    if p1.is_empty() || p2.is_empty() {
        return None;
    }
    if p1 != p2 {
        f2.errors.push(MISMATCH.to_owned());
        return None;
    }
    let attrs = UserAttributes {
        username: &user.username,
        first_name: &user.first_name,
        last_name: &user.last_name,
        email: &user.email,
    };
    let problems = validate_password(p2, &attrs);
    if !problems.is_empty() {
        f2.errors.extend(problems);
        return None;
    }
    Some(p2.to_owned())
}

/// Hashes and stores the password; when it is the acting user's own, the session keeps
/// validating under a new key (`update_session_auth_hash`).
async fn store(depot: &mut Depot, s: &Staff, user: &User, password: String) -> AdminResult {
    let hash = s.state.hasher.make(password).await?;
    s.state.db.set_password(user.id, &hash).await?;
    if user.id == s.user.id {
        let state = s.state.clone();
        let session = session(depot)?;
        session.cycle_key(&state.db, &state.session_signer).await?;
        session.insert(
            AUTH_USER_HASH,
            Value::String(session_auth_hash(&hash, &state.settings.secret_key)),
        );
    }
    Ok(())
}

fn help() -> String {
    password_help_text_html(&password_validators_help_texts())
}

/// `/admin/auth/user/<id>/password/`.
#[handler]
pub async fn user_password(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let m = &models::USER;
        if !s.perms.model(m).change {
            forbidden(res);
            return Ok(());
        }
        let raw_id = req.param::<String>("id").unwrap_or_default();
        let user = match raw_id.parse::<i64>() {
            Ok(id) => s.state.db.user_by_id(id).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            return missing(depot, res, m, &raw_id);
        };
        let mut f1 = PwField {
            name: "password1",
            label: "Password",
            help: help(),
            ..PwField::default()
        };
        let mut f2 = PwField {
            name: "password2",
            label: "Password (again)",
            help: "Enter the same password as before, for verification.".to_owned(),
            ..PwField::default()
        };
        if req.method() == Method::POST {
            let p1 = form_value(req, "password1").await.unwrap_or_default();
            let p2 = form_value(req, "password2").await.unwrap_or_default();
            if let Some(password) = check_new(&p1, &p2, &user, &mut f1, &mut f2) {
                store(depot, &s, &user, password).await?;
                // `AdminPasswordChangeForm.changed_data` is `["password"]`, not a field label.
                log::log_action(
                    &s.state.db,
                    s.user.id,
                    m,
                    user.id,
                    &user.username,
                    CHANGE,
                    &log::changed(&["password"]),
                )
                .await?;
                add_message(depot, SUCCESS, "Password changed successfully.")?;
                redirect(res, &m.change_url(user.id));
                return Ok(());
            }
        }
        let chrome = Chrome::new(
            depot,
            &s.user.username,
            format!("Change password: {}", user.username),
        )?
        .crumb("Authentication and Authorization", "/admin/auth/")
        .crumb("Users", m.changelist_url())
        .crumb(user.username.clone(), m.change_url(user.id))
        .crumb("Change password", "");
        let errors = f1.errors.len() + f2.errors.len();
        let page = PasswordPage {
            chrome,
            intro: format!("Enter a new password for the user {}.", user.username),
            fields: vec![f1, f2],
            errors,
            done: false,
        };
        render(&s.templates, res, "admin/password_form.html", &page)
    }
    .await;
    finish(res, result);
}

/// `/admin/password_change/`.
#[handler]
pub async fn password_change(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let mut f0 = PwField { name: "old_password", label: "Old password", ..PwField::default() };
        let mut f1 = PwField { name: "new_password1", label: "New password", help: help(), ..PwField::default() };
        let mut f2 = PwField { name: "new_password2", label: "New password confirmation", ..PwField::default() };
        if req.method() == Method::POST {
            let old = form_value(req, "old_password").await.unwrap_or_default();
            let p1 = form_value(req, "new_password1").await.unwrap_or_default();
            let p2 = form_value(req, "new_password2").await.unwrap_or_default();
            let user = s.user.clone();
            let old_ok = if old.is_empty() {
                f0.errors.push(REQUIRED.to_owned());
                false
            } else if !s.state.hasher.verify(old, user.password.clone()).await?.correct {
                f0.errors.push("Your old password was entered incorrectly. Please enter it again.".to_owned());
                false
            } else {
                true
            };
            let new = check_new(&p1, &p2, &user, &mut f1, &mut f2);
            if let (true, Some(password)) = (old_ok, new) {
                store(depot, &s, &user, password).await?;
                redirect(res, "/admin/password_change/done/");
                return Ok(());
            }
        }
        let chrome = Chrome::new(depot, &s.user.username, "Password change")?.crumb("Password change", "");
        let errors = f0.errors.len() + f1.errors.len() + f2.errors.len();
        let page = PasswordPage {
            chrome,
            intro: "Please enter your old password, for security’s sake, and then enter your new password twice so we can verify you typed it in correctly.".to_owned(),
            fields: vec![f0, f1, f2],
            errors,
            done: false,
        };
        render(&s.templates, res, "admin/password_form.html", &page)
    }
    .await;
    finish(res, result);
}

/// `/admin/password_change/done/`.
#[handler]
pub async fn password_change_done(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let chrome = Chrome::new(depot, &s.user.username, "Password change successful")?
            .crumb("Password change", "");
        let page = PasswordPage {
            chrome,
            intro: String::new(),
            fields: Vec::new(),
            errors: 0,
            done: true,
        };
        render(&s.templates, res, "admin/password_form.html", &page)
    }
    .await;
    finish(res, result);
}
