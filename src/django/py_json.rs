//! Python's `json.dumps` output, byte for byte (`Lib/json/encoder.py`, C accelerator
//! `_json.c: encoder_listencode_*` / `py_encode_basestring_ascii`), for `serde_json::Value`.
//!
//! * `ensure_ascii=True`: everything outside `' '..='~'` is escaped; `"` `\\` `\n` `\r` `\t`
//!   `\b` `\f` get their short forms, every other character `\uXXXX` in lower-case hex (DEL
//!   too), characters above U+FFFF as a UTF-16 surrogate pair. `/` is not escaped.
//! * Objects keep insertion order (serde_json's `preserve_order`), like Python dicts.
//! * Floats use Python's `repr` (`1e+16`, `1e-05`, `100.0`); integers are plain.
//!
//! Django sessions and signing use [`Style::Compact`] (`separators=(",", ":")`); the
//! WebSocket frame of the chat consumer uses [`Style::Default`] (`", "` and `": "`).

use serde_json::{Map, Value};

/// Separators of `json.dumps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `separators=(",", ":")` (Django's `JSONSerializer`).
    Compact,
    /// The default `(", ", ": ")`.
    Default,
}

impl Style {
    fn item_sep(self) -> &'static str {
        match self {
            Style::Compact => ",",
            Style::Default => ", ",
        }
    }
    fn key_sep(self) -> &'static str {
        match self {
            Style::Compact => ":",
            Style::Default => ": ",
        }
    }
}

/// `json.dumps(value)`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value, Style::Default);
    out
}

/// `json.dumps(value, separators=(",", ":"))`.
pub fn dumps_compact(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value, Style::Compact);
    out
}

/// Appends the serialisation of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value, style: Style) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                push_int(out, i128::from(i));
            } else if let Some(u) = n.as_u64() {
                push_int(out, i128::from(u));
            } else if let Some(f) = n.as_f64() {
                write_float(out, f);
            } else {
                // Only reachable with serde_json's arbitrary_precision; its text is plain JSON.
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_sep());
                }
                write_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => write_map(out, map, style),
    }
}

/// Appends a JSON object (a Python dict) to `out`.
pub fn write_map(out: &mut String, map: &Map<String, Value>, style: Style) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(style.item_sep());
        }
        write_str(out, k);
        out.push_str(style.key_sep());
        write_value(out, v, style);
    }
    out.push('}');
}

fn push_int(out: &mut String, i: i128) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{i}");
}

/// Python `float.__repr__` (shortest round-trip digits; exponent form when the decimal
/// exponent is < -4 or >= 16, with a sign and at least two exponent digits).
/// Non-finite values are written as Python writes them (`NaN`, `Infinity`, `-Infinity`).
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-7" or "0e0".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // position of the decimal point relative to the digits
    if (-4 < decpt) && (decpt <= 16) {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize; // 1..=16
            if digits.len() <= decpt {
                out.push_str(&digits);
                for _ in digits.len()..decpt {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        let e = e.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        push_int(out, i128::from(e));
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u_escape(out: &mut String, unit: u32) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((unit >> shift) & 0xf) as usize]));
    }
}

/// Appends `s` as a JSON string literal with `ensure_ascii=True` escaping.
/// Runs of printable ASCII are copied in one `push_str`.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        if b < 0x80 {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                _ => push_u_escape(out, u32::from(b)),
            }
            i += 1;
        } else {
            // `i` is always on a character boundary: we step over whole characters.
            let Some(c) = s[i..].chars().next() else {
                break;
            };
            let cp = u32::from(c);
            if cp >= 0x1_0000 {
                let v = cp - 0x1_0000;
                push_u_escape(out, 0xd800 | (v >> 10));
                push_u_escape(out, 0xdc00 | (v & 0x3ff));
            } else {
                push_u_escape(out, cp);
            }
            i += c.len_utf8();
        }
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_frame_matches_python() {
        let v = json!({"id": 1, "message": "hello", "username": "admin",
                       "timestamp": "2026-11-24T04:36:42.485068+00:00"});
        assert_eq!(
            dumps(&v),
            r#"{"id": 1, "message": "hello", "username": "admin", "timestamp": "2026-11-24T04:36:42.485068+00:00"}"#
        );
    }

    #[test]
    fn escaping_matches_python() {
        // python3 -c 'import json; print(json.dumps({...}))'
        let v = json!({"a": [1, 2, {}], "b": [], "c": "\u{7f}\u{0}\u{2028}/\"\\ é😀",
                       "d": 1.5, "e": null, "f": true, "g": 1e16, "h": -0.0, "i": 1e-7});
        assert_eq!(
            dumps(&v),
            r#"{"a": [1, 2, {}], "b": [], "c": "\u007f\u0000\u2028/\"\\ \u00e9\ud83d\ude00", "d": 1.5, "e": null, "f": true, "g": 1e+16, "h": -0.0, "i": 1e-07}"#
        );
        assert_eq!(
            dumps_compact(&json!({"k": [1, "x\n\t\u{8}\u{c}\r\u{1f}"]})),
            r#"{"k":[1,"x\n\t\b\f\r\u001f"]}"#
        );
    }

    #[test]
    fn floats_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (1e300, "1e+300"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (2.5e-5, "2.5e-05"),
            (0.0001, "0.0001"),
            (0.0, "0.0"),
            (123.456, "123.456"),
            (-1.5e-10, "-1.5e-10"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.5, "2.5"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.00001, "1e-05"),
            (-1.25e-7, "-1.25e-07"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            write_float(&mut s, f);
            assert_eq!(s, want, "{f}");
        }
    }

    #[test]
    fn integers_plain() {
        assert_eq!(
            dumps(&json!([u64::MAX, i64::MIN, 0])),
            "[18446744073709551615, -9223372036854775808, 0]"
        );
    }
}
