//! `ferrochat clearsessions`: `django/contrib/sessions/management/commands/clearsessions.py`,
//! which deletes the expired `django_session` rows and prints nothing.

use chrono::Utc;
use clap::Args;

use super::{CommandError, connect};
use crate::config::Settings;

#[derive(Debug, Clone, Args)]
pub struct ClearsessionsArgs {}

pub(crate) async fn run(settings: &Settings, verbosity: u8) -> Result<(), CommandError> {
    let db = connect(settings).await?;
    let result = db.session_clear_expired(&Utc::now()).await;
    db.close().await;
    let deleted = result.map_err(|e| CommandError::new(e.to_string()))?;
    // Django is silent; a log line (stderr) at higher verbosity helps an operator's cron job.
    if verbosity >= 2 {
        tracing::info!(deleted, "expired sessions deleted");
    }
    Ok(())
}
