//! The Prometheus registry (prometheus-client) and every metric ferrochat exports, under the
//! names the README's table lists. One process-wide instance: recording is an atomic add on a
//! handle resolved once, so hot paths never look a label up. Per-socket paths record nothing;
//! deliveries are counted once per room fan-out (see `layer::hub`).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::process::ProcessStats;

/// The `Content-Type` of a scrape (OpenMetrics text, which Prometheus negotiates by default).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = [(&'static str, &'static str); 1];
type HttpLabels = [(&'static str, String); 2];

/// Why a WebSocket ended: the `reason` of `ferrochat_ws_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it or went away.
    Normal,
    /// Fell further behind its room than `FERROCHAT_WS_QUEUE` (1008).
    SlowReader,
    /// A frame over the size limit (1009).
    TooBig,
    /// A text frame that is not UTF-8 (1007).
    BadUtf8,
    /// A frame the WebSocket protocol forbids (1002).
    Protocol,
    /// No pong, or a stalled write, within `FERROCHAT_WS_PING_TIMEOUT`.
    PingTimeout,
    /// Over `FERROCHAT_WS_RATE` (1008).
    Limit,
    /// A message could not be saved (1011).
    DbUnavailable,
    /// The server stopped (1001).
    Shutdown,
}

impl CloseReason {
    pub const ALL: [CloseReason; 9] = [
        CloseReason::Normal,
        CloseReason::SlowReader,
        CloseReason::TooBig,
        CloseReason::BadUtf8,
        CloseReason::Protocol,
        CloseReason::PingTimeout,
        CloseReason::Limit,
        CloseReason::DbUnavailable,
        CloseReason::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::SlowReader => "slow_reader",
            CloseReason::TooBig => "too_big",
            CloseReason::BadUtf8 => "bad_utf8",
            CloseReason::Protocol => "protocol",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::Limit => "limit",
            CloseReason::DbUnavailable => "db_unavailable",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// Why a WebSocket handshake was refused: the `reason` of `ferrochat_ws_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Origin not in `DJANGO_ALLOWED_HOSTS` (403).
    Origin,
    /// No logged-in user (403).
    Auth,
    /// Not `ws/chat/<room>/` (404).
    Route,
    /// Over `FERROCHAT_MAX_CONNECTIONS` or `FERROCHAT_MAX_CONNECTIONS_PER_USER` (503).
    Limit,
}

impl RejectReason {
    pub const ALL: [RejectReason; 4] = [
        RejectReason::Origin,
        RejectReason::Auth,
        RejectReason::Route,
        RejectReason::Limit,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Origin => "origin",
            RejectReason::Auth => "auth",
            RejectReason::Route => "route",
            RejectReason::Limit => "limit",
        }
    }
}

/// Every metric, resolved to its handle.
pub struct Metrics {
    registry: Registry,
    pub ws_connections: Gauge,
    pub rooms_active: Gauge,
    pub messages_received: Counter,
    pub messages_saved: Counter,
    pub deliveries: Counter,
    ws_closed: [Counter; 9],
    ws_rejected: [Counter; 4],
    pub message_save_seconds: Histogram,
    pub message_delivery_seconds: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub logins_ok: Counter,
    pub logins_failed: Counter,
    pub password_hash_seconds: Histogram,
    pub channel_layer_up: Gauge,
    pub channel_layer_sent: Counter,
    pub channel_layer_received: Counter,
    pub channel_layer_errors: Counter,
    pub db_pool_idle: Gauge,
    pub db_pool_in_use: Gauge,
}

/// 0.5 ms to ~16 s: database commits and local fan-out live at the low end, a stalled
/// database at the high one.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// 1 ms to ~4 s: pages, and a login's ~85 ms password hash.
fn http_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

fn labelled(family: &Family<Labels, Counter>, key: &'static str, value: &'static str) -> Counter {
    family.get_or_create(&[(key, value)]).clone()
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let messages_received = counter(
            "ferrochat_messages_received",
            "Chat messages received from WebSocket clients",
        );
        let messages_saved = counter(
            "ferrochat_messages_saved",
            "Chat messages committed to the database",
        );
        let deliveries = counter(
            "ferrochat_deliveries",
            "Chat frames handed to local WebSocket clients (counted per room fan-out)",
        );
        let channel_layer_errors = counter(
            "ferrochat_channel_layer_errors",
            "Channel layer operations that failed (Redis unreachable or refusing)",
        );

        let ws_closed_family = Family::<Labels, Counter>::default();
        let ws_closed = CloseReason::ALL.map(|r| labelled(&ws_closed_family, "reason", r.label()));
        registry.register(
            "ferrochat_ws_closed",
            "WebSockets closed, by reason",
            ws_closed_family,
        );
        let ws_rejected_family = Family::<Labels, Counter>::default();
        let ws_rejected =
            RejectReason::ALL.map(|r| labelled(&ws_rejected_family, "reason", r.label()));
        registry.register(
            "ferrochat_ws_rejected",
            "WebSocket handshakes refused, by reason",
            ws_rejected_family,
        );
        let logins = Family::<Labels, Counter>::default();
        let logins_ok = labelled(&logins, "result", "success");
        let logins_failed = labelled(&logins, "result", "failure");
        registry.register("ferrochat_logins", "Login attempts, by result", logins);
        let layer_messages = Family::<Labels, Counter>::default();
        let channel_layer_sent = labelled(&layer_messages, "direction", "sent");
        let channel_layer_received = labelled(&layer_messages, "direction", "received");
        registry.register(
            "ferrochat_channel_layer_messages",
            "Room messages through the channel layer, by direction",
            layer_messages,
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "ferrochat_http_requests",
            "HTTP requests answered, by handler and status",
            http_requests.clone(),
        );
        let http_duration: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(http_histogram);
        registry.register(
            "ferrochat_http_request_duration_seconds",
            "Time to answer an HTTP request, by handler",
            http_duration.clone(),
        );

        let mut histogram = |name: &str, help: &str, h: Histogram| {
            registry.register(name, help, h.clone());
            h
        };
        let message_save_seconds = histogram(
            "ferrochat_message_save_seconds",
            "From a chat message's receipt to its commit",
            latency_histogram(),
        );
        let message_delivery_seconds = histogram(
            "ferrochat_message_delivery_seconds",
            "From a chat message's receipt to its hand-over to every local member of the room",
            latency_histogram(),
        );
        let password_hash_seconds = histogram(
            "ferrochat_password_hash_seconds",
            "Time one password hash or check takes on the hashing threads",
            http_histogram(),
        );

        let mut gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let ws_connections = gauge("ferrochat_ws_connections", "Open WebSockets");
        let rooms_active = gauge(
            "ferrochat_rooms_active",
            "Rooms with at least one WebSocket on this process",
        );
        let channel_layer_up = gauge(
            "ferrochat_channel_layer_up",
            "1 when the channel layer reaches the other nodes (always 1 in-process)",
        );
        let pool = Family::<Labels, Gauge>::default();
        let db_pool_idle = pool.get_or_create(&[("state", "idle")]).clone();
        let db_pool_in_use = pool.get_or_create(&[("state", "in_use")]).clone();
        registry.register(
            "ferrochat_db_pool_connections",
            "Database pool connections, by state",
            pool,
        );

        Metrics {
            registry,
            ws_connections,
            rooms_active,
            messages_received,
            messages_saved,
            deliveries,
            ws_closed,
            ws_rejected,
            message_save_seconds,
            message_delivery_seconds,
            http_requests,
            http_duration,
            logins_ok,
            logins_failed,
            password_hash_seconds,
            channel_layer_up,
            channel_layer_sent,
            channel_layer_received,
            channel_layer_errors,
            db_pool_idle,
            db_pool_in_use,
        }
    }

    pub fn ws_closed(&self, reason: CloseReason) {
        if let Some(i) = CloseReason::ALL.iter().position(|r| *r == reason) {
            self.ws_closed[i].inc();
        }
    }

    pub fn ws_rejected(&self, reason: RejectReason) {
        if let Some(i) = RejectReason::ALL.iter().position(|r| *r == reason) {
            self.ws_rejected[i].inc();
        }
    }

    /// One answered HTTP request; `handler` is one of a fixed set of route names.
    pub fn http_request(&self, handler: &'static str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&[
                ("handler", handler.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&[("handler", handler)])
            .observe(took.as_secs_f64());
    }

    /// The whole scrape: every ferrochat metric, then the `process_*` ones, then `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        ProcessStats::read().encode(&mut out);
        out.push_str("# EOF\n");
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_the_readme_is_exported() {
        let m = metrics();
        m.http_request("index", 200, Duration::from_millis(3));
        let text = m.encode();
        for name in [
            "ferrochat_ws_connections ",
            "ferrochat_rooms_active ",
            "ferrochat_messages_received_total ",
            "ferrochat_messages_saved_total ",
            "ferrochat_deliveries_total ",
            "ferrochat_ws_closed_total{reason=\"slow_reader\"} ",
            "ferrochat_ws_rejected_total{reason=\"origin\"} ",
            "ferrochat_message_save_seconds_count ",
            "ferrochat_message_delivery_seconds_bucket{le=",
            "ferrochat_http_requests_total{handler=\"index\",status=\"200\"} ",
            "ferrochat_http_request_duration_seconds_count{handler=\"index\"} ",
            "ferrochat_logins_total{result=\"failure\"} ",
            "ferrochat_password_hash_seconds_sum ",
            "ferrochat_channel_layer_up ",
            "ferrochat_channel_layer_messages_total{direction=\"received\"} ",
            "ferrochat_channel_layer_errors_total ",
            "ferrochat_db_pool_connections{state=\"idle\"} ",
        ] {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
