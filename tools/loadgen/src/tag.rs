//! The text every load-generator message carries: `lg|<step>|<sender>|<seq>|<unix_nanos>|<padding>`.
//!
//! The servers under test wrap the text differently (the ceiling echoes the client's frame as is;
//! ferrochat and Daphne send `{"id": …, "message": "<text>", "username": …, "timestamp": …}`), so
//! the receiver does not parse JSON: it finds `lg|` in the frame and reads the four numbers after
//! it. The text holds only ASCII letters, digits and `|`, which JSON never escapes and Python's
//! `str.strip()` never strips.

use std::fmt::Write as _;

/// The marker that starts a tag.
pub const MARK: &str = "lg|";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Which load step sent it (seq numbers restart at 0 in every step).
    pub step: u32,
    /// The global id of the sending connection.
    pub sender: u32,
    /// Per sender and step: 0, 1, 2, …
    pub seq: u64,
    /// When it was *scheduled* to be sent (plus at most 2 ms of timer slack), in nanoseconds
    /// since the Unix epoch. Using the schedule rather than the moment of the write keeps a
    /// stalled sender from hiding latency (coordinated omission).
    pub sent_nanos: u64,
}

impl Tag {
    /// The message text, padded with `x` to at least `size` characters.
    pub fn text(&self, size: usize) -> String {
        let mut s = String::with_capacity(size.max(48));
        let _ = write!(
            s,
            "{MARK}{}|{}|{}|{}|",
            self.step, self.sender, self.seq, self.sent_nanos
        );
        while s.len() < size {
            s.push('x');
        }
        s
    }

    /// The client frame of the chat protocol: `{"message": "<text>"}`.
    pub fn frame(&self, size: usize) -> String {
        format!("{{\"message\": \"{}\"}}", self.text(size))
    }

    /// Finds and parses a tag anywhere in a received frame. `None` for frames that carry none
    /// (or a malformed one): those are counted as foreign, never trusted.
    pub fn find(frame: &str) -> Option<Tag> {
        let start = frame.find(MARK)? + MARK.len();
        let mut fields = frame[start..].splitn(5, '|');
        let step = fields.next()?.parse().ok()?;
        let sender = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let sent_nanos = fields.next()?.parse().ok()?;
        // The fifth piece (padding and the rest of the frame) must exist: the nanos field is
        // terminated by `|`, so a truncated frame is not mistaken for a shorter timestamp.
        fields.next()?;
        Some(Tag {
            step,
            sender,
            seq,
            sent_nanos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Tag = Tag {
        step: 3,
        sender: 17,
        seq: 123_456,
        sent_nanos: 1_764_000_000_123_456_789,
    };

    #[test]
    fn round_trip_through_every_server_shape() {
        let text = T.text(100);
        assert_eq!(text.len(), 100);
        assert!(text.starts_with("lg|3|17|123456|1764000000123456789|x"));
        // The ceiling echoes the client frame.
        assert_eq!(Tag::find(&T.frame(100)), Some(T));
        // Django and ferrochat wrap the text in their broadcast.
        let server = format!(
            "{{\"id\": 42, \"message\": \"{text}\", \"username\": \"lg\", \"timestamp\": \"2026-01-01T00:00:00.5+00:00\"}}"
        );
        assert_eq!(Tag::find(&server), Some(T));
        // Short size: never truncated below the tag itself.
        assert_eq!(Tag::find(&T.text(0)), Some(T));
    }

    #[test]
    fn garbage_is_not_a_tag() {
        for frame in [
            "",
            "hello",
            "{\"message\": \"lg|\"}",
            "lg|1|2|3|4",
            "lg|1|2|3",
            "lg|a|2|3|4|",
            "lg|1|-2|3|4|",
            "lg|1|2|3|99999999999999999999999|",
        ] {
            assert_eq!(Tag::find(frame), None, "{frame}");
        }
    }

    #[test]
    fn text_is_safe_for_json_and_strip() {
        let text = T.text(64);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'|'));
    }
}
