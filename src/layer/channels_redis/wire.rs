//! The bytes of one queue member: 12 random bytes + msgpack (or + a Fernet token wrapping it).
//!
//! Mirrors `channels_redis/core.py: RedisChannelLayer.serialize / deserialize` (4.2.0, lines
//! 655-676): `msgpack.packb(message, use_bin_type=True)`, optional `MultiFernet(keys).encrypt`,
//! then `random.getrandbits(96).to_bytes(12, "big")` in front; reading strips 12 bytes, decrypts
//! with `ttl = expiry + 10` and `msgpack.unpackb(m, raw=False)` (strict map keys, valid UTF-8).

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use rand::RngExt;
use rmpv::Value;
use sha2::{Digest, Sha256};

use crate::django::chat_json::ChatEvent;

/// Random bytes before every member: they keep equal messages distinct inside a sorted set, and
/// Python strips exactly this many (`random_prefix_length` default).
pub const RANDOM_PREFIX_LEN: usize = 12;

/// The reserved routing key: a str (from `send`) or an array of str (from `group_send`), appended
/// last; receivers remove it before the application sees the message.
pub const ASGI_CHANNEL: &str = "__asgi_channel__";

/// Deeper than any channel message; bounds recursion on hostile bytes.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a channel message must be a msgpack map, got {0}")]
    NotAMap(&'static str),
    #[error("a channel message's keys must be str, got {0}")]
    KeyNotStr(&'static str),
    #[error("the message already contains the reserved key __asgi_channel__")]
    ReservedKey,
    #[error("member is {0} bytes, shorter than the 12-byte random prefix")]
    TooShort(usize),
    #[error(
        "cannot decrypt the member (wrong key, older than expiry + 10 s, or not a Fernet token)"
    )]
    Decrypt,
    #[error("invalid encryption key #{0}")]
    Key(usize),
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    #[error("{0} bytes after the msgpack value")]
    TrailingBytes(usize),
    #[error("a msgpack str is not valid UTF-8")]
    InvalidUtf8,
    #[error("a map key is {0}; Python's unpackb accepts only str or bytes keys")]
    BadMapKey(&'static str),
    #[error("no __asgi_channel__ in a message on a process-specific queue")]
    NoTarget,
    #[error("__asgi_channel__ is neither a str nor an array of str")]
    BadTarget,
}

/// Where a message goes, written as `__asgi_channel__`.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A plain (non-`!`) channel: no routing key.
    None,
    /// `send()` to a process-specific channel: a str.
    One(&'a str),
    /// `group_send()`: every member channel that shares this queue key, as an array of str.
    Many(&'a [&'a str]),
}

/// `__asgi_channel__` as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    One(String),
    Many(Vec<String>),
}

impl Targets {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Targets::One(one) => std::slice::from_ref(one),
            Targets::Many(many) => many,
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        match self {
            Targets::One(one) => vec![one],
            Targets::Many(many) => many,
        }
    }
}

/// A decoded member: the application message (without `__asgi_channel__`) and its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub targets: Option<Targets>,
    pub message: Value,
}

/// Encodes and decodes members for one layer configuration.
pub struct Codec {
    crypter: Option<Crypter>,
}

/// `MultiFernet`: encrypt with the first key, decrypt with any.
struct Crypter {
    fernets: Vec<fernet::Fernet>,
    ttl_secs: u64,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("encrypted", &self.crypter.is_some())
            .finish()
    }
}

/// `RedisChannelLayer.make_fernet`: `Fernet(base64.urlsafe_b64encode(sha256(utf8(secret))))`.
pub fn fernet_key(secret: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(Sha256::digest(secret.as_bytes()))
}

impl Codec {
    /// `symmetric_encryption_keys` empty means no encryption; `expiry` gives the decrypt TTL.
    pub fn new(symmetric_encryption_keys: &[String], expiry: u64) -> Result<Codec, WireError> {
        if symmetric_encryption_keys.is_empty() {
            return Ok(Codec { crypter: None });
        }
        let fernets = symmetric_encryption_keys
            .iter()
            .enumerate()
            .map(|(i, secret)| fernet::Fernet::new(&fernet_key(secret)).ok_or(WireError::Key(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Codec {
            crypter: Some(Crypter {
                fernets,
                ttl_secs: expiry.saturating_add(10),
            }),
        })
    }

    pub fn is_encrypted(&self) -> bool {
        self.crypter.is_some()
    }

    /// One member: fresh random prefix, then the message map with `target` appended last.
    pub fn encode(&self, message: &Value, target: Target<'_>) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(RANDOM_PREFIX_LEN + 256);
        out.resize(RANDOM_PREFIX_LEN, 0);
        rand::rng().fill(&mut out[..RANDOM_PREFIX_LEN]);
        match &self.crypter {
            None => pack_message(message, target, &mut out)?,
            Some(crypter) => {
                let mut plain = Vec::with_capacity(256);
                pack_message(message, target, &mut plain)?;
                let fernet = crypter.fernets.first().ok_or(WireError::Key(0))?;
                out.extend_from_slice(fernet.encrypt(&plain).as_bytes());
            }
        }
        Ok(out)
    }

    /// Reads a member the way Python would, refusing what Python's `deserialize` would raise on.
    pub fn decode(&self, member: &[u8]) -> Result<Decoded, WireError> {
        let body = member
            .get(RANDOM_PREFIX_LEN..)
            .ok_or(WireError::TooShort(member.len()))?;
        let plain: Cow<'_, [u8]> = match &self.crypter {
            None => Cow::Borrowed(body),
            Some(crypter) => Cow::Owned(crypter.decrypt(body)?),
        };
        let mut rest: &[u8] = &plain;
        let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
            .map_err(|e| WireError::Msgpack(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes(rest.len()));
        }
        check_like_python(&value)?;
        let Value::Map(mut entries) = value else {
            return Err(WireError::NotAMap(kind(&value)));
        };
        let targets = match entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(ASGI_CHANNEL))
        {
            None => None,
            Some(i) => Some(parse_targets(entries.remove(i).1)?),
        };
        Ok(Decoded {
            targets,
            message: Value::Map(entries),
        })
    }
}

impl Crypter {
    fn decrypt(&self, token: &[u8]) -> Result<Vec<u8>, WireError> {
        let token = std::str::from_utf8(token).map_err(|_| WireError::Decrypt)?;
        self.fernets
            .iter()
            .find_map(|f| f.decrypt_with_ttl(token, self.ttl_secs).ok())
            .ok_or(WireError::Decrypt)
    }
}

/// `msgpack.packb(message, use_bin_type=True)` for a map, plus the routing key appended last
/// (Python does `message = dict(message); message["__asgi_channel__"] = ...`), without cloning.
pub fn pack_message(
    message: &Value,
    target: Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let entries = check_message(message)?;
    let extra = usize::from(!matches!(target, Target::None));
    write_len(out, entries.len() + extra, [0x80, 0xde, 0xdf], 16);
    for (key, value) in entries {
        write_value(out, key)?;
        write_value(out, value)?;
    }
    match target {
        Target::None => {}
        Target::One(channel) => {
            write_str(out, ASGI_CHANNEL);
            write_str(out, channel);
        }
        Target::Many(channels) => {
            write_str(out, ASGI_CHANNEL);
            write_len(out, channels.len(), [0x90, 0xdc, 0xdd], 16);
            for channel in channels {
                write_str(out, channel);
            }
        }
    }
    Ok(())
}

/// A message Python can take: a map with str keys, none of them `__asgi_channel__`.
pub fn check_message(message: &Value) -> Result<&[(Value, Value)], WireError> {
    let Value::Map(entries) = message else {
        return Err(WireError::NotAMap(kind(message)));
    };
    for (key, _) in entries {
        match key {
            Value::String(s) if s.as_str() == Some(ASGI_CHANNEL) => {
                return Err(WireError::ReservedKey);
            }
            Value::String(s) if s.is_str() => {}
            Value::String(_) => return Err(WireError::InvalidUtf8),
            other => return Err(WireError::KeyNotStr(kind(other))),
        }
    }
    Ok(entries)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), WireError> {
    rmpv::encode::write_value(out, value).map_err(|e| WireError::Msgpack(e.to_string()))
}

/// msgpack length header: fix form below `fix_limit`, then 16- and 32-bit forms.
fn write_len(out: &mut Vec<u8>, len: usize, [fix, m16, m32]: [u8; 3], fix_limit: usize) {
    if len < fix_limit {
        out.push(fix | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(m16);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(m32);
        // Redis caps a value at 512 MB, far below u32::MAX.
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// A str the way msgpack (`use_bin_type=True`) writes it: fixstr, str8, str16, str32.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(len) = u8::try_from(len) {
        out.push(0xd9);
        out.push(len);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// What `unpackb(raw=False)` (strict_map_key) rejects: invalid UTF-8 in any str, and map keys
/// other than str/bytes, at any depth.
fn check_like_python(value: &Value) -> Result<(), WireError> {
    match value {
        Value::String(s) if !s.is_str() => Err(WireError::InvalidUtf8),
        Value::Array(items) => items.iter().try_for_each(check_like_python),
        Value::Map(entries) => entries.iter().try_for_each(|(k, v)| {
            match k {
                Value::String(_) | Value::Binary(_) => {}
                other => return Err(WireError::BadMapKey(kind(other))),
            }
            check_like_python(k)?;
            check_like_python(v)
        }),
        _ => Ok(()),
    }
}

fn parse_targets(value: Value) -> Result<Targets, WireError> {
    match value {
        Value::String(s) => s.into_str().map(Targets::One).ok_or(WireError::BadTarget),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => s.into_str().ok_or(WireError::BadTarget),
                _ => Err(WireError::BadTarget),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Targets::Many),
        _ => Err(WireError::BadTarget),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "int",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "str",
        Value::Binary(_) => "bin",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext",
    }
}

/// The event the legacy consumer sends to `chat_<room>` (`chatapp/consumers.py: receive`) as a
/// msgpack map: `{"type": "chat.message", "id", "message", "username", "timestamp"}`, in that key
/// order, so a Daphne consumer's `chat_message` handler gets exactly the dict it expects.
pub fn event_to_value(event: &ChatEvent) -> Value {
    Value::Map(vec![
        (Value::from("type"), Value::from(ChatEvent::TYPE)),
        (Value::from("id"), Value::from(event.id)),
        (Value::from("message"), Value::from(event.message.as_str())),
        (
            Value::from("username"),
            Value::from(event.username.as_str()),
        ),
        (
            Value::from("timestamp"),
            Value::from(event.timestamp.as_str()),
        ),
    ])
}

/// Reads a `chat.message` event with the fields the legacy `chat_message` handler uses;
/// `None` for another type or missing/mistyped fields. Extra keys are ignored, as Python does.
pub fn event_from_value(value: &Value) -> Option<ChatEvent> {
    let Value::Map(entries) = value else {
        return None;
    };
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    if get("type")?.as_str()? != ChatEvent::TYPE {
        return None;
    }
    Some(ChatEvent {
        id: get("id")?.as_i64()?,
        message: get("message")?.as_str()?.to_owned(),
        username: get("username")?.as_str()?.to_owned(),
        timestamp: get("timestamp")?.as_str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ChatEvent {
        ChatEvent {
            id: 42,
            message: "héllo wörld".into(),
            username: "alice".into(),
            timestamp: "2024-01-02T03:04:05.678901+00:00".into(),
        }
    }

    // `msgpack.packb(ev, use_bin_type=True).hex()` in the legacy venv (msgpack 1.0.7) for
    // ev = {'type': 'chat.message', 'id': 42, 'message': 'héllo wörld', 'username': 'alice',
    //       'timestamp': '2024-01-02T03:04:05.678901+00:00'}
    const PY_EVENT: &str = "85a474797065ac636861742e6d657373616765a269642aa76d657373616765ad68c3a9\
        6c6c6f2077c3b6726c64a8757365726e616d65a5616c696365a974696d657374616d70d920323032342d30312d\
        30325430333a30343a30352e3637383930312b30303a3030";
    // ... with ev['__asgi_channel__'] = ['specific.web1!lobby'] (what group_send writes)
    const PY_GROUP_SUFFIX: &str =
        "b05f5f617367695f6368616e6e656c5f5f91b373706563696669632e77656231216c6f626279";
    // ... with ev['__asgi_channel__'] = 'specific.web1!lobby' (what send writes)
    const PY_SEND_SUFFIX: &str =
        "b05f5f617367695f6368616e6e656c5f5fb373706563696669632e77656231216c6f626279";

    fn plain(target: Target<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        pack_message(&event_to_value(&event()), target, &mut out).expect("packs");
        out
    }

    #[test]
    fn chat_event_bytes_equal_python_msgpack() {
        assert_eq!(hex::encode(plain(Target::None)), PY_EVENT);
    }

    #[test]
    fn routing_key_is_appended_last_like_python() {
        let group = format!("86{}{PY_GROUP_SUFFIX}", &PY_EVENT[2..]);
        assert_eq!(
            hex::encode(plain(Target::Many(&["specific.web1!lobby"]))),
            group
        );
        let send = format!("86{}{PY_SEND_SUFFIX}", &PY_EVENT[2..]);
        assert_eq!(hex::encode(plain(Target::One("specific.web1!lobby"))), send);
    }

    #[test]
    fn members_are_twelve_random_bytes_then_msgpack() {
        let codec = Codec::new(&[], 60).expect("codec");
        let a = codec
            .encode(&event_to_value(&event()), Target::None)
            .expect("encodes");
        let b = codec
            .encode(&event_to_value(&event()), Target::None)
            .expect("encodes");
        assert_eq!(hex::encode(&a[12..]), PY_EVENT);
        assert_ne!(a[..12], b[..12], "fresh random prefix per member");
    }

    #[test]
    fn decode_round_trip_strips_the_routing_key() {
        let codec = Codec::new(&[], 60).expect("codec");
        let targets = ["specific.web1!a", "specific.web1!b"];
        let member = codec
            .encode(&event_to_value(&event()), Target::Many(&targets))
            .expect("encodes");
        let decoded = codec.decode(&member).expect("decodes");
        assert_eq!(decoded.message, event_to_value(&event()));
        assert_eq!(
            decoded.targets,
            Some(Targets::Many(vec![
                "specific.web1!a".into(),
                "specific.web1!b".into()
            ]))
        );
        assert_eq!(event_from_value(&decoded.message), Some(event()));
    }

    #[test]
    fn bin_stays_bin_and_str_stays_str() {
        let msg = Value::Map(vec![
            (Value::from("type"), Value::from("x.y")),
            (Value::from("blob"), Value::Binary(vec![0, 0xff])),
            (Value::from("neg"), Value::from(-3)),
            (Value::from("big"), Value::from(70000)),
            (Value::from("f"), Value::F64(1.5)),
        ]);
        let mut out = Vec::new();
        pack_message(&msg, Target::None, &mut out).expect("packs");
        // msgpack.packb({'type': 'x.y', 'blob': b'\x00\xff', 'neg': -3, 'big': 70000, 'f': 1.5},
        //               use_bin_type=True).hex()
        assert_eq!(
            hex::encode(&out),
            "85a474797065a3782e79a4626c6f62c40200ffa36e6567fda3626967ce00011170a166cb3ff8000000000000"
        );
    }

    #[test]
    fn refuses_to_encode_what_python_could_not_read() {
        let codec = Codec::new(&[], 60).expect("codec");
        assert_eq!(
            codec.encode(&Value::from("x"), Target::None),
            Err(WireError::NotAMap("str"))
        );
        let reserved = Value::Map(vec![(Value::from(ASGI_CHANNEL), Value::from("x"))]);
        assert_eq!(
            codec.encode(&reserved, Target::None),
            Err(WireError::ReservedKey)
        );
        let int_key = Value::Map(vec![(Value::from(1), Value::from("x"))]);
        assert_eq!(
            codec.encode(&int_key, Target::None),
            Err(WireError::KeyNotStr("int"))
        );
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let codec = Codec::new(&[], 60).expect("codec");
        let p = |body: &[u8]| {
            let mut m = vec![7u8; 12];
            m.extend_from_slice(body);
            m
        };
        assert_eq!(codec.decode(b"short"), Err(WireError::TooShort(5)));
        assert!(matches!(codec.decode(&p(b"")), Err(WireError::Msgpack(_))));
        // rmpv reads the reserved marker 0xc1 as nil (Python raises FormatError): still dropped
        // at top level.
        assert_eq!(codec.decode(&p(&[0xc1])), Err(WireError::NotAMap("nil")));
        assert!(matches!(
            codec.decode(&p(&[0xdd, 0xff, 0xff, 0xff, 0xff])),
            Err(WireError::Msgpack(_))
        ));
        assert_eq!(
            codec.decode(&p(&[0x92, 1, 2])),
            Err(WireError::NotAMap("array"))
        );
        assert_eq!(
            codec.decode(&p(&[0x81, 0x01, 0x02])),
            Err(WireError::BadMapKey("int"))
        );
        assert_eq!(
            codec.decode(&p(&[0x81, 0xa1, b'a', 0xa1, 0xff])),
            Err(WireError::InvalidUtf8)
        );
        assert_eq!(
            codec.decode(&p(&[0x80, 0x00])),
            Err(WireError::TrailingBytes(1))
        );
        let bad_target = [&[0x81, 0xb0][..], ASGI_CHANNEL.as_bytes(), &[0x05]].concat();
        assert_eq!(codec.decode(&p(&bad_target)), Err(WireError::BadTarget));
        let deep = [vec![0x91; 1000], vec![0x80]].concat();
        assert!(matches!(
            codec.decode(&p(&deep)),
            Err(WireError::Msgpack(_))
        ));
        assert_eq!(codec.decode(&p(&[0x80])).map(|d| d.targets), Ok(None));
    }

    #[test]
    fn fernet_key_is_urlsafe_b64_of_sha256() {
        // channels_redis.md §3 part 5 (probe output).
        assert_eq!(
            fernet_key("probe-secret-key-with-plenty-of-entropy-0123456789"),
            "6ap6MKQLWn1y1ZVo9KZAW8vnOGHlaXEYtHW-1aOXDdA="
        );
    }

    #[test]
    fn encrypted_members_are_prefix_then_fernet_token_any_key_decrypts() {
        let old = Codec::new(&["old".into()], 60).expect("codec");
        let rotated = Codec::new(&["new".into(), "old".into()], 60).expect("codec");
        let member = old
            .encode(&event_to_value(&event()), Target::One("specific.a!b"))
            .expect("encodes");
        assert!(
            member[12..].starts_with(b"gAAAAA"),
            "Fernet version byte 0x80"
        );
        let decoded = rotated.decode(&member).expect("second key decrypts");
        assert_eq!(decoded.message, event_to_value(&event()));
        let other = Codec::new(&["other".into()], 60).expect("codec");
        assert_eq!(other.decode(&member), Err(WireError::Decrypt));
        let unencrypted = Codec::new(&[], 60).expect("codec");
        assert!(unencrypted.decode(&member).is_err());
        let plain_member = unencrypted
            .encode(&event_to_value(&event()), Target::None)
            .expect("encodes");
        assert_eq!(old.decode(&plain_member), Err(WireError::Decrypt));
    }
}
