//! The `ferrochat.v1` frames the server sends (docs/protocol.md), written with the legacy
//! frame's spacing (`json.dumps` defaults) so both protocols look alike on the wire.

use std::fmt::Write as _;

use crate::django::py_json;

/// What happens in a room besides its messages: the events v1 sockets get, on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    Join(String),
    Leave(String),
    Typing(String),
    Delete(i64),
}

impl RoomEvent {
    /// The v1 frame of the event.
    pub fn to_frame(&self) -> String {
        match self {
            RoomEvent::Join(user) => user_frame("join", user),
            RoomEvent::Leave(user) => user_frame("leave", user),
            RoomEvent::Typing(user) => user_frame("typing", user),
            RoomEvent::Delete(id) => format!("{{\"type\": \"delete\", \"id\": {id}}}"),
        }
    }

    /// The user a join, leave or typing is about.
    pub fn username(&self) -> Option<&str> {
        match self {
            RoomEvent::Join(user) | RoomEvent::Leave(user) | RoomEvent::Typing(user) => Some(user),
            RoomEvent::Delete(_) => None,
        }
    }

    /// The name the event travels under between nodes.
    pub fn kind(&self) -> &'static str {
        match self {
            RoomEvent::Join(_) => "join",
            RoomEvent::Leave(_) => "leave",
            RoomEvent::Typing(_) => "typing",
            RoomEvent::Delete(_) => "delete",
        }
    }
}

fn user_frame(kind: &str, user: &str) -> String {
    let mut out = String::with_capacity(32 + user.len());
    let _ = write!(out, "{{\"type\": \"{kind}\", \"username\": ");
    py_json::write_str(&mut out, user);
    out.push('}');
    out
}

/// `{"type": "presence", "users": [...]}`: sorted, each once.
pub fn presence(users: &[String]) -> String {
    let mut out = String::from("{\"type\": \"presence\", \"users\": [");
    for (i, user) in users.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_json::write_str(&mut out, user);
    }
    out.push_str("]}");
    out
}

/// `{"type": "gap", "after": …, "oldest": …}`.
pub fn gap(after: i64, oldest: i64) -> String {
    format!("{{\"type\": \"gap\", \"after\": {after}, \"oldest\": {oldest}}}")
}

/// `{"type": "caught_up", "last_id": … or null}`.
pub fn caught_up(last_id: Option<i64>) -> String {
    match last_id {
        Some(id) => format!("{{\"type\": \"caught_up\", \"last_id\": {id}}}"),
        None => "{\"type\": \"caught_up\", \"last_id\": null}".to_owned(),
    }
}

/// The legacy frame's prefix: every legacy frame is `ChatEvent::to_frame`, which starts so.
const LEGACY_PREFIX: &str = "{\"id\": ";

/// The v1 `message` frame of a legacy chat frame: the same object with `"type": "message"` in
/// front (one copy; the legacy frame stays shared by the room's legacy sockets). `None` for a
/// frame that is not a legacy chat frame.
pub fn message_from_legacy(frame: &str) -> Option<String> {
    let rest = frame.strip_prefix('{')?;
    if !frame.starts_with(LEGACY_PREFIX) {
        return None;
    }
    let mut out = String::with_capacity(frame.len() + 18);
    out.push_str("{\"type\": \"message\", ");
    out.push_str(rest);
    Some(out)
}

/// The id of a legacy chat frame, read from its fixed prefix.
pub fn legacy_id(frame: &str) -> Option<i64> {
    let rest = frame.strip_prefix(LEGACY_PREFIX)?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '-'))?;
    rest[..end].parse().ok()
}

/// What a v1 client frame asks for, from its `type` (docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// No `type`, or `"message"`: a chat message, validated as the legacy protocol's.
    Message,
    Typing,
    /// Another `type`: ignored.
    Other(String),
}

/// Reads a v1 client text frame's `type`; anything that is not an object with a string
/// `type` is left to the legacy parser (which ignores what it must).
pub fn classify(text: &str) -> ClientFrame {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return ClientFrame::Message;
    };
    match map.get("type") {
        None => ClientFrame::Message,
        Some(serde_json::Value::String(t)) if t == "message" => ClientFrame::Message,
        Some(serde_json::Value::String(t)) if t == "typing" => ClientFrame::Typing,
        Some(other) => ClientFrame::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::django::chat_json::ChatEvent;

    #[test]
    fn a_message_frame_is_the_legacy_frame_with_a_type() {
        let ts = DateTime::parse_from_rfc3339("2026-11-24T04:36:42.485068Z")
            .expect("ts")
            .with_timezone(&Utc);
        let legacy = ChatEvent::new(12, "h\u{e9}".into(), "ann".into(), &ts).to_frame();
        let v1 = message_from_legacy(&legacy).expect("a chat frame");
        assert_eq!(
            v1,
            r#"{"type": "message", "id": 12, "message": "h\u00e9", "username": "ann", "timestamp": "2026-11-24T04:36:42.485068+00:00"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&v1).expect("JSON");
        assert_eq!(parsed["id"], 12);
        assert_eq!(legacy_id(&legacy), Some(12));
        assert_eq!(legacy_id("{\"type\": 1}"), None);
        assert_eq!(message_from_legacy("{\"type\": 1}"), None);
    }

    #[test]
    fn client_frames_are_told_apart_by_type() {
        assert_eq!(classify(r#"{"message": "hi"}"#), ClientFrame::Message);
        assert_eq!(
            classify(r#"{"type": "message", "message": "hi"}"#),
            ClientFrame::Message
        );
        assert_eq!(classify(r#"{"type": "typing"}"#), ClientFrame::Typing);
        assert_eq!(
            classify(r#"{"type": "dance"}"#),
            ClientFrame::Other("\"dance\"".into())
        );
        assert_eq!(classify("not json"), ClientFrame::Message);
    }

    #[test]
    fn event_frames_are_json() {
        for (event, want) in [
            (
                RoomEvent::Join("\u{fc}".into()),
                r#"{"type": "join", "username": "\u00fc"}"#,
            ),
            (
                RoomEvent::Leave("a".into()),
                r#"{"type": "leave", "username": "a"}"#,
            ),
            (
                RoomEvent::Typing("a".into()),
                r#"{"type": "typing", "username": "a"}"#,
            ),
            (RoomEvent::Delete(7), r#"{"type": "delete", "id": 7}"#),
        ] {
            assert_eq!(event.to_frame(), want);
        }
        assert_eq!(
            presence(&["a".into(), "b".into()]),
            r#"{"type": "presence", "users": ["a", "b"]}"#
        );
        assert_eq!(presence(&[]), r#"{"type": "presence", "users": []}"#);
        assert_eq!(gap(3, 9), r#"{"type": "gap", "after": 3, "oldest": 9}"#);
        assert_eq!(caught_up(None), r#"{"type": "caught_up", "last_id": null}"#);
        assert_eq!(caught_up(Some(4)), r#"{"type": "caught_up", "last_id": 4}"#);
    }
}
