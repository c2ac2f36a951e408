//! `RoomName`: the legacy rule `^[A-Za-z0-9_-]{1,64}$` (chatapp/forms.py), checked once at the edge.
//! The room form, the page route, the WebSocket route and the channel layer all use this one rule.

use std::fmt;

/// `chatapp.forms.ROOM_NAME_PATTERN`'s length limit.
pub const MAX_ROOM_NAME_LEN: usize = 64;

/// `chatapp.forms.ROOM_NAME_ERROR`.
pub const ROOM_NAME_ERROR: &str = "Room names must be 1 to 64 characters long and may only \
                                   contain letters, digits, underscores (_) and hyphens (-).";

/// `chatapp.forms.is_valid_room_name`: `^[A-Za-z0-9_-]{1,64}$`.
pub fn is_valid_room_name(raw: &str) -> bool {
    (1..=MAX_ROOM_NAME_LEN).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A room name that passed the legacy rule; every page, socket and group name is built from one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid room name")]
pub struct InvalidRoomName;

impl RoomName {
    pub fn parse(raw: &str) -> Result<RoomName, InvalidRoomName> {
        if is_valid_room_name(raw) {
            Ok(RoomName(raw.to_owned()))
        } else {
            Err(InvalidRoomName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Channels group the legacy consumer joins: `chat_<name>`.
    pub fn group(&self) -> String {
        format!("chat_{}", self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_legacy_alphabet() {
        for ok in ["a", "lobby", "A-b_9", &"x".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            " lobby",
            "lob by",
            "lobby/",
            "é",
            "a.b",
            "<b>",
            &"x".repeat(65),
            "lobby\n",
        ] {
            assert_eq!(RoomName::parse(bad), Err(InvalidRoomName), "{bad:?}");
        }
    }
}
