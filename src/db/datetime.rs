//! Datetimes exactly as Django stores them with `USE_TZ = True` (django_formats.md §4.6).
//!
//! - SQLite: naive UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]`, the fraction omitted when the
//!   microsecond is zero. Django writes `str(naive_utc_datetime)`
//!   (`django/db/backends/sqlite3/operations.py: adapt_datetimefield_value`) and SQLite compares the
//!   column as text (e.g. the session `expire_date > now` lookup), so nothing else will do.
//! - PostgreSQL: `timestamp with time zone`, bound and read as `DateTime<Utc>`.
//! - MySQL/MariaDB: `datetime(6)` holding naive UTC (`mysql/operations.py:
//!   adapt_datetimefield_value`), bound and read as `NaiveDateTime`.
//!
//! Python datetimes have microsecond precision, so everything ferrochat stores is truncated to
//! microseconds: a value read back equals the value written, on every backend.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};

use crate::django::dates::truncate_to_micros;

/// `timezone.now()`: the current UTC time, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

/// The SQLite text Django writes for `dt` (`str()` of the naive UTC datetime).
pub fn to_sqlite(dt: &DateTime<Utc>) -> String {
    let dt = truncate_to_micros(*dt);
    if dt.nanosecond() == 0 {
        dt.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// The MySQL `datetime(6)` value Django writes for `dt`: naive UTC.
pub fn to_mysql(dt: &DateTime<Utc>) -> NaiveDateTime {
    truncate_to_micros(*dt).naive_utc()
}

/// A MySQL `datetime(6)` value read back: Django treats it as UTC.
pub fn from_mysql(naive: NaiveDateTime) -> DateTime<Utc> {
    truncate_to_micros(naive.and_utc())
}

/// A stored value that is not a datetime Django could have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a datetime (expected YYYY-MM-DD HH:MM:SS[.ffffff])")]
pub struct InvalidDatetime(pub String);

/// Parses SQLite datetime text as Django's `parse_datetime` reads it back
/// (`django/utils/dateparse.py`; `datetime.fromisoformat` first): `YYYY-MM-DD` then a space or
/// `T`, `HH:MM[:SS[.f{1,9}]]`, then optionally `Z` or `±HH[:MM]`. A value without an offset is
/// UTC (Django writes naive UTC); one with an offset is converted to UTC. Digits beyond
/// microseconds are dropped, as Python does. The one parser of stored datetime text.
pub fn from_sqlite(text: &str) -> Result<DateTime<Utc>, InvalidDatetime> {
    parse_iso(text.trim()).ok_or_else(|| InvalidDatetime(text.to_owned()))
}

fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    // Everything below indexes bytes and slices at fixed offsets: only ASCII may pass (Django
    // writes nothing else, and a multi-byte character would split a slice).
    if !s.is_ascii() {
        return None;
    }
    let bytes = s.as_bytes();
    // Date: exactly YYYY-MM-DD.
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(&s[0..4])? as i32,
        digits(&s[5..7])?,
        digits(&s[8..10])?,
    )?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    let rest = rest.strip_prefix([' ', 'T'])?;

    // Split the time from an optional offset.
    let (time, offset_secs) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], parse_offset(&rest[i..])?),
        None => (rest, 0),
    };
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let mut parts = hms.split(':');
    let hour = digits(parts.next()?)?;
    let minute = digits(parts.next()?)?;
    let second = match parts.next() {
        Some(sec) => digits(sec)?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let micros = match fraction {
        None => 0,
        Some(f) if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return None;
        }
        Some(f) => {
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            digits(&six)?
        }
    };
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let local = date.and_time(time);
    Some((local - TimeDelta::seconds(i64::from(offset_secs))).and_utc())
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` → seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    if s.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = s[1..].replace(':', "");
    let (h, m) = match body.len() {
        2 => (digits(&body)?, 0),
        4 => (digits(&body[..2])?, digits(&body[2..])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) as i32)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::dates::isoformat;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
            + TimeDelta::microseconds(i64::from(us))
    }

    #[test]
    fn sqlite_text_is_str_of_naive_utc() {
        assert_eq!(
            to_sqlite(&utc(2024, 1, 1, 12, 0, 0, 123_456)),
            "2024-01-01 12:00:00.123456"
        );
        // Python's str() drops a zero fraction entirely.
        assert_eq!(
            to_sqlite(&utc(2024, 1, 1, 10, 0, 0, 0)),
            "2024-01-01 10:00:00"
        );
        assert_eq!(
            to_sqlite(&utc(2026, 11, 24, 4, 33, 13, 120_000)),
            "2026-11-24 04:33:13.120000"
        );
        // Nanoseconds are truncated, never rounded up into the next microsecond.
        let nanos = utc(2024, 1, 1, 0, 0, 0, 0) + TimeDelta::nanoseconds(999);
        assert_eq!(to_sqlite(&nanos), "2024-01-01 00:00:00");
    }

    #[test]
    fn sqlite_round_trip() {
        for dt in [
            utc(2024, 1, 1, 12, 0, 0, 123_456),
            utc(2024, 1, 1, 12, 0, 0, 0),
            utc(1999, 12, 31, 23, 59, 59, 1),
        ] {
            assert_eq!(from_sqlite(&to_sqlite(&dt)), Ok(dt));
        }
    }

    #[test]
    fn sqlite_parses_what_others_write() {
        let want = utc(2024, 1, 2, 3, 4, 5, 120_000);
        // sqlx's own encodings and SQLite's strftime('%f') variants.
        assert_eq!(from_sqlite("2024-01-02 03:04:05.120"), Ok(want));
        assert_eq!(from_sqlite("2024-01-02T03:04:05.120+00:00"), Ok(want));
        assert_eq!(from_sqlite("2024-01-02T03:04:05.12Z"), Ok(want));
        assert_eq!(from_sqlite("2024-01-02 05:04:05.120+02:00"), Ok(want));
        assert_eq!(from_sqlite("2024-01-02 03:04:05.120000999"), Ok(want));
        assert_eq!(
            from_sqlite("2024-01-02 03:04"),
            Ok(utc(2024, 1, 2, 3, 4, 0, 0))
        );
        assert_eq!(from_sqlite("2024-01-02"), Ok(utc(2024, 1, 2, 0, 0, 0, 0)));
    }

    #[test]
    fn sqlite_rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01 00:00:00",
            "2024-01-01 25:00:00",
            "2024-01-01 00:00:00.",
            "2024-01-01 00:00:00.abc",
            "2024-01-01 00:00:00+5",
            "2024-01-01X00:00:00",
            "2024-01-01 00:00:00:00",
        ] {
            assert!(from_sqlite(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sqlite_reads_python_isoformat() {
        // What the room page and the WebSocket frame show (`isoformat()`), read back.
        let dt = from_sqlite("2026-11-24T04:36:42.485068+00:00").expect("isoformat");
        assert_eq!(isoformat(&dt), "2026-11-24T04:36:42.485068+00:00");
        let dt = from_sqlite("2026-01-02 13:00:05").expect("sqlite text");
        assert_eq!(isoformat(&dt), "2026-01-02T13:00:05+00:00");
        let dt = from_sqlite("2026-01-02T15:00:05.5+02:00").expect("offset");
        assert_eq!(isoformat(&dt), "2026-01-02T13:00:05.500000+00:00");
        assert!(from_sqlite("yesterday").is_err());
    }

    #[test]
    fn every_isoformat_and_str_reads_back_as_the_same_instant() {
        // From year 1 to year 7986, every third one on a whole second (no fraction written).
        for step in 0..2_000i64 {
            let secs = -62_135_596_800 + step * 126_000_000 + step * 7_919;
            let micros = if step % 3 == 0 {
                0
            } else {
                step * 104_729 % 1_000_000
            };
            let nanos = u32::try_from(micros * 1_000).expect("in range");
            let dt = Utc.timestamp_opt(secs, nanos).single().expect("valid");
            assert_eq!(from_sqlite(&isoformat(&dt)), Ok(dt), "{dt:?}");
            assert_eq!(from_sqlite(&to_sqlite(&dt)), Ok(dt), "{dt:?}");
        }
    }

    #[test]
    fn edge_cases_as_python_fromisoformat() {
        for (text, parses) in [
            ("2026-11-24T04:36:42.485068+00:00", true),
            ("2026-11-24 04:36:42.485068+00:00", true),
            ("2026-11-24T04:36:42+00:00", true),
            ("2024-02-29T23:59:59.999999+00:00", true),
            ("2026-12-31T23:59:59+01:00", true),
            (" 2026-12-31T23:59:59+00:00", true),
            ("2023-02-29T23:59:59+00:00", false),
            ("2026-13-01T00:00:00+00:00", false),
            ("2026-12-31T24:00:00+00:00", false),
            ("2026-12-31T23:60:00+00:00", false),
            // Python has no leap seconds (chrono's own parser would accept these).
            ("2026-12-31T23:59:60+00:00", false),
            ("2026-12-31T23:59:60.5+00:00", false),
            ("2026-12-31X23:59:59+00:00", false),
            ("2026-12-31T23:59:59.12345x+00:00", false),
            ("2026-12-31T23:59:59,123456+00:00", false),
            ("2026-1a-31T23:59:59+00:00", false),
        ] {
            assert_eq!(from_sqlite(text).is_ok(), parses, "{text:?}");
        }
        assert_eq!(
            from_sqlite("2026-12-31T23:59:59+01:00"),
            Ok(utc(2026, 12, 31, 22, 59, 59, 0))
        );
    }

    #[test]
    fn non_ascii_is_an_error_not_a_panic() {
        // Each one once split a multi-byte character with a fixed-offset slice.
        for text in [
            "20é4-01-01 00:00:00",
            "2024-0é-01 00:00:00",
            "2024-01-0é 00:00:00",
            "2024-01-01é00:00:00",
            "2024-01-01 00:00:00+0é:00",
            "2024-01-01 00:00:00+é",
            "ééééééééééé",
            "2024-01-01 00:00:00.12é",
        ] {
            assert!(from_sqlite(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn mysql_is_naive_utc() {
        let dt = utc(2024, 1, 1, 12, 0, 0, 123_456);
        let naive = to_mysql(&dt);
        assert_eq!(naive.to_string(), "2024-01-01 12:00:00.123456");
        assert_eq!(from_mysql(naive), dt);
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
