//! `RoomName`: the legacy rule `^[A-Za-z0-9_-]{1,64}$` (chatapp/forms.py), checked once at the edge.

use std::fmt;

pub const MAX_ROOM_NAME_LEN: usize = 64;

/// A room name that passed the legacy rule; every page, socket and group name is built from one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid room name")]
pub struct InvalidRoomName;

impl RoomName {
    pub fn parse(raw: &str) -> Result<RoomName, InvalidRoomName> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_ROOM_NAME_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
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
