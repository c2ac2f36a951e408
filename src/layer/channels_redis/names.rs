//! Channel and group names exactly as Channels validates them, and ferrochat's node channels.
//!
//! Mirrors `channels/layers.py: BaseChannelLayer` (channels 4.0.0): `MAX_NAME_LENGTH = 100`,
//! `channel_name_regex = ^[a-zA-Z\d\-_.]+(\![\d\w\-_.]*)?$`, `group_name_regex = ^[a-zA-Z\d\-_.]+$`,
//! and `non_local_name`. We accept ASCII only in the local part (Python's `\w` also takes Unicode
//! letters); every name ferrochat makes or meets (uuid hex, room names) is ASCII.

use std::fmt;

use sha2::{Digest, Sha256};

/// Channels' `BaseChannelLayer.MAX_NAME_LENGTH`: names must be strictly shorter.
pub const MAX_NAME_LENGTH: usize = 100;

/// The longest local part ferrochat puts after `!`: a room name (legacy `routing.py`:
/// `(?P<room_name>[A-Za-z0-9_-]{1,64})`).
pub const MAX_LOCAL_LENGTH: usize = 64;

/// The prefix Channels' consumers use for their channels (`RedisChannelLayer.new_channel`).
const SPECIFIC: &str = "specific.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "node id {0:?} must be 1 to {max} ASCII letters, digits, '-', '_' or '.' \
         (so that `specific.<node-id>!<64-char room>` stays under Channels' 100-character limit)",
        max = NodeId::MAX_LEN
    )]
    NodeId(String),
    #[error(
        "channel name {0:?} must be shorter than 100 characters and match \
         ^[a-zA-Z0-9._-]+(![a-zA-Z0-9._-]*)?$"
    )]
    Channel(String),
    #[error("group name {0:?} must be 1 to 99 ASCII letters, digits, '-', '_' or '.'")]
    Group(String),
}

/// `[a-zA-Z\d\-_.]` on one byte.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_name_byte)
}

/// `channels.layers.BaseChannelLayer.non_local_name`: up to and including the first `!`, or the
/// whole name. The Redis queue key is `prefix + non_local_name(channel)`.
pub fn non_local_name(name: &str) -> &str {
    match name.find('!') {
        Some(i) => &name[..=i],
        None => name,
    }
}

/// A process id for the channel names ferrochat registers, stable across restarts.
///
/// Each ferrochat process owns one Redis queue, `{prefix}specific.<node-id>!`; two live processes
/// with the same id would steal each other's messages. At most [`NodeId::MAX_LEN`] characters so
/// that `specific.` (9) + id + `!` (1) + a 64-character room stays at 99 < 100.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub const MAX_LEN: usize = MAX_NAME_LENGTH - 1 - SPECIFIC.len() - 1 - MAX_LOCAL_LENGTH;

    pub fn parse(id: &str) -> Result<NodeId, NameError> {
        if is_name(id) && id.len() <= Self::MAX_LEN {
            Ok(NodeId(id.to_owned()))
        } else {
            Err(NameError::NodeId(id.to_owned()))
        }
    }

    /// A stable id derived from something that identifies the process on its machine (for
    /// example `hostname:port`): `fc` + 16 hex digits of SHA-256, 18 characters.
    pub fn derive(seed: &str) -> NodeId {
        let digest = Sha256::digest(seed.as_bytes());
        NodeId(format!("fc{}", hex::encode(&digest[..8])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `specific.<node-id>!`: the non-local name shared by all of this node's channels. Its Redis
    /// key is `prefix + this`, and its shard is `consistent_hash(this)`.
    pub fn non_local_name(&self) -> String {
        format!("{SPECIFIC}{}!", self.0)
    }

    /// `specific.<node-id>!<local>`, for example one channel per room.
    pub fn channel(&self, local: &str) -> Result<ChannelName, NameError> {
        let name = format!("{SPECIFIC}{}!{local}", self.0);
        if local.len() <= MAX_LOCAL_LENGTH && local.bytes().all(is_name_byte) {
            ChannelName::parse(&name)
        } else {
            Err(NameError::Channel(name))
        }
    }

    /// The local part of one of this node's channel names, or `None` for somebody else's name.
    pub fn local_part<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(SPECIFIC)?
            .strip_prefix(self.0.as_str())?
            .strip_prefix('!')
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel name that Channels' `valid_channel_name` accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(String);

impl ChannelName {
    pub fn parse(name: &str) -> Result<ChannelName, NameError> {
        let ok = name.len() < MAX_NAME_LENGTH
            && match name.split_once('!') {
                Some((head, local)) => is_name(head) && local.bytes().all(is_name_byte),
                None => is_name(name),
            };
        if ok {
            Ok(ChannelName(name.to_owned()))
        } else {
            Err(NameError::Channel(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A process-specific channel (`!` in the name): its messages carry `__asgi_channel__`.
    pub fn is_process_specific(&self) -> bool {
        self.0.contains('!')
    }

    pub fn non_local_name(&self) -> &str {
        non_local_name(&self.0)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group name that Channels' `valid_group_name` accepts, e.g. `chat_<room>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(name: &str) -> Result<GroupName, NameError> {
        if is_name(name) && name.len() < MAX_NAME_LENGTH {
            Ok(GroupName(name.to_owned()))
        } else {
            Err(NameError::Group(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_local_name_is_up_to_and_including_the_first_bang() {
        assert_eq!(non_local_name("specific.abc!def"), "specific.abc!");
        assert_eq!(non_local_name("specific.abc!"), "specific.abc!");
        assert_eq!(non_local_name("specific.abc!d!e"), "specific.abc!");
        assert_eq!(non_local_name("thumbnails"), "thumbnails");
    }

    #[test]
    fn node_ids_keep_the_longest_room_channel_under_100_characters() {
        assert_eq!(NodeId::MAX_LEN, 25);
        let node = NodeId::parse(&"n".repeat(25)).expect("25 characters fit");
        let room = "r".repeat(64);
        let channel = node.channel(&room).expect("longest room fits");
        assert_eq!(channel.as_str().len(), 99);
        assert!(NodeId::parse(&"n".repeat(26)).is_err());
        assert!(node.channel(&"r".repeat(65)).is_err());
    }

    #[test]
    fn node_ids_reject_characters_channels_rejects() {
        for bad in ["", "a!b", "a b", "é", "a/b", "a:b"] {
            assert!(NodeId::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["web-1", "fc.node_2", "A9"] {
            assert!(NodeId::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn derived_node_ids_are_stable_and_valid() {
        let a = NodeId::derive("host:8000");
        assert_eq!(a, NodeId::derive("host:8000"));
        assert_ne!(a, NodeId::derive("host:8001"));
        assert_eq!(a.as_str().len(), 18);
        assert!(NodeId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn node_channels_and_local_parts() {
        let node = NodeId::parse("web1").expect("valid");
        let ch = node.channel("lobby").expect("valid");
        assert_eq!(ch.as_str(), "specific.web1!lobby");
        assert_eq!(ch.non_local_name(), "specific.web1!");
        assert_eq!(node.non_local_name(), "specific.web1!");
        assert_eq!(node.local_part("specific.web1!lobby"), Some("lobby"));
        assert_eq!(node.local_part("specific.web10!lobby"), None);
        assert_eq!(node.local_part("specific.web!lobby"), None);
        assert!(node.channel("a!b").is_err());
        assert!(node.channel("a b").is_err());
    }

    #[test]
    fn channel_names_follow_channels_regex() {
        let python = "specific.a2d6b0fe00754f069775939c8d693947!65ce9cae62024e12924206c08aba708a";
        assert!(ChannelName::parse(python).is_ok());
        assert!(ChannelName::parse("thumbnails").is_ok());
        assert!(ChannelName::parse("specific.x!").is_ok());
        for bad in ["", "!abc", "a b", "a!b!c", "a\n", &"a".repeat(100)] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ChannelName::parse(&"a".repeat(99)).is_ok());
    }

    #[test]
    fn group_names_follow_channels_regex() {
        assert!(GroupName::parse("chat_lobby").is_ok());
        assert!(GroupName::parse(&format!("chat_{}", "r".repeat(64))).is_ok());
        for bad in ["", "a!b", "a b", "chat:x", &"g".repeat(100)] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
