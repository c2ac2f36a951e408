//! Property tests: arbitrary input at every parser of stored or received data. None may panic,
//! and where a value can be written and read back, what is read is what was written.
//!
//! Stored: datetimes (`db::datetime`), session data, password hashes, database URLs.
//! Received: signed cookies, CSRF tokens and cookies, Origin/Referer/Host headers, the
//! WebSocket JSON and route, channels_redis members (msgpack, Fernet) and names, the
//! environment (`config`).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::db::DatabaseUrl;
use crate::db::datetime::{from_sqlite, to_sqlite};
use crate::django::chat_json::{ChatEvent, MAX_MESSAGE_CHARS, parse_client_text};
use crate::django::dates::isoformat;
use crate::django::room_name::RoomName;
use crate::django::sessions::{SessionSigner, is_valid_session_key};
use crate::django::validators::Username;
use crate::django::{csrf, hashers, hosts, http, pyunicode, signing};
use crate::layer::channels_redis::config::ChannelsRedisConfig;
use crate::layer::channels_redis::wire::{Codec, Target, event_from_value, event_to_value};
use crate::layer::channels_redis::{ChannelName, GroupName, NodeId};
use crate::secret::redact_url;
use crate::web::ws;

/// Text that looks like what the parsers expect often enough to reach their deeper branches:
/// pieces of the real formats mixed with arbitrary characters.
fn texty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        prop::sample::select(vec![
            "$",
            ":",
            "-",
            "+",
            ".",
            "/",
            "//",
            "@",
            "?",
            "#",
            "%",
            "%2",
            "[",
            "]",
            "!",
            "T",
            " ",
            "Z",
            "z",
            "é",
            "😀",
            "\0",
            "\n",
            "0",
            "1",
            "9",
            "12",
            "2024",
            "00",
            "59",
            "60",
            "http",
            "https://",
            "redis://",
            "sqlite:///",
            "postgres://u:p@h/d",
            "pbkdf2_sha256",
            "scrypt",
            "argon2",
            "md5$$",
            "sha1$$",
            "!",
            ".eJ",
            "chat_",
            "specific.",
            "asgi",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Any instant with Python's range and precision (years 1–9999, microseconds).
fn python_datetime() -> impl Strategy<Value = DateTime<Utc>> {
    // 0001-01-01T00:00:00 .. 9999-12-31T23:59:59.
    (-62_135_596_800i64..=253_402_300_799, 0u32..1_000_000).prop_map(|(secs, micros)| {
        Utc.timestamp_opt(secs, micros * 1_000)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    })
}

/// Small JSON values (sessions and signed objects hold these).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn settings_var() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "DJANGO_SECRET_KEY",
        "DJANGO_SECRET_KEY_FALLBACKS",
        "DJANGO_DEBUG",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "REDIS_URL",
        "CHANNEL_LAYER",
        "FERROCHAT_NODE_ID",
        "FERROCHAT_REDIS_HOSTS",
        "FERROCHAT_REDIS_PREFIX",
        "FERROCHAT_REDIS_CAPACITY",
        "FERROCHAT_REDIS_EXPIRY",
        "FERROCHAT_REDIS_GROUP_EXPIRY",
        "FERROCHAT_REDIS_ENCRYPTION_KEYS",
        "FERROCHAT_HEADER_TIMEOUT",
        "FERROCHAT_WS_PING_INTERVAL",
        "FERROCHAT_WS_PING_TIMEOUT",
        "FERROCHAT_WS_QUEUE",
    ])
}

proptest! {
    // ---------------------------------------------------------------- stored datetimes

    #[test]
    fn stored_datetime_text_never_panics(text in texty(), other in any::<String>()) {
        let _ = from_sqlite(&text);
        let _ = from_sqlite(&other);
    }

    #[test]
    fn stored_datetimes_read_back_as_written(dt in python_datetime()) {
        prop_assert_eq!(from_sqlite(&to_sqlite(&dt)), Ok(dt));
        prop_assert_eq!(from_sqlite(&isoformat(&dt)), Ok(dt));
    }

    // ---------------------------------------------------------------- sessions and signing

    #[test]
    fn session_data_decoding_never_panics(text in texty(), other in any::<String>()) {
        let signer = SessionSigner::new("key", &["old-key"]);
        let _ = signer.decode(&text);
        let _ = signer.decode(&other);
        let _ = is_valid_session_key(&other);
    }

    #[test]
    fn sessions_read_back_as_written(
        entries in prop::collection::vec((any::<String>(), json_value()), 0..6),
        now in 0i64..4_000_000_000,
    ) {
        let data: Map<String, Value> = entries.into_iter().collect();
        let signer = SessionSigner::new("key", &[] as &[&str]);
        prop_assert_eq!(signer.decode(&signer.encode(&data, now)), Some(data.clone()));
        // A key that was rotated out still reads it; an unknown key does not.
        let rotated = SessionSigner::new("new-key", &["key"]);
        prop_assert_eq!(rotated.decode(&signer.encode(&data, now)), Some(data.clone()));
        let stranger = SessionSigner::new("other", &[] as &[&str]);
        prop_assert_eq!(stranger.decode(&signer.encode(&data, now)), None);
    }

    #[test]
    fn signed_cookies_never_panic(text in texty(), other in any::<String>()) {
        let signer = signing::TimestampSigner::with_fallbacks("key", &["old"], "salt");
        for input in [&text, &other] {
            let _ = signer.unsign(input, Some(60), 1_700_000_000);
            let _ = signer.unsign_object(input, None, 0);
            let _ = signing::Signer::new("key", "salt").unsign(input);
            let _ = signing::b62_decode(input);
            let _ = signing::b64_decode(input);
        }
    }

    #[test]
    fn signed_values_read_back_as_written(
        value in json_value(),
        compress in any::<bool>(),
        now in 0i64..4_000_000_000,
        text in any::<String>(),
        number in any::<i64>(),
    ) {
        let signed = signing::dumps(&value, "key", "salt", compress, now);
        prop_assert_eq!(
            signing::loads(&signed, "key", &[], "salt", Some(0), now),
            Ok(value)
        );
        prop_assert!(signing::loads(&signed, "other", &[], "salt", None, now).is_err());
        let signer = signing::Signer::new("key", "salt");
        let signed_text = signer.sign(&text);
        prop_assert_eq!(signer.unsign(&signed_text), Ok(text.as_str()));
        prop_assert_eq!(signing::b62_decode(&signing::b62_encode(number)), Some(number));
        let bytes = text.into_bytes();
        prop_assert_eq!(
            signing::b64_decode(&signing::b64_encode(&bytes)).ok(),
            Some(bytes)
        );
    }

    // ---------------------------------------------------------------- password hashes

    #[test]
    fn password_hash_strings_never_panic(text in texty(), other in any::<String>()) {
        for encoded in [&text, &other] {
            let _ = hashers::identify_hasher(encoded);
            let _ = hashers::must_update(encoded);
            let _ = hashers::is_password_usable(encoded);
        }
    }

    #[test]
    fn verifying_garbage_hashes_never_panics(
        algorithm in prop::sample::select(vec!["pbkdf2_sha256", "pbkdf2_sha1", "scrypt", "argon2", "md5", "x"]),
        // Iteration counts and scrypt parameters stay tiny so a case costs no real hashing.
        fields in prop::collection::vec(prop_oneof![
            "[0-9]{0,2}",
            "[a-zA-Z0-9+/=]{0,8}",
            any::<String>(),
        ], 0..6),
        raw in any::<String>(),
    ) {
        let encoded = std::iter::once(algorithm.to_owned()).chain(fields).collect::<Vec<_>>().join("$");
        let check = hashers::verify_password(&raw, &encoded);
        prop_assert!(!check.correct || encoded.starts_with("pbkdf2_") || encoded.starts_with("scrypt"));
    }

    // ---------------------------------------------------------------- CSRF

    #[test]
    fn csrf_tokens_and_headers_never_panic(a in texty(), b in any::<String>()) {
        let _ = csrf::check_token_format(&a);
        let _ = csrf::secret_from_cookie(&b);
        let _ = csrf::unmask_cipher_token(&a);
        let _ = csrf::does_token_match(&a, &b);
        let _ = csrf::check_token(Some(&a), Some(&b), Some(&a));
        let _ = csrf::check_referer(Some(&a), Some(&b), &[&a]);
        let _ = csrf::origin_verified(&a, Some(&b), true, &[&b]);
        let _ = csrf::csrf_failure_body(&a, true);
        let request = csrf::CsrfRequest {
            good_host: Some(&b),
            is_secure: true,
            origin: None,
            referer: Some(&a),
            cookie: Some(&b),
            post_token: Some(&a),
            header_token: None,
        };
        let _ = csrf::check_request(&request, &[&a]);
    }

    #[test]
    fn masked_csrf_tokens_unmask_to_their_secret(_round in 0u8..4) {
        let secret = csrf::new_csrf_secret();
        let token = csrf::mask_cipher_secret(&secret);
        prop_assert_eq!(csrf::check_token_format(&token), Ok(()));
        prop_assert_eq!(csrf::unmask_cipher_token(&token), secret.clone());
        prop_assert!(csrf::does_token_match(&token, &secret));
        prop_assert_eq!(csrf::secret_from_cookie(&token), Ok(secret.clone()));
        prop_assert_eq!(csrf::check_token(Some(&secret), Some(&token), None), Ok(()));
    }

    // ---------------------------------------------------------------- URLs and hosts

    #[test]
    fn urls_and_hosts_never_panic(a in texty(), b in any::<String>()) {
        for input in [&a, &b] {
            let _ = http::urlparse(input).map(|p| p.geturl());
            let _ = http::url_has_allowed_host_and_scheme(input, &["example.com"], true);
            let _ = http::is_same_domain(input, &a);
            let _ = hosts::split_domain_port(input);
            let _ = hosts::host_allowed(input, &[a.clone(), "*".into()], false);
            let _ = ws::match_route(input);
            let _ = hosts::origin_allowed(Some(input), &["localhost".to_owned()], true);
            let _ = redact_url(input);
            let _ = DatabaseUrl::parse(input, Path::new("/srv"));
        }
    }

    #[test]
    fn database_urls_keep_what_they_name(path in "[a-zA-Z0-9_./-]{1,40}", password in "[a-zA-Z0-9]{1,12}") {
        let parsed = DatabaseUrl::parse(&format!("sqlite:////srv/{path}"), Path::new("/x"));
        let is_sqlite = matches!(parsed, Ok(DatabaseUrl::Sqlite { .. } | DatabaseUrl::SqliteMemory));
        prop_assert!(is_sqlite, "{:?}", parsed);
        let url = format!("postgres://user:{password}@db.example:5432/chat");
        let parsed = DatabaseUrl::parse(&url, Path::new("/x"));
        prop_assert_eq!(parsed.as_ref().ok(), Some(&DatabaseUrl::Postgres { url: url.clone() }));
        let shown = parsed.map(|u| u.redacted()).unwrap_or_default();
        prop_assert!(!shown.contains(&format!(":{password}@")), "{}", shown);
        prop_assert_eq!(redact_url(&url), shown);
    }

    // ---------------------------------------------------------------- the WebSocket JSON

    #[test]
    fn client_frames_never_panic(text in texty(), other in any::<String>(), value in json_value()) {
        let _ = parse_client_text(&text);
        let _ = parse_client_text(&other);
        let _ = parse_client_text(&value.to_string());
        let _ = RoomName::parse(&other);
        let _ = Username::parse(&other);
        let _ = Username::parse_model(&other);
        let _ = Username::parse_cleaned(&other);
    }

    #[test]
    fn a_sent_message_is_read_as_its_stripped_text(message in any::<String>()) {
        let frame = serde_json::json!({ "message": message }).to_string();
        let stripped = pyunicode::strip(&message);
        match parse_client_text(&frame) {
            Ok(saved) => {
                prop_assert_eq!(saved.as_str(), stripped);
                prop_assert!(saved.chars().count() <= MAX_MESSAGE_CHARS);
            }
            Err(_) => prop_assert!(
                stripped.is_empty() || stripped.chars().count() > MAX_MESSAGE_CHARS
            ),
        }
    }

    #[test]
    fn server_frames_are_json_of_the_event(
        id in any::<i64>(),
        message in any::<String>(),
        username in any::<String>(),
        at in python_datetime(),
    ) {
        let event = ChatEvent::new(id, message.clone(), username.clone(), &at);
        let frame: Value = serde_json::from_str(&event.to_frame()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            frame,
            serde_json::json!({"id": id, "message": message, "username": username, "timestamp": isoformat(&at)})
        );
    }

    // ---------------------------------------------------------------- channels_redis

    #[test]
    fn channels_redis_members_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..96),
        text in texty(),
    ) {
        let plain = Codec::new(&[], 60).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let encrypted = Codec::new(&["secret".to_owned()], 60).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for codec in [&plain, &encrypted] {
            if let Ok(decoded) = codec.decode(&bytes) {
                let _ = event_from_value(&decoded.message);
            }
            let _ = codec.decode(text.as_bytes());
        }
        let _ = ChannelName::parse(&text);
        let _ = GroupName::parse(&text);
        let _ = NodeId::parse(&text);
        let _ = crate::layer::channels_redis::non_local_name(&text);
    }

    #[test]
    fn channels_redis_members_read_back_as_written(
        id in any::<i64>(),
        message in any::<String>(),
        username in any::<String>(),
        timestamp in any::<String>(),
        encrypted in any::<bool>(),
    ) {
        let keys = if encrypted { vec!["secret".to_owned()] } else { Vec::new() };
        let codec = Codec::new(&keys, 60).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let event = ChatEvent { id, message, username, timestamp };
        let member = codec
            .encode(&event_to_value(&event), Target::One("specific.node!lobby"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let decoded = codec.decode(&member).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(event_from_value(&decoded.message), Some(event));
    }

    // ---------------------------------------------------------------- the environment

    #[test]
    fn settings_never_panic(vars in prop::collection::vec((settings_var(), texty()), 0..6)) {
        let vars: HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let _ = Settings::from_vars(&vars, Path::new("/srv/app"));
        let _ = ChannelsRedisConfig::from_env(&vars);
    }
}

proptest! {
    // Every check of a hash weaker than the default runs Django's `harden_runtime` (the missing
    // PBKDF2 iterations, about 0.1 s here): a few cases only.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn hashes_verify_what_was_hashed(raw in any::<String>(), other in any::<String>(), salt in "[a-zA-Z0-9]{1,22}") {
        let encoded = hashers::make_password_with(&raw, &salt, 2);
        prop_assert!(hashers::check_password(&raw, &encoded));
        prop_assert_eq!(hashers::check_password(&other, &encoded), other == raw);
        prop_assert!(hashers::identify_hasher(&encoded).is_ok());
    }
}
