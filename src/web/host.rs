//! `HttpRequest.get_host()`: the Host header checked against `ALLOWED_HOSTS` (CommonMiddleware
//! asks for it on every request, so a foreign Host is a 400 before anything else runs).

use salvo::http::header::HOST;
use salvo::prelude::*;

use crate::django::hosts::{host_allowed, split_domain_port};

use super::errors::bad_request;
use super::{BeforeXFrameOptions, app_state};

/// The request's Host if it is allowed (`get_host()`), else `None`.
pub fn allowed_host(req: &Request, allowed_hosts: &[String], debug: bool) -> Option<String> {
    let raw = req.headers().get(HOST).and_then(|v| v.to_str().ok())?;
    let (domain, _) = split_domain_port(raw)?;
    host_allowed(&domain, allowed_hosts, debug).then(|| raw.to_owned())
}

/// Rejects a request whose Host is not allowed with 400, as Django's `DisallowedHost` does.
#[handler]
pub async fn host_hoop(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let Ok(state) = app_state(depot) else {
        return;
    };
    if allowed_host(req, &state.settings.allowed_hosts, state.settings.debug).is_none() {
        let raw = req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::warn!(target: "django.security.DisallowedHost", host = raw, "Invalid HTTP_HOST header");
        bad_request(res);
        depot.insert_typed(BeforeXFrameOptions);
        ctrl.skip_rest();
    }
}
