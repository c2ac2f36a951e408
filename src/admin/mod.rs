//! Django's admin for the legacy app, served by ferrochat at `/admin/` (its URLs, form fields, permissions and `django_admin_log` history).
//!
//! `router()` is mounted by `cli::runserver` (and the tests) into the web app, below its Host,
//! `APPEND_SLASH`, session and CSRF hoops, so `web` never imports the admin. The registry of
//! models is `models`; each view lives with its concern: `views` (login, logout, index),
//! `changelist` (lists, search, filters, the delete action, the delete page), `forms` (add,
//! change, history), `passwords`, `log` (`django_admin_log`), `delete` (the collector), `perms`.

pub mod changelist;
pub mod delete;
pub mod effects;
pub mod forms;
pub mod log;
pub mod models;
pub mod passwords;
pub mod perms;
pub mod request;
pub mod templates;
pub mod views;

use std::sync::Arc;

use salvo::prelude::*;

pub use templates::AdminTemplateError;
use templates::AdminTemplates;

/// The admin's routes under `/admin/`, with its templates compiled (an invalid one fails here,
/// at startup).
pub fn router() -> Result<Router, AdminTemplateError> {
    let templates = Arc::new(AdminTemplates::load()?);
    let model = |tail: &str| Router::with_path(format!("{{app}}/{{model}}{tail}"));
    Ok(Router::with_path("admin")
        .hoop(InjectTemplates(templates))
        .get(views::index)
        .push(
            Router::with_path("login")
                .get(views::login)
                .post(views::login),
        )
        .push(
            Router::with_path("logout")
                .get(views::logout)
                .post(views::logout),
        )
        .push(
            Router::with_path("password_change")
                .get(passwords::password_change)
                .post(passwords::password_change),
        )
        .push(Router::with_path("password_change/done").get(passwords::password_change_done))
        .push(
            Router::with_path("auth/user/{id}/password")
                .get(passwords::user_password)
                .post(passwords::user_password),
        )
        .push(model("/add").get(forms::add_view).post(forms::add_view))
        .push(
            model("/{id}/change")
                .get(forms::change_view)
                .post(forms::change_view),
        )
        .push(
            model("/{id}/delete")
                .get(changelist::delete_view)
                .post(changelist::delete_view),
        )
        .push(model("/{id}/history").get(forms::history_view))
        .push(
            model("")
                .get(changelist::changelist)
                .post(changelist::changelist),
        )
        .push(Router::with_path("{app}").get(views::app_index))
        .push(Router::with_path("{**rest}").goal(views::catch_all)))
}

/// Puts the compiled admin templates into each admin request's depot.
struct InjectTemplates(Arc<AdminTemplates>);

#[async_trait]
impl Handler for InjectTemplates {
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
