//! `GET /healthz`: touches the database, so a green health check means pages can be served, and
//! says whether the channel layer reaches the other nodes (`channel_layer_status`).

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::json;

use super::app_state;

#[handler]
pub async fn healthz(depot: &mut Depot, res: &mut Response) -> Result<(), StatusError> {
    let state = app_state(depot)?;
    let database = match state.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            format!("error: {e}")
        }
    };
    let healthy = database == "ok";
    if !healthy {
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    }
    // Redis away is "degraded", still 200: the node serves pages and chats with its own sockets,
    // and a load balancer that pulled every node because the shared Redis blinked would turn a
    // partial outage into a full one. Monitoring reads `channel_layer_status`.
    let layer = state.chat.layer.status();
    if !layer.is_ok() {
        tracing::debug!(status = %layer, "health check: channel layer not fully up");
    }
    let status = match (healthy, layer.is_ok()) {
        (false, _) => "error",
        (true, false) => "degraded",
        (true, true) => "ok",
    };
    let mut body = json!({
        "status": status,
        "database": database,
        "database_vendor": state.db.vendor(),
        "channel_layer": state.layer_kind.name(),
        "channel_layer_status": layer.to_string(),
        // Chat messages waiting for the database to answer again (FERROCHAT_DB_OUTAGE_HOLD_*).
        "messages_held": state.chat.messages.held(),
    });
    // Behind Redis Sentinel: the master each shard uses now.
    let masters = state.chat.layer.masters();
    if !masters.is_empty() {
        body["redis_masters"] = json!(masters);
    }
    res.render(Json(body));
    Ok(())
}
