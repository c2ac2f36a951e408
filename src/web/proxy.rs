//! Behind a proxy: the client address from a trusted proxy's `X-Forwarded-For` (Daphne's
//! `--proxy-headers`, with `FERROCHAT_TRUSTED_PROXIES` as its trusted hosts), the request's
//! scheme (`HttpRequest.scheme`: `SECURE_PROXY_SSL_HEADER`, else what a trusted proxy's
//! `X-Forwarded-Proto` says), and `USE_X_FORWARDED_HOST` (`HttpRequest.get_host`), decided once
//! per request before anything reads them.

use std::net::SocketAddr;

use salvo::http::header::HOST;
use salvo::prelude::*;

use super::app_state;

/// `request.is_secure()` for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secure(pub bool);

/// Whether the request came over HTTPS as far as Django would tell (false when unknown).
pub fn is_secure(depot: &Depot) -> bool {
    depot.get_typed::<Secure>().is_ok_and(|s| s.0)
}

/// The hoop: rewrites the peer address and (with `USE_X_FORWARDED_HOST`) the Host header, and
/// records the scheme.
#[handler]
pub async fn forwarded(req: &mut Request, depot: &mut Depot) {
    let Ok(state) = app_state(depot) else {
        return;
    };
    let ops = &state.settings.ops;
    let proxies = &ops.trusted_proxies;
    // A Unix-socket peer is the proxy in front (the socket file's mode says who may connect).
    let (peer_ip, trusted) = match req.remote_addr().clone().into_std() {
        Some(addr) => (Some(addr), proxies.trusts(addr.ip())),
        None => (None, !proxies.is_empty()),
    };
    let mut forwarded_https = false;
    if trusted {
        let forwarded_for: Vec<String> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        forwarded_https = req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        if let Some(ip) = proxies.client_ip_from_trusted(forwarded_for.iter().map(String::as_str)) {
            let port = peer_ip.map_or(0, |a| a.port());
            *req.remote_addr_mut() = SocketAddr::new(ip, port).into();
        }
    }
    let tls = &ops.tls_proxy;
    let ssl_header = tls.secure_proxy_ssl_header.as_ref().and_then(|h| {
        let values: Vec<&str> = req
            .headers()
            .get_all(h.header.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        // The ASGI handler joins repeated headers with ",".
        (!values.is_empty()).then(|| values.join(","))
    });
    depot.insert_typed(Secure(
        tls.is_secure(ssl_header.as_deref(), forwarded_https),
    ));
    if tls.use_x_forwarded_host
        && let Some(host) = req.headers().get("x-forwarded-host").cloned()
    {
        req.headers_mut().insert(HOST, host);
    }
}
