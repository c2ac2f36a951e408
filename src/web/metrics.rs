//! `FERROCHAT_METRICS_ADDR`: `/metrics` on a listener of its own, never on the public port.
//! Gauges that describe the present (open sockets, rooms, the channel layer, the database pool)
//! are read at scrape time, so nothing on a socket's path updates them.

use std::net::SocketAddr;
use std::sync::Arc;

use salvo::conn::tcp::TcpAcceptor;
use salvo::http::HeaderValue;
use salvo::http::header::CONTENT_TYPE;
use salvo::prelude::*;

use crate::ops::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, metrics};

use super::AppState;

/// Binds the metrics listener (a startup error when it cannot).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpAcceptor> {
    TcpListener::new(addr)
        .try_bind()
        .await
        .map_err(std::io::Error::other)
}

/// Serves `/metrics` on `acceptor` until the server shuts down.
pub fn spawn(acceptor: TcpAcceptor, state: Arc<AppState>) {
    let shutdown = state.chat.shutdown.clone();
    let router = Router::new().push(Router::with_path("metrics").get(Scrape(state)));
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop_forceful();
    });
    tokio::spawn(async move {
        if let Err(e) = server.try_serve(router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
}

/// Refreshes the gauges of the present, then encodes everything.
pub fn scrape(state: &AppState) -> String {
    let m = metrics();
    m.ws_connections
        .set(saturating_i64(state.connections.open()));
    m.rooms_active.set(saturating_i64(state.hub.room_count()));
    m.channel_layer_up
        .set(i64::from(state.chat.layer.status().is_ok()));
    let pool = state.db.pool_connections();
    m.db_pool_idle.set(saturating_i64(pool.idle));
    m.db_pool_in_use.set(saturating_i64(pool.in_use));
    m.encode()
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Scrape(Arc<AppState>);

#[async_trait]
impl Handler for Scrape {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
        let _ = res.write_body(scrape(&self.0));
    }
}
