//! The legacy chat JSON (`chatapp/consumers.py`, COMPAT §6): what a client may send over the
//! WebSocket, and the `chat.message` event with the one frame the server sends, byte-identical
//! to the legacy consumer's `json.dumps`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{dates, py_json, pyunicode};

/// `consumers.py MAX_MESSAGE_LENGTH`, in code points as Python's `len()` counts.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Why a client frame was dropped. The protocol has no error frame (the legacy `room.js` would
/// print any frame as a chat line), so these are only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("binary frame")]
    Binary,
    #[error("invalid JSON")]
    InvalidJson,
    #[error("JSON is not an object")]
    NotAnObject,
    #[error("\"message\" is not a string")]
    NotAString,
    #[error("empty message")]
    Empty,
    #[error("message of {0} characters is over the {MAX_MESSAGE_CHARS} limit")]
    TooLong(usize),
}

/// Extracts the text the legacy consumer would save from a client text frame:
/// `str(data.get("message", "")).strip()`, non-empty, at most 4000 code points. A non-string
/// `message` is ignored (a declared divergence: Python would save its `str()`).
pub fn parse_client_text(text: &str) -> Result<String, Ignored> {
    let value: Value = serde_json::from_str(text).map_err(|_| Ignored::InvalidJson)?;
    let Value::Object(map) = value else {
        return Err(Ignored::NotAnObject);
    };
    let message = match map.get("message") {
        None => return Err(Ignored::Empty),
        Some(Value::String(s)) => s,
        Some(_) => return Err(Ignored::NotAString),
    };
    let stripped = pyunicode::strip(message);
    if stripped.is_empty() {
        return Err(Ignored::Empty);
    }
    let chars = stripped.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(Ignored::TooLong(chars));
    }
    Ok(stripped.to_owned())
}

/// One saved message as the legacy `chat.message` event carries it: the consumer sends it, the
/// channel layer carries it between nodes (`crate::layer::channels_redis::wire` writes it as
/// msgpack), and every socket in the room gets its [`to_frame`](ChatEvent::to_frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    pub id: i64,
    pub message: String,
    pub username: String,
    /// Python `isoformat()` of the stored UTC time, passed on as the sender wrote it.
    pub timestamp: String,
}

impl ChatEvent {
    /// The event's `type`: the legacy consumer's `chat_message` handler.
    pub const TYPE: &'static str = "chat.message";

    pub fn new(id: i64, message: String, username: String, timestamp: &DateTime<Utc>) -> ChatEvent {
        ChatEvent {
            id,
            message,
            username,
            timestamp: dates::isoformat(timestamp),
        }
    }

    /// `json.dumps({"id": …, "message": …, "username": …, "timestamp": …})` exactly: default
    /// separators, this key order, non-ASCII as `\uXXXX`.
    pub fn to_frame(&self) -> String {
        let mut out = String::with_capacity(64 + self.message.len() * 2 + self.username.len());
        out.push_str("{\"id\": ");
        let _ = write!(out, "{}", self.id);
        out.push_str(", \"message\": ");
        py_json::write_str(&mut out, &self.message);
        out.push_str(", \"username\": ");
        py_json::write_str(&mut out, &self.username);
        out.push_str(", \"timestamp\": ");
        py_json::write_str(&mut out, &self.timestamp);
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_like_python_and_counts_code_points() {
        assert_eq!(
            parse_client_text(r#"{"message": "  hi \u001f"}"#),
            Ok("hi".into())
        );
        assert_eq!(
            parse_client_text(r#"{"message": "\u3000\u00a0"}"#),
            Err(Ignored::Empty)
        );
        let at_limit = format!(r#"{{"message": "{}"}}"#, "é".repeat(4000));
        assert_eq!(
            parse_client_text(&at_limit).map(|s| s.chars().count()),
            Ok(4000)
        );
        let over = format!(r#"{{"message": "{}"}}"#, "é".repeat(4001));
        assert_eq!(parse_client_text(&over), Err(Ignored::TooLong(4001)));
    }

    #[test]
    fn ignores_what_the_legacy_consumer_ignores() {
        assert_eq!(parse_client_text("not json"), Err(Ignored::InvalidJson));
        assert_eq!(parse_client_text("[1]"), Err(Ignored::NotAnObject));
        assert_eq!(parse_client_text("\"x\""), Err(Ignored::NotAnObject));
        assert_eq!(parse_client_text("{}"), Err(Ignored::Empty));
        assert_eq!(
            parse_client_text(r#"{"message": 42}"#),
            Err(Ignored::NotAString)
        );
        assert_eq!(
            parse_client_text(r#"{"message": null}"#),
            Err(Ignored::NotAString)
        );
    }

    #[test]
    fn frame_is_python_json_dumps() {
        let ts = DateTime::parse_from_rfc3339("2026-11-24T04:36:42.485068Z")
            .expect("ts")
            .with_timezone(&Utc);
        let e = ChatEvent::new(1, "hello".into(), "admin".into(), &ts);
        assert_eq!(
            e.to_frame(),
            r#"{"id": 1, "message": "hello", "username": "admin", "timestamp": "2026-11-24T04:36:42.485068+00:00"}"#
        );
        let ts0 = DateTime::parse_from_rfc3339("2026-11-24T04:36:42Z")
            .expect("ts")
            .with_timezone(&Utc);
        let e = ChatEvent::new(
            7,
            "h\u{e9}llo \u{1f600} \"q\" <b>".into(),
            "\u{fc}ser".into(),
            &ts0,
        );
        assert_eq!(
            e.to_frame(),
            r#"{"id": 7, "message": "h\u00e9llo \ud83d\ude00 \"q\" <b>", "username": "\u00fcser", "timestamp": "2026-11-24T04:36:42+00:00"}"#
        );
    }
}
