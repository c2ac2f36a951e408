//! Error responses: Django's production error pages (`django/views/defaults.py`), never a stack
//! trace or a setting, whatever `DJANGO_DEBUG` says; the cause goes to the log instead.

use salvo::http::header::CONTENT_TYPE;
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;

/// `ERROR_PAGE_TEMPLATE` with its leading newline, exactly as Django renders it.
fn error_page(title: &str, details: &str) -> String {
    format!(
        "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>{title}</title>\n</head>\n<body>\n  <h1>{title}</h1><p>{details}</p>\n</body>\n</html>\n"
    )
}

fn write_html(res: &mut Response, status: StatusCode, body: String) {
    res.status_code(status);
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // A body was already being built (e.g. a page failed half-way): replace it.
    let _ = res.write_body(body);
}

pub fn not_found(res: &mut Response) {
    write_html(
        res,
        StatusCode::NOT_FOUND,
        error_page(
            "Not Found",
            "The requested resource was not found on this server.",
        ),
    );
}

/// A path no page matches (Django's URL resolver failing).
#[handler]
pub async fn unknown_path(res: &mut Response) {
    not_found(res);
}

pub fn bad_request(res: &mut Response) {
    write_html(
        res,
        StatusCode::BAD_REQUEST,
        error_page("Bad Request (400)", ""),
    );
}

pub fn server_error(res: &mut Response) {
    write_html(
        res,
        StatusCode::INTERNAL_SERVER_ERROR,
        error_page("Server Error (500)", ""),
    );
}

/// `HttpResponseNotAllowed`: empty body, `Allow` listing what the view accepts.
pub fn method_not_allowed(res: &mut Response, allow: &'static str) {
    res.status_code(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut()
        .insert(salvo::http::header::ALLOW, HeaderValue::from_static(allow));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
}

/// Catches what no route or handler answered with a body and gives it Django's page.
#[handler]
pub async fn error_pages(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::OK);
    if !res.body.is_none() {
        return;
    }
    match status {
        StatusCode::NOT_FOUND => not_found(res),
        StatusCode::BAD_REQUEST => bad_request(res),
        StatusCode::INTERNAL_SERVER_ERROR => server_error(res),
        // `HttpResponseNotAllowed` has an empty body: keep it (with its `Allow`).
        StatusCode::METHOD_NOT_ALLOWED => {
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
        }
        _ => return,
    }
    ctrl.skip_rest();
}
