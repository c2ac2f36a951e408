//! `runserver`: opens the database (creating the schema in a brand-new SQLite file), picks the
//! channel layer, binds, and serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use salvo::conn::Acceptor;
use salvo::fuse::FuseConfig;
use salvo::prelude::*;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::clock::Clock;
use crate::chat::consumer::ConsumerContext;
use crate::config::Settings;
use crate::db::messages::MessageWriter;
use crate::db::schema::{self, SchemaState};
use crate::db::url::DatabaseUrl;
use crate::db::{Db, DbError};
use crate::layer::hub::Hub;
use crate::layer::live::Live;
use crate::layer::live::cluster::ClusterConfig;
use crate::layer::{self, LayerError};

use crate::auth::PasswordHasher;
use crate::django::sessions::SessionSigner;

use super::limits::Connections;
use super::listen::{self, Bound, ListenOn};
use super::templates::{TemplateError, Templates};
use super::{AppState, service, static_files::StaticFiles};

/// The most chat messages one commit saves (group commit).
const MESSAGE_BATCH: usize = 256;
/// How long in-flight requests, and sockets saying goodbye, get after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The most a request line plus headers may take (hyper's read buffer; hyper answers 431
/// beyond it). Browsers send a few KiB; nginx's default maximum is 4 × 8 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

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
    #[error("cannot listen on {on}: {cause}")]
    Listen { on: String, cause: String },
}

/// Everything `runserver` needs before it accepts a connection, so tests can build the same app.
pub async fn build_state(settings: Settings) -> Result<Arc<AppState>, ServeError> {
    if settings.secret_key_is_default {
        tracing::warn!(
            "DJANGO_SECRET_KEY is not set: using the legacy app's insecure development key; \
             set it (the same value as the Django deployment) before going to production"
        );
    }
    let db = Db::connect_with(&settings.database_url, &settings.database).await?;
    ensure_schema(&db, &settings.database_url).await?;
    open_sqlite_pool(&db).await;
    let chosen = layer::choose(settings.channel_layer, &settings.channels_redis).await?;
    let (hub, changes) = Hub::new(settings.limits.ws_queue);
    let channel_layer = layer::start(
        chosen,
        &settings.channels_redis,
        settings.node_id.as_ref(),
        hub.clone(),
        changes,
    )
    .await?;
    let layer_kind = channel_layer.kind();
    // Presence follows the channel layer: shared through its Redis, or this node's alone.
    let live = match layer_kind {
        layer::LayerKind::Redis => Live::clustered(
            settings.live.clone(),
            ClusterConfig {
                redis: settings.channels_redis.clone(),
            },
        ),
        layer::LayerKind::Memory => Live::in_memory(settings.live.clone()),
    };
    let chat = Arc::new(ConsumerContext {
        db: db.clone(),
        messages: MessageWriter::spawn_with(
            db.clone(),
            MESSAGE_BATCH,
            settings.database.outage_hold,
        ),
        layer: channel_layer,
        clock: Arc::new(Clock::default()),
        shutdown: CancellationToken::new(),
        ping_interval: settings.limits.ws_ping_interval,
        ping_timeout: settings.limits.ws_ping_timeout,
        ws_rate: settings.ops.ws_rate,
    });
    let connections = Connections::new(
        settings.ops.max_connections,
        settings.ops.max_connections_per_user,
    );
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
        hasher: PasswordHasher::for_this_machine(),
        hub,
        chat,
        live,
        sockets: TaskTracker::new(),
        connections,
    }))
}

/// Opens every connection of a SQLite pool now (each is a thread and a page cache), so the
/// first burst of requests does not queue behind opening them and the memory they take shows
/// at startup rather than as a cost of the first sockets. A pool that cannot open them all
/// opens the rest on demand, as before.
async fn open_sqlite_pool(db: &Db) {
    let Db::Sqlite(pool) = db else {
        return;
    };
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        match pool.acquire().await {
            Ok(conn) => held.push(conn),
            Err(e) => {
                tracing::warn!(error = %e, "could not open every SQLite connection at startup");
                break;
            }
        }
    }
}

/// A brand-new SQLite file gets Django's schema (the README's one-command start); anything else
/// must already be migrated, because serving pages on a half-made schema would only fail later.
async fn ensure_schema(db: &Db, url: &DatabaseUrl) -> Result<(), ServeError> {
    match schema::schema_state(db).await? {
        SchemaState::UpToDate => Ok(()),
        SchemaState::Empty
            if matches!(url, DatabaseUrl::Sqlite { .. } | DatabaseUrl::SqliteMemory) =>
        {
            schema::migrate(db).await?;
            tracing::info!(database = %url.redacted(), "created Django's schema in the new SQLite database");
            Ok(())
        }
        SchemaState::Empty => Err(ServeError::Schema(format!(
            "{} has no tables; run `ferrochat migrate` first",
            url.redacted()
        ))),
        other => Err(ServeError::Schema(other.describe())),
    }
}

/// Binds (or adopts) the listener and serves until a shutdown signal; `mounted` routes (the
/// admin) are served among the pages.
pub async fn run(mut settings: Settings, on: ListenOn, mounted: Router) -> Result<(), ServeError> {
    // Bound first: the node id derives from where it listens, and a port in use fails
    // before any database work.
    let bound = listen::bind(&on).await.map_err(|e| ServeError::Listen {
        on: describe(&on),
        cause: e.to_string(),
    })?;
    // The channel layer's node id: from the host name and this address unless set, so a
    // restarted server takes its own place again (and an ephemeral port gets a random one).
    if settings.node_id.is_none() {
        settings.node_id = match (&on, bound.tcp_addr()) {
            (ListenOn::Tcp(addr), _) if addr.port() == 0 => None,
            (_, Some(addr)) => Some(layer::redis::default_node_id(&addr)),
            (ListenOn::Unix { path, .. }, None) => Some(layer::redis::node_id_for(&format!(
                "unix:{}",
                path.display()
            ))),
            (_, None) => Some(layer::redis::node_id_for(&bound.describe())),
        };
    }
    let metrics_addr = settings.ops.metrics_addr;
    let state = build_state(settings).await?;
    if let Some(metrics_addr) = metrics_addr {
        let acceptor = super::metrics::bind(metrics_addr)
            .await
            .map_err(|e| ServeError::Bind {
                addr: metrics_addr,
                cause: e.to_string(),
            })?;
        super::metrics::spawn(acceptor, state.clone());
        tracing::info!("metrics at http://{metrics_addr}/metrics");
    }
    println!(
        "ferrochat {} with {} and the {} channel layer\nStarting server at {}\nQuit the server with CONTROL-C.",
        env!("CARGO_PKG_VERSION"),
        state.settings.database_url.redacted(),
        state.layer_kind.name(),
        bound.describe(),
    );
    match bound {
        Bound::Tcp(acceptor) => serve(acceptor, state, mounted, shutdown_signal()).await,
        Bound::Unix(acceptor) => serve(acceptor, state, mounted, shutdown_signal()).await,
    }
    Ok(())
}

fn describe(on: &ListenOn) -> String {
    match on {
        ListenOn::Tcp(addr) => addr.to_string(),
        ListenOn::Unix { path, .. } => format!("unix:{}", path.display()),
        ListenOn::Fd(fd) => format!("descriptor {fd}"),
    }
}

/// Serves on a bound acceptor until `shutdown` completes (a signal in production, a test's
/// trigger in tests). Then: stop accepting, let requests in flight finish, close every
/// WebSocket with 1001 after the frames already queued for it, and leave the channel layer.
pub async fn serve<A, S>(acceptor: A, state: Arc<AppState>, mounted: Router, shutdown: S)
where
    A: Acceptor + Send + 'static,
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let mut server = Server::new(acceptor).fuse_config(
        FuseConfig::default().with_http1_header_timeout(state.settings.limits.header_timeout),
    );
    // hyper answers 431 when the request head outgrows its read buffer.
    server.http1_mut().max_buf_size(MAX_HEADER_BYTES);
    let handle = server.handle();
    let sockets_shutdown = state.chat.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight and closing WebSockets");
        handle.stop_graceful(SHUTDOWN_GRACE);
        sockets_shutdown.cancel();
    });
    if let Err(e) = server.try_serve(service(state.clone(), mounted)).await {
        tracing::error!(error = %e, "server stopped with an error");
    }
    // salvo is done with HTTP; upgraded sockets are ours to close (also when salvo stopped on
    // an error rather than the signal).
    state.chat.shutdown.cancel();
    state.sockets.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, state.sockets.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.sockets.len(),
            "WebSockets still open after {SHUTDOWN_GRACE:?}; dropping them"
        );
    }
    state.live.shutdown().await;
    state.chat.layer.shutdown().await;
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
