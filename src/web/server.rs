//! `runserver`: opens the database (creating the schema in a brand-new SQLite file), picks the
//! channel layer, binds, and serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use salvo::conn::Acceptor;
use salvo::fuse::FuseConfig;
use salvo::prelude::*;

use crate::config::Settings;
use crate::db::schema::{self, SchemaState};
use crate::db::url::DatabaseUrl;
use crate::db::{Db, DbError};
use crate::layer::{self, LayerError};

use crate::auth::PasswordHasher;
use crate::django::sessions::SessionSigner;

use super::templates::{TemplateError, Templates};
use super::{AppState, service, static_files::StaticFiles};

/// How long a client may take to send its request headers (a slowloris cannot hold a socket).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error("the database schema is not ready: {0}")]
    Schema(String),
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: String },
}

/// Everything `runserver` needs before it accepts a connection, so tests can build the same app.
pub async fn build_state(settings: Settings) -> Result<Arc<AppState>, ServeError> {
    if settings.secret_key_is_default {
        tracing::warn!(
            "DJANGO_SECRET_KEY is not set: using the legacy app's insecure development key; \
             set it (the same value as the Django deployment) before going to production"
        );
    }
    let db = Db::connect(&settings.database_url).await?;
    ensure_schema(&db, &settings.database_url).await?;
    let layer_kind = layer::choose(&settings).await?;
    let static_files = StaticFiles::new(settings.static_dir.as_deref());
    let templates = Templates::load(settings.templates_dir.as_deref())?;
    let session_signer = SessionSigner::new(&settings.secret_key, &settings.secret_key_fallbacks);
    Ok(Arc::new(AppState {
        settings,
        db,
        layer_kind,
        static_files,
        templates,
        session_signer,
        hasher: PasswordHasher::per_core(),
    }))
}

/// A brand-new SQLite file gets Django's schema (the README's one-command start); anything else
/// must already be migrated, because serving pages on a half-made schema would only fail later.
async fn ensure_schema(db: &Db, url: &DatabaseUrl) -> Result<(), ServeError> {
    match schema::schema_state(db).await? {
        SchemaState::UpToDate => Ok(()),
        SchemaState::Empty if matches!(url, DatabaseUrl::Sqlite { .. } | DatabaseUrl::SqliteMemory) => {
            schema::migrate(db).await?;
            tracing::info!(database = %url.redacted(), "created Django's schema in the new SQLite database");
            Ok(())
        }
        SchemaState::Empty => Err(ServeError::Schema(format!(
            "{} has no tables; run `ferrochat migrate` first",
            url.redacted()
        ))),
        other => Err(ServeError::Schema(format!("{other:?}; run `ferrochat check` for details"))),
    }
}

/// Binds `addr` and serves until a shutdown signal.
pub async fn run(settings: Settings, addr: SocketAddr) -> Result<(), ServeError> {
    let state = build_state(settings).await?;
    let acceptor = TcpListener::new(addr)
        .try_bind()
        .await
        .map_err(|e| ServeError::Bind { addr, cause: e.to_string() })?;
    let local = acceptor.holdings().first().map(|h| h.local_addr.to_string()).unwrap_or_default();
    println!(
        "ferrochat {} with {} and the {} channel layer\nStarting server at http://{local}/\nQuit the server with CONTROL-C.",
        env!("CARGO_PKG_VERSION"),
        state.settings.database_url.redacted(),
        state.layer_kind.name(),
    );
    serve(acceptor, state, shutdown_signal()).await;
    Ok(())
}

/// Serves on a bound acceptor until `shutdown` completes (a signal in production, a test's
/// trigger in tests), then lets requests in flight finish.
pub async fn serve<A, S>(acceptor: A, state: Arc<AppState>, shutdown: S)
where
    A: Acceptor + Send + 'static,
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let server = Server::new(acceptor)
        .fuse_config(FuseConfig::default().with_http1_header_timeout(HEADER_TIMEOUT));
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        handle.stop_graceful(SHUTDOWN_GRACE);
    });
    if let Err(e) = server.try_serve(service(state)).await {
        tracing::error!(error = %e, "server stopped with an error");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
