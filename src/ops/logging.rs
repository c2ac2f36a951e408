//! `FERROCHAT_LOG_FORMAT`: human text (the default) or JSON, one object per line with
//! `timestamp`, `level`, `target`, `message` and the event's fields at the top level, for log
//! shippers that parse lines. Logs go to stderr either way, so command output on stdout stays
//! exactly Django's.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::settings::OpsConfigError;

pub const LOG_FORMAT_VAR: &str = "FERROCHAT_LOG_FORMAT";

/// The target of access lines, one per HTTP request and per WebSocket session (filter them
/// with `RUST_LOG=info,ferrochat::access=off`).
pub const ACCESS_TARGET: &str = "ferrochat::access";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(value: Option<&str>) -> Result<LogFormat, OpsConfigError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(OpsConfigError::new(
                LOG_FORMAT_VAR,
                format!("expected text or json, got {other:?}"),
            )),
        }
    }

    /// From the process environment.
    pub fn from_env() -> Result<LogFormat, OpsConfigError> {
        LogFormat::parse(std::env::var(LOG_FORMAT_VAR).ok().as_deref())
    }
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`); text is coloured only
/// when stderr is a terminal (a file, a pipe or journald gets plain text).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(LogFormat::parse(None).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some(" JSON ")).ok(), Some(LogFormat::Json));
        let err = LogFormat::parse(Some("xml")).expect_err("bad");
        assert!(
            err.to_string().starts_with("FERROCHAT_LOG_FORMAT: "),
            "{err}"
        );
    }
}
