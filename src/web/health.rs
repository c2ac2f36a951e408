//! `GET /healthz`: touches the database, so a green health check means pages can be served.

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
    res.render(Json(json!({
        "status": if healthy { "ok" } else { "error" },
        "database": database,
        "database_vendor": state.db.vendor(),
        "channel_layer": state.layer_kind.name(),
    })));
    Ok(())
}
