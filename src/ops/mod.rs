//! Operating ferrochat: Prometheus metrics, the log format, trusted proxies, the TLS-proxy
//! settings and the per-socket message rate. A leaf below the database: any module above may
//! record a metric; nothing here knows about HTTP servers, sockets or SQL.

pub mod logging;
pub mod metrics;
pub mod process;
pub mod proxies;
pub mod rate;
pub mod settings;
pub mod tls_proxy;

pub use settings::{OpsConfigError, OpsSettings};
