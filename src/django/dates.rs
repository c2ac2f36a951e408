//! Python/Django datetime formats: `datetime.isoformat()` of an aware UTC datetime,
//! `django.utils.http.http_date` (RFC 7231 / RFC 5322 with `GMT`), and the English names of
//! `django.utils.dates` (the `|date` filter's format characters are in [`super::dateformat`]).

use std::fmt::Write;

use chrono::{DateTime, Datelike, SubsecRound, TimeZone, Timelike, Utc};

/// Python `datetime` has microsecond precision; Django stores and renders at most that.
/// Sub-microsecond digits are dropped, never rounded up into the next microsecond.
pub fn truncate_to_micros(dt: DateTime<Utc>) -> DateTime<Utc> {
    dt.trunc_subsecs(6)
}

/// `dt.isoformat()` for an aware UTC datetime: `2026-11-24T04:36:42.485068+00:00`, the
/// fraction omitted when the microseconds are zero (sub-microsecond digits are dropped, as
/// Python never has them). Years are zero-padded to four digits.
pub fn isoformat(dt: &DateTime<Utc>) -> String {
    let mut s = String::with_capacity(32);
    write_isoformat(dt, &mut s);
    s
}

/// [`isoformat`], appended to `out`.
pub fn write_isoformat(dt: &DateTime<Utc>, out: &mut String) {
    // The common years take the digit-pushing path (the room page formats 100 of these).
    if (0..=9999).contains(&dt.year()) {
        push_digits(out, dt.year().unsigned_abs(), 4);
        out.push('-');
        push_digits(out, dt.month(), 2);
        out.push('-');
        push_digits(out, dt.day(), 2);
        out.push('T');
        push_digits(out, dt.hour(), 2);
        out.push(':');
        push_digits(out, dt.minute(), 2);
        out.push(':');
        push_digits(out, dt.second(), 2);
    } else {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
    }
    // A leap second is shown by chrono as nanosecond >= 1e9; Python has no leap seconds.
    let micros = (dt.nanosecond() % 1_000_000_000) / 1_000;
    if micros != 0 {
        out.push('.');
        push_digits(out, micros, 6);
    }
    out.push_str("+00:00");
}

/// `django.utils.dates.WEEKDAYS` (Monday first); `http_date` uses their first three letters.
pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// `django.utils.dates.MONTHS`.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// `django.utils.dates.MONTHS_AP` (Associated Press style).
pub const MONTHS_AP: [&str; 12] = [
    "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.",
    "Dec.",
];

/// `value` as exactly `width` decimal digits, zero-padded (`value < 10^width`).
pub fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// `http_date(epoch_seconds)` = `email.utils.formatdate(epoch, usegmt=True)`:
/// `Wdy, DD Mon YYYY HH:MM:SS GMT` (English names, whatever the locale). Out-of-range times are
/// clamped to chrono's range.
pub fn http_date(unix: i64) -> String {
    let dt = Utc.timestamp_opt(unix, 0).single().unwrap_or(if unix < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        &WEEKDAYS[dt.weekday().num_days_from_monday() as usize][..3],
        dt.day(),
        &MONTHS[dt.month0() as usize][..3],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_like_python() {
        let dt = Utc
            .timestamp_opt(1_795_495_002, 485_068_999)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&dt), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(
            isoformat(&truncate_to_micros(dt)),
            "2026-11-24T04:36:42.485068+00:00"
        );
        assert_eq!(truncate_to_micros(dt).nanosecond(), 485_068_000);
        let whole = Utc.timestamp_opt(1_704_110_400, 0).single().expect("valid");
        assert_eq!(isoformat(&whole), "2024-01-01T12:00:00+00:00");
        let sub_micro = Utc
            .timestamp_opt(1_704_110_400, 999)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&sub_micro), "2024-01-01T12:00:00+00:00");
        let ancient = Utc
            .with_ymd_and_hms(999, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&ancient), "0999-01-02T03:04:05+00:00");
        let micro1 = Utc.timestamp_opt(0, 1_000).single().expect("valid");
        assert_eq!(isoformat(&micro1), "1970-01-01T00:00:00.000001+00:00");
        let far = Utc
            .with_ymd_and_hms(12345, 6, 7, 8, 9, 10)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&far), "12345-06-07T08:09:10+00:00");
    }

    #[test]
    fn isoformat_digits_match_std_formatting() {
        // Every field width over a spread of instants, against plain `format!`.
        for step in 0..5_000i64 {
            // From year 1 to beyond 9999 (the `write!` fallback).
            let secs = -62_135_596_800 + step * 75_000_000 + step * 7_919;
            let nanos = u32::try_from(step * 104_729 % 1_000_000_000).expect("in range");
            let dt = Utc.timestamp_opt(secs, nanos).single().expect("valid");
            let micros = nanos / 1_000;
            let mut expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            );
            if micros != 0 {
                expected.push_str(&format!(".{micros:06}"));
            }
            expected.push_str("+00:00");
            assert_eq!(isoformat(&dt), expected, "{secs} {nanos}");
        }
    }

    #[test]
    fn http_date_like_django() {
        // python -c 'from django.utils.http import http_date; print(http_date(...))'
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_704_836), "Tue, 08 Dec 2026 04:40:36 GMT");
        assert_eq!(http_date(1_704_110_400), "Mon, 01 Jan 2024 12:00:00 GMT");
        let _ = http_date(i64::MAX);
        let _ = http_date(i64::MIN);
    }
}
